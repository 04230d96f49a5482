package api_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/tollgate-pdp/tollgate"
	"github.com/tollgate-pdp/tollgate/api"
	"github.com/tollgate-pdp/tollgate/cache"
	"github.com/tollgate-pdp/tollgate/metrics"
	"github.com/tollgate-pdp/tollgate/policy"
)

// benchVendors is the population of the capacity benchmarks (issue 4: at 100,000 vendors a
// scrape of /metrics and GET /v1/capacity each stay under 10 ms).
const benchVendors = 100_000

// capacityServer serves the decision and ops apps over loopback on a store of n vendors of
// every tier and status, with effective limits from the policy, wired as cmd wires them.
func capacityServer(b *testing.B, n int) (decision, ops string) {
	b.Helper()
	ctx := context.Background()
	eng, err := policy.New(ctx, policy.Options{CacheTTL: time.Second, Logger: quietLogger()})
	must(b, err)
	store, err := cache.Open(ctx, cache.Options{Path: filepath.Join(b.TempDir(), "tollgate.db"), Logger: quietLogger(), Limits: eng})
	must(b, err)
	b.Cleanup(func() { store.Close() })
	tiers := []string{"essential", "professional", "business", "enterprise"}
	now := time.Now().UTC()
	start, end := startOf(now.Add(-24*time.Hour)), startOf(now.Add(29*24*time.Hour))
	records := make([]tollgate.ImportRecord, n)
	for i := range records {
		records[i] = tollgate.ImportRecord{Subscription: tollgate.Subscription{
			VendorID: fmt.Sprintf("bench-%06d", i), Tier: tiers[i%4], Status: tollgate.Statuses[i%5],
			PeriodStart: &start, PeriodEnd: &end}, OrdersThisPeriod: int64(i % 150)}
	}
	must(b, store.Import(ctx, records))
	must(b, store.RefreshAggregates(ctx))
	m := metrics.New(metrics.Options{CacheStats: eng.CacheStats, Vendors: store.Aggregates, StoreSize: store.Size,
		DecisionLogDropped: func() uint64 { return 0 }, Logger: quietLogger()})
	srv, err := api.New(api.Config{Checker: tollgate.NewChecker(store, eng, nil), Store: store, Policy: eng,
		Catalog: eng.Catalog, Observer: m, Metrics: m.Handler(), Capacity: m.Capacity, Snapshots: store,
		Logger: quietLogger()})
	must(b, err)
	if got := store.Aggregates().TotalVendors; got != int64(n) {
		b.Fatalf("%d vendors, want %d", got, n)
	}
	return serve(b, srv.Decision), serve(b, srv.Ops)
}

// getLoop GETs url b.N times over one keep-alive connection and reports the mean, the p50,
// the p99 and the slowest request in milliseconds.
func getLoop(b *testing.B, url string) {
	client := &http.Client{Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()
	var took []time.Duration
	var size int64
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		resp, err := client.Get(url)
		if err != nil {
			b.Fatal(err)
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("GET %s = %d", url, resp.StatusCode)
		}
		size = n
		took = append(took, time.Since(start))
	}
	slices.Sort(took)
	ms := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 }
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1e6, "ms/op")
	b.ReportMetric(ms(took[len(took)/2]), "p50-ms")
	b.ReportMetric(ms(took[len(took)*99/100]), "p99-ms")
	b.ReportMetric(ms(took[len(took)-1]), "max-ms")
	b.ReportMetric(float64(size), "bytes")
}

// BenchmarkMetricsScrape100k scrapes /metrics (all tollgate, Go and process metrics) over
// loopback at 100,000 vendors.
func BenchmarkMetricsScrape100k(b *testing.B) {
	_, ops := capacityServer(b, benchVendors)
	getLoop(b, ops+"/metrics")
}

// BenchmarkCapacity100k is GET /v1/capacity over loopback at 100,000 vendors.
func BenchmarkCapacity100k(b *testing.B) {
	decision, _ := capacityServer(b, benchVendors)
	getLoop(b, decision+"/v1/capacity")
}
