package profile

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/tollgate-pdp/tollgate"
	"github.com/tollgate-pdp/tollgate/cache"
	"github.com/tollgate-pdp/tollgate/policy"
)

// BenchmarkCheckAtScale: what a check costs in-process at 10,000 vendors and at bigStore's
// count (TOLLGATE_BENCH_VENDORS), the two halves timed apart: lookup-ns is the store lookup and
// the period key (what the Checker gathers), decide-ns the uncached decision. The mix's
// requests spread over all vendors, so at a million almost every one asks about a vendor whose
// data is out of the CPU's caches, and whose input.vendor is not among the engine's kept ones.
// evict=1MiB first evicts that much memory from the caches before each check, as a server's
// network work does between two requests (BenchmarkDecideEvicted). bench/cmd/scale measures the
// same over HTTP; this splits its difference between the sizes into its parts:
//
//	TOLLGATE_BENCH_VENDORS=1000000 go test -run '^$' -bench CheckAtScale -timeout 15m ./bench/profile
func BenchmarkCheckAtScale(b *testing.B) {
	big, n := bigStore(b)
	for _, size := range []int{vendors, n} {
		for _, kib := range []int{0, 1024} {
			b.Run(fmt.Sprintf("vendors=%d/evict=%dKiB", size, kib), func(b *testing.B) {
				checkAtScale(b, size, big, kib)
			})
		}
	}
}

func checkAtScale(b *testing.B, n int, big string, kib int) {
	ctx := context.Background()
	var st *cache.Store
	if n == vendors {
		st = newEnv(b, 0).store
	} else {
		var err error
		if st, err = cache.Open(ctx, cache.Options{Path: big}); err != nil {
			b.Fatal(err)
		}
		defer st.Close()
	}
	eng, err := policy.New(ctx, policy.Options{})
	if err != nil {
		b.Fatal(err)
	}
	_, parsed := mixRequests(b, 200_000, n)
	evict := make([]byte, kib<<10)
	var lookup, decide time.Duration
	now := time.Now()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		evictCaches(evict)
		req := &parsed[i%len(parsed)]
		t0 := time.Now()
		f := tollgate.Facts{Request: req, Now: now}
		if v, ok := st.Vendor(string(req.VendorID)); ok {
			f.Vendor = v
			f.Period = tollgate.PeriodKey(&v.Subscription, now)
		}
		t1 := time.Now()
		if _, err := eng.Decide(ctx, &f); err != nil {
			b.Fatal(err)
		}
		decide += time.Since(t1)
		lookup += t1.Sub(t0)
	}
	b.ReportMetric(float64(lookup.Nanoseconds())/float64(b.N), "lookup-ns")
	b.ReportMetric(float64(decide.Nanoseconds())/float64(b.N), "decide-ns")
}
