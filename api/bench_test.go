package api_test

import (
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// BenchmarkHTTPCheck measures POST /v1/check over loopback with keep-alive connections, from
// parallel clients (-cpu sets the number), the decision cache on. It reports requests per second
// and the median latency of one request.
func BenchmarkHTTPCheck(b *testing.B) {
	e := newEnv(b, nil)
	// fasthttp's client (fiber's own dependency) costs far less CPU per request than net/http's,
	// so on a small machine the number measures the server more than the client.
	client := &fasthttp.HostClient{Addr: strings.TrimPrefix(e.decision, "http://"), MaxConns: 1024}
	url := e.decision + "/v1/check"
	bodies := [][]byte{
		[]byte(`{"vendor_id":"1","action":"order.create"}`),
		[]byte(`{"vendor_id":2,"action":"feature.use","feature":"customer_export"}`),
		[]byte(`{"vendor_id":"1","action":"product.add","count":12}`),
	}
	var mu sync.Mutex
	var lat []time.Duration
	// Several connections per CPU, as an application's worker pool would hold.
	b.SetParallelism(8)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		local := make([]time.Duration, 0, 1024)
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		defer fasthttp.ReleaseRequest(req)
		defer fasthttp.ReleaseResponse(resp)
		req.SetRequestURI(url)
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
