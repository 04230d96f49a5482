package tollgate_test

import (
	"testing"

	"github.com/tollgate-pdp/tollgate"
)

// FuzzDecodeImportRow: any line either decodes into a record that passes validation (a vendor
// id the API would accept, a tier of the catalog) or is refused with a field error; it never
// panics.
func FuzzDecodeImportRow(f *testing.F) {
	for _, s := range []string{
		`{"vendor_id":"v1","tier":"essential","status":"active"}`,
		`{"vendor_id":"v2","tier":"business","status":"trial","period_start":"2024-01-01 00:00:00","period_end":"2024-02-01T00:00:00Z","orders_this_period":5}`,
		`{"vendor_id":"v3","tier":"enterprise","status":"cancelled","custom_orders_limit":null,"is_annual":true}`,
		`{"vendor_id":7,"tier":"essential"}`,
		`{"id":3,"vendor_id":42,"tier_id":2,"tier":"business","status":"active","is_annual":1,"period_start":"2026-12-07 14:25:20.768411","period_end":"2026-12-31 00:00:00+01:00","proration_behavior":"create_prorations","updated_at":"2026-12-07 14:25:20.768411+00"}`,
		`{"vendor_id":8,"tier":"essential","status":"trial","is_annual":2}`,
		`{"vendor_id":"v","tier":"essential","status":"active"} {}`,
		`{"vendor_id":"v\u202e","tier":"essential","status":"active"}`,
		`{}`, `[]`, `null`, ``,
	} {
		f.Add([]byte(s))
	}
	cat := tollgate.DefaultCatalog()
	f.Fuzz(func(t *testing.T, line []byte) {
		rec, err := tollgate.DecodeImportRow(line, cat)
		if err != nil {
			if tollgate.ErrorCode(err) != tollgate.EInvalid {
				t.Fatalf("refusal is not a validation error: %v", err)
			}
			return
		}
		if err := tollgate.ValidateVendorID(rec.Subscription.VendorID); err != nil {
			t.Fatalf("accepted a row whose vendor id the API refuses: %q: %v", rec.Subscription.VendorID, err)
		}
		if err := rec.Subscription.Validate(cat); err != nil {
			t.Fatalf("accepted an invalid subscription: %v (%q)", err, line)
		}
		if rec.OrdersThisPeriod < 0 {
			t.Fatalf("negative orders accepted: %d", rec.OrdersThisPeriod)
		}
	})
}
