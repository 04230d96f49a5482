package fleet

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/tollgate-pdp/tollgate"
	"github.com/tollgate-pdp/tollgate/fleet/internal/natstest"
)

// A sidecar that stops between the steps of an idempotent consume: after counting, the key is
// completed from the counter by the next request with it; before counting, the key stays
// pending and answers 409, and nothing is counted twice.
func TestFleetKeyLeftPendingByAStoppedSidecar(t *testing.T) {
	srv := natstest.Start(t)
	side := fleetOf(t, 2, sidecarOpts{urls: srv.URL(), vendors: []tollgate.Subscription{essential("1")}})
	a, b := side[0], side[1]
	ctx := context.Background()
	must(t, a.usage.open(ctx))
	key, err := counterKey("1", testPeriod)
	must(t, err)
	inc := func(k string) tollgate.OrderIncrement {
		return tollgate.OrderIncrement{VendorID: "1", Period: testPeriod, Delta: 1, IdempotencyKey: k, At: time.Now()}
	}

	// A claims "counted-1", counts, and stops before storing the answer.
	answer := tollgate.Decision{Allow: true, Code: "ok", Tier: "essential", Status: "active", DecisionID: "stopped-1"}
	resp, err := json.Marshal(answer)
	must(t, err)
	claim, stored, err := a.usage.claim(ctx, inc("counted-1"))
	if err != nil || stored != nil {
		t.Fatalf("claim: %v %v", stored, err)
	}
	if _, counted, err := a.usage.cas(ctx, key, inc("counted-1"), claim, func(int64) (tollgate.ConsumeStep, error) {
		return tollgate.ConsumeStep{Allow: true, Response: resp}, nil
	}); err != nil || !counted {
		t.Fatalf("cas: counted %v, %v", counted, err)
	}
	d, err := b.consume("counted-1")
	must(t, err)
	if !d.Replayed || d.DecisionID != "stopped-1" {
		t.Fatalf("retry at B: %+v, want the stopped sidecar's answer replayed", d)
	}
	if d, err := a.consume("counted-1"); err != nil || !d.Replayed || d.DecisionID != "stopped-1" {
		t.Fatalf("retry at A after B completed the key: %+v %v", d, err)
	}

	// A claims "uncounted-2" and stops before counting: the key is stuck, nothing counts.
	if _, _, err := a.usage.claim(ctx, inc("uncounted-2")); err != nil {
		t.Fatal(err)
	}
	_, err = b.consume("uncounted-2")
	if tollgate.ErrorCode(err) != tollgate.EConflict || tollgate.ErrorMessage(err) != "idempotency_key: a request with this key has not finished; retry later or use a new key" {
		t.Fatalf("retry of a key stopped before counting: %v, want 409 conflict", err)
	}
	if n := fleetOrders(t, a.nc, "1"); n != 1 {
		t.Fatalf("shared counter = %d, want 1", n)
	}
}
