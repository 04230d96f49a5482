package tollgate

import (
	"testing"
)

func TestWithOrders(t *testing.T) {
	v := &VendorState{Revision: 7, Usage: Usage{Periods: []PeriodUsage{
		{Period: "2026-03-01T00:00:00Z", Orders: 4}, {Period: "2026-01-01T00:00:00Z", Orders: 9}}}}
	tests := []struct {
		name, period string
		used         int64
		wantSame     bool
		wantPeriods  []string
	}{
		{"same count shares the snapshot", "2026-03-01T00:00:00Z", 4, true, []string{"2026-03-01T00:00:00Z", "2026-01-01T00:00:00Z"}},
		{"count replaced", "2026-03-01T00:00:00Z", 60, false, []string{"2026-03-01T00:00:00Z", "2026-01-01T00:00:00Z"}},
		{"newest period inserted first", "2026-04-01T00:00:00Z", 3, false, []string{"2026-04-01T00:00:00Z", "2026-03-01T00:00:00Z", "2026-01-01T00:00:00Z"}},
		{"middle period inserted in order", "2026-02-01T00:00:00Z", 1, false, []string{"2026-03-01T00:00:00Z", "2026-02-01T00:00:00Z", "2026-01-01T00:00:00Z"}},
		{"oldest period appended", "2025-12-01T00:00:00Z", 2, false, []string{"2026-03-01T00:00:00Z", "2026-01-01T00:00:00Z", "2025-12-01T00:00:00Z"}},
		{"absent period at zero shares", "2026-04-01T00:00:00Z", 0, true, []string{"2026-03-01T00:00:00Z", "2026-01-01T00:00:00Z"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, uncached := withOrders(v, tt.period, tt.used)
			if (got == v) != tt.wantSame || uncached == tt.wantSame {
				t.Fatalf("shared %v uncached %v, want shared %v", got == v, uncached, tt.wantSame)
			}
			if n := got.Usage.OrdersIn(tt.period); n != tt.used {
				t.Fatalf("orders = %d, want %d", n, tt.used)
			}
			var periods []string
			for _, p := range got.Usage.Periods {
				periods = append(periods, p.Period)
			}
			if len(periods) != len(tt.wantPeriods) {
				t.Fatalf("periods %v, want %v", periods, tt.wantPeriods)
			}
			for i := range periods {
				if periods[i] != tt.wantPeriods[i] {
					t.Fatalf("periods %v, want %v", periods, tt.wantPeriods)
				}
			}
			if v.Usage.OrdersIn("2026-03-01T00:00:00Z") != 4 || len(v.Usage.Periods) != 2 {
				t.Fatal("the snapshot was modified")
			}
		})
	}
}
