// Command loadmeasure measures the store's cold start at scale: it generates a production-like
// population (the mix of bench/internal/gen, copied here because that package is internal to
// bench/) into a store file kept between runs, then times cache.Open with the policy as the
// limits resolver (as `tollgate serve` opens it) and reports the live heap and the resident
// memory per vendor, and how many times the policy was asked for limits.
//
//	go run ./cache/internal/loadmeasure -n 1000000
//
// Not part of `make test`: it is run by hand.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/tollgate-pdp/tollgate"
	"github.com/tollgate-pdp/tollgate/bench/internal/gen"
	"github.com/tollgate-pdp/tollgate/cache"
	"github.com/tollgate-pdp/tollgate/policy"
)

func main() {
	n := flag.Int("n", 100_000, "vendors")
	dir := flag.String("dir", os.TempDir(), "where the store file is kept between runs")
	noLimits := flag.Bool("no-limits", false, "open without the policy as limits resolver")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of Open to this file")
	memProfile := flag.String("memprofile", "", "write a heap profile after Open to this file")
	flag.Parse()
	runtime.MemProfileRate = 4096
	ctx := context.Background()
	path := filepath.Join(*dir, "tollgate-loadmeasure-"+strconv.Itoa(*n)+".db")
	if _, err := os.Stat(path); err != nil {
		t0 := time.Now()
		if err := generate(ctx, path, *n); err != nil {
			log.Fatal(err)
		}
		log.Printf("generated %d vendors in %v", *n, time.Since(t0))
	}
	var lim *counting
	opts := cache.Options{Path: path}
	if !*noLimits {
		eng, err := policy.New(ctx, policy.Options{})
		if err != nil {
			log.Fatal(err)
		}
		lim = &counting{LimitsResolver: eng}
		opts.Limits = lim
	}
	runtime.GC()
	debug.FreeOSMemory()
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	rss0 := rss()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			log.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			log.Fatal(err)
		}
	}
	t0, c0 := time.Now(), cpuTime()
	st, err := cache.Open(ctx, opts)
	if err != nil {
		log.Fatal(err)
	}
	load, cpu := time.Since(t0), cpuTime()-c0
	rssOpen := rss()
	agg := st.Aggregates() // waits for the aggregates' build (in the background since Open)
	built, builtCPU := time.Since(t0), cpuTime()-c0
	pprof.StopCPUProfile()
	var mo runtime.MemStats
	runtime.ReadMemStats(&mo)
	runtime.GC()
	runtime.ReadMemStats(&m1)
	debug.FreeOSMemory()
	rssAfter := rss()
	vn := st.VendorCount()
	evals := int64(-1)
	if lim != nil {
		evals = lim.n.Load()
	}
	fmt.Printf("vendors=%d open=%v (cpu %v; %.0f ns/vendor) aggregates_built=%v (cpu %v) liveheap=%.0f B/vendor rss_at_ready=%.0f B/vendor rss_after_build_and_gc=%.0f B/vendor policy_evals=%d active_subs=%d allocated_in_open=%.0f B/vendor gcs_in_open=%d\n",
		vn, load.Round(time.Millisecond), cpu.Round(time.Millisecond), float64(load.Nanoseconds())/float64(vn),
		built.Round(time.Millisecond), builtCPU.Round(time.Millisecond),
		float64(int64(m1.HeapAlloc)-int64(m0.HeapAlloc))/float64(vn),
		float64(rssOpen-rss0)/float64(vn), float64(rssAfter-rss0)/float64(vn), evals, agg.ActiveSubscriptions,
		float64(mo.TotalAlloc-m0.TotalAlloc)/float64(vn), mo.NumGC-m0.NumGC)
	if *memProfile != "" {
		f, err := os.Create(*memProfile)
		if err != nil {
			log.Fatal(err)
		}
		if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
			log.Fatal(err)
		}
		f.Close()
	}
	fmt.Printf("process after Open: %s\n", rssParts())
	runtime.KeepAlive(st)
	st.Close()
}

type counting struct {
	tollgate.LimitsResolver
	n atomic.Int64
}

func (c *counting) EffectiveLimits(ctx context.Context, v *tollgate.VendorState, now time.Time) (tollgate.EffectiveLimits, error) {
	c.n.Add(1)
	return c.LimitsResolver.EffectiveLimits(ctx, v, now)
}

// cpuTime is the process's user + system CPU time (on a shared machine the wall time includes
// waiting for a CPU).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// rss is VmRSS in bytes.
func rss() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// rssParts is the anonymous (heap) and file-backed (bbolt's mmap) parts of VmRSS.
func rssParts() string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return ""
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "RssAnon:") || strings.HasPrefix(l, "RssFile:") || strings.HasPrefix(l, "VmRSS:") {
			out = append(out, strings.Join(strings.Fields(l), " "))
		}
	}
	return strings.Join(out, ", ")
}

func generate(ctx context.Context, path string, n int) error {
	tmp := path + ".tmp"
	_ = os.Remove(tmp)
	st, err := cache.Open(ctx, cache.Options{Path: tmp})
	if err != nil {
		return err
	}
	if err := gen.Populate(ctx, st, gen.Mix{Seed: 1}, n, 50_000, time.Now()); err != nil {
		st.Close()
		return err
	}
	if err := st.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
