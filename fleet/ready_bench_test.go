package fleet_test

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/tollgate-pdp/tollgate"
	"github.com/tollgate-pdp/tollgate/cache"
	"github.com/tollgate-pdp/tollgate/fleet"
	"github.com/tollgate-pdp/tollgate/fleet/internal/natstest"
)

// seedFleet builds a fleet that has run for a while: `vendors` vendors in the latest
// snapshot, then `tail` more log messages after it.
func seedFleet(b *testing.B, url string, vendors, tail int) {
	b.Helper()
	ctx := context.Background()
	cfg := fleetConfig(url, "bench")
	conn, err := fleet.Connect(ctx, cfg, nil, quiet())
	must(b, err)
	defer conn.Close()
	st, err := cache.Open(ctx, cache.Options{Path: filepath.Join(b.TempDir(), "seed.db"), Logger: quiet(), NoSync: true})
	must(b, err)
	defer st.Close()
	node := fleet.NewNode(conn, st, fleet.Options{})
	defer runNode(b, node)()
	fs := node.Store()
	ps := time.Now().UTC().Truncate(24 * time.Hour)
	pe := ps.AddDate(0, 1, 0)
	const batch = 1000 // one import message stays under NATS's 1 MB payload
	for i := 0; i < vendors; i += batch {
		recs := make([]tollgate.ImportRecord, 0, batch)
		for j := i; j < min(i+batch, vendors); j++ {
			recs = append(recs, tollgate.ImportRecord{Subscription: tollgate.Subscription{
				VendorID: fmt.Sprintf("v%07d", j), Platform: "oms", Tier: []string{"essential", "professional", "business"}[j%3],
				Status: tollgate.StatusActive, PeriodStart: &ps, PeriodEnd: &pe, AddOns: []tollgate.SubscriptionAddOn{},
				StripeCustomerID: fmt.Sprintf("cus_%07d", j), StripeSubscriptionID: fmt.Sprintf("sub_%07d", j)},
				OrdersThisPeriod: int64(j % 50)})
		}
		must(b, fs.Import(ctx, recs))
	}
	_, err = node.TakeSnapshot(ctx)
	must(b, err)
	for i := range tail {
		_, err := fs.PutSubscription(ctx, &tollgate.Subscription{VendorID: fmt.Sprintf("v%07d", i), Platform: "oms",
			Tier: "enterprise", Status: tollgate.StatusActive, PeriodStart: &ps, PeriodEnd: &pe})
		must(b, err)
	}
}

// BenchmarkNewSidecarReady measures a new pod's time to ready: connect, find the snapshot,
// download it, open the store (every vendor into memory), apply the stream after the
// snapshot, ready. Run with -benchtime=Nx; each iteration is one new sidecar.
func BenchmarkNewSidecarReady(b *testing.B) {
	for _, vendors := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("vendors=%d", vendors), func(b *testing.B) {
			srv := natstest.Start(b)
			const tail = 500
			seedFleet(b, srv.URL(), vendors, tail)
			ctx := context.Background()
			cfg := fleetConfig(srv.URL(), "bench")
			var bytes uint64
			b.ResetTimer()
			for b.Loop() {
				path := filepath.Join(b.TempDir(), "tollgate.db")
				conn, err := fleet.Connect(ctx, cfg, nil, quiet())
				must(b, err)
				st, err := cache.Open(ctx, cache.Options{Path: path, Logger: quiet(), NoSync: true})
				must(b, err)
				need, err := conn.NeedsRestore(ctx, st.AppliedSequence(), st.VendorCount() == 0)
				must(b, err)
				if !need {
					b.Fatal("a new sidecar did not choose the snapshot")
				}
				must(b, st.Close())
				info, err := conn.RestoreSnapshot(ctx, path)
				must(b, err)
				bytes = info.Size
				st, err = cache.Open(ctx, cache.Options{Path: path, Logger: quiet(), NoSync: true})
				must(b, err)
				node := fleet.NewNode(conn, st, fleet.Options{})
				rctx, cancel := context.WithCancel(ctx)
				done := make(chan error, 1)
				go func() { done <- node.Run(rctx) }()
				for ok, _ := node.Ready(); !ok; ok, _ = node.Ready() {
					time.Sleep(time.Millisecond)
				}
				b.StopTimer()
				if st.VendorCount() != vendors {
					b.Fatalf("ready with %d vendors, want %d", st.VendorCount(), vendors)
				}
				if v, _ := st.Vendor("v0000000"); v.Subscription.Tier != "enterprise" {
					b.Fatalf("the stream after the snapshot was not applied: %s", v.Subscription.Tier)
				}
				cancel()
				if err := <-done; err != nil {
					b.Fatalf("node run: %v", err)
				}
				_ = st.Close()
				conn.Close()
				b.StartTimer()
			}
			b.ReportMetric(float64(bytes)/(1<<20), "snapshot-MiB")
		})
	}
}

// BenchmarkConvergence measures, over loopback, the time from a webhook's 2xx at sidecar A to
// the new state being what sidecar B decides on (its read model), for b.N changes; it reports
// p50 and p99 in milliseconds.
func BenchmarkConvergence(b *testing.B) {
	srv := natstest.Start(b)
	cfg := fleetConfig(srv.URL(), "conv")
	a := startSidecar(b, "a", "", cfg)
	bb := startSidecar(b, "b", "", cfg)
	a.waitReady(10 * time.Second)
	bb.waitReady(10 * time.Second)
	prices := []string{"price_ess_m", "price_pro_m"}
	var lat, total []time.Duration
	i := 0
	for b.Loop() {
		i++
		price := prices[i%2]
		sent := time.Now()
		code, outcome := a.deliver(subEvent(b, fmt.Sprintf("evt_conv_%d", i), periodStart+int64(i), "sub_c", "vc", "active", price))
		acked := time.Now()
		if code != http.StatusOK {
			b.Fatalf("webhook %d: %d %s", i, code, outcome)
		}
		for {
			if sub, ok := bb.vendor("vc"); ok && sub.StripePriceID == price {
				break
			}
			time.Sleep(50 * time.Microsecond)
		}
		lat = append(lat, time.Since(acked))
		total = append(total, time.Since(sent))
	}
	slices.Sort(lat)
	slices.Sort(total)
	q := func(d []time.Duration, p float64) float64 {
		return float64(d[int(p*float64(len(d)-1))].Microseconds()) / 1000
	}
	b.ReportMetric(q(lat, 0.5), "p50-ms")
	b.ReportMetric(q(lat, 0.99), "p99-ms")
	// From the webhook's send at A (verify, publish, PubAck, A's apply, its 2xx) to B.
	b.ReportMetric(q(total, 0.5), "send-p50-ms")
	b.ReportMetric(q(total, 0.99), "send-p99-ms")
}
