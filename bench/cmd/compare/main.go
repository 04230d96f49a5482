// Command compare measures tollgate against `opa run --server` with the same policy and data,
// and against a constant-answer fiber handler (the floor), in one run on this machine:
//
//  1. generates N vendors into a tollgate store through cache.Store.Import and, from the same
//     store state, the OPA data document (data.catalog + data.vendors) and a thin entry point
//     (package bench.entry) over the same default policy files (policy/rego, no tests);
//  2. builds and starts opa, tollgate serve (decision cache on, as shipped; for reference, with
//     --decision-cache-ttl 0; and in fleet mode, against a JetStream server of its own) and the
//     floor, each its own process on loopback;
//  3. verifies that OPA and tollgate answer identical decisions on a sample of the mix;
//  4. drives every server with the same request mix at each concurrency, alternating servers
//     within each round, and prints one markdown table (also written to -out).
//
// Run from the repository root: go run ./bench/cmd/compare
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tollgate-pdp/tollgate"
	"github.com/tollgate-pdp/tollgate/bench/internal/gen"
	"github.com/tollgate-pdp/tollgate/bench/internal/proc"
	"github.com/tollgate-pdp/tollgate/bench/internal/report"
	"github.com/tollgate-pdp/tollgate/bench/loadgen"
	"github.com/tollgate-pdp/tollgate/cache"
)

type config struct {
	repo        string
	work        string
	keep        bool
	vendors     int
	pool        int
	seed        uint64
	conc        []int
	requestsC1  int
	requests    int
	warmup      int
	rounds      int
	sample      int
	uncached    bool
	fleet       bool
	out         string
	opaBin      string
	tollgateBin string
	workFloors  []time.Duration
}

func main() {
	var cfg config
	var conc, work string
	flag.StringVar(&cfg.repo, "repo", ".", "repository root (policy/rego, cmd/tollgate)")
	flag.StringVar(&cfg.work, "workdir", "", "scratch directory (default: a new temp dir, removed at the end)")
	flag.BoolVar(&cfg.keep, "keep", false, "keep the scratch directory")
	flag.IntVar(&cfg.vendors, "vendors", 10_000, "vendors to generate")
	flag.IntVar(&cfg.pool, "pool", 50_000, "distinct requests in the mix (cycled)")
	flag.Uint64Var(&cfg.seed, "seed", 1, "generator seed")
	flag.StringVar(&conc, "concurrency", "1,4,16", "comma-separated connection counts")
	flag.IntVar(&cfg.requestsC1, "requests-c1", 20_000, "requests per measured run at concurrency 1")
	flag.IntVar(&cfg.requests, "requests", 50_000, "requests per measured run at concurrency > 1")
	flag.IntVar(&cfg.warmup, "warmup", 3_000, "unmeasured requests before each measured run")
	flag.IntVar(&cfg.rounds, "rounds", 5, "rounds; each round runs every server at every concurrency")
	flag.IntVar(&cfg.sample, "verify", 500, "requests whose decisions must be identical on OPA and tollgate")
	flag.BoolVar(&cfg.uncached, "uncached", true, "also run tollgate with --decision-cache-ttl 0")
	flag.BoolVar(&cfg.fleet, "fleet", true, "also run tollgate in fleet mode (--nats-url), with a JetStream server in its own process")
	flag.StringVar(&cfg.out, "out", "bench/results/compare.md", "markdown output file")
	flag.StringVar(&cfg.opaBin, "opa", "", "opa binary (default: go build github.com/open-policy-agent/opa)")
	flag.StringVar(&cfg.tollgateBin, "tollgate", "", "tollgate binary (default: go build ./cmd/tollgate)")
	flag.StringVar(&work, "work-floors", "5us,10us", "comma-separated CPU times: for each, a floor that spends it per request before answering (\"\" for none)")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	for _, s := range strings.Split(work, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			log.Error("bad -work-floors", "value", s)
			os.Exit(2)
		}
		cfg.workFloors = append(cfg.workFloors, d)
	}
	for _, s := range strings.Split(conc, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			log.Error("bad -concurrency", "value", s)
			os.Exit(2)
		}
		cfg.conc = append(cfg.conc, n)
	}
	// A closed stdout (`| head`, `| grep -q`) must not kill the harness before it has stopped
	// the servers it started: ignored, SIGPIPE becomes a write error instead.
	signal.Ignore(syscall.SIGPIPE)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, cfg, log)
	stop()
	if err != nil {
		log.Error("compare failed", "error", err.Error())
		os.Exit(1)
	}
}

type server struct {
	ops    string // tollgate's ops listener, for the decision cache counters
	name   string
	target loadgen.Target
	proc   *proc.Process
	client *loadgen.Client
}

func run(ctx context.Context, cfg config, log *slog.Logger) (err error) {
	repo, err := filepath.Abs(cfg.repo)
	if err != nil {
		return fmt.Errorf("repo: %w", err)
	}
	if _, err := os.Stat(filepath.Join(repo, "policy", "rego")); err != nil {
		return fmt.Errorf("-repo %s is not the tollgate repository root: %w", repo, err)
	}
	work := cfg.work
	if work == "" {
		if work, err = os.MkdirTemp("", "tollgate-compare-"); err != nil {
			return fmt.Errorf("workdir: %w", err)
		}
		if !cfg.keep {
			defer os.RemoveAll(work)
		}
	}
	for _, d := range []string{"bin", "data", "opa", "logs"} {
		if err := os.MkdirAll(filepath.Join(work, d), 0o755); err != nil {
			return fmt.Errorf("workdir: %w", err)
		}
	}
	bins, err := buildBinaries(ctx, cfg, repo, work, log)
	if err != nil {
		return err
	}

	// 1. vendors into the store, and the OPA data document from the same state.
	catalog := tollgate.DefaultCatalog()
	now := time.Now()
	dbPath := filepath.Join(work, "data", "tollgate.db")
	if err := populate(ctx, dbPath, filepath.Join(work, "opa", "data.json"), cfg, catalog, now, log); err != nil {
		return err
	}
	// The reference (uncached) server needs its own copy: bbolt locks the file.
	dbPath2 := filepath.Join(work, "data2", "tollgate.db")
	if cfg.uncached {
		if err := copyFile(dbPath, dbPath2); err != nil {
			return err
		}
	}
	dbPathFleet := filepath.Join(work, "data-fleet", "tollgate.db")
	if cfg.fleet {
		if err := copyFile(dbPath, dbPathFleet); err != nil {
			return err
		}
	}
	policyFiles, err := writePolicy(repo, filepath.Join(work, "opa"))
	if err != nil {
		return err
	}
	reqs, err := gen.Requests(cfg.seed, cfg.pool, cfg.vendors, catalog)
	if err != nil {
		return err
	}

	// 2. servers.
	var servers []*server
	var nats *proc.Process // stopped after the servers, of which one is its client
	defer func() {
		for _, s := range servers {
			if s.client != nil {
				s.client.Close()
			}
			s.proc.Stop(10 * time.Second)
		}
		if nats != nil {
			nats.Stop(10 * time.Second)
		}
	}()
	logs := filepath.Join(work, "logs")
	opaAddr, err := proc.FreeAddr()
	if err != nil {
		return err
	}
	opaArgs := append([]string{"run", "--server", "--addr", opaAddr, "--log-level", "error",
		"--skip-version-check", filepath.Join(work, "opa", "data.json")}, policyFiles...)
	p, err := proc.Start("opa", logs, bins.opa, opaArgs, nil, log)
	if err != nil {
		return err
	}
	servers = append(servers, &server{name: "opa", proc: p, target: loadgen.Target{Name: "opa", Addr: opaAddr,
		Path: gen.EntryPath, Body: func(i int) []byte { return reqs[i%len(reqs)].OPA }}})
	if _, err := p.WaitReady(ctx, "http://"+opaAddr+"/health", 20*time.Millisecond, 60*time.Second); err != nil {
		return err
	}

	startTollgate := func(name, dataDir string, extra ...string) error {
		addrs := make([]string, 3)
		for i := range addrs {
			if addrs[i], err = proc.FreeAddr(); err != nil {
				return err
			}
		}
		args := append([]string{"serve", "--listen", addrs[0], "--webhook-listen", addrs[1],
			"--ops-listen", addrs[2], "--data-dir", dataDir, "--log-level", "warn"}, extra...)
		p, err := proc.Start(name, logs, bins.tollgate, args, nil, log)
		if err != nil {
			return err
		}
		servers = append(servers, &server{name: name, ops: addrs[2], proc: p, target: loadgen.Target{Name: name, Addr: addrs[0],
			Path: "/v1/check", Body: func(i int) []byte { return reqs[i%len(reqs)].Tollgate }}})
		_, err = p.WaitReady(ctx, "http://"+addrs[2]+"/health/ready", 20*time.Millisecond, 60*time.Second)
		return err
	}
	if err := startTollgate("tollgate", filepath.Dir(dbPath)); err != nil {
		return err
	}
	if cfg.uncached {
		if err := startTollgate("tollgate-uncached", filepath.Dir(dbPath2), "--decision-cache-ttl", "0"); err != nil {
			return err
		}
	}
	if cfg.fleet {
		var url string
		if nats, url, err = startNATS(work, bins.natsDev, log); err != nil {
			return err
		}
		// The first sidecar of an empty fleet keeps its store's state and seeds the fleet with it.
		if err := startTollgate(fleetName, filepath.Dir(dbPathFleet), "--nats-url", url, "--fleet", "bench", "--fleet-replicas", "1"); err != nil {
			return err
		}
	}
	startFloor := func(name string, work time.Duration) error {
		addr, err := proc.FreeAddr()
		if err != nil {
			return err
		}
		p, err := proc.Start(name, logs, bins.floor, []string{"-listen", addr, "-work", work.String()}, nil, log)
		if err != nil {
			return err
		}
		servers = append(servers, &server{name: name, proc: p, target: loadgen.Target{Name: name, Addr: addr,
			Path: "/v1/check", Body: func(i int) []byte { return reqs[i%len(reqs)].Tollgate }}})
		_, err = p.WaitReady(ctx, "http://"+addr+"/health", 20*time.Millisecond, 30*time.Second)
		return err
	}
	if err := startFloor("floor", 0); err != nil {
		return err
	}
	for _, w := range cfg.workFloors {
		if err := startFloor(workFloorName(w), w); err != nil {
			return err
		}
	}
	maxConc := slices.Max(cfg.conc)
	for _, s := range servers {
		s.client = loadgen.NewClient(s.target, maxConc)
	}

	// 3. identical decisions before any timing.
	mix, err := verify(servers, reqs, cfg.sample, log)
	if err != nil {
		return err
	}

	// 4. alternating runs.
	loadBefore := report.LoadAvg()
	results := map[string]map[int][]*loadgen.Result{}
	cpu := map[string]map[int][]cpuUse{}
	for _, s := range servers {
		results[s.name] = map[int][]*loadgen.Result{}
		cpu[s.name] = map[int][]cpuUse{}
	}
	for round := 1; round <= cfg.rounds; round++ {
		for _, c := range cfg.conc {
			n := cfg.requests
			if c == 1 {
				n = cfg.requestsC1
			}
			for _, s := range servers {
				if err := ctx.Err(); err != nil {
					return fmt.Errorf("interrupted: %w", err)
				}
				if _, err := s.client.Run(c, cfg.warmup, n, 0); err != nil {
					return fmt.Errorf("warmup: %w", err)
				}
				before, err := readCPU(s.proc.Pid())
				if err != nil {
					return err
				}
				res, err := s.client.Run(c, n, 0, 0)
				if err != nil {
					return fmt.Errorf("round %d: %w", round, err)
				}
				after, err := readCPU(s.proc.Pid())
				if err != nil {
					return err
				}
				results[s.name][c] = append(results[s.name][c], res)
				cpu[s.name][c] = append(cpu[s.name][c], after.minus(before, res.Requests))
				log.Info("run", "round", round, "server", s.name, "c", c, "requests", res.Requests,
					"rps", int(res.RPS()), "p50_us", res.Quantile(0.5).Microseconds(), "p99_us", res.Quantile(0.99).Microseconds())
			}
		}
	}
	cacheStats := map[string]string{}
	for _, s := range servers {
		if s.ops != "" {
			cacheStats[s.name] = scrapeCache(ctx, s.ops)
		}
	}
	md := table(cfg, servers, results, cpu, mix, loadBefore, report.LoadAvg(), cacheStats)
	fmt.Print(md)
	if cfg.out != "" {
		out := cfg.out
		if !filepath.IsAbs(out) {
			out = filepath.Join(repo, out)
		}
		if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
			return fmt.Errorf("write %s: %w", out, err)
		}
		if err := os.WriteFile(out, []byte(md), 0o644); err != nil {
			return fmt.Errorf("write %s: %w", out, err)
		}
		log.Info("wrote", "file", out)
	}
	return nil
}

type binaries struct{ opa, tollgate, floor, natsDev string }

func buildBinaries(ctx context.Context, cfg config, repo, work string, log *slog.Logger) (binaries, error) {
	b := binaries{opa: cfg.opaBin, tollgate: cfg.tollgateBin, floor: filepath.Join(work, "bin", "floor")}
	if b.opa == "" {
		b.opa = filepath.Join(work, "bin", "opa")
		if err := proc.GoBuild(ctx, repo, b.opa, "github.com/open-policy-agent/opa", log); err != nil {
			return b, err
		}
	}
	if b.tollgate == "" {
		b.tollgate = filepath.Join(work, "bin", "tollgate")
		if err := proc.GoBuild(ctx, repo, b.tollgate, "./cmd/tollgate", log); err != nil {
			return b, err
		}
	}
	if err := proc.GoBuild(ctx, repo, b.floor, "./bench/cmd/floor", log); err != nil {
		return b, err
	}
	if cfg.fleet {
		b.natsDev = filepath.Join(work, "bin", "tollgate-fleetdemo")
		if err := proc.GoBuild(ctx, repo, b.natsDev, "./cmd/tollgate-fleetdemo", log); err != nil {
			return b, err
		}
	}
	return b, nil
}

func populate(ctx context.Context, dbPath, dataPath string, cfg config, c *tollgate.Catalog, now time.Time, log *slog.Logger) error {
	start := time.Now()
	st, err := cache.Open(ctx, cache.Options{Path: dbPath, Now: func() time.Time { return now }})
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	defer st.Close()
	if err := gen.Populate(ctx, st, gen.Mix{Seed: cfg.seed}, cfg.vendors, 50_000, now); err != nil {
		return err
	}
	f, err := os.Create(dataPath)
	if err != nil {
		return fmt.Errorf("OPA data: %w", err)
	}
	n, err := gen.WriteOPAData(f, st, c, now)
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("OPA data: %w", cerr)
	}
	if err != nil {
		return err
	}
	if n != cfg.vendors {
		return fmt.Errorf("store holds %d vendors after import, want %d", n, cfg.vendors)
	}
	if err := st.Close(); err != nil {
		return fmt.Errorf("close store: %w", err)
	}
	log.Info("generated", "vendors", n, "seconds", time.Since(start).Seconds())
	return nil
}

// writePolicy copies the default policy (policy/rego/*.rego without tests, as the engine
// compiles it) and the entry point into dir, and returns their paths.
func writePolicy(repo, dir string) ([]string, error) {
	matches, err := filepath.Glob(filepath.Join(repo, "policy", "rego", "*.rego"))
	if err != nil {
		return nil, fmt.Errorf("policy files: %w", err)
	}
	var out []string
	for _, m := range matches {
		if strings.HasSuffix(m, "_test.rego") {
			continue
		}
		dst := filepath.Join(dir, filepath.Base(m))
		if err := copyFile(m, dst); err != nil {
			return nil, err
		}
		out = append(out, dst)
	}
	if len(out) == 0 {
		return nil, errors.New("no policy files in policy/rego")
	}
	entry := filepath.Join(dir, "bench_entry.rego")
	if err := os.WriteFile(entry, []byte(gen.EntryRego), 0o644); err != nil {
		return nil, fmt.Errorf("entry point: %w", err)
	}
	return append(out, entry), nil
}

func copyFile(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	return nil
}

// decision is the policy's answer as both servers give it: tollgate's own fields (decision id,
// staleness, replay, explain) are cleared before comparing.
type decision tollgate.Decision

func (d decision) String() string {
	d.DecisionID, d.Stale, d.StaleMode, d.Replayed, d.Explain = "", false, "", false, nil
	b, _ := json.Marshal(d)
	return string(b)
}

// verify sends the first n requests of the mix to every decision server and fails unless OPA
// and each tollgate answer the same decision. It returns the counts by kind and code.
func verify(servers []*server, reqs []gen.Request, n int, log *slog.Logger) (map[string]int, error) {
	mix := map[string]int{}
	var mismatches []string
	for i := 0; i < n && i < len(reqs); i++ {
		var want decision
		for _, s := range servers {
			if strings.HasPrefix(s.name, "floor") {
				continue
			}
			status, body, err := s.client.Do(s.target.Body(i))
			if err != nil {
				return nil, fmt.Errorf("verify request %d: %w", i, err)
			}
			if status != 200 {
				return nil, fmt.Errorf("verify request %d: %s answered %d: %.300s", i, s.name, status, body)
			}
			var got decision
			if s.name == "opa" {
				var env struct {
					Result *decision `json:"result"`
				}
				if err := json.Unmarshal(body, &env); err != nil || env.Result == nil {
					return nil, fmt.Errorf("verify request %d: opa answered %.300s (%v)", i, body, err) //nolint:errorlint // err may be nil here
				}
				got = *env.Result
				want = got
				mix[reqs[i].Kind()+" → "+got.Code]++
				continue
			}
			if err := json.Unmarshal(body, &got); err != nil {
				return nil, fmt.Errorf("verify request %d: %s answered %.300s: %w", i, s.name, body, err)
			}
			if got.String() != want.String() {
				mismatches = append(mismatches, fmt.Sprintf("request %d %s\n  opa:      %s\n  %-9s %s",
					i, reqs[i].Tollgate, want, s.name+":", got))
			}
		}
	}
	if len(mismatches) > 0 {
		return nil, fmt.Errorf("DECISIONS DIFFER on %d of %d sampled requests; first ones:\n%s", len(mismatches), n,
			strings.Join(mismatches[:min(5, len(mismatches))], "\n"))
	}
	log.Info("verified identical decisions", "requests", n, "mix", mix)
	return mix, nil
}

// scrapeCache reads tollgate's decision cache counters from its ops listener ("" if unknown).
func scrapeCache(ctx context.Context, ops string) string {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+ops+"/metrics", nil)
	if err != nil {
		return ""
	}
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return ""
	}
	var hits, misses float64
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) != 2 {
			continue
		}
		v, err := strconv.ParseFloat(f[1], 64)
		if err != nil {
			continue
		}
		switch f[0] {
		case "tollgate_decision_cache_hits_total":
			hits = v
		case "tollgate_decision_cache_misses_total":
			misses = v
		}
	}
	if hits+misses == 0 {
		return ""
	}
	return fmt.Sprintf("%.0f hits / %.0f misses (%.1f%% hits)", hits, misses, 100*hits/(hits+misses))
}
