package profile

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/tollgate-pdp/tollgate"
)

// BenchmarkDecideEvicted: the mix's uncached decisions, each after writing one byte per cache
// line of a buffer of the given size, which evicts the decision's code and data from the
// CPU's caches as a server's network reads and writes do between two requests. Only the
// Decide calls are timed (decide-ns: their mean; p50-ns: the median of the first 8192); ns/op
// includes the eviction. With no eviction it is BenchmarkDecideUncached. The server spends
// about twice the in-process figure on a decision (BENCHMARKS.md, "What stands in the way"),
// and this shows how much of that the cold caches alone explain.
//
// evict=1024KiB,other-first decides, after the eviction and untimed, another request of the
// same action about another vendor: what that brings back into the caches (code, the plan, the
// catalog, the executor's pooled state) is shared by all decisions of the action, and what
// stays cold is the vendor's own data. What it saves against evict=1024KiB is the shared part
// of the cold cost.
func BenchmarkDecideEvicted(b *testing.B) {
	type variant struct {
		kib        int
		otherFirst bool
	}
	for _, v := range []variant{{0, false}, {256, false}, {1024, false}, {4096, false}, {1024, true}} {
		name := fmt.Sprintf("evict=%dKiB", v.kib)
		if v.otherFirst {
			name += ",other-first"
		}
		b.Run(name, func(b *testing.B) {
			e := newEnv(b, 0)
			ctx := context.Background()
			facts := e.facts(time.Now())
			var other []int
			if v.otherFirst {
				other = otherVendorSameAction(facts)
			}
			evict := make([]byte, v.kib<<10)
			s := sampler{times: make([]time.Duration, 0, 8192)}
			var total time.Duration
			n := 0
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				evictCaches(evict)
				if v.otherFirst {
					if _, err := e.engine.Decide(ctx, &facts[other[i%len(facts)]]); err != nil {
						b.Fatal(err)
					}
				}
				t0 := time.Now()
				_, err := e.engine.Decide(ctx, &facts[i%len(facts)])
				d := time.Since(t0)
				if err != nil {
					b.Fatal(err)
				}
				total += d
				n++
				if len(s.times) < cap(s.times) {
					s.times = append(s.times, d)
				}
			}
			b.ReportMetric(float64(total.Nanoseconds())/float64(n), "decide-ns")
			s.report(b)
		})
	}
}

// otherVendorSameAction maps each request of facts to another of the same action, about another
// vendor where the mix has one.
func otherVendorSameAction(facts []tollgate.Facts) []int {
	byAction := map[string][]int{}
	for i := range facts {
		byAction[facts[i].Request.Action] = append(byAction[facts[i].Request.Action], i)
	}
	other := make([]int, len(facts))
	for _, idx := range byAction {
		for k, i := range idx {
			other[i] = i
			for step := 1; step < len(idx); step++ {
				if j := idx[(k+step)%len(idx)]; facts[j].Request.VendorID != facts[i].Request.VendorID {
					other[i] = j
					break
				}
			}
		}
	}
	return other
}

// evictCaches writes one byte per cache line of buf, which pushes what the CPU's caches held
// out of them (buf's size decides how far: L1/L2, or part of L3).
func evictCaches(buf []byte) {
	for j := 0; j < len(buf); j += 64 {
		buf[j]++
	}
}

// facts are the mix's requests with their vendors' snapshots and periods, as the Checker
// gathers them.
func (e *env) facts(now time.Time) []tollgate.Facts {
	facts := make([]tollgate.Facts, len(e.parsed))
	for i := range e.parsed {
		facts[i] = tollgate.Facts{Request: &e.parsed[i], Now: now}
		if v, ok := e.store.Vendor(string(e.parsed[i].VendorID)); ok {
			facts[i].Vendor = v
			facts[i].Period = tollgate.PeriodKey(&v.Subscription, now)
		}
	}
	return facts
}
