// Package sidecartest_test tests the Go client against the real decision API. It lives outside
// package client so that the client's own tests import nothing beyond it: a program importing
// github.com/tollgate-pdp/tollgate/client then records no checksums of the sidecar's
// dependencies (fiber, OPA, bbolt) in its go.sum; see client/README.md.
package sidecartest_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
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
