package main

import (
	"bufio"
	"context"
	"fmt"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tollgate-pdp/tollgate"
)

// soakSample is one row of the soak table.
type soakSample struct {
	at         time.Duration
	requests   int
	errors     int
	rssMiB     float64
	anonMiB    float64 // RssAnon: the process's own memory
	fileMiB    float64 // RssFile: mapped files, mostly bbolt's mmap of the growing store
	goroutines int
	heapMiB    float64
	p50, p99   time.Duration
	storeMiB   float64
}

// TestSoak runs mixed load (80% checks, 10% usage increments, 10% signed webhooks) at a steady
// rate against a child `tollgate serve` for TOLLGATE_SOAK (default 10s, the short form in make
// test; make soak: 10m), sampling resident memory (/proc), goroutines (go_goroutines on
// /metrics) and client-side p50/p99 latency each minute (or each fifth of a short run). It
// prints the table and writes it to TOLLGATE_SOAK_OUT when set. Memory and goroutines must be
// flat at the end: the last sample within 1.5x (+16 MiB) and +50 goroutines of the second.
func TestSoak(t *testing.T) {
	dur := 10 * time.Second
	if v := os.Getenv("TOLLGATE_SOAK"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("TOLLGATE_SOAK: %v", err)
		}
		dur = d
	}
	rate := envInt("TOLLGATE_SOAK_RATE", 400) // requests per second
	every := time.Minute
	if dur < 5*time.Minute {
		every = dur / 5
	}
	dataDir := t.TempDir()
	c := startServe(t, dataDir, "--stripe-webhook-secret", testWebhookSecret)
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	ctx := context.Background()
	start := time.Now().UTC().Add(-time.Hour)
	end := start.Add(365 * 24 * time.Hour)
	const vendors = 200
	for i := 0; i < vendors; i++ {
		v := fmt.Sprintf("soak-%d", i)
		sub := tollgate.Subscription{VendorID: v, Tier: []string{"essential", "professional", "business", "enterprise"}[i%4],
			Status: tollgate.StatusActive, PeriodStart: &start, PeriodEnd: &end}
		if code, err := do(ctx, client, http.MethodPut, "http://"+c.api+"/v1/vendors/"+v, sub, nil); err != nil || code != 200 {
			t.Fatalf("seed: %d %v", code, err)
		}
	}
	tpl := newEventTemplate(t, "business")
	only := os.Getenv("TOLLGATE_SOAK_ONLY") // usage, webhook or check: one kind of load (diagnosis)

	var mu sync.Mutex
	var lat []time.Duration
	var reqs, errs atomic.Int64
	work := make(chan int, 1024)
	var wg sync.WaitGroup
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range work {
				v := fmt.Sprintf("soak-%d", n%vendors)
				began := time.Now()
				ok := false
				kind := n % 10
				switch only {
				case "usage":
					kind = 0
				case "webhook":
					kind = 5
				case "check":
					kind = 1
				}
				switch kind {
				case 0: // usage increment
					body := map[string]any{"vendor_id": v, "metric": "orders", "delta": 1, "idempotency_key": "u" + strconv.Itoa(n)}
					code, err := do(ctx, client, http.MethodPost, "http://"+c.api+"/v1/usage", body, nil)
					ok = err == nil && code == 200
				case 5: // signed webhook: a subscription of its own vendor, created then updated
					code := signedPost(client, c.webhook, tpl.event(fmt.Sprintf("evt_soak_%d", n), fmt.Sprintf("soakwh-%d", n%500)), testWebhookSecret)
					ok = code == 200
				default: // checks of every kind
					var body map[string]any
					switch n % 4 {
					case 0:
						body = map[string]any{"vendor_id": v, "action": "feature.use", "feature": "api_access"}
					case 1:
						body = map[string]any{"vendor_id": v, "action": "order.create", "quantity": 1}
					case 2:
						body = map[string]any{"vendor_id": v, "action": "product.add", "count": n % 300}
					default:
						body = map[string]any{"vendor_id": v, "action": "team_member.add", "count": n % 12}
					}
					code, err := do(ctx, client, http.MethodPost, "http://"+c.api+"/v1/check", body, nil)
					ok = err == nil && code == 200
				}
				d := time.Since(began)
				reqs.Add(1)
				if !ok {
					errs.Add(1)
				}
				mu.Lock()
				lat = append(lat, d)
				mu.Unlock()
			}
		}()
	}

	var samples []soakSample
	sample := func(at time.Duration) {
		mu.Lock()
		l := lat
		lat = nil
		mu.Unlock()
		slices.Sort(l)
		s := soakSample{at: at, requests: int(reqs.Swap(0)), errors: int(errs.Swap(0)),
			rssMiB: procStatusMiB(c.cmd.Process.Pid, "VmRSS:"), anonMiB: procStatusMiB(c.cmd.Process.Pid, "RssAnon:"),
			fileMiB: procStatusMiB(c.cmd.Process.Pid, "RssFile:"), goroutines: int(scrapeGauge(t, c.ops, "go_goroutines")),
			heapMiB: scrapeGauge(t, c.ops, "go_memstats_heap_inuse_bytes") / (1 << 20)}
		if len(l) > 0 {
			s.p50 = l[len(l)/2]
			s.p99 = l[int(math.Ceil(float64(len(l))*0.99))-1]
		}
		if fi, err := os.Stat(filepath.Join(dataDir, "tollgate.db")); err == nil {
			s.storeMiB = float64(fi.Size()) / (1 << 20)
		}
		samples = append(samples, s)
		t.Logf("%6s  %6d req  %3d err  rss %6.1f MiB (anon %6.1f, file %6.1f)  heap %6.1f MiB  goroutines %4d  p50 %8s  p99 %8s  store %5.1f MiB",
			at.Round(time.Second), s.requests, s.errors, s.rssMiB, s.anonMiB, s.fileMiB, s.heapMiB, s.goroutines, s.p50.Round(time.Microsecond), s.p99.Round(time.Microsecond), s.storeMiB)
	}
	began := time.Now()
	tick := time.NewTicker(time.Second / time.Duration(rate))
	next := began.Add(every)
	n := 0
	for time.Since(began) < dur {
		<-tick.C
		select {
		case work <- n:
		default: // the workers are behind: a steady rate means dropping, not queueing
			errs.Add(1)
		}
		n++
		if time.Now().After(next) {
			sample(time.Since(began))
			next = next.Add(every)
		}
	}
	tick.Stop()
	close(work)
	wg.Wait()
	if len(samples) < 5 {
		sample(time.Since(began))
	}

	var b strings.Builder
	fmt.Fprintf(&b, "# Soak: %v of mixed load at %d req/s\n\n", dur, rate)
	fmt.Fprintf(&b, "`make soak` (cmd/tollgate TestSoak): a child `tollgate serve` on loopback, %d vendors; 80%% checks (feature, order, product, team), 10%% usage increments (unique idempotency keys), 10%% signed Stripe webhooks. Latency is client-side round trip over HTTP/1.1 keep-alive, all request kinds. Generated %s on %d CPUs.\n\n",
		vendors, time.Now().UTC().Format("2006-01-02"), numCPU())
	b.WriteString("RSS is split into anonymous memory (the process's own) and file-backed pages (bbolt maps the store file, so they grow with the store).\n\n")
	b.WriteString("| t | requests | errors | RSS MiB | anon MiB | file MiB | Go heap in use MiB | goroutines | p50 | p99 | store MiB |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
	for _, s := range samples {
		fmt.Fprintf(&b, "| %s | %d | %d | %.1f | %.1f | %.1f | %.1f | %d | %s | %s | %.1f |\n", s.at.Round(time.Second), s.requests, s.errors, s.rssMiB,
			s.anonMiB, s.fileMiB, s.heapMiB, s.goroutines, s.p50.Round(time.Microsecond), s.p99.Round(time.Microsecond), s.storeMiB)
	}
	fmt.Println(b.String())
	if out := os.Getenv("TOLLGATE_SOAK_OUT"); out != "" {
		if err := os.WriteFile(out, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	total, failed := 0, 0
	for _, s := range samples {
		total += s.requests
		failed += s.errors
	}
	if total == 0 || float64(failed) > 0.001*float64(total) {
		t.Fatalf("%d of %d requests failed or were dropped", failed, total)
	}
	if len(samples) >= 3 {
		ref, last := samples[1], samples[len(samples)-1]
		if last.anonMiB > ref.anonMiB*1.5+16 {
			t.Errorf("anonymous resident memory grew from %.1f to %.1f MiB", ref.anonMiB, last.anonMiB)
		}
		if last.goroutines > ref.goroutines+50 {
			t.Errorf("goroutines grew from %d to %d", ref.goroutines, last.goroutines)
		}
	}
}

// procStatusMiB reads one kB field of /proc/<pid>/status ("VmRSS:", "RssAnon:", "RssFile:").
func procStatusMiB(pid int, field string) float64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}

func scrapeGauge(t *testing.T, ops, name string) float64 {
	resp, err := http.Get("http://" + ops + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			v, _ := strconv.ParseFloat(rest, 64)
			return v
		}
	}
	return -1
}

func numCPU() int { return runtime.NumCPU() }
