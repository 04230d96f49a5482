package cache

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/tollgate-pdp/tollgate"
)

// BenchmarkRefreshAggregates100k is the hourly (and per policy/catalog change) walk that
// re-evaluates every vendor's limits at 100,000 vendors; vendors with equal limit facts share
// one policy evaluation.
func BenchmarkRefreshAggregates100k(b *testing.B) {
	ctx := context.Background()
	s := openWithPolicyTB(b, filepath.Join(b.TempDir(), "t.db"))
	tiers := []string{"essential", "professional", "business", "enterprise"}
	now := time.Now().UTC()
	records := make([]tollgate.ImportRecord, 100_000)
	for i := range records {
		pe := now.Add(time.Duration(i%720) * time.Hour)
		records[i] = tollgate.ImportRecord{Subscription: tollgate.Subscription{VendorID: fmt.Sprintf("v%06d", i),
			Tier: tiers[i%4], Status: tollgate.Statuses[i%5], PeriodEnd: &pe}, OrdersThisPeriod: int64(i % 150)}
	}
	if err := s.Import(ctx, records); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if err := s.RefreshAggregates(ctx); err != nil {
			b.Fatal(err)
		}
	}
}
