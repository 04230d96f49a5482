// Package loadgen drives an HTTP server with a fixed number of POST requests from a fixed
// number of keep-alive connections and measures throughput and latency percentiles.
//
// It uses fasthttp's client (fiber's own dependency): it costs far less CPU per request than
// net/http's, which matters when the generator shares a small machine with the server.
package loadgen

import (
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// Target is one server endpoint.
type Target struct {
	Name string
	Addr string // host:port, loopback
	Path string
	// Body returns the body of request i (same index, same logical request, on every server).
	Body func(i int) []byte
}

// Result is one run's measurement.
type Result struct {
	Target      string
	Concurrency int
	Requests    int
	Errors      int
	Elapsed     time.Duration
	Latencies   []time.Duration // sorted
}

// RPS is completed requests per second of wall time.
func (r *Result) RPS() float64 { return float64(r.Requests) / r.Elapsed.Seconds() }

// Quantile of the sorted latencies (q in [0,1]).
func (r *Result) Quantile(q float64) time.Duration { return Quantile(r.Latencies, q) }

// Quantile of sorted durations.
func Quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q * float64(len(sorted)-1))
	return sorted[i]
}

// Client holds the keep-alive connections to one target.
type Client struct {
	t  Target
	hc *fasthttp.HostClient
}

// NewClient returns a client allowing up to maxConns connections.
func NewClient(t Target, maxConns int) *Client {
	return &Client{t: t, hc: &fasthttp.HostClient{
		Addr: t.Addr, MaxConns: maxConns,
		ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second,
		MaxIdleConnDuration: time.Minute,
	}}
}

// Close drops the idle connections.
func (c *Client) Close() { c.hc.CloseIdleConnections() }

// Do sends body and returns the status and a copy of the response body.
func (c *Client) Do(body []byte) (int, []byte, error) {
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	c.prepare(req)
	req.SetBodyRaw(body)
	if err := c.hc.Do(req, resp); err != nil {
		return 0, nil, fmt.Errorf("%s: %w", c.t.Name, err)
	}
	return resp.StatusCode(), append([]byte(nil), resp.Body()...), nil
}

func (c *Client) prepare(req *fasthttp.Request) {
	req.SetRequestURI("http://" + c.t.Addr + c.t.Path)
	req.Header.SetMethod(http.MethodPost)
	req.Header.SetContentType("application/json")
}

// Run sends requests n requests (bodies first..first+n-1) from concurrency workers, each with
// its own keep-alive connection, and times each request. Any non-200 answer or transport error
// counts as an error; more than maxErrors of them abort the run with an error.
func (c *Client) Run(concurrency, n, first int, maxErrors int) (*Result, error) {
	var next atomic.Int64
	var errCount atomic.Int64
	var errMu sync.Mutex
	var firstErr error
	lat := make([][]time.Duration, concurrency)
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < concurrency; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			local := make([]time.Duration, 0, n/concurrency+1)
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			c.prepare(req)
			for {
				i := int(next.Add(1)) - 1
				if i >= n || errCount.Load() > int64(maxErrors) {
					break
				}
				req.SetBodyRaw(c.t.Body(first + i))
				t0 := time.Now()
				err := c.hc.Do(req, resp)
				d := time.Since(t0)
				if err == nil && resp.StatusCode() != http.StatusOK {
					err = fmt.Errorf("status %d: %.200s", resp.StatusCode(), resp.Body())
				}
				if err != nil {
					errCount.Add(1)
					errMu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					errMu.Unlock()
					continue
				}
				local = append(local, d)
			}
			lat[w] = local
		}(w)
	}
	wg.Wait()
	elapsed := time.Since(start)
	all := slices.Concat(lat...)
	slices.Sort(all)
	res := &Result{Target: c.t.Name, Concurrency: concurrency, Requests: len(all),
		Errors: int(errCount.Load()), Elapsed: elapsed, Latencies: all}
	if res.Errors > maxErrors {
		return res, fmt.Errorf("%s c=%d: %d errors, first: %w", c.t.Name, concurrency, res.Errors, firstErr)
	}
	return res, nil
}
