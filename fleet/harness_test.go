package fleet_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/tollgate-pdp/tollgate"
	"github.com/tollgate-pdp/tollgate/api"
	"github.com/tollgate-pdp/tollgate/cache"
	"github.com/tollgate-pdp/tollgate/fleet"
	"github.com/tollgate-pdp/tollgate/policy"
	tgsync "github.com/tollgate-pdp/tollgate/sync"
)

const (
	testSecret = "whsec_fleet_test"
	testToken  = "fleet-admin-token"
)

// sidecar is one real tollgate sidecar in fleet mode: bbolt store, OPA policy, Stripe sync,
// fleet node, and the decision and webhook listeners over loopback.
type sidecar struct {
	t        testing.TB
	name     string
	path     string
	store    *cache.Store
	conn     *fleet.Conn
	node     *fleet.Node
	syncer   *tgsync.Syncer
	srv      *api.Server
	decision string
	webhook  string
	ops      string
	cancel   context.CancelFunc
	done     chan error
	restored bool
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("FLEET_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("test", t.Name())
	}
	return quiet()
}

// testCatalog is the default catalog with Stripe price ids for two tiers.
func testCatalog() *tollgate.Catalog {
	c := tollgate.DefaultCatalog()
	for i := range c.Tiers {
		switch c.Tiers[i].Code {
		case "essential":
			c.Tiers[i].StripePriceMonthlyID, c.Tiers[i].StripePriceAnnualID = "price_ess_m", "price_ess_y"
		case "professional":
			c.Tiers[i].StripePriceMonthlyID, c.Tiers[i].StripePriceAnnualID = "price_pro_m", "price_pro_y"
		}
	}
	return c
}

func fleetConfig(urls, name string) fleet.Config {
	return fleet.Config{URLs: urls, Name: name, Replicas: 1, History: time.Hour, SnapshotEvery: time.Minute}
}

// startSidecar starts a sidecar on the store file at path (a new one when empty).
func startSidecar(t testing.TB, name, path string, cfg fleet.Config) *sidecar {
	t.Helper()
	if path == "" {
		path = filepath.Join(t.TempDir(), "tollgate.db")
	}
	s := &sidecar{t: t, name: name, path: path, done: make(chan error, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	log := testLogger(t).With("sidecar", name)
	var err error
	if s.conn, err = fleet.Connect(ctx, cfg, nil, log); err != nil {
		t.Fatal(err)
	}
	eng, err := policy.New(ctx, policy.Options{Catalog: testCatalog(), CacheTTL: time.Second, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	if s.store, err = cache.Open(ctx, cache.Options{Path: path, Logger: quiet(), Limits: eng, NoSync: true}); err != nil {
		t.Fatal(err)
	}
	rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
	need, err := s.conn.NeedsRestore(rctx, s.store.AppliedSequence(), s.store.VendorCount() == 0)
	rcancel()
	if err == nil && need {
		must(t, s.store.Close())
		if _, err := s.conn.RestoreSnapshot(ctx, path); err != nil {
			t.Fatal(err)
		}
		if s.store, err = cache.Open(ctx, cache.Options{Path: path, Logger: quiet(), Limits: eng, NoSync: true}); err != nil {
			t.Fatal(err)
		}
		s.restored = true
	}
	s.node = fleet.NewNode(s.conn, s.store, fleet.Options{})
	s.syncer, err = tgsync.New(ctx, tgsync.Options{Store: s.store, Catalog: testCatalog(),
		WebhookSecrets: []string{testSecret}, Log: s.node, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	s.node.SetStripe(s.syncer)
	fs := s.node.Store()
	checker := tollgate.NewChecker(fs, eng, nil)
	s.srv, err = api.New(api.Config{
		Checker: checker, Store: fs, Policy: eng, Catalog: eng.Catalog, Webhooks: s.syncer, Billing: s.syncer,
		Readiness: []tollgate.ReadinessCheck{s.store, eng, s.node}, AdminToken: testToken, Logger: quiet(),
	})
	if err != nil {
		t.Fatal(err)
	}
	s.decision, s.webhook, s.ops = serve(t, s.srv.Decision), serve(t, s.srv.Webhook), serve(t, s.srv.Ops)
	go func() { s.done <- s.node.Run(ctx) }()
	t.Cleanup(s.stop)
	return s
}

// stop shuts the sidecar down in order; calling it twice does nothing.
func (s *sidecar) stop() {
	if s.cancel == nil {
		return
	}
	s.cancel()
	s.cancel = nil
	if err := <-s.done; err != nil {
		s.t.Errorf("%s: node run: %v", s.name, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = s.srv.Shutdown(ctx)
	s.conn.Close()
	_ = s.store.Close()
}

func serve(t testing.TB, app *fiber.App) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	go app.Listener(ln) //nolint:errcheck // ends with Shutdown
	return "http://" + ln.Addr().String()
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

var client = &http.Client{Timeout: 15 * time.Second}

// do sends a request and decodes a JSON answer into out (when not nil); it returns the status.
func do(t testing.TB, method, url string, body []byte, hdr map[string]string, out any) int {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	must(t, err)
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	must(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %d %s: %v", method, url, resp.StatusCode, b, err)
		}
	}
	return resp.StatusCode
}

// deliver signs a Stripe event and posts it to the sidecar's webhook listener.
func (s *sidecar) deliver(ev []byte) (int, string) {
	s.t.Helper()
	sig := tgsync.SignatureHeader(ev, time.Now(), testSecret)
	var out struct {
		Outcome string `json:"outcome"`
		Error   struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	code := do(s.t, http.MethodPost, s.webhook+"/webhooks/stripe", ev, map[string]string{"Stripe-Signature": sig}, &out)
	if out.Outcome != "" {
		return code, out.Outcome
	}
	return code, out.Error.Code
}

// decision is the part of a decision the tests compare.
type decision struct {
	Allow  bool   `json:"allow"`
	Code   string `json:"code"`
	Tier   string `json:"tier"`
	Status string `json:"status"`
	Stale  bool   `json:"stale"`
	Used   int64  `json:"used"`
}

func (s *sidecar) check(vendor, action string) decision {
	s.t.Helper()
	var d decision
	body := fmt.Sprintf(`{"vendor_id":%q,"action":%q}`, vendor, action)
	if code := do(s.t, http.MethodPost, s.decision+"/v1/check", []byte(body), nil, &d); code != http.StatusOK {
		s.t.Fatalf("%s: check %s %s: status %d", s.name, vendor, action, code)
	}
	return d
}

// vendor is the local state (no HTTP) for exact comparisons.
func (s *sidecar) vendor(id string) (tollgate.Subscription, bool) {
	v, ok := s.store.Vendor(id)
	if !ok {
		return tollgate.Subscription{}, false
	}
	return v.Subscription, true
}

// ready polls /health/ready until it answers 200.
func (s *sidecar) waitReady(timeout time.Duration) {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, detail := s.node.Ready()
		if ok {
			if code := do(s.t, http.MethodGet, s.ops+"/health/ready", nil, nil, nil); code == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("%s not ready after %s: %s", s.name, timeout, detail)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// eventually retries cond until it holds or the timeout passes.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// runNode runs node until the returned stop is called; stop checks that the run ended cleanly.
func runNode(tb testing.TB, node *fleet.Node) (stop func()) {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- node.Run(ctx) }()
	return func() {
		cancel()
		if err := <-done; err != nil {
			tb.Errorf("node run: %v", err)
		}
	}
}
