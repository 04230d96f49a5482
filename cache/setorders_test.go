package cache

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/tollgate-pdp/tollgate"
)

func TestSetOrders(t *testing.T) {
	const period = "2025-03-01T00:00:00Z"
	reached := time.Date(2025, 3, 10, 9, 0, 0, 0, time.UTC)
	later := reached.Add(time.Hour)
	tests := []struct {
		name        string
		before      int64 // orders counted locally first
		set         []tollgate.OrderCount
		wantOrders  int64
		wantReached *time.Time
		wantMissing int
		wantRevUp   bool
	}{
		{name: "raises", before: 3, set: []tollgate.OrderCount{{VendorID: "1", Period: period, Orders: 7}},
			wantOrders: 7, wantRevUp: true},
		{name: "never lowers", before: 9, set: []tollgate.OrderCount{{VendorID: "1", Period: period, Orders: 7}},
			wantOrders: 9},
		{name: "older value after newer in one batch", set: []tollgate.OrderCount{
			{VendorID: "1", Period: period, Orders: 8}, {VendorID: "1", Period: period, Orders: 5}},
			wantOrders: 8, wantRevUp: true},
		{name: "first limit reached kept", set: []tollgate.OrderCount{
			{VendorID: "1", Period: period, Orders: 100, LimitReachedAt: &reached},
			{VendorID: "1", Period: period, Orders: 101, LimitReachedAt: &later}},
			wantOrders: 101, wantReached: &reached, wantRevUp: true},
		{name: "limit reached at an equal count", before: 100, set: []tollgate.OrderCount{
			{VendorID: "1", Period: period, Orders: 100, LimitReachedAt: &reached}},
			wantOrders: 100, wantReached: &reached, wantRevUp: true},
		{name: "unknown vendor returned", set: []tollgate.OrderCount{{VendorID: "nope", Period: period, Orders: 4}},
			wantMissing: 1},
		{name: "period older than kept ignored", set: []tollgate.OrderCount{{VendorID: "1", Period: "1999-01-01T00:00:00Z", Orders: 4}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			path := filepath.Join(t.TempDir(), "tollgate.db")
			s := mustOpen(t, path, newClock().Now)
			mustPut(t, s, testSub("1"))
			for i := range MaxPeriods { // fill the kept periods so an older one is out of range
				p := time.Date(2025, time.Month(3-i), 1, 0, 0, 0, 0, time.UTC).Format(time.RFC3339)
				if _, err := s.AddOrders(ctx, tollgate.OrderIncrement{VendorID: "1", Period: p}); err != nil {
					t.Fatal(err)
				}
			}
			if tt.before > 0 {
				if _, err := s.AddOrders(ctx, tollgate.OrderIncrement{VendorID: "1", Period: period, Delta: tt.before}); err != nil {
					t.Fatal(err)
				}
			}
			rev := mustVendor(t, s, "1").Revision
			missing, err := s.SetOrders(ctx, tt.set)
			if err != nil {
				t.Fatalf("SetOrders: %v", err)
			}
			if len(missing) != tt.wantMissing {
				t.Fatalf("missing = %v, want %d", missing, tt.wantMissing)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s = mustOpen(t, path, newClock().Now) // what SetOrders wrote is durable
			v := mustVendor(t, s, "1")
			p, _ := v.Usage.PeriodUsageOf(period)
			if p.Orders != tt.wantOrders {
				t.Fatalf("orders = %d, want %d", p.Orders, tt.wantOrders)
			}
			if (p.LimitReachedAt == nil) != (tt.wantReached == nil) || p.LimitReachedAt != nil && !p.LimitReachedAt.Equal(*tt.wantReached) {
				t.Fatalf("orders_limit_reached_at = %v, want %v", p.LimitReachedAt, tt.wantReached)
			}
			if got := v.Revision > rev; got != tt.wantRevUp {
				t.Fatalf("revision %d -> %d, want raised %v", rev, v.Revision, tt.wantRevUp)
			}
			if _, ok := v.Usage.PeriodUsageOf("1999-01-01T00:00:00Z"); ok {
				t.Fatal("a period older than the kept ones was stored")
			}
		})
	}
}
