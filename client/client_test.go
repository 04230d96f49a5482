package client_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/tollgate-pdp/tollgate"
	"github.com/tollgate-pdp/tollgate/api"
	"github.com/tollgate-pdp/tollgate/cache"
	"github.com/tollgate-pdp/tollgate/client"
	"github.com/tollgate-pdp/tollgate/policy"
)

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// startSidecar runs the real decision API (store, policy) on loopback with vendor "7" on the
// essential tier, and returns its base URL.
func startSidecar(t testing.TB) string {
	t.Helper()
	ctx := context.Background()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	store, err := cache.Open(ctx, cache.Options{Path: filepath.Join(t.TempDir(), "t.db"), Logger: quiet})
	must(t, err)
	t.Cleanup(func() { store.Close() })
	eng, err := policy.New(ctx, policy.Options{CacheTTL: time.Second, Logger: quiet})
	must(t, err)
	srv, err := api.New(api.Config{Checker: tollgate.NewChecker(store, eng, nil), Store: store, Policy: eng, Catalog: eng.Catalog, Logger: quiet})
	must(t, err)
	_, err = store.PutSubscription(ctx, &tollgate.Subscription{VendorID: "7", Tier: "essential", Status: tollgate.StatusActive})
	must(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	go srv.Decision.Listener(ln) //nolint:errcheck // ends with Shutdown
	t.Cleanup(func() {
		if err := srv.Shutdown(context.Background()); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return "http://" + ln.Addr().String()
}

func TestClientAgainstSidecar(t *testing.T) {
	c, err := client.New(startSidecar(t))
	must(t, err)
	ctx := context.Background()

	d, err := c.Check(ctx, tollgate.CheckRequest{VendorID: "7", Action: tollgate.ActionOrderCreate})
	if err != nil || !d.Allow || d.Code != "ok" || d.Limit == nil || *d.Limit != 100 {
		t.Fatalf("check: %+v, %v", d, err)
	}
	d, err = c.Check(ctx, tollgate.CheckRequest{VendorID: "7", Action: tollgate.ActionFeatureUse, Feature: "api_access"})
	if err != nil || d.Allow || d.Code != tollgate.CodeFeatureMissing {
		t.Fatalf("feature: %+v, %v", d, err)
	}

	// 4xx: *APIError naming the field; the decision is a zero deny, not a fallback.
	d, err = c.Check(ctx, tollgate.CheckRequest{VendorID: "7"})
	var apiErr *client.APIError
	if !errors.As(err, &apiErr) || apiErr.Status != 400 || apiErr.Code != "invalid" || apiErr.Message != "action: is required" || d.Allow {
		t.Fatalf("invalid check: %+v, %v", d, err)
	}

	q := int64(3)
	res, err := c.CheckBatch(ctx, []tollgate.CheckRequest{
		{VendorID: "7", Action: tollgate.ActionOrderCreate, Quantity: &q, Consume: true, IdempotencyKey: "k1"},
		{VendorID: "nope", Action: tollgate.ActionOrderCreate},
	})
	if err != nil || len(res) != 2 || !res[0].Allow || res[1].Code != tollgate.CodeUnknownVendor || res[0].Err != nil {
		t.Fatalf("batch: %+v, %v", res, err)
	}

	u, err := c.AddUsage(ctx, tollgate.UsageIncrement{VendorID: "7", Metric: "orders", Delta: 2})
	if err != nil || !u.Applied || u.Value != 5 {
		t.Fatalf("usage: %+v, %v", u, err)
	}
	_, err = c.AddUsage(ctx, tollgate.UsageIncrement{VendorID: "nope", Metric: "orders", Delta: 2})
	if !errors.As(err, &apiErr) || apiErr.Status != 404 {
		t.Fatalf("usage unknown vendor: %v", err)
	}

	v, err := c.Vendor(ctx, "7")
	if err != nil || v.VendorID != "7" || v.OrdersUsed != 5 || v.Tier == nil || v.EffectiveLimits["orders"] != float64(100) {
		t.Fatalf("vendor: %+v, %v", v, err)
	}
	if _, err := c.Vendor(ctx, "a/b"); !errors.As(err, &apiErr) || apiErr.Status/100 != 4 {
		t.Fatalf("vendor with slash: %v", err)
	}
	cat, err := c.Tiers(ctx)
	if err != nil || len(cat.Tiers) != 4 {
		t.Fatalf("tiers: %+v, %v", cat, err)
	}
}

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

func TestFallbackWhenSidecarUnreachable(t *testing.T) {
	base := closedPort(t)
	req := tollgate.CheckRequest{VendorID: "7", Action: tollgate.ActionOrderCreate}
	for _, tc := range []struct {
		opts  []client.Option
		allow bool
	}{{nil, false}, {[]client.Option{client.WithFailClosed()}, false}, {[]client.Option{client.WithFailOpen()}, true}} {
		c, err := client.New(base, tc.opts...)
		must(t, err)
		d, err := c.Check(context.Background(), req)
		var ue *client.UnavailableError
		if !errors.As(err, &ue) || ue.Status != 0 {
			t.Fatalf("err = %v, want *UnavailableError", err)
		}
		if d.Allow != tc.allow || d.Code != client.CodeSidecarUnavailable || d.Reason == "" {
			t.Fatalf("decision = %+v, want allow=%v", d, tc.allow)
		}
		res, err := c.CheckBatch(context.Background(), []tollgate.CheckRequest{req, req})
		if !errors.As(err, &ue) || len(res) != 2 || res[1].Allow != tc.allow || res[1].Code != client.CodeSidecarUnavailable {
			t.Fatalf("batch = %+v, %v", res, err)
		}
		if _, err := c.Tiers(context.Background()); !errors.As(err, &ue) {
			t.Fatalf("tiers: %v", err)
		}
	}
}

func TestFallbackOn5xxAndTimeout(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusInternalServerError)
		io.WriteString(w, `{"error":{"code":"internal","message":"Internal error"}}`)
	}))
	t.Cleanup(srv.Close)

	c, err := client.New(srv.URL, client.WithFailOpen())
	must(t, err)
	d, err := c.Check(context.Background(), tollgate.CheckRequest{VendorID: "7", Action: "order.create"})
	var ue *client.UnavailableError
	if !errors.As(err, &ue) || ue.Status != 500 || !d.Allow || d.Code != client.CodeSidecarUnavailable {
		t.Fatalf("5xx: %+v, %v", d, err)
	}

	slow := make(chan struct{})
	slowSrv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { <-slow }))
	t.Cleanup(slowSrv.Close)
	t.Cleanup(func() { close(slow) }) // runs first: lets the handler end so Close can return
	c, err = client.New(slowSrv.URL, client.WithCheckTimeout(50*time.Millisecond))
	must(t, err)
	start := time.Now()
	d, err = c.Check(context.Background(), tollgate.CheckRequest{VendorID: "7", Action: "order.create"})
	if !errors.As(err, &ue) || !errors.Is(err, context.DeadlineExceeded) || d.Allow || time.Since(start) > 2*time.Second {
		t.Fatalf("timeout: %+v, %v after %v", d, err, time.Since(start))
	}
}

func TestNewRefusesBadBaseURL(t *testing.T) {
	for _, u := range []string{"", "127.0.0.1:8181", "ftp://x", "http://"} {
		if _, err := client.New(u); err == nil {
			t.Errorf("New(%q) accepted", u)
		}
	}
}
