package fleet_test

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tollgate-pdp/tollgate"
	"github.com/tollgate-pdp/tollgate/cache"
	"github.com/tollgate-pdp/tollgate/fleet"
	"github.com/tollgate-pdp/tollgate/fleet/internal/natstest"
	"github.com/tollgate-pdp/tollgate/policy"
)

// checkRounds is how many single and fleet measurements BenchmarkCheckThroughput alternates.
const checkRounds = 20

// BenchmarkCheckThroughput compares non-consuming checks of a fleet sidecar with a single
// one: the same vendors, policy and requests, on all CPUs. A fleet check reads the local store
// only, so what the fleet costs is its background work: the log consumer, the lag watch and
// the usage watch, which run during the fleet rounds only.
//
// The two modes alternate in one process (single, fleet, fleet, single, ...), b.N checks per
// round, so that drift of a shared machine falls on both, and both run on the same heap (the
// in-process NATS server, which in production runs elsewhere, lives through all rounds; a
// separate heap per mode would change how often the GC runs). It reports the median ns per
// check of each mode and fleet/single, the ratio of their throughputs (goal >= 0.9).
func BenchmarkCheckThroughput(b *testing.B) {
	const vendors = 1000
	ctx := context.Background()
	records, requests := checkBenchData(vendors)
	// An engine per mode, as each sidecar has its own: a decision cached by one mode's round
	// must not speed up the other's.
	newEngine := func() *policy.Engine {
		eng, err := policy.New(ctx, policy.Options{Catalog: testCatalog(), CacheTTL: time.Second, Logger: quiet()})
		must(b, err)
		return eng
	}
	singleEng, fleetEng := newEngine(), newEngine()

	single, err := cache.Open(ctx, cache.Options{Path: filepath.Join(b.TempDir(), "single.db"), Logger: quiet(), Limits: singleEng})
	must(b, err)
	defer single.Close()
	must(b, single.Import(ctx, records))
	singleChecker := tollgate.NewChecker(single, singleEng, nil)

	srv := natstest.Start(b)
	local, err := cache.Open(ctx, cache.Options{Path: filepath.Join(b.TempDir(), "fleet.db"), Logger: quiet(), Limits: fleetEng, NoSync: true})
	must(b, err)
	defer local.Close()
	withFleetSidecar(b, srv.URL(), local, func(fs *fleet.Store) {
		must(b, fs.Import(ctx, records)) // through the log, applied before it returns
	})
	if local.VendorCount() != vendors {
		b.Fatalf("fleet store holds %d vendors, want %d", local.VendorCount(), vendors)
	}

	measure := func(checker *tollgate.Checker) float64 {
		runtime.GC() // each round starts from the same collector state
		return float64(checkAll(b, checker, requests, b.N)) / float64(b.N)
	}
	var singleNs, fleetNs, ratios []float64
	b.ResetTimer()
	for round := range checkRounds {
		var s, f float64
		fleetRound := func() {
			withFleetSidecar(b, srv.URL(), local, func(fs *fleet.Store) {
				f = measure(tollgate.NewChecker(fs, fleetEng, nil))
			})
		}
		if round%2 == 0 {
			s = measure(singleChecker)
			fleetRound()
		} else {
			fleetRound()
			s = measure(singleChecker)
		}
		b.Logf("round %d: single %.0f ns, fleet %.0f ns", round, s, f)
		singleNs, fleetNs, ratios = append(singleNs, s), append(fleetNs, f), append(ratios, s/f)
	}
	b.StopTimer()
	b.ReportMetric(median(singleNs), "single-ns/check")
	b.ReportMetric(median(fleetNs), "fleet-ns/check")
	b.ReportMetric(median(ratios), "fleet/single")
	b.ReportMetric(slices.Min(ratios), "fleet/single-min")
}

// withFleetSidecar runs fn while a fleet sidecar runs on local as cmd/tollgate runs it: its
// node applying the log (and watching the lag) and its usage watch keeping the counters,
// both caught up before fn starts and stopped after it returns.
func withFleetSidecar(b *testing.B, url string, local *cache.Store, fn func(*fleet.Store)) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	conn, err := fleet.Connect(ctx, fleetConfig(url, "checkbench"), nil, quiet())
	must(b, err)
	defer conn.Close()
	node := fleet.NewNode(conn, local, fleet.Options{})
	stop := runNode(b, node)
	defer stop()
	usage, err := fleet.NewUsage(conn.JS, fleet.UsageConfig{KVPrefix: conn.Names.KVPrefix, Replicas: 1, Local: local, Logger: quiet()})
	must(b, err)
	var watch sync.WaitGroup
	watch.Go(func() { _ = usage.Watch(ctx, local) })
	defer watch.Wait()
	defer cancel() // before watch.Wait: the watch ends with ctx
	deadline := time.Now().Add(10 * time.Second)
	for ready, _ := node.Ready(); !ready; ready, _ = node.Ready() {
		if time.Now().After(deadline) {
			b.Fatal("fleet node not ready in 10 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	select {
	case <-usage.Synced():
	case <-time.After(10 * time.Second):
		b.Fatal("usage watch did not load the counters in 10 s")
	}
	fn(node.Store())
}

// checkAll answers n checks on GOMAXPROCS goroutines and returns how long they took.
func checkAll(b *testing.B, checker *tollgate.Checker, requests []tollgate.CheckRequest, n int) time.Duration {
	ctx := context.Background()
	procs := runtime.GOMAXPROCS(0)
	var wg sync.WaitGroup
	start := time.Now()
	for p := range procs {
		share := n / procs
		if p < n%procs {
			share++
		}
		wg.Go(func() {
			for i := range share {
				req := requests[(p+i*procs)%len(requests)]
				if _, err := checker.Check(ctx, &req); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	return time.Since(start)
}

// checkBenchData is the benchmark's vendors (a third on each paid tier, with orders counted)
// and requests (order and feature checks over every vendor).
func checkBenchData(vendors int) ([]tollgate.ImportRecord, []tollgate.CheckRequest) {
	ps := time.Now().UTC().Truncate(24 * time.Hour)
	pe := ps.AddDate(0, 1, 0)
	records := make([]tollgate.ImportRecord, vendors)
	for i := range records {
		records[i] = tollgate.ImportRecord{Subscription: tollgate.Subscription{
			VendorID: fmt.Sprintf("v%04d", i), Tier: []string{"essential", "professional", "business"}[i%3],
			Status: tollgate.StatusActive, PeriodStart: &ps, PeriodEnd: &pe}, OrdersThisPeriod: int64(i % 120)}
	}
	requests := make([]tollgate.CheckRequest, 4*vendors)
	for i := range requests {
		r := tollgate.CheckRequest{VendorID: tollgate.VendorID(fmt.Sprintf("v%04d", i%vendors))}
		if i%2 == 0 {
			r.Action = tollgate.ActionOrderCreate
		} else {
			r.Action, r.Feature = tollgate.ActionFeatureUse, "api_access"
		}
		requests[i] = r
	}
	return records, requests
}

func median(xs []float64) float64 {
	s := slices.Sorted(slices.Values(xs))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
