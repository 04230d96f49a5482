package policy

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/tollgate-pdp/tollgate"
)

type benchCase struct {
	name string
	f    *tollgate.Facts
}

func benchCases() []benchCase {
	return []benchCase{
		{"order.create/allowed", facts(vendor("essential", tollgate.StatusActive, 10),
			tollgate.CheckRequest{Action: tollgate.ActionOrderCreate})},
		{"order.create/denied_upgrade", facts(vendor("essential", tollgate.StatusActive, 100),
			tollgate.CheckRequest{Action: tollgate.ActionOrderCreate})},
		{"feature.use/allowed", facts(vendor("business", tollgate.StatusActive, 0),
			tollgate.CheckRequest{Action: tollgate.ActionFeatureUse, Feature: "api_access"})},
		{"feature.use/denied_upgrade", facts(vendor("essential", tollgate.StatusActive, 0),
			tollgate.CheckRequest{Action: tollgate.ActionFeatureUse, Feature: "api_access"})},
		{"product.add/allowed", facts(vendor("essential", tollgate.StatusActive, 0),
			tollgate.CheckRequest{Action: tollgate.ActionProductAdd})},
		// The other fast paths of decision.rego, one case each.
		{"order.create/quantity_allowed", facts(vendor("essential", tollgate.StatusActive, 10),
			tollgate.CheckRequest{Action: tollgate.ActionOrderCreate, Quantity: i64(5)})},
		{"order.create/unlimited", facts(vendor("enterprise", tollgate.StatusActive, 10),
			tollgate.CheckRequest{Action: tollgate.ActionOrderCreate})},
		{"product.add/count_allowed", facts(vendor("essential", tollgate.StatusActive, 0),
			tollgate.CheckRequest{Action: tollgate.ActionProductAdd, Count: i64(10)})},
	}
}

// benchDecide runs Decide b.N times and reports the median of a sample of individually timed
// calls as p50-ns (ns/op is the mean, which GC pauses skew), and the fastest as min-ns.
func benchDecide(b *testing.B, opts Options) {
	for _, bc := range benchCases() {
		b.Run(bc.name, func(b *testing.B) {
			e := newEngine(b, opts)
			ctx := context.Background()
			if _, err := e.Decide(ctx, bc.f); err != nil {
				b.Fatal(err)
			}
			// Every call is timed into a ring, so the sample is the steady state at the end of
			// the run, not the first calls after the engine was built (whose garbage the GC is
			// still collecting).
			const sample = 8192
			times := make([]time.Duration, sample)
			n := 0
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				t0 := time.Now()
				_, err := e.Decide(ctx, bc.f)
				times[n%sample] = time.Since(t0)
				n++
				if err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			times = times[:min(n, sample)]
			slices.Sort(times)
			b.ReportMetric(float64(times[len(times)/2].Nanoseconds()), "p50-ns")
			// The fastest call shows the cost without scheduling noise (a busy machine moves
			// the median a lot; it cannot make a call faster than it is).
			b.ReportMetric(float64(times[0].Nanoseconds()), "min-ns")
		})
	}
}

// BenchmarkDecideUncached evaluates every call with the default evaluator (the policy's plan).
func BenchmarkDecideUncached(b *testing.B) { benchDecide(b, Options{}) }

// BenchmarkDecideUncachedTopdown is the baseline: OPA's evaluator on the same calls.
func BenchmarkDecideUncachedTopdown(b *testing.B) {
	benchDecide(b, Options{Evaluator: EvaluatorTopdown})
}

func BenchmarkDecideCached(b *testing.B) { benchDecide(b, Options{CacheTTL: time.Minute}) }
