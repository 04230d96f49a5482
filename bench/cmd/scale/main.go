// Command scale measures tollgate serve at growing vendor counts (default 10k, 100k, 1M), each
// population generated through the real store API (cache.Open + Store.Import in chunks):
//
//   - generation time (Import rate) and bbolt file size;
//   - cold start: from process start to the first 200 of /health/ready;
//   - resident memory per vendor: VmRSS after ready and a few thousand checks, minus the same
//     figure for an empty store, divided by the vendor count;
//   - decision latency: the server's own (from its decision log, store lookup to answer),
//     compared with the smallest size round by round, and the client's round trip over
//     loopback HTTP at concurrency 1 (p50, p99), shown beside it;
//   - durable write rate: POST /v1/usage with idempotency keys (fsync'd group commits);
//   - webhook ingest rate: signed Stripe customer.subscription.updated events (built from
//     Stripe's fixture objects, one distinct event id each, for existing generated vendors)
//     POSTed to /webhooks/stripe (served with a random --stripe-webhook-secret); only 2xx
//     answers count, each meaning the event is durably recorded, and any other answer fails
//     the run.
//
// Run from the repository root: go run ./bench/cmd/scale
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
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
	sizes       []int
	chunk       int
	seed        uint64
	warm        int
	checks      int
	rounds      int
	writes      int
	writeConc   int
	startups    int
	hooks       int
	hookConc    int
	fixtures    string
	secret      string
	out         string
	tollgateBin string
	// The container each server runs as if in: a memory limit of limitBase + limitPerVendor per
	// vendor, of which GOMEMLIMIT is the share tollgate derives from a cgroup limit (automemlimit,
	// 90%). The machine gives the harness no cgroup of its own, so it sets GOMEMLIMIT directly.
	limitBase, limitPerVendor int64
}

// memLimitShare is the share of the container's limit tollgate takes as GOMEMLIMIT
// (automemlimit's default, cmd/tollgate/gcpolicy.go).
const memLimitShare = 0.9

// goMemLimit is the GOMEMLIMIT a server of n vendors gets; 0 when the harness sets none.
func (c config) goMemLimit(n int) int64 {
	if c.limitPerVendor <= 0 {
		return 0
	}
	return int64(memLimitShare * float64(c.limitBase<<20+c.limitPerVendor*int64(n)))
}

type row struct {
	vendors     int
	genTime     time.Duration
	fileSize    int64
	coldStart   []time.Duration
	loadSeconds string
	rss         int64
	p50, p99    time.Duration
	writeRPS    float64
	writeP50    time.Duration
	hook        *ingestResult

	dataDir string
	reqs    []gen.Request
	proc    *proc.Process
	addrs   []string
	lat     []time.Duration
	rpsRuns []float64
	// roundP50 is each round's p50, in round order: the target compares sizes round by round.
	roundP50 []time.Duration
	// decisions are the server's own decision latencies of the measured checks (from its
	// decision log: store lookup to answer, no network), decP50 each round's p50.
	decisions []time.Duration
	decP50    []time.Duration
}

func (r *row) decisionLog() string { return filepath.Join(r.dataDir, "decisions.jsonl") }

// decisionLatencies reads the latency of every decision logged after offset.
func decisionLatencies(path string, offset int64) ([]time.Duration, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("decision log: %w", err)
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return nil, fmt.Errorf("decision log: %w", err)
	}
	var out []time.Duration
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		// The log's own entry type: a renamed field cannot silently read as zero here.
		var e tollgate.DecisionLogEntry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return nil, fmt.Errorf("decision log line: %w", err)
		}
		out = append(out, time.Duration(e.LatencySeconds*float64(time.Second)))
	}
	return out, sc.Err()
}

func main() {
	var cfg config
	var sizes string
	flag.StringVar(&cfg.repo, "repo", ".", "repository root")
	flag.StringVar(&cfg.work, "workdir", "", "scratch directory (default: a new temp dir, removed at the end)")
	flag.BoolVar(&cfg.keep, "keep", false, "keep the scratch directory")
	flag.StringVar(&sizes, "sizes", "10000,100000,1000000", "vendor counts; the first is the latency reference")
	flag.IntVar(&cfg.chunk, "chunk", 50_000, "records per Import transaction")
	flag.Uint64Var(&cfg.seed, "seed", 1, "generator seed")
	flag.IntVar(&cfg.warm, "warmup", 2_000, "unmeasured checks after ready")
	flag.IntVar(&cfg.checks, "checks", 5_000, "measured checks at concurrency 1 per round")
	flag.IntVar(&cfg.rounds, "rounds", 21, "latency rounds; each round measures every size in turn (single rounds move by tens of percent here, so the median needs many)")
	flag.IntVar(&cfg.writes, "writes", 3_000, "durable usage writes (POST /v1/usage with idempotency keys)")
	flag.IntVar(&cfg.writeConc, "write-concurrency", 16, "connections for the usage writes")
	flag.IntVar(&cfg.hooks, "webhooks", 3_000, "signed Stripe webhook events (distinct ids) POSTed to /webhooks/stripe per size")
	flag.IntVar(&cfg.hookConc, "webhook-concurrency", 16, "connections for the webhook events")
	flag.StringVar(&cfg.fixtures, "stripe-fixtures", "sync/testdata/stripe/fixtures3-api-latest.json", "Stripe's fixture file (relative to -repo) the events are built from")
	flag.IntVar(&cfg.startups, "startups", 3, "cold starts per size (the median is reported)")
	flag.StringVar(&cfg.out, "out", "bench/results/scale.md", "markdown output file")
	flag.Int64Var(&cfg.limitPerVendor, "container-bytes-per-vendor", 1024, "each server runs as in a container with this memory limit per vendor (plus -container-base-mib): GOMEMLIMIT is 90% of it, as tollgate sets it from a cgroup limit; 0: no limit, Go's default pacing")
	flag.Int64Var(&cfg.limitBase, "container-base-mib", 64, "the container's memory limit before the per-vendor share, in MiB")
	flag.StringVar(&cfg.tollgateBin, "tollgate", "", "tollgate binary (default: go build ./cmd/tollgate)")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	for _, s := range strings.Split(sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			log.Error("bad -sizes", "value", s)
			os.Exit(2)
		}
		cfg.sizes = append(cfg.sizes, n)
	}
	// A closed stdout (`| head`, `| grep -q`) must not kill the harness before it has stopped
	// the servers it started: ignored, SIGPIPE becomes a write error instead.
	signal.Ignore(syscall.SIGPIPE)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, cfg, log)
	stop()
	if err != nil {
		log.Error("scale failed", "error", err.Error())
		os.Exit(1)
	}
}

func run(ctx context.Context, cfg config, log *slog.Logger) error {
	repo, err := filepath.Abs(cfg.repo)
	if err != nil {
		return fmt.Errorf("repo: %w", err)
	}
	work := cfg.work
	if work == "" {
		if work, err = os.MkdirTemp("", "tollgate-scale-"); err != nil {
			return fmt.Errorf("workdir: %w", err)
		}
		if !cfg.keep {
			defer os.RemoveAll(work)
		}
	}
	if err := os.MkdirAll(filepath.Join(work, "logs"), 0o755); err != nil {
		return fmt.Errorf("workdir: %w", err)
	}
	bin := cfg.tollgateBin
	if bin == "" {
		bin = filepath.Join(work, "tollgate")
		if err := proc.GoBuild(ctx, repo, bin, "./cmd/tollgate", log); err != nil {
			return err
		}
	}
	catalog := tollgate.DefaultCatalog()
	fixtures := cfg.fixtures
	if !filepath.IsAbs(fixtures) {
		fixtures = filepath.Join(repo, fixtures)
	}
	fx, err := loadStripeFixtures(fixtures)
	if err != nil {
		return err
	}
	if cfg.secret, err = newWebhookSecret(); err != nil {
		return err
	}
	loadBefore := report.LoadAvg()

	// Phase 1, one size after the other (the others not yet running): generate, then cold
	// starts; the last start keeps running. Size 0 is the empty-store baseline.
	var all []*row
	defer func() {
		for _, r := range all {
			r.proc.Stop(30 * time.Second)
		}
	}()
	for _, n := range append([]int{0}, cfg.sizes...) {
		r, err := prepare(ctx, cfg, bin, work, n, catalog, log)
		if r != nil {
			all = append(all, r)
		}
		if err != nil {
			return fmt.Errorf("%d vendors: %w", n, err)
		}
	}
	// Phase 2: latency, alternating sizes within each round, so that load from elsewhere on the
	// machine falls on all sizes alike.
	for round := 1; round <= cfg.rounds; round++ {
		for _, r := range all {
			if err := checkRound(ctx, cfg, r, log); err != nil {
				return err
			}
		}
	}
	// Phase 3: memory after the checks, then the durable writes (they change the stores).
	for _, r := range all {
		if err := finish(ctx, cfg, fx, r, log); err != nil {
			return err
		}
	}
	base, rows := all[0], all[1:]
	md := table(cfg, base, rows, loadBefore, report.LoadAvg())
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

var loadSecondsRE = regexp.MustCompile(`"msg":"store opened".*"load_seconds":([0-9.eE+-]+)`)

func prepare(ctx context.Context, cfg config, bin, work string, n int, catalog *tollgate.Catalog, log *slog.Logger) (*row, error) {
	r := &row{vendors: n}
	dataDir := filepath.Join(work, "data-"+strconv.Itoa(n))
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	dbPath := filepath.Join(dataDir, "tollgate.db")
	now := time.Now()
	start := time.Now()
	st, err := cache.Open(ctx, cache.Options{Path: dbPath, Now: func() time.Time { return now }})
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	if err := gen.Populate(ctx, st, gen.Mix{Seed: cfg.seed}, n, cfg.chunk, now); err != nil {
		st.Close()
		return nil, err
	}
	if got := st.VendorCount(); got != n {
		st.Close()
		return nil, fmt.Errorf("store holds %d vendors, want %d", got, n)
	}
	if err := st.Close(); err != nil {
		return nil, fmt.Errorf("close store: %w", err)
	}
	r.genTime = time.Since(start)
	fi, err := os.Stat(dbPath)
	if err != nil {
		return nil, fmt.Errorf("store size: %w", err)
	}
	r.fileSize = fi.Size()
	log.Info("generated", "vendors", n, "seconds", r.genTime.Seconds(), "file_bytes", r.fileSize)

	r.dataDir = dataDir
	if r.reqs, err = gen.Requests(cfg.seed, cfg.warm+cfg.checks, max(n, 1), catalog); err != nil {
		return nil, err
	}
	for i := 0; i < cfg.startups; i++ {
		if err := startServe(ctx, bin, work, cfg.secret, cfg.goMemLimit(n), r, log); err != nil {
			return r, err
		}
		if i < cfg.startups-1 {
			r.proc.Stop(30 * time.Second)
		}
	}
	return r, nil
}

// startServe starts tollgate serve on r's store and times it to ready.
// memLimit, when not 0, is its GOMEMLIMIT.
func startServe(ctx context.Context, bin, work, secret string, memLimit int64, r *row, log *slog.Logger) error {
	r.addrs = make([]string, 3)
	for i := range r.addrs {
		var err error
		if r.addrs[i], err = proc.FreeAddr(); err != nil {
			return err
		}
	}
	// The page cache holds the store file (it was just written), as after a container restart
	// on the same node; dropping it needs privileges the harness does not ask for.
	name := fmt.Sprintf("tollgate-%d-%d", r.vendors, len(r.coldStart))
	var env []string
	if memLimit > 0 {
		env = []string{fmt.Sprintf("GOMEMLIMIT=%d", memLimit)}
	}
	p, err := proc.Start(name, filepath.Join(work, "logs"), bin, []string{"serve", "--listen", r.addrs[0],
		"--webhook-listen", r.addrs[1], "--ops-listen", r.addrs[2], "--data-dir", r.dataDir,
		"--decision-cache-ttl", "0", "--stripe-webhook-secret", secret, "--log-level", "info",
		"--decision-log", r.decisionLog()}, env, log)
	if err != nil {
		return err
	}
	r.proc = p
	ready, err := p.WaitReady(ctx, "http://"+r.addrs[2]+"/health/ready", 5*time.Millisecond, 60*time.Second)
	if err != nil {
		return err
	}
	r.coldStart = append(r.coldStart, ready)
	if b, err := os.ReadFile(p.LogPath); err == nil {
		if m := loadSecondsRE.FindSubmatch(b); m != nil {
			r.loadSeconds = string(m[1])
		}
	}
	log.Info("ready", "vendors", r.vendors, "cold_start_ms", ready.Milliseconds(), "store_load_seconds", r.loadSeconds)
	return nil
}

// checkRound runs the warmup and one measured run of checks at concurrency 1.
func checkRound(ctx context.Context, cfg config, r *row, log *slog.Logger) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("interrupted: %w", err)
	}
	reqs := r.reqs
	c := loadgen.NewClient(loadgen.Target{Name: r.proc.Name, Addr: r.addrs[0], Path: "/v1/check",
		Body: func(i int) []byte { return reqs[i%len(reqs)].Tollgate }}, 1)
	defer c.Close()
	if _, err := c.Run(1, cfg.warm, cfg.checks, 0); err != nil {
		return fmt.Errorf("warmup: %w", err)
	}
	time.Sleep(100 * time.Millisecond) // the log writes when idle
	fi, err := os.Stat(r.decisionLog())
	if err != nil {
		return fmt.Errorf("decision log: %w", err)
	}
	res, err := c.Run(1, cfg.checks, 0, 0)
	if err != nil {
		return err
	}
	time.Sleep(100 * time.Millisecond)
	dec, err := decisionLatencies(r.decisionLog(), fi.Size())
	if err != nil {
		return err
	}
	if len(dec) < cfg.checks*9/10 {
		return fmt.Errorf("%d vendors: the decision log holds %d of %d measured checks", r.vendors, len(dec), cfg.checks)
	}
	slices.Sort(dec)
	r.decisions = append(r.decisions, dec...)
	r.decP50 = append(r.decP50, loadgen.Quantile(dec, 0.5))
	r.lat = append(r.lat, res.Latencies...)
	r.rpsRuns = append(r.rpsRuns, res.RPS())
	r.roundP50 = append(r.roundP50, res.Quantile(0.5))
	log.Info("checks", "vendors", r.vendors, "p50_us", res.Quantile(0.5).Microseconds(), "rps", int(res.RPS()),
		"decision_p50_us", float64(r.decP50[len(r.decP50)-1].Nanoseconds())/1e3)
	return nil
}

// finish reads the resident memory, then measures durable usage writes and webhook ingest.
func finish(ctx context.Context, cfg config, fx *stripeFixtures, r *row, log *slog.Logger) error {
	slices.Sort(r.lat)
	r.p50, r.p99 = loadgen.Quantile(r.lat, 0.5), loadgen.Quantile(r.lat, 0.99)
	var err error
	if r.rss, err = proc.RSSBytes(r.proc.Pid()); err != nil {
		return err
	}
	log.Info("memory", "vendors", r.vendors, "rss_mib", r.rss>>20)

	n := r.vendors
	if n == 0 {
		return nil
	}
	if cfg.writes > 0 {
		prefix := "scale-" + strconv.FormatInt(time.Now().UnixNano(), 36) + "-"
		writes := loadgen.NewClient(loadgen.Target{Name: "usage", Addr: r.addrs[0], Path: "/v1/usage",
			Body: func(i int) []byte {
				return []byte(`{"vendor_id":"` + gen.VendorID((i*7919)%n) + `","metric":"orders","delta":1,"idempotency_key":"` +
					prefix + strconv.Itoa(i) + `"}`)
			}}, cfg.writeConc)
		wres, err := writes.Run(cfg.writeConc, cfg.writes, 0, 0)
		writes.Close()
		if err != nil {
			return fmt.Errorf("usage writes: %w", err)
		}
		r.writeRPS, r.writeP50 = wres.RPS(), wres.Quantile(0.5)
		log.Info("writes", "vendors", n, "rps", int(r.writeRPS))
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	if cfg.hooks == 0 {
		return nil
	}
	if r.hook, err = ingestWebhooks(fx, r.addrs[1], cfg.secret, n, cfg.hooks, cfg.hookConc, cfg.seed); err != nil {
		return fmt.Errorf("%d vendors: %w", n, err)
	}
	log.Info("webhooks", "vendors", n, "events_per_s", int(r.hook.rate()), "p50_us", loadgen.Quantile(r.hook.latencies, 0.5).Microseconds(),
		"outcomes", outcomeStr(r.hook.outcomes))
	return ctx.Err()
}
