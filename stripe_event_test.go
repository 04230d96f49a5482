package tollgate

import "testing"

func TestStripeEventTypesAreOneList(t *testing.T) {
	seen := map[string]bool{}
	for _, e := range StripeEventTypes() {
		if seen[e.Type] {
			t.Errorf("%s is listed twice", e.Type)
		}
		seen[e.Type] = true
		if obj, ok := StripeEventObject(e.Type); !ok || obj != e.Object || obj == "" {
			t.Errorf("StripeEventObject(%s) = %q, %v; want %q, true", e.Type, obj, ok, e.Object)
		}
	}
	for _, typ := range []string{"charge.refunded", "customer.subscription.", "Invoice.paid", ""} {
		if obj, ok := StripeEventObject(typ); ok {
			t.Errorf("StripeEventObject(%q) = %q, true; want not handled", typ, obj)
		}
	}
}
