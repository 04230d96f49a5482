package main

import (
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/tollgate-pdp/tollgate/bench/internal/report"
	"github.com/tollgate-pdp/tollgate/bench/loadgen"
)

type agg struct {
	rps, rpsMin, rpsMax float64
	p50, p99            time.Duration
	requests            int
}

// aggregate: throughput is the median of the rounds (min and max shown); p50 and p99 are over
// the latencies of all rounds together.
func aggregate(rs []*loadgen.Result) agg {
	var a agg
	var rps []float64
	var lat []time.Duration
	for _, r := range rs {
		rps = append(rps, r.RPS())
		lat = append(lat, r.Latencies...)
		a.requests += r.Requests
	}
	slices.Sort(lat)
	sp := report.Summarize(rps)
	a.rps, a.rpsMin, a.rpsMax = sp.Median, sp.Min, sp.Max
	a.p50, a.p99 = loadgen.Quantile(lat, 0.5), loadgen.Quantile(lat, 0.99)
	return a
}

// paired is the median (and range) over rounds of a's throughput divided by b's in the same
// round.
func paired(a, b []*loadgen.Result) report.Spread {
	var rs []float64
	for i := range min(len(a), len(b)) {
		rs = append(rs, a[i].RPS()/b[i].RPS())
	}
	return report.Summarize(rs)
}

func mark(ok bool) string {
	if ok {
		return "met"
	}
	return "**missed**"
}

func table(cfg config, servers []*server, results map[string]map[int][]*loadgen.Result, cpu map[string]map[int][]cpuUse, mix map[string]int, loadBefore, loadAfter string, cacheStats map[string]string) string {
	var b strings.Builder
	host, _ := os.Hostname()
	fmt.Fprintf(&b, "## tollgate vs `opa run --server` (same policy, same data), loopback HTTP\n\n")
	fmt.Fprintf(&b, "Machine: %s (host %s). Source: %s. The load generator (this program, fasthttp client, one keep-alive connection per worker) and the server under test share these CPUs; only one server is driven at a time, the others idle. Load average (1/5/15 min) before the timed runs: %s; after: %s (other work on the machine, e.g. parallel test suites, competes for the same CPUs when it is above the CPU count).\n\n", report.Machine(), host, report.Tree(cfg.repo), loadBefore, loadAfter)
	fmt.Fprintf(&b, "Workload: %d vendors generated through cache.Store.Import; %d distinct requests cycled (50%% order.create, 20%% product.add, 20%% feature.use, 10%% unknown vendor); %d rounds, each running every server at every concurrency in turn (%s), %d warmup requests before each run; %d requests per run at c=1, %d at c>1. Decisions verified identical on %d requests before timing.\n\n",
		cfg.vendors, cfg.pool, cfg.rounds, serverOrder(servers), cfg.warmup, cfg.requestsC1, cfg.requests, cfg.sample)
	fmt.Fprintf(&b, "req/s is the median of the rounds (min–max in brackets); p50/p99 are over all measured requests of all rounds. `tollgate` runs `tollgate serve` as shipped (decision cache TTL 1s); `tollgate-uncached` adds `--decision-cache-ttl 0`; `tollgate-fleet` runs in fleet mode (below); `opa` is `opa run --server` queried at POST %s; `floor` is a fiber handler answering a constant body (bench/cmd/floor).\n\n", "/v1/data/bench/entry/decision")
	fmt.Fprintf(&b, "| server | concurrency | req/s | p50 | p99 |\n|---|---:|---:|---:|---:|\n")
	for _, c := range cfg.conc {
		for _, s := range servers {
			a := aggregate(results[s.name][c])
			fmt.Fprintf(&b, "| %s | %d | %.0f (%.0f–%.0f) | %s | %s |\n", s.name, c, a.rps, a.rpsMin, a.rpsMax,
				report.Dur(a.p50), report.Dur(a.p99))
		}
	}
	fmt.Fprintf(&b, "\n### Ratios\n\n")
	fmt.Fprintf(&b, "Throughput ratios are judged per round: in each round the servers run back to back at one concurrency, seconds apart, so each round gives one tollgate/OPA and one tollgate/floor pair measured under the same machine conditions; the table shows the median of those pairs (min–max in brackets), and, for reference, the ratio of the median req/s above (which can pair a fast round of one server with a slow round of the other when the machine's speed drifts).\n\n")
	fmt.Fprintf(&b, "| tollgate variant | concurrency | tollgate/OPA req/s (target ≥ 3 at c≥4) | OPA p50 / tollgate p50 (target ≥ 3 at c≥4) | tollgate/floor req/s (target ≥ 0.5) | ratio of medians: /OPA, /floor |\n|---|---:|---:|---:|---:|---:|\n")
	for _, name := range []string{"tollgate", "tollgate-uncached"} {
		if _, ok := results[name]; !ok {
			continue
		}
		for _, c := range cfg.conc {
			t, o, f := aggregate(results[name][c]), aggregate(results["opa"][c]), aggregate(results["floor"][c])
			thr := paired(results[name][c], results["opa"][c])
			fl := paired(results[name][c], results["floor"][c])
			lat := float64(o.p50) / float64(t.p50)
			tm, lm := "", ""
			if c >= 4 {
				tm, lm = " "+mark(thr.Median >= 3), " "+mark(lat >= 3)
			}
			fmt.Fprintf(&b, "| %s | %d | %.2fx (%.2f–%.2f)%s | %.2fx%s | %.2f (%.2f–%.2f) %s | %.2fx, %.2f |\n", name, c,
				thr.Median, thr.Min, thr.Max, tm, lat, lm, fl.Median, fl.Min, fl.Max, mark(fl.Median >= 0.5),
				t.rps/o.rps, t.rps/f.rps)
		}
	}
	writeFleet(&b, cfg, results)
	if len(cfg.workFloors) > 0 {
		writeBudget(&b, cfg, results, cpu)
	}
	fmt.Fprintf(&b, "\n### CPU per request\n\n")
	fmt.Fprintf(&b, "CPU time each measured run cost, divided by its requests; median of the rounds. Server: the process under test (/proc/<pid>/stat, 10 ms ticks). Client: the load generator (this process, getrusage). Both share the machine's CPUs, so a server that costs more CPU per request also leaves less to the client.\n\n")
	fmt.Fprintf(&b, "| server | concurrency | server user | server system | client user | client system | total | server reads, writes | server context switches (voluntary + not) |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, c := range cfg.conc {
		for _, s := range servers {
			m := func(f func(cpuUse) float64) float64 { return medianOf(cpu[s.name][c], f) }
			fmt.Fprintf(&b, "| %s | %d | %.1f µs | %.1f µs | %.1f µs | %.1f µs | %.1f µs | %.2f, %.2f | %.2f + %.2f |\n", s.name, c,
				m(func(u cpuUse) float64 { return us(u.serverUser) }), m(func(u cpuUse) float64 { return us(u.serverSys) }),
				m(func(u cpuUse) float64 { return us(u.clientUser) }), m(func(u cpuUse) float64 { return us(u.clientSys) }),
				m(func(u cpuUse) float64 { return us(u.serverUser + u.serverSys + u.clientUser + u.clientSys) }),
				m(func(u cpuUse) float64 { return u.reads }), m(func(u cpuUse) float64 { return u.writes }),
				m(func(u cpuUse) float64 { return u.voluntary }), m(func(u cpuUse) float64 { return u.involuntary }))
		}
	}
	fmt.Fprintf(&b, "\nDecision mix of the verified sample (request kind → OPA's code, tollgate identical):")
	keys := make([]string, 0, len(mix))
	for k := range mix {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, " %s: %d;", k, mix[k])
	}
	for _, name := range []string{"tollgate", "tollgate-uncached"} {
		if st := cacheStats[name]; st != "" {
			fmt.Fprintf(&b, "\n\n%s decision cache over the whole run (verification, warmups, measured runs): %s.", name, st)
		}
	}
	fmt.Fprintf(&b, "\n\nCommand: `go run ./bench/cmd/compare` (flags: -vendors %d -pool %d -uncached=%t -fleet=%t -concurrency %s -requests-c1 %d -requests %d -rounds %d -warmup %d -verify %d), %s.\n",
		cfg.vendors, cfg.pool, cfg.uncached, cfg.fleet, joinInts(cfg.conc), cfg.requestsC1, cfg.requests, cfg.rounds, cfg.warmup, cfg.sample, runtime.Version())
	return b.String()
}

// writeBudget sets tollgate's share of the floor beside that of floors that only spend a fixed
// CPU time per request: on a machine whose CPUs the load generator shares, it shows what share
// of the floor any server spending that much CPU per answer gets.
func writeBudget(b *strings.Builder, cfg config, results map[string]map[int][]*loadgen.Result, cpu map[string]map[int][]cpuUse) {
	fmt.Fprintf(b, "\n### What CPU per request costs on this machine\n\n")
	fmt.Fprintf(b, "`floor+N` is the floor spending N of CPU per request in a loop that touches no memory (bench/cmd/floor -work, calibrated at its start) before the same constant answer. Its share of the floor is what any server that spends that CPU per answer gets here, whatever the work; tollgate's rows give its share and its own server CPU per request beside them (same-round pairs, median and range; server user CPU: median of the rounds).\n\n")
	fmt.Fprintf(b, "| server | concurrency | server user CPU per request | share of the floor's req/s |\n|---|---:|---:|---:|\n")
	names := []string{"tollgate", "tollgate-uncached"}
	for _, w := range cfg.workFloors {
		names = append(names, workFloorName(w))
	}
	for _, c := range cfg.conc {
		for _, name := range names {
			if _, ok := results[name]; !ok {
				continue
			}
			user := medianOf(cpu[name][c], func(u cpuUse) float64 { return us(u.serverUser) })
			fl := paired(results[name][c], results["floor"][c])
			fmt.Fprintf(b, "| %s | %d | %.1f µs | %.2f (%.2f–%.2f) |\n", name, c, user, fl.Median, fl.Min, fl.Max)
		}
	}
}

// workFloorName names the floor that spends w per request.
func workFloorName(w time.Duration) string { return "floor+" + w.String() }

// medianOf is the median over the rounds of one figure of their CPU use.
func medianOf(rounds []cpuUse, figure func(cpuUse) float64) float64 {
	v := make([]float64, len(rounds))
	for i, u := range rounds {
		v[i] = figure(u)
	}
	return report.Summarize(v).Median
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

func serverOrder(servers []*server) string {
	var names []string
	for _, s := range servers {
		names = append(names, s.name)
	}
	return strings.Join(names, " → ")
}

func joinInts(v []int) string {
	var s []string
	for _, n := range v {
		s = append(s, fmt.Sprint(n))
	}
	return strings.Join(s, ",")
}
