package api_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/tollgate-pdp/tollgate"
)

var checkBodies = []string{
	`{"vendor_id":"1","action":"order.create"}`,
	`{"vendor_id":2,"action":"feature.use","feature":"customer_export"}`,
	`{"vendor_id":"1","action":"product.add","count":12}`,
}

// BenchmarkHTTPCheck measures POST /v1/check over loopback with keep-alive connections from
// 8 clients per CPU, the decision cache on. It reports requests per second and latency
// percentiles of one request.
func BenchmarkHTTPCheck(b *testing.B) {
	e := newEnv(b, nil)
	bodies := make([][]byte, len(checkBodies))
	for i, s := range checkBodies {
		bodies[i] = []byte(s)
	}
	load(b, strings.TrimPrefix(e.decision, "http://"), "/v1/check", bodies)
}

// BenchmarkOPAServerCheck asks `opa run --server` the same questions with the same policy and
// data (the inputs our policy engine builds for checkBodies), for the >= 3x comparison of
// BENCHMARKS.md. It runs $OPA_BIN, else opa on PATH, else the version go.mod pins, built from the
// module cache into the benchmark's temporary directory (see opaBinary).
func BenchmarkOPAServerCheck(b *testing.B) {
	bin := opaBinary(b)
	e := newEnv(b, nil)
	ctx := context.Background()
	// data.catalog exactly as our engine holds it, read back through our Data API.
	catalog, defined, err := e.policy.Query(ctx, "catalog", nil)
	if err != nil || !defined {
		b.Fatalf("catalog: %v", err)
	}
	dir := b.TempDir()
	data, err := json.Marshal(map[string]any{"catalog": catalog})
	must(b, err)
	must(b, os.WriteFile(filepath.Join(dir, "data.json"), data, 0o600))
	// The inputs: what the engine builds for the same requests (explain shows it).
	var bodies [][]byte
	for _, s := range checkBodies {
		var req tollgate.CheckRequest
		must(b, json.Unmarshal([]byte(s), &req))
		req.Explain = true
		v, _ := e.store.Vendor(string(req.VendorID))
		d, err := e.policy.Decide(ctx, &tollgate.Facts{Request: &req, Vendor: v, Now: time.Now()})
		must(b, err)
		bodies = append(bodies, []byte(`{"input":`+string(d.Explain.Input)+`}`))
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(b, err)
	addr := ln.Addr().String()
	ln.Close()
	_, self, _, _ := runtime.Caller(0)
	rego := filepath.Join(filepath.Dir(self), "..", "policy", "rego")
	cmd := exec.Command(bin, "run", "--server", "--addr", addr, "--log-level", "error", rego, filepath.Join(dir, "data.json"))
	must(b, cmd.Start())
	b.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	for i := 0; ; i++ {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			break
		}
		if i > 200 {
			b.Fatal("opa did not start")
		}
		time.Sleep(50 * time.Millisecond)
	}
	load(b, addr, "/v1/data/tollgate/decision", bodies)
}

// opaBinary returns $OPA_BIN, else opa on PATH, else builds github.com/open-policy-agent/opa at
// the version go.mod pins (`go build -o <b.TempDir()>/opa github.com/open-policy-agent/opa`,
// from the module cache) and fails the benchmark with the build's output if that fails. The
// temporary directory goes with each run of the benchmark function, and the testing package
// runs it once per b.N it tries, so without OPA_BIN every run builds again (only the link, once
// the build cache is warm: seconds); -benchtime 1x or OPA_BIN avoids the repeats.
func opaBinary(b *testing.B) string {
	b.Helper()
	if bin := os.Getenv("OPA_BIN"); bin != "" {
		return bin
	}
	if bin, err := exec.LookPath("opa"); err == nil {
		return bin
	}
	bin := filepath.Join(b.TempDir(), "opa")
	_, self, _, _ := runtime.Caller(0)
	cmd := exec.Command("go", "build", "-o", bin, "github.com/open-policy-agent/opa")
	cmd.Dir = filepath.Dir(self) // inside this module: its go.mod pins the version
	start := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("no opa binary ($OPA_BIN unset, none on PATH) and go build github.com/open-policy-agent/opa failed: %v\n%s", err, out)
	}
	b.Logf("built opa from the module cache in %v", time.Since(start).Round(time.Millisecond))
	return bin
}

// load posts bodies round-robin from 8 goroutines per CPU over keep-alive connections.
// fasthttp's client (fiber's own dependency) costs far less CPU per request than net/http's, so
// on a small machine the number measures the server more than the client.
func load(b *testing.B, addr, path string, bodies [][]byte) {
	client := &fasthttp.HostClient{Addr: addr, MaxConns: 1024}
	var mu sync.Mutex
	var lat []time.Duration
	b.SetParallelism(8)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		local := make([]time.Duration, 0, 1024)
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		defer fasthttp.ReleaseRequest(req)
		defer fasthttp.ReleaseResponse(resp)
		req.SetRequestURI("http://" + addr + path)
		req.Header.SetMethod(http.MethodPost)
		req.Header.SetContentType("application/json")
		i := 0
		for pb.Next() {
			i++
			t0 := time.Now()
			req.SetBodyRaw(bodies[i%len(bodies)])
			if err := client.Do(req, resp); err != nil {
				b.Error(err)
				return
			}
			if resp.StatusCode() != http.StatusOK {
				b.Errorf("status %d: %s", resp.StatusCode(), resp.Body())
				return
			}
			local = append(local, time.Since(t0))
		}
		mu.Lock()
		lat = append(lat, local...)
		mu.Unlock()
	})
	elapsed := time.Since(start)
	b.StopTimer()
	if len(lat) == 0 {
		return
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "req/s")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}

// BenchmarkCheckHandler measures the server's own cost of one POST /v1/check (routing,
// decoding, validation, the cached decision, encoding) without the network.
func BenchmarkCheckHandler(b *testing.B) {
	e := newEnv(b, nil)
	h := e.srv.Decision.Handler()
	var ctx fasthttp.RequestCtx
	body := []byte(checkBodies[0])
	b.ReportAllocs()
	for b.Loop() {
		ctx.Request.Reset()
		ctx.Response.Reset()
		ctx.Request.Header.SetMethod(http.MethodPost)
		ctx.Request.SetRequestURI("/v1/check")
		ctx.Request.Header.SetContentType("application/json")
		ctx.Request.SetBodyRaw(body)
		h(&ctx)
		if ctx.Response.StatusCode() != http.StatusOK {
			b.Fatalf("status %d: %s", ctx.Response.StatusCode(), ctx.Response.Body())
		}
	}
}
