package sync

import (
	"bytes"
	"os"
	"testing"

	"github.com/tollgate-pdp/tollgate"
)

// With a payload key the event log's payloads were sealed, but the raw subscription object kept
// as the snapshot (stripe_state/subscriptions) was stored in clear: a distinctive string of
// the payload could be read straight out of the bbolt file (found by the cmd/tollgate secrets
// test). Every raw copy is sealed now, and the sync still reads its snapshots back.
func TestPayloadKeySealsSnapshotsAtRest(t *testing.T) {
	const canary = "CANARYsnapshotPLAINTEXT"
	key := []byte("0123456789abcdef0123456789abcdef")
	e := newEnv(t, func(o *Options) { o.PayloadKey = key })
	withCanary := func(m map[string]any) { m["description"] = canary }
	sub := subObject(t, era2023, "sub_S", "cus_S", "active", "price_ess_m", "seal-1", tPeriodStart, tPeriodEnd, withCanary)
	e.mustDeliver(event(t, era2023, "evt_s1", "customer.subscription.created", tPeriodStart, sub), tollgate.OutcomeProcessed)
	// An update reads the sealed snapshot back (compose).
	sub = subObject(t, era2023, "sub_S", "cus_S", "past_due", "price_ess_m", "seal-1", tPeriodStart, tPeriodEnd, withCanary)
	e.mustDeliver(event(t, era2023, "evt_s2", "customer.subscription.updated", tPeriodStart+10, sub), tollgate.OutcomeProcessed)
	if v := e.vendor("seal-1"); v == nil || v.Status != tollgate.StatusPastDue {
		t.Fatalf("vendor after update: %+v", v)
	}
	// A subscription whose vendor is not known yet is parked (kind pending): sealed too.
	orphan := subObject(t, era2023, "sub_O", "cus_O", "active", "price_ess_m", "", tPeriodStart, tPeriodEnd, withCanary)
	_, _ = e.deliver(event(t, era2023, "evt_s3", "customer.subscription.created", tPeriodStart, orphan))
	if err := e.store.Close(); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(e.path)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte(canary)) {
		t.Fatal("a raw Stripe object is stored in clear although a payload key is set")
	}
	e.store = openStore(t, e.path)
}
