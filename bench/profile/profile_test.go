package profile

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/valyala/fasthttp"

	"github.com/tollgate-pdp/tollgate"
	"github.com/tollgate-pdp/tollgate/api"
	"github.com/tollgate-pdp/tollgate/bench/internal/gen"
	"github.com/tollgate-pdp/tollgate/cache"
	"github.com/tollgate-pdp/tollgate/metrics"
	"github.com/tollgate-pdp/tollgate/policy"
)

const vendors = 10_000

type env struct {
	store   *cache.Store
	engine  *policy.Engine
	checker *tollgate.Checker
	reqs    []gen.Request
	parsed  []tollgate.CheckRequest
}

func newEnv(b *testing.B, ttl time.Duration) *env { return newEnvT(b, ttl) }

func newEnvT(b testing.TB, ttl time.Duration) *env {
	b.Helper()
	ctx := context.Background()
	now := time.Now()
	st, err := cache.Open(ctx, cache.Options{Path: filepath.Join(b.TempDir(), "tollgate.db")})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	if err := gen.Populate(ctx, st, gen.Mix{Seed: 1}, vendors, 50_000, now); err != nil {
		b.Fatal(err)
	}
	m := metrics.New(metrics.Options{StoreSize: st.Size})
	eng, err := policy.New(ctx, policy.Options{CacheTTL: ttl, Observer: m})
	if err != nil {
		b.Fatal(err)
	}
	reqs, parsed := mixRequests(b, 50_000, vendors)
	return &env{store: st, engine: eng, checker: tollgate.NewChecker(st, eng, nil), reqs: reqs, parsed: parsed}
}

// mixRequests is the comparison's mix of n requests over the vendors, and each as the
// CheckRequest the decision API would decode.
func mixRequests(tb testing.TB, n, vendors int) ([]gen.Request, []tollgate.CheckRequest) {
	tb.Helper()
	reqs, err := gen.Requests(1, n, vendors, tollgate.DefaultCatalog())
	if err != nil {
		tb.Fatal(err)
	}
	parsed := make([]tollgate.CheckRequest, len(reqs))
	for i, r := range reqs {
		parsed[i] = tollgate.CheckRequest{VendorID: tollgate.VendorID(r.VendorID), Action: r.Action,
			Count: r.Count, Quantity: r.Quantity, Feature: r.Feature}
	}
	return reqs, parsed
}

// sampleP50 times the first n calls individually and reports their median.
type sampler struct {
	times []time.Duration
}

func (s *sampler) report(b *testing.B) {
	slices.Sort(s.times)
	if len(s.times) > 0 {
		b.ReportMetric(float64(s.times[len(s.times)/2].Nanoseconds()), "p50-ns")
	}
}

func benchDecide(b *testing.B, ttl time.Duration) {
	e := newEnv(b, ttl)
	ctx := context.Background()
	facts := e.facts(time.Now())
	if ttl > 0 { // fill the cache
		for i := range facts {
			if _, err := e.engine.Decide(ctx, &facts[i]); err != nil {
				b.Fatal(err)
			}
		}
	}
	s := sampler{times: make([]time.Duration, 0, 8192)}
	b.ReportAllocs()
	b.ResetTimer()
	clk := startCPU()
	for i := 0; b.Loop(); i++ {
		f := &facts[i%len(facts)]
		t0 := time.Now()
		_, err := e.engine.Decide(ctx, f)
		if len(s.times) < cap(s.times) {
			s.times = append(s.times, time.Since(t0))
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	clk.report(b)
	s.report(b)
}

// BenchmarkDecideUncached: policy evaluation of the mix (no decision cache).
func BenchmarkDecideUncached(b *testing.B) { benchDecide(b, 0) }

// BenchmarkDecideCached: the mix served from a warm decision cache.
func BenchmarkDecideCached(b *testing.B) { benchDecide(b, time.Hour) }

// BenchmarkCheckerCheck: store lookup + period + Decide, as the handler calls it (cache as
// shipped: 1s TTL).
func BenchmarkCheckerCheck(b *testing.B) {
	e := newEnv(b, time.Second)
	ctx := context.Background()
	b.ReportAllocs()
	clk := startCPU()
	defer clk.report(b)
	for i := 0; b.Loop(); i++ {
		if _, err := e.checker.Check(ctx, &e.parsed[i%len(e.parsed)]); err != nil {
			b.Fatal(err)
		}
	}
}

func benchHTTP(b *testing.B, ttl time.Duration, parallelism int) {
	e := newEnv(b, ttl)
	m := metrics.New(metrics.Options{StoreSize: e.store.Size})
	srv, err := api.New(api.Config{Checker: e.checker, Store: e.store, Policy: e.engine,
		Catalog: e.engine.Catalog, Observer: m, Readiness: []tollgate.ReadinessCheck{e.store, e.engine},
		Metrics: m.Handler()})
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go func() { _ = srv.Decision.Listener(ln) }()
	b.Cleanup(func() { _ = srv.Decision.Shutdown() })
	addr := ln.Addr().String()
	client := &fasthttp.HostClient{Addr: addr, MaxConns: 1024}
	url := "http://" + addr + "/v1/check"
	var n atomic.Int64
	b.SetParallelism(parallelism)
	b.ReportAllocs()
	b.ResetTimer()
	clk := startCPU()
	b.RunParallel(func(pb *testing.PB) {
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		defer fasthttp.ReleaseRequest(req)
		defer fasthttp.ReleaseResponse(resp)
		req.SetRequestURI(url)
		req.Header.SetMethod(http.MethodPost)
		req.Header.SetContentType("application/json")
		for pb.Next() {
			i := int(n.Add(1))
			req.SetBodyRaw(e.reqs[i%len(e.reqs)].Tollgate)
			if err := client.Do(req, resp); err != nil {
				b.Error(err)
				return
			}
			if resp.StatusCode() != http.StatusOK {
				b.Errorf("status %d: %s", resp.StatusCode(), resp.Body())
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
	clk.report(b) // client and server together: both run in this process
}

// BenchmarkHTTPCheck: POST /v1/check over loopback through the real api.Server, as shipped
// (1s decision cache), 2 connections per CPU.
func BenchmarkHTTPCheck(b *testing.B) { benchHTTP(b, time.Second, 2) }

// BenchmarkHTTPCheckUncached: the same without the decision cache.
func BenchmarkHTTPCheckUncached(b *testing.B) { benchHTTP(b, 0, 2) }

// BenchmarkDecideCostByKind measures the mean uncached Decide time per request kind and
// decision code: which paths of the policy cost what. One iteration decides the first 5,000
// requests of the mix three times and times the last two rounds (the first warms up); the means
// cover all iterations. It reports one metric per kind and code ("order.create→ok-ns") and logs
// the table with the sample counts:
//
//	go test -run '^$' -bench DecideCostByKind ./bench/profile
func BenchmarkDecideCostByKind(b *testing.B) {
	e := newEnv(b, 0)
	ctx := context.Background()
	facts := e.facts(time.Now())
	type acc struct {
		n   int
		tot time.Duration
	}
	by := map[string]*acc{}
	for b.Loop() {
		for round := 0; round < 3; round++ {
			for i := range facts[:5000] {
				t0 := time.Now()
				d, err := e.engine.Decide(ctx, &facts[i])
				el := time.Since(t0)
				if err != nil {
					b.Fatal(err)
				}
				if round == 0 {
					continue
				}
				k := e.reqs[i].Kind() + "→" + d.Code
				if by[k] == nil {
					by[k] = &acc{}
				}
				by[k].n++
				by[k].tot += el
			}
		}
	}
	keys := make([]string, 0, len(by))
	for k := range by {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		mean := by[k].tot / time.Duration(by[k].n)
		b.ReportMetric(float64(mean.Nanoseconds()), metricUnit(k+"-ns"))
		b.Logf("%-40s n=%6d mean=%v", k, by[k].n, mean)
	}
}

// metricUnit makes s usable as a b.ReportMetric unit, which must not contain white space.
func metricUnit(s string) string { return strings.Join(strings.Fields(s), "_") }

// BenchmarkCacheKeySpace counts, over the benchmark mix, the distinct keys of the decision
// cache as keyed today (vendor id + revision + request) and as it could be keyed by facts (the
// input document without vendor_id and revision, which the default policy does not read): the
// second bounds the hit ratio a facts-keyed cache would reach on a mix of many vendors. One
// iteration counts the whole mix; the figures are the same in every iteration, so one is
// enough:
//
//	go test -run '^$' -bench CacheKeySpace -benchtime 1x ./bench/profile
func BenchmarkCacheKeySpace(b *testing.B) {
	e := newEnv(b, 0)
	now := time.Now()
	var byVendor, byFacts map[string]int
	for b.Loop() {
		byVendor, byFacts = map[string]int{}, map[string]int{}
		for i, r := range e.reqs {
			req := e.parsed[i]
			k := string(req.VendorID) + "|" + string(r.Tollgate)
			req.VendorID = ""
			rb, _ := json.Marshal(req)
			fk := string(rb)
			if v, ok := e.store.Vendor(r.VendorID); ok {
				doc := gen.VendorDoc(v, now)
				delete(doc, "revision")
				vb, _ := json.Marshal(doc)
				fk += "|" + string(vb)
			}
			byVendor[k]++
			byFacts[fk]++
		}
	}
	n := len(e.reqs)
	vendorHit := 100 * float64(n-len(byVendor)) / float64(n)
	factsHit := 100 * float64(n-len(byFacts)) / float64(n)
	b.ReportMetric(float64(len(byVendor)), "vendor-keyed-keys")
	b.ReportMetric(vendorHit, "vendor-keyed-max-hit-%")
	b.ReportMetric(float64(len(byFacts)), "facts-keyed-keys")
	b.ReportMetric(factsHit, "facts-keyed-max-hit-%")
	b.Logf("%d requests: %d distinct vendor-keyed entries (max hit ratio %.1f%%), %d distinct facts-keyed entries (max hit ratio %.1f%%)",
		n, len(byVendor), vendorHit, len(byFacts), factsHit)
}

// bigStore generates TOLLGATE_BENCH_VENDORS (default 200,000) vendors into a store file kept in
// os.TempDir() between runs (tollgate-bench-profile-<n>.db), so repeated profiles skip the
// generation; delete the file after a change of the store format or of the generator.
func bigStore(tb testing.TB) (string, int) {
	tb.Helper()
	n := 200_000
	if v, err := strconv.Atoi(os.Getenv("TOLLGATE_BENCH_VENDORS")); err == nil && v > 0 {
		n = v
	}
	path := filepath.Join(os.TempDir(), "tollgate-bench-profile-"+strconv.Itoa(n)+".db")
	if _, err := os.Stat(path); err == nil {
		return path, n
	}
	ctx := context.Background()
	tmp := path + ".tmp"
	_ = os.Remove(tmp)
	st, err := cache.Open(ctx, cache.Options{Path: tmp})
	if err != nil {
		tb.Fatal(err)
	}
	if err := gen.Populate(ctx, st, gen.Mix{Seed: 1}, n, 50_000, time.Now()); err != nil {
		tb.Fatal(err)
	}
	if err := st.Close(); err != nil {
		tb.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		tb.Fatal(err)
	}
	return path, n
}

// BenchmarkStoreOpen is the cold start's store load (cache.Open of a populated store); with
// -cpuprofile it shows where the load time goes. It reports ns/vendor. GCOff runs the same load
// with the collector paused (debug.SetGCPercent(-1)) to show what collections during the load
// cost: a change cache.Open could make.
func BenchmarkStoreOpen(b *testing.B) {
	path, n := bigStore(b)
	ctx := context.Background()
	for _, gcOff := range []bool{false, true} {
		name := "AsIs"
		if gcOff {
			name = "GCOff"
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			clk := startCPU()
			for b.Loop() {
				runtime.GC()
				if gcOff {
					debug.SetGCPercent(-1)
				}
				st, err := cache.Open(ctx, cache.Options{Path: path})
				if gcOff {
					debug.SetGCPercent(100)
				}
				if err != nil {
					b.Fatal(err)
				}
				if st.VendorCount() != n {
					b.Fatalf("%d vendors, want %d", st.VendorCount(), n)
				}
				st.Close()
			}
			clk.report(b)
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/vendor")
		})
	}
}

// BenchmarkStoreHeapPerVendor measures the live heap per vendor after cache.Open of the
// bigStore population (after a full GC), and what the Go runtime holds beyond it (the gap to
// resident memory). It reports heap-B/vendor (live heap after the GC) and, from before that GC,
// inuse-B/vendor (heap in use), alloc-B/vendor (allocated during Open) and sys-B/vendor (heap
// the runtime has mapped). Each iteration opens the store again; the figures are the first
// iteration's, as later ones reuse the heap the runtime already mapped and show no sys growth.
// Run it alone and twice: the figures are only meaningful when nothing else ran in the process
// and the store file already exists (the run that generates it leaves heap of its own behind):
//
//	TOLLGATE_BENCH_VENDORS=1000000 go test -run '^$' -bench StoreHeapPerVendor -benchtime 1x -timeout 15m ./bench/profile
func BenchmarkStoreHeapPerVendor(b *testing.B) {
	path, n := bigStore(b)
	var live, inuse, alloc, sys float64
	for i := 0; b.Loop(); i++ {
		var before, peak, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		st, err := cache.Open(context.Background(), cache.Options{Path: path})
		if err != nil {
			b.Fatal(err)
		}
		runtime.ReadMemStats(&peak)
		runtime.GC()
		runtime.ReadMemStats(&after)
		if i == 0 {
			live = float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / float64(n)
			inuse = float64(int64(peak.HeapInuse)-int64(before.HeapInuse)) / float64(n)
			alloc = float64(peak.TotalAlloc-before.TotalAlloc) / float64(n)
			sys = float64(int64(after.HeapSys)-int64(before.HeapSys)) / float64(n)
		}
		if st.VendorCount() != n { // also keeps st live through the GC above
			b.Fatalf("%d vendors, want %d", st.VendorCount(), n)
		}
		st.Close()
	}
	b.ReportMetric(live, "heap-B/vendor")
	b.ReportMetric(inuse, "inuse-B/vendor")
	b.ReportMetric(alloc, "alloc-B/vendor")
	b.ReportMetric(sys, "sys-B/vendor")
	b.Logf("%d vendors: live heap %.0f B/vendor after GC; before that GC: heap in use %.0f B/vendor, total allocated during Open %.0f B/vendor; heap sys %.0f B/vendor (what the runtime has mapped)",
		n, live, inuse, alloc, sys)
	var v tollgate.VendorState
	b.Logf("VendorState struct: %d B (Subscription %d B, Usage %d B) plus its strings, *time.Time and *int64 fields, Usage.Periods backing array and the map entry",
		unsafe.Sizeof(v), unsafe.Sizeof(v.Subscription), unsafe.Sizeof(v.Usage))
}

// cpuClock measures the process's CPU time (user + system, all threads, GC included). On a
// machine shared with other work, wall time per operation includes waiting for a CPU; CPU time
// per operation does not, so it is the figure to compare variants by.
type cpuClock struct{ start time.Duration }

func cpuNow() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func startCPU() cpuClock { return cpuClock{start: cpuNow()} }

// report adds cpu-ns/op.
func (c cpuClock) report(b *testing.B) {
	b.ReportMetric(float64((cpuNow()-c.start).Nanoseconds())/float64(b.N), "cpu-ns/op")
}
