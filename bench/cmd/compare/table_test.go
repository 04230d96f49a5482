package main

import (
	"testing"
	"time"

	"github.com/tollgate-pdp/tollgate/bench/internal/report"
	"github.com/tollgate-pdp/tollgate/bench/loadgen"
)

func rounds(rps ...float64) []*loadgen.Result {
	var out []*loadgen.Result
	for _, r := range rps {
		out = append(out, &loadgen.Result{Requests: int(r), Elapsed: time.Second})
	}
	return out
}

// TestPaired: ratios pair the rounds by index (not the medians of each side), and the median
// of an even count is the mean of the middle two.
func TestPaired(t *testing.T) {
	for _, tc := range []struct {
		name string
		a, b []*loadgen.Result
		want report.Spread
	}{
		{"odd", rounds(100, 300, 200), rounds(200, 300, 800), report.Spread{Median: 0.5, Min: 0.25, Max: 1}},
		{"even", rounds(100, 200, 300, 400), rounds(100, 100, 100, 100), report.Spread{Median: 2.5, Min: 1, Max: 4}},
		// The ratio of the medians would be 120/250 = 0.48: it pairs the first side's second
		// round with the other side's first.
		{"drift", rounds(100, 120, 400), rounds(250, 240, 800), report.Spread{Median: 0.5, Min: 0.4, Max: 0.5}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := paired(tc.a, tc.b); got != tc.want {
				t.Fatalf("paired = %+v, want %+v", got, tc.want)
			}
		})
	}
}
