package fleet

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollgate-pdp/tollgate"
	"github.com/tollgate-pdp/tollgate/fleet/internal/natstest"
)

// copyLag consumes n orders at a and measures, for each, the time from the consume's answer
// until a non-consuming check at b shows the new count.
func copyLag(tb testing.TB, a, b *sidecar, n int) []time.Duration {
	tb.Helper()
	ctx := context.Background()
	check := &tollgate.CheckRequest{VendorID: "1", Action: tollgate.ActionOrderCreate}
	lags := make([]time.Duration, 0, n)
	for i := range n {
		if _, err := a.consume(""); err != nil {
			tb.Fatal(err)
		}
		done := time.Now()
		deadline := done.Add(5 * time.Second)
		for {
			d, err := b.checker.Check(ctx, check)
			if err != nil {
				tb.Fatal(err)
			}
			if d.Used == int64(i+1) {
				break
			}
			if time.Now().After(deadline) {
				tb.Fatalf("order %d not visible at the other sidecar after 5s (used %d)", i+1, d.Used)
			}
			time.Sleep(50 * time.Microsecond)
		}
		lags = append(lags, time.Since(done))
	}
	slices.Sort(lags)
	return lags
}

func pct(sorted []time.Duration, p float64) time.Duration {
	return sorted[min(len(sorted)-1, int(float64(len(sorted))*p))]
}

// How stale a sidecar's local copy is: every consume at A is seen by a check at B, and the
// lag's distribution is logged.
func TestFleetLocalCopyLag(t *testing.T) {
	srv := natstest.Start(t)
	side := fleetOf(t, 2, sidecarOpts{urls: srv.URL(), vendors: []tollgate.Subscription{enterprise("1")}})
	lags := copyLag(t, side[0], side[1], 200)
	t.Logf("consume at A to check at B over %d consumes: p50 %s, p99 %s, max %s", len(lags), pct(lags, .5), pct(lags, .99), lags[len(lags)-1])
}

// BenchmarkFleetLocalCopyLag reports the lag's p50 and p99 in milliseconds.
// Run: flock /tmp/tollgate-bench.lock go test -run '^$' -bench FleetLocalCopyLag ./fleet/
func BenchmarkFleetLocalCopyLag(b *testing.B) {
	srv := natstest.Start(b)
	side := fleetOf(b, 2, sidecarOpts{urls: srv.URL(), vendors: []tollgate.Subscription{enterprise("1")}})
	b.ResetTimer()
	lags := copyLag(b, side[0], side[1], b.N)
	b.StopTimer()
	b.ReportMetric(float64(pct(lags, .5).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(pct(lags, .99).Microseconds())/1000, "p99-ms")
}

// BenchmarkConsume measures one consuming check's latency in single mode (the sidecar's own
// store) and in fleet mode (the shared counter on a loopback JetStream), on a vendor without an
// order limit so every consume counts. The ratio fleet/single is the cost of the fleet.
// Run: flock /tmp/tollgate-bench.lock go test -run '^$' -bench Consume ./fleet/
func BenchmarkConsume(b *testing.B) {
	for _, mode := range []string{"single", "fleet", "fleet-idempotent"} {
		b.Run(mode, func(b *testing.B) {
			srv := natstest.Start(b)
			s := newSidecar(b, sidecarOpts{urls: srv.URL(), vendors: []tollgate.Subscription{enterprise("1")}})
			if mode == "single" {
				s.checker.Ledger = tollgate.NewStoreLedger(s.store)
			}
			b.ResetTimer()
			for i := range b.N {
				key := ""
				if mode == "fleet-idempotent" {
					key = "bench-" + itoa(i)
				}
				if d, err := s.consume(key); err != nil || !d.Allow {
					b.Fatalf("consume: %+v %v", d, err)
				}
			}
		})
	}
}

// BenchmarkFleetConsumeThroughput is the fleet-wide consume throughput with 3 sidecars x 16
// clients, on one hot vendor and on a vendor per client, against one single-mode sidecar with
// 16 clients. Vendors have no order limit, so every consume counts.
// Run: flock /tmp/tollgate-bench.lock go test -run '^$' -bench FleetConsumeThroughput ./fleet/
func BenchmarkFleetConsumeThroughput(b *testing.B) {
	const clients = 16
	vendors := make([]tollgate.Subscription, 3*clients)
	for i := range vendors {
		vendors[i] = enterprise("v" + itoa(i))
	}
	for _, tc := range []struct {
		name     string
		sidecars int
		single   bool
		hot      bool
	}{
		{"single-1x16-hot", 1, true, true},
		{"single-1x16-distinct", 1, true, false},
		{"fleet-3x16-hot", 3, false, true},
		{"fleet-3x16-distinct", 3, false, false},
	} {
		b.Run(tc.name, func(b *testing.B) {
			srv := natstest.Start(b)
			side := fleetOf(b, tc.sidecars, sidecarOpts{urls: srv.URL(), vendors: vendors})
			if tc.single {
				side[0].checker.Ledger = tollgate.NewStoreLedger(side[0].store)
			}
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			for si, s := range side {
				for c := range clients {
					vendor := "v0"
					if !tc.hot {
						vendor = "v" + itoa(si*clients+c)
					}
					wg.Go(func() {
						q := int64(1)
						req := tollgate.CheckRequest{VendorID: tollgate.VendorID(vendor), Action: tollgate.ActionOrderCreate, Quantity: &q, Consume: true}
						for next.Add(1) <= int64(b.N) {
							r := req
							if d, err := s.checker.Check(context.Background(), &r); err != nil || !d.Allow {
								b.Errorf("consume: %+v %v", d, err)
								return
							}
						}
					})
				}
			}
			wg.Wait()
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "orders/s")
		})
	}
}
