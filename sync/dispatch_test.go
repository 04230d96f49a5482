package sync

import (
	"fmt"
	"testing"

	"github.com/tollgate-pdp/tollgate"
)

// TestDispatchFollowsTheHandledList delivers every type of tollgate.StripeEventTypes and some
// that are not on it: a listed type is read as its object (whatever the outcome, the reason is
// never "not handled"), any other is recorded as ignored with that exact reason.
func TestDispatchFollowsTheHandledList(t *testing.T) {
	e := newEnv(t)
	const notHandled = "event type not handled"
	for i, h := range tollgate.StripeEventTypes() {
		id := fmt.Sprintf("evt_handled_%d", i)
		res, err := e.deliver(event(t, eraBasil, id, h.Type, tPeriodStart+int64(i), map[string]any{"id": fmt.Sprintf("obj_%d", i)}))
		if err != nil {
			t.Fatalf("deliver %s: %v", h.Type, err)
		}
		if rec := e.event(id); rec.Error == notHandled || res.Outcome == tollgate.OutcomeDuplicate {
			t.Errorf("%s (%s): outcome %q, reason %q: not dispatched", h.Type, h.Object, res.Outcome, rec.Error)
		}
	}
	// a subscription without vendor or customer cannot be parked: recorded as failed, not a 503
	if rec := e.event("evt_handled_0"); rec.Status != tollgate.OutcomeFailed ||
		rec.Error != `subscription obj_0: no vendor (metadata.vendor_id "" and no customer)` {
		t.Errorf("subscription without customer: %s %q", rec.Status, rec.Error)
	}
	for i, typ := range []string{"charge.refunded", "customer.subscription.made_up", "invoice.created", "price.archived"} {
		id := fmt.Sprintf("evt_other_%d", i)
		res := e.mustDeliver(event(t, eraBasil, id, typ, tPeriodStart, map[string]any{"id": "obj"}), tollgate.OutcomeIgnored)
		if rec := e.event(id); rec.Error != notHandled {
			t.Errorf("%q: outcome %q, reason %q, want %q", typ, res.Outcome, rec.Error, notHandled)
		}
	}
}
