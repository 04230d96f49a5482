package fleet

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollgate-pdp/tollgate"
	"github.com/tollgate-pdp/tollgate/fleet/internal/natstest"
)

// Three sidecars, each with its own store and NATS connection, consume concurrently against one
// vendor with a 100-order limit: the fleet allows exactly 100 and denies the rest with the
// product's reason.
func TestFleetConsumeNeverExceedsTheLimit(t *testing.T) {
	srv := natstest.Start(t)
	side := fleetOf(t, 3, sidecarOpts{urls: srv.URL(), vendors: []tollgate.Subscription{essential("1")}})
	const perSidecar, attempts = 16, 5 // 240 attempts for 100 orders
	var allowed, denied atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, len(side)*perSidecar*attempts)
	for _, s := range side {
		for range perSidecar {
			wg.Go(func() {
				for range attempts {
					d, err := s.consume("")
					switch {
					case err != nil:
						errs <- err
					case d.Allow:
						allowed.Add(1)
					case d.Code != "limit_reached" || d.Reason != limitReason:
						errs <- fmt.Errorf("denied with %s %q", d.Code, d.Reason)
					default:
						denied.Add(1)
					}
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if allowed.Load() != 100 || denied.Load() != 140 {
		t.Fatalf("allowed %d, denied %d; want exactly 100 and 140", allowed.Load(), denied.Load())
	}
	if n := fleetOrders(t, side[0].nc, "1"); n != 100 {
		t.Fatalf("shared counter = %d, want 100", n)
	}
	var retries int64
	for _, s := range side {
		s.waitLocal("1", 100)
		retries += s.obs.retries.Load()
		if c := s.obs.conflicts.Load(); c != 0 {
			t.Errorf("%d consumes gave up after the retry budget", c)
		}
	}
	t.Logf("compare-and-set retries across the fleet: %d", retries)
	// A check that does not consume reads the local copy: it sees the fleet's count.
	d, err := side[2].checker.Check(context.Background(), &tollgate.CheckRequest{VendorID: "1", Action: tollgate.ActionOrderCreate})
	must(t, err)
	if d.Allow || d.Used != 100 || d.Reason != limitReason {
		t.Fatalf("non-consuming check: allow %v used %d reason %q", d.Allow, d.Used, d.Reason)
	}
}

// One idempotency key sent to two sidecars counts once, and the second answer is the first's,
// replayed: sequentially and when both arrive together.
func TestFleetIdempotencyKeyCountsOnce(t *testing.T) {
	srv := natstest.Start(t)
	side := fleetOf(t, 2, sidecarOpts{urls: srv.URL(), vendors: []tollgate.Subscription{essential("1")}})
	a, b := side[0], side[1]

	first, err := a.consume("order-7")
	must(t, err)
	again, err := b.consume("order-7")
	must(t, err)
	if !first.Allow || first.Replayed || !again.Replayed {
		t.Fatalf("first %+v, again %+v: want allowed, then replayed", first, again)
	}
	again.Replayed = false
	if a, b := mustJSON(t, first), mustJSON(t, again); a != b {
		t.Fatalf("replay differs:\n first %s\n again %s", a, b)
	}

	// Both at once, many times over: each key counts once whoever wins.
	const keys = 20
	var wg sync.WaitGroup
	var replays atomic.Int64
	for i := range keys {
		for _, s := range []*sidecar{a, b} {
			wg.Go(func() {
				d, err := s.consume(fmt.Sprintf("together-%d", i))
				if err != nil {
					t.Error(err)
					return
				}
				if !d.Allow {
					t.Errorf("key %d denied: %s", i, d.Reason)
				}
				if d.Replayed {
					replays.Add(1)
				}
			})
		}
	}
	wg.Wait()
	if n := fleetOrders(t, a.nc, "1"); n != 1+keys {
		t.Fatalf("shared counter = %d, want %d", n, 1+keys)
	}
	if replays.Load() != keys {
		t.Fatalf("%d replays, want %d (one per key)", replays.Load(), keys)
	}
}

// POST /v1/usage on one sidecar raises the count a consume decides on at another, over real
// HTTP; a usage key sent to both counts once.
func TestFleetUsageReportSeenByConsumeElsewhere(t *testing.T) {
	srv := natstest.Start(t)
	side := fleetOf(t, 2, sidecarOpts{urls: srv.URL(), vendors: []tollgate.Subscription{essential("1")}})
	a, b := side[0], side[1]
	a.serveHTTP()
	b.serveHTTP()

	var res tollgate.UsageResult
	if code := a.post("/v1/usage", map[string]any{"vendor_id": "1", "metric": "orders", "delta": 98, "idempotency_key": "batch-1"}, &res); code != 200 || !res.Applied || res.Value != 98 {
		t.Fatalf("usage at A: %d %+v", code, res)
	}
	if code := b.post("/v1/usage", map[string]any{"vendor_id": "1", "metric": "orders", "delta": 98, "idempotency_key": "batch-1"}, &res); code != 200 || res.Applied || res.Value != 98 {
		t.Fatalf("same usage key at B: %d %+v, want not applied, value 98", code, res)
	}
	check := map[string]any{"vendor_id": "1", "action": "order.create", "quantity": 2, "consume": true}
	var d tollgate.Decision
	if code := b.post("/v1/check", check, &d); code != 200 || !d.Allow || d.Used != 98 {
		t.Fatalf("consume 2 at B after 98 reported at A: %d %+v", code, d)
	}
	if code := b.post("/v1/check", check, &d); code != 200 || d.Allow || d.Reason != limitReason {
		t.Fatalf("consume past the limit at B: %d %+v", code, d)
	}
	a.waitLocal("1", 100)
}

// With NATS unreachable, consumes and usage writes answer 503 unavailable and change nothing;
// checks still answer from the local copy. When NATS is back, writes work again and the local
// copies catch up without anyone acting.
func TestFleetNATSDown(t *testing.T) {
	srv := natstest.Start(t)
	side := fleetOf(t, 2, sidecarOpts{urls: srv.URL(), vendors: []tollgate.Subscription{essential("1")}})
	a, b := side[0], side[1]
	a.serveHTTP()
	for i := range 10 {
		_, err := a.consume(fmt.Sprintf("before-%d", i))
		must(t, err)
	}
	a.waitLocal("1", 10)
	b.waitLocal("1", 10)

	srv.Shutdown()
	before := a.localOrders("1")
	var e struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	consume := map[string]any{"vendor_id": "1", "action": "order.create", "consume": true, "idempotency_key": "down-1"}
	if code := a.post("/v1/check", consume, &e); code != 503 || e.Error.Code != "unavailable" {
		t.Fatalf("consume with NATS down: %d %+v", code, e)
	}
	if code := a.post("/v1/usage", map[string]any{"vendor_id": "1", "metric": "orders", "delta": 5}, &e); code != 503 || e.Error.Code != "unavailable" {
		t.Fatalf("usage with NATS down: %d %+v", code, e)
	}
	var d tollgate.Decision
	if code := a.post("/v1/check", map[string]any{"vendor_id": "1", "action": "order.create"}, &d); code != 200 || !d.Allow || d.Used != 10 {
		t.Fatalf("check with NATS down: %d %+v, want allowed from the local copy (used 10)", code, d)
	}
	if got := a.localOrders("1"); got != before {
		t.Fatalf("local count moved from %d to %d while NATS was down", before, got)
	}

	srv.Restart()
	// The same key now counts (nothing of the refused attempt was kept), once.
	var first, again tollgate.Decision
	deadline := time.Now().Add(15 * time.Second)
	for {
		code := a.post("/v1/check", consume, &first)
		if code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("consume after NATS came back: %d", code)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if a.post("/v1/check", consume, &again); !first.Allow || first.Replayed || !again.Replayed {
		t.Fatalf("after restart: first %+v again %+v", first, again)
	}
	if n := fleetOrders(t, a.nc, "1"); n != 11 {
		t.Fatalf("shared counter = %d, want 11", n)
	}
	b.waitLocal("1", 11)
}
