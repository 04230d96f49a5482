package cache

import (
	"context"
	"path/filepath"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/tollgate-pdp/tollgate"
)

// BenchmarkAddOrdersParallel measures durable order counts (fsync per group commit) from many
// concurrent writers over 1,000 vendors; it reports writes/s.
func BenchmarkAddOrdersParallel(b *testing.B) {
	ctx := context.Background()
	s := mustOpen(b, "", nil)
	const vendors = 1000
	recs := make([]tollgate.ImportRecord, vendors)
	for i := range recs {
		recs[i].Subscription = *testSub(strconv.Itoa(i))
	}
	if err := s.Import(ctx, recs); err != nil {
		b.Fatal(err)
	}
	var n atomic.Int64
	b.SetParallelism(32) // many HTTP handlers per core, as the API runs them
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			if _, err := s.AddOrders(ctx, tollgate.OrderIncrement{VendorID: strconv.Itoa(int(i % vendors)),
				Period: "2025-03-01T00:00:00Z", Delta: 1, IdempotencyKey: "k" + strconv.FormatInt(i, 10)}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "writes/s")
}

// BenchmarkVendor is the decision path's read.
func BenchmarkVendor(b *testing.B) {
	s := mustOpen(b, "", nil)
	mustPut(b, s, testSub("42"))
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, ok := s.Vendor("42"); !ok {
				b.Fatal("missing")
			}
		}
	})
}

// BenchmarkLoad100k measures cold start: Open of a store with 100,000 vendors, each with two
// periods of usage and reported counts. It reports ns/vendor (Open, to ready) and heap
// bytes/vendor retained once the aggregates are built.
func BenchmarkLoad100k(b *testing.B) {
	const vendors = 100_000
	ctx := context.Background()
	path := filepath.Join(b.TempDir(), "tollgate.db")
	s, err := Open(ctx, Options{Path: path})
	if err != nil {
		b.Fatal(err)
	}
	recs := make([]tollgate.ImportRecord, vendors)
	for i := range recs {
		sub := testSub(strconv.Itoa(1_000_000 + i))
		sub.StripePriceID = "price_1OabcdefGHIJKLMN"
		sub.StripePaymentMethodID = "pm_1OabcdefGHIJKLMNOPQRSTUV"
		sub.StripeStatus = "active"
		recs[i] = tollgate.ImportRecord{Subscription: *sub, OrdersThisPeriod: int64(i % 500)}
	}
	if err := s.Import(ctx, recs); err != nil {
		b.Fatal(err)
	}
	// A second, older period, as a vendor of some months has.
	for i := range recs {
		recs[i].Subscription.PeriodStart = ptr(recs[i].Subscription.PeriodStart.AddDate(0, -1, 0))
	}
	if err := s.Import(ctx, recs); err != nil {
		b.Fatal(err)
	}
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		runtime.GC()
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		s, err := Open(ctx, Options{Path: path})
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		s.Aggregates() // the heap figure includes the aggregates, built in the background
		runtime.GC()
		runtime.ReadMemStats(&m1)
		if s.VendorCount() != vendors {
			b.Fatalf("loaded %d vendors", s.VendorCount())
		}
		b.ReportMetric(float64(m1.HeapAlloc-m0.HeapAlloc)/vendors, "heapB/vendor")
		runtime.KeepAlive(s)
		s.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/vendors, "ns/vendor")
}
