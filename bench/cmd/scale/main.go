// Command scale measures tollgate serve at growing vendor counts (default 10k, 100k, 1M), each
// population generated through the real store API (cache.Open + Store.Import in chunks):
//
//   - generation time (Import rate) and bbolt file size;
//   - cold start: from process start to the first 200 of /health/ready;
//   - resident memory per vendor: VmRSS after ready and a few thousand checks, minus the same
//     figure for an empty store, divided by the vendor count;
//   - decision latency over loopback HTTP at concurrency 1 (p50, p99), compared with the
//     smallest size;
//   - durable write rate: POST /v1/usage with idempotency keys (fsync'd group commits), since
//     `tollgate serve` does not wire the Stripe webhook receiver yet (the harness probes
//     POST /webhooks/stripe and reports what it answers).
//
// Run from the repository root: go run ./bench/cmd/scale
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
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
	writes      int
	writeConc   int
	startups    int
	out         string
	tollgateBin string
}

type row struct {
	vendors      int
	genTime      time.Duration
	fileSize     int64
	coldStart    []time.Duration
	loadSeconds  string
	rss          int64
	p50, p99     time.Duration
	checkRPS     float64
	writeRPS     float64
	writeP50     time.Duration
	webhookProbe string
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
	flag.IntVar(&cfg.checks, "checks", 10_000, "measured checks at concurrency 1")
	flag.IntVar(&cfg.writes, "writes", 3_000, "durable usage writes (POST /v1/usage with idempotency keys)")
	flag.IntVar(&cfg.writeConc, "write-concurrency", 16, "connections for the usage writes")
	flag.IntVar(&cfg.startups, "startups", 3, "cold starts per size (the median is reported)")
	flag.StringVar(&cfg.out, "out", "bench/results/scale.md", "markdown output file")
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
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg, log); err != nil {
		log.Error("scale failed", "error", err.Error())
		stop()
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
	loadBefore := report.LoadAvg()

	// Baseline: an empty store, the same checks (all unknown vendors then).
	base, err := measure(ctx, cfg, bin, work, 0, catalog, log)
	if err != nil {
		return fmt.Errorf("baseline: %w", err)
	}
	var rows []*row
	for _, n := range cfg.sizes {
		r, err := measure(ctx, cfg, bin, work, n, catalog, log)
		if err != nil {
			return fmt.Errorf("%d vendors: %w", n, err)
		}
		rows = append(rows, r)
		if !cfg.keep {
			_ = os.RemoveAll(filepath.Join(work, "data-"+strconv.Itoa(n)))
		}
	}
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

var loadSecondsRE = regexp.MustCompile(`msg="store opened".*load_seconds=([0-9.]+)`)

func measure(ctx context.Context, cfg config, bin, work string, n int, catalog *tollgate.Catalog, log *slog.Logger) (*row, error) {
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

	ref := max(n, 1)
	reqs, err := gen.Requests(cfg.seed, cfg.warm+cfg.checks, ref, catalog)
	if err != nil {
		return nil, err
	}
	for i := 0; i < cfg.startups; i++ {
		last := i == cfg.startups-1
		if err := serveOnce(ctx, cfg, bin, work, dataDir, n, reqs, r, last, log); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// serveOnce starts tollgate serve on the store, times it to ready and, on the last start,
// measures memory, check latency and durable writes.
func serveOnce(ctx context.Context, cfg config, bin, work, dataDir string, n int, reqs []gen.Request, r *row, full bool, log *slog.Logger) error {
	addrs := make([]string, 3)
	for i := range addrs {
		var err error
		if addrs[i], err = proc.FreeAddr(); err != nil {
			return err
		}
	}
	// Drop the store file from the page cache is not possible without privileges; the cold start
	// is from a warm page cache (the file was just written), as after a container restart.
	name := fmt.Sprintf("tollgate-%d-%d", n, len(r.coldStart))
	p, err := proc.Start(name, filepath.Join(work, "logs"), bin, []string{"serve", "--listen", addrs[0],
		"--webhook-listen", addrs[1], "--ops-listen", addrs[2], "--data-dir", dataDir,
		"--decision-cache-ttl", "0", "--log-level", "info"}, nil, log)
	if err != nil {
		return err
	}
	defer p.Stop(30 * time.Second)
	ready, err := p.WaitReady(ctx, "http://"+addrs[2]+"/health/ready", 5*time.Millisecond, 60*time.Second)
	if err != nil {
		return err
	}
	r.coldStart = append(r.coldStart, ready)
	log.Info("ready", "vendors", n, "cold_start_ms", ready.Milliseconds())
	if b, err := os.ReadFile(p.LogPath); err == nil {
		if m := loadSecondsRE.FindSubmatch(b); m != nil {
			r.loadSeconds = string(m[1])
		}
	}
	if !full {
		return nil
	}
	checks := loadgen.NewClient(loadgen.Target{Name: name, Addr: addrs[0], Path: "/v1/check",
		Body: func(i int) []byte { return reqs[i%len(reqs)].Tollgate }}, cfg.writeConc)
	defer checks.Close()
	if _, err := checks.Run(1, cfg.warm, cfg.checks, 0); err != nil {
		return fmt.Errorf("warmup: %w", err)
	}
	res, err := checks.Run(1, cfg.checks, 0, 0)
	if err != nil {
		return err
	}
	r.p50, r.p99, r.checkRPS = res.Quantile(0.5), res.Quantile(0.99), res.RPS()
	if r.rss, err = proc.RSSBytes(p.Pid()); err != nil {
		return err
	}
	log.Info("checks", "vendors", n, "p50_us", r.p50.Microseconds(), "rss_mib", r.rss>>20)

	// Webhook probe: an unsigned empty event. 503 means no receiver is wired.
	hook := loadgen.NewClient(loadgen.Target{Name: "webhook", Addr: addrs[1], Path: "/webhooks/stripe"}, 1)
	status, body, err := hook.Do([]byte(`{}`))
	hook.Close()
	if err != nil {
		return fmt.Errorf("webhook probe: %w", err)
	}
	var eb struct {
		Error struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	_ = json.Unmarshal(body, &eb)
	r.webhookProbe = fmt.Sprintf("%d %s", status, eb.Error.Message)

	if n == 0 || cfg.writes == 0 {
		return nil
	}
	prefix := "scale-" + strconv.FormatInt(time.Now().UnixNano(), 36) + "-"
	writes := loadgen.NewClient(loadgen.Target{Name: "usage", Addr: addrs[0], Path: "/v1/usage",
		Body: func(i int) []byte {
			return []byte(`{"vendor_id":"` + gen.VendorID((i*7919)%n) + `","metric":"orders","delta":1,"idempotency_key":"` +
				prefix + strconv.Itoa(i) + `"}`)
		}}, cfg.writeConc)
	defer writes.Close()
	wres, err := writes.Run(cfg.writeConc, cfg.writes, 0, 0)
	if err != nil {
		return fmt.Errorf("usage writes: %w", err)
	}
	r.writeRPS, r.writeP50 = wres.RPS(), wres.Quantile(0.5)
	log.Info("writes", "vendors", n, "rps", int(r.writeRPS))
	return nil
}
