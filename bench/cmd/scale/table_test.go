package main

import (
	"testing"
	"time"
)

// TestPairedGrowth: sizes are compared round by round (a slow round slows both), and the
// median of an even count is the mean of the middle two.
func TestPairedGrowth(t *testing.T) {
	us := func(v ...int) []time.Duration {
		var out []time.Duration
		for _, x := range v {
			out = append(out, time.Duration(x)*time.Microsecond)
		}
		return out
	}
	for _, tc := range []struct {
		name   string
		a, b   []time.Duration
		median float64
		list   string
	}{
		// Pooled, these p50s would differ by far more than the rounds do.
		{"drift", us(110, 220, 88), us(100, 200, 80), 0.10, "+10%, +10%, +10%"},
		{"even", us(100, 120, 150, 90), us(100, 100, 100, 100), 0.10, "+0%, +20%, +50%, -10%"},
		{"empty", nil, nil, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := pairedGrowth(tc.a, tc.b)
			if d := g.median - tc.median; d > 1e-9 || d < -1e-9 || g.list != tc.list {
				t.Fatalf("pairedGrowth = %+v, want median %v, list %q", g, tc.median, tc.list)
			}
		})
	}
}
