package fleet

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tollgate-pdp/tollgate"
	"github.com/tollgate-pdp/tollgate/api"
	"github.com/tollgate-pdp/tollgate/cache"
	"github.com/tollgate-pdp/tollgate/policy"
)

const (
	testFleet   = "usagetest"
	limitReason = "Monthly order limit reached (100 orders). Upgrade to continue."
)

// periodStart is the billing period of the test vendors: the current month, so the period
// key is the same for every sidecar and every clock reading in a test.
var periodStart = func() time.Time {
	n := time.Now().UTC()
	return time.Date(n.Year(), n.Month(), 1, 0, 0, 0, 0, time.UTC)
}()

var testPeriod = periodStart.Format(time.RFC3339)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// casCounter counts the compare-and-set metrics a sidecar reports.
type casCounter struct {
	tollgate.NopFleetObserver
	retries, conflicts atomic.Int64
}

func (c *casCounter) FleetCASRetry()    { c.retries.Add(1) }
func (c *casCounter) FleetCASConflict() { c.conflicts.Add(1) }

// sidecar is one fleet member: its own bbolt file, its own policy engine, its own NATS
// connection, the shared usage ledger and the watch keeping its local copy.
type sidecar struct {
	t       testing.TB
	store   *cache.Store
	checker *tollgate.Checker
	usage   *Usage
	nc      *nats.Conn
	obs     *casCounter
	url     string // the decision API, once serveHTTP ran
}

type sidecarOpts struct {
	urls     string
	replicas int
	vendors  []tollgate.Subscription
}

func newSidecar(t testing.TB, o sidecarOpts) *sidecar {
	t.Helper()
	ctx := context.Background()
	store, err := cache.Open(ctx, cache.Options{Path: filepath.Join(t.TempDir(), "tollgate.db"), Logger: quiet()})
	must(t, err)
	t.Cleanup(func() { _ = store.Close() })
	for i := range o.vendors {
		_, err := store.PutSubscription(ctx, &o.vendors[i])
		must(t, err)
	}
	eng, err := policy.New(ctx, policy.Options{CacheTTL: time.Second, Logger: quiet()})
	must(t, err)
	// No reconnect buffer: a write attempted while NATS is away fails at once instead of
	// being sent later, after its caller was told 503.
	nc, err := nats.Connect(o.urls, nats.ReconnectBufSize(-1), nats.MaxReconnects(-1),
		nats.ReconnectWait(50*time.Millisecond), nats.Timeout(time.Second))
	must(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	must(t, err)
	s := &sidecar{t: t, store: store, nc: nc, obs: &casCounter{}}
	s.usage, err = NewUsage(js, UsageConfig{KVPrefix: NamesOf(testFleet).KVPrefix, Replicas: o.replicas, Local: store,
		Observer: s.obs, Logger: quiet(), PendingWait: 500 * time.Millisecond, Timeout: 2 * time.Second})
	must(t, err)
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = s.usage.Watch(wctx, store) }()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case <-s.usage.Synced():
	case <-time.After(10 * time.Second):
		t.Fatal("usage watch did not load the counters")
	}
	s.checker = tollgate.NewChecker(store, eng, nil)
	s.checker.Ledger = s.usage
	return s
}

// fleetOf starts n sidecars on the same NATS, each holding the vendors.
func fleetOf(t testing.TB, n int, o sidecarOpts) []*sidecar {
	out := make([]*sidecar, n)
	for i := range out {
		out[i] = newSidecar(t, o)
	}
	return out
}

// essential is an Essential vendor (100 orders a month) in the test period.
func essential(id string) tollgate.Subscription {
	end := periodStart.AddDate(0, 1, 0)
	ps := periodStart
	return tollgate.Subscription{VendorID: id, Tier: "essential", Status: tollgate.StatusActive,
		PeriodStart: &ps, PeriodEnd: &end}
}

func (s *sidecar) consume(key string) (tollgate.Decision, error) {
	q := int64(1)
	return s.checker.Check(context.Background(), &tollgate.CheckRequest{VendorID: "1", Action: tollgate.ActionOrderCreate,
		Quantity: &q, Consume: true, IdempotencyKey: key})
}

// localOrders is the vendor's count in the sidecar's local copy.
func (s *sidecar) localOrders(vendorID string) int64 {
	v, ok := s.store.Vendor(vendorID)
	if !ok {
		s.t.Fatalf("vendor %s missing", vendorID)
	}
	return v.Usage.OrdersIn(testPeriod)
}

// waitLocal waits until the sidecar's local copy shows want orders.
func (s *sidecar) waitLocal(vendorID string, want int64) {
	s.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for s.localOrders(vendorID) != want {
		if time.Now().After(deadline) {
			s.t.Fatalf("local orders = %d, want %d", s.localOrders(vendorID), want)
		}
		time.Sleep(time.Millisecond)
	}
}

// fleetOrders reads the shared counter straight from the bucket.
func fleetOrders(t testing.TB, nc *nats.Conn, vendorID string) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	js, err := jetstream.New(nc)
	must(t, err)
	kv, err := js.KeyValue(ctx, UsageBucket(NamesOf(testFleet).KVPrefix))
	must(t, err)
	keys, err := kv.Keys(ctx)
	must(t, err)
	var total int64
	for _, k := range keys {
		e, err := kv.Get(ctx, k)
		must(t, err)
		var v struct {
			Orders int64 `json:"orders"`
		}
		must(t, json.Unmarshal(e.Value(), &v))
		total += v.Orders
	}
	return total
}

// serveHTTP puts the sidecar's decision API on a loopback port.
func (s *sidecar) serveHTTP() {
	t := s.t
	eng := s.checker.Policy.(*policy.Engine)
	srv, err := api.New(api.Config{Checker: s.checker, Store: s.store, Policy: eng, Catalog: eng.Catalog, Logger: quiet()})
	must(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	go func(app *fiber.App) { _ = app.Listener(ln) }(srv.Decision)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Decision.ShutdownWithContext(ctx)
	})
	s.url = "http://" + ln.Addr().String()
}

// post sends a JSON body to the sidecar's decision API and decodes the answer into out.
func (s *sidecar) post(path string, body any, out any) int {
	s.t.Helper()
	b, err := json.Marshal(body)
	must(s.t, err)
	resp, err := http.Post(s.url+path, "application/json", bytes.NewReader(b))
	must(s.t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	must(s.t, err)
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			s.t.Fatalf("POST %s: %d %s: %v", path, resp.StatusCode, raw, err)
		}
	}
	return resp.StatusCode
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// enterprise is an Enterprise vendor: no order limit.
func enterprise(id string) tollgate.Subscription {
	s := essential(id)
	s.Tier = "enterprise"
	return s
}

func itoa(i int) string { return strconv.Itoa(i) }

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	must(t, err)
	return string(b)
}
