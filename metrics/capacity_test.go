package metrics

import (
	"context"
	"math"
	"testing"
	"time"
)

func TestCapacity(t *testing.T) {
	m := New(fullOptions())
	exercise(m) // 8 actions × 9 codes, 42µs each
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = m.RunSampler(ctx, 10*time.Millisecond) }()
	deadline := time.Now().Add(200 * time.Millisecond)
	for time.Now().Before(deadline) { // burn some CPU for the sampler to see
	}
	time.Sleep(30 * time.Millisecond)
	cancel()
	<-done

	c := m.Capacity(testClock())
	tests := []struct {
		name      string
		got, want float64
	}{
		{"decisions", float64(c.Decisions.Count), 8 * 9},
		{"average latency µs", math.Round(c.Decisions.AverageLatencySecs * 1e6), 42},
		{"vendors", float64(c.Vendors.Total), 0}, // fullOptions sets only the tier×status map
		{"essential active", float64(c.Tiers["essential"]["active"]), 4},
		{"orders this period", float64(c.Usage.OrdersThisPeriod), 150},
		{"order limit sum", float64(c.Limits.Orders.Sum), 600},
		{"unlimited orders", float64(c.Limits.Orders.Unlimited), 1},
		{"near 80% essential", float64(c.NearOrderLimit["essential"].AtLeast80), 3},
		{"store size", float64(c.StoreSizeBytes), 1 << 20},
		{"active subscriptions", float64(c.Subscriptions.Active), 8},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s = %v, want %v", tt.name, tt.got, tt.want)
		}
	}
	if c.Process.PeakResidentBytes <= 0 || c.Process.CPUSecondsTotal <= 0 || c.Process.PeakCPUCores <= 0 {
		t.Errorf("process figures = %+v", c.Process)
	}
	if !c.TakenAt.Equal(testClock()) {
		t.Errorf("taken at %v", c.TakenAt)
	}
}
