package fleet_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/tollgate-pdp/tollgate"
	"github.com/tollgate-pdp/tollgate/cache"
	"github.com/tollgate-pdp/tollgate/fleet"
	"github.com/tollgate-pdp/tollgate/fleet/internal/natstest"
	"github.com/tollgate-pdp/tollgate/policy"
)

// BenchmarkCheckThroughput compares non-consuming checks of a fleet sidecar with a single
// one: the same vendors, policy and requests, on all CPUs. A fleet check reads the local store
// only, so the fleet's cost is its background work (the log consumer, the lag watch); the
// goal is fleet/single >= 0.9 in ns/op measured in one run.
func BenchmarkCheckThroughput(b *testing.B) {
	const vendors = 1000
	ctx := context.Background()
	eng, err := policy.New(ctx, policy.Options{Catalog: testCatalog(), CacheTTL: time.Second, Logger: quiet()})
	must(b, err)
	ps := time.Now().UTC().Truncate(24 * time.Hour)
	pe := ps.AddDate(0, 1, 0)
	records := make([]tollgate.ImportRecord, vendors)
	for i := range records {
		records[i] = tollgate.ImportRecord{Subscription: tollgate.Subscription{
			VendorID: fmt.Sprintf("v%04d", i), Tier: []string{"essential", "professional", "business"}[i%3],
			Status: tollgate.StatusActive, PeriodStart: &ps, PeriodEnd: &pe}, OrdersThisPeriod: int64(i % 120)}
	}
	requests := make([]tollgate.CheckRequest, 4*vendors)
	for i := range requests {
		r := tollgate.CheckRequest{VendorID: tollgate.VendorID(fmt.Sprintf("v%04d", i%vendors))}
		if i%2 == 0 {
			r.Action = tollgate.ActionOrderCreate
		} else {
			r.Action, r.Feature = tollgate.ActionFeatureUse, "api_access"
		}
		requests[i] = r
	}
	run := func(b *testing.B, checker *tollgate.Checker) {
		b.ResetTimer() // the setup (a NATS server, the import) is not a check
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				req := requests[i%len(requests)]
				if _, err := checker.Check(ctx, &req); err != nil {
					b.Error(err)
					return
				}
				i++
			}
		})
	}

	b.Run("mode=single", func(b *testing.B) {
		st, err := cache.Open(ctx, cache.Options{Path: filepath.Join(b.TempDir(), "single.db"), Logger: quiet(), Limits: eng})
		must(b, err)
		defer st.Close()
		must(b, st.Import(ctx, records))
		run(b, tollgate.NewChecker(st, eng, nil))
	})
	b.Run("mode=fleet", func(b *testing.B) {
		srv := natstest.Start(b)
		conn, err := fleet.Connect(ctx, fleetConfig(srv.URL(), "checkbench"), nil, quiet())
		must(b, err)
		defer conn.Close()
		st, err := cache.Open(ctx, cache.Options{Path: filepath.Join(b.TempDir(), "fleet.db"), Logger: quiet(), Limits: eng, NoSync: true})
		must(b, err)
		defer st.Close()
		node := fleet.NewNode(conn, st, fleet.Options{})
		defer runNode(b, node)()
		fs := node.Store()
		must(b, fs.Import(ctx, records)) // through the log, applied before it returns
		if st.VendorCount() != vendors {
			b.Fatalf("fleet store holds %d vendors, want %d", st.VendorCount(), vendors)
		}
		run(b, tollgate.NewChecker(fs, eng, nil))
	})
}
