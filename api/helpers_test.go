package api_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/tollgate-pdp/tollgate"
	"github.com/tollgate-pdp/tollgate/api"
	"github.com/tollgate-pdp/tollgate/cache"
	"github.com/tollgate-pdp/tollgate/policy"
)

const testToken = "s3cret-admin-token"

// env is a running server over loopback with the real store and policy.
type env struct {
	t        testing.TB
	store    *cache.Store
	policy   *policy.Engine
	checker  *tollgate.Checker
	srv      *api.Server
	decision string // base URLs
	webhook  string
	ops      string
	http     *http.Client
	hooks    *fakeWebhooks
}

type fakeWebhooks struct{ err error }

func (f *fakeWebhooks) Receive(_ context.Context, payload []byte, sig string) (tollgate.WebhookResult, error) {
	if f.err != nil {
		return tollgate.WebhookResult{}, f.err
	}
	if sig != "t=1,v1=good" {
		return tollgate.WebhookResult{}, &tollgate.Error{Code: tollgate.EUnauthorized, Message: "Stripe-Signature: no valid signature"}
	}
	var ev struct {
		ID   string `json:"id"`
		Type string `json:"type"`
	}
	if err := json.Unmarshal(payload, &ev); err != nil {
		return tollgate.WebhookResult{}, &tollgate.Error{Code: tollgate.EInvalid, Message: "body: not a Stripe event"}
	}
	return tollgate.WebhookResult{EventID: ev.ID, Type: ev.Type, Outcome: tollgate.OutcomeProcessed}, nil
}

type staticReady struct {
	name   string
	ok     bool
	detail string
}

func (s staticReady) Name() string          { return s.name }
func (s staticReady) Ready() (bool, string) { return s.ok, s.detail }
func ptr[T any](v T) *T                     { return &v }
func quietLogger() *slog.Logger             { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
func startOf(t time.Time) time.Time         { return t.Truncate(24 * time.Hour) }
func mustJSON(t testing.TB, v any) []byte   { b, err := json.Marshal(v); must(t, err); return b }
func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func newEnv(t testing.TB, mod func(*api.Config)) *env {
	t.Helper()
	ctx := context.Background()
	store, err := cache.Open(ctx, cache.Options{Path: filepath.Join(t.TempDir(), "tollgate.db"), Logger: quietLogger()})
	must(t, err)
	t.Cleanup(func() { store.Close() })
	eng, err := policy.New(ctx, policy.Options{CacheTTL: time.Second, Logger: quietLogger()})
	must(t, err)
	e := &env{t: t, store: store, policy: eng, checker: tollgate.NewChecker(store, eng, nil), hooks: &fakeWebhooks{}}
	cfg := api.Config{
		Checker: e.checker, Store: store, Policy: eng,
		Catalog:    eng.Catalog,
		Webhooks:   e.hooks,
		Readiness:  []tollgate.ReadinessCheck{eng},
		Metrics:    http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "tollgate_up 1\n") }),
		AdminToken: testToken,
		Logger:     quietLogger(),
	}
	if mod != nil {
		mod(&cfg)
	}
	srv, err := api.New(cfg)
	must(t, err)
	e.srv = srv
	e.decision = serve(t, srv.Decision)
	e.webhook = serve(t, srv.Webhook)
	e.ops = serve(t, srv.Ops)
	e.http = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	t.Cleanup(e.http.CloseIdleConnections)
	e.seed()
	return e
}

// serve starts app on a loopback port and stops it when the test ends.
func serve(t testing.TB, app *fiber.App) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	go app.Listener(ln) //nolint:errcheck // ends with Shutdown
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := app.ShutdownWithContext(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return "http://" + ln.Addr().String()
}

// seed creates vendors: 1 essential (100 orders/month), 2 professional, 3 expired,
// 4 essential with 10 orders left.
func (e *env) seed() {
	now := time.Now().UTC()
	start, end := startOf(now.Add(-24*time.Hour)), startOf(now.Add(29*24*time.Hour))
	subs := []tollgate.Subscription{
		{VendorID: "1", Tier: "essential", Status: tollgate.StatusActive, PeriodStart: &start, PeriodEnd: &end},
		{VendorID: "2", Tier: "professional", Status: tollgate.StatusActive, PeriodStart: &start, PeriodEnd: &end},
		{VendorID: "3", Tier: "business", Status: tollgate.StatusExpired, PeriodStart: &start, PeriodEnd: &end},
		{VendorID: "4", Tier: "essential", Status: tollgate.StatusActive, PeriodStart: &start, PeriodEnd: &end},
	}
	ctx := context.Background()
	for i := range subs {
		_, err := e.store.PutSubscription(ctx, &subs[i])
		must(e.t, err)
	}
	_, err := e.checker.AddUsage(ctx, &tollgate.UsageIncrement{VendorID: "4", Metric: "orders", Delta: 90})
	must(e.t, err)
}

// snapshot is every vendor's state as JSON, to prove a refused request changed nothing.
func (e *env) snapshot() map[string]string {
	out := map[string]string{}
	e.store.ForEachVendor(func(v *tollgate.VendorState) bool {
		out[v.Subscription.VendorID] = string(mustJSON(e.t, v))
		return true
	})
	return out
}

type response struct {
	Status int
	Body   []byte
	Header http.Header
}

func (r response) decode(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decode %s: %v", r.Body, err)
	}
}

// do sends a request; body may be a string, []byte or a value to encode.
func (e *env) do(method, url string, body any, header ...string) response {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = bytes.NewReader([]byte(b))
	case []byte:
		rd = bytes.NewReader(b)
	default:
		rd = bytes.NewReader(mustJSON(e.t, b))
	}
	req, err := http.NewRequest(method, url, rd)
	must(e.t, err)
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := e.http.Do(req)
	if err != nil {
		// Not fatal here: do may run in a subtest, and e.t is the parent.
		return response{Status: -1, Body: []byte(err.Error())}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return response{Status: -1, Body: []byte(err.Error())}
	}
	return response{Status: resp.StatusCode, Body: data, Header: resp.Header}
}

// announce sends only the headers of a request whose Content-Length is n bytes and reads the
// answer. A server refusing an oversized body answers before reading it; sending no body keeps
// the kernel from resetting the connection (and dropping the answer) over unread data.
func (e *env) announce(base, method, path string, n int, header ...string) response {
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		return response{Status: -1, Body: []byte(err.Error())}
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		return response{Status: -1, Body: []byte(err.Error())}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n", method, path, n)
	for i := 0; i+1 < len(header); i += 2 {
		fmt.Fprintf(&b, "%s: %s\r\n", header[i], header[i+1])
	}
	b.WriteString("\r\n")
	if _, err := io.WriteString(conn, b.String()); err != nil {
		return response{Status: -1, Body: []byte(err.Error())}
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return response{Status: -1, Body: []byte(err.Error())}
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return response{Status: resp.StatusCode, Body: data, Header: resp.Header}
}

func (e *env) admin(method, url string, body any) response {
	return e.do(method, url, body, "Authorization", "Bearer "+testToken)
}
