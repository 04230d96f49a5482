package api_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tollgate-pdp/tollgate"
	"github.com/tollgate-pdp/tollgate/api"
	"github.com/tollgate-pdp/tollgate/cache"
	"github.com/tollgate-pdp/tollgate/metrics"
	"github.com/tollgate-pdp/tollgate/policy"
)

// withCapacity wires capacity, snapshots and the dry run as cmd does.
func withCapacity(cfg *api.Config) {
	store := cfg.Store.(*cache.Store)
	eng := cfg.Policy.(*policy.Engine)
	m := metrics.New(metrics.Options{Vendors: store.Aggregates, StoreSize: store.Size, Logger: quietLogger()})
	cfg.Capacity = m.Capacity
	cfg.Snapshots = store
	cfg.DryRun = func(ctx context.Context, cand *tollgate.Catalog, limit int) (*tollgate.DryRunResult, error) {
		return eng.DryRun(ctx, cand, store.ForEachVendor, time.Now(), limit)
	}
}

func TestPutUsage(t *testing.T) {
	e := newEnv(t, nil)
	url := e.decision + "/v1/vendors/1/usage"
	r := e.do(http.MethodPut, url, `{"products":12,"team_members":2,"storage_bytes":1048576}`)
	if r.Status != http.StatusOK {
		t.Fatalf("PUT usage = %d %s", r.Status, r.Body)
	}
	var got api.UsageFactsView
	r.decode(t, &got)
	if *got.Usage.Products != 12 || *got.Usage.TeamMembers != 2 || *got.Usage.StorageBytes != 1<<20 || got.Usage.ReportedAt == nil {
		t.Errorf("usage = %+v", got.Usage)
	}
	// Shown in GET /v1/vendors/{id}; the policy uses it (product.add without count).
	var view api.VendorView
	e.do(http.MethodGet, e.decision+"/v1/vendors/1", nil).decode(t, &view)
	if view.Usage.Products == nil || *view.Usage.Products != 12 {
		t.Errorf("vendor view usage = %+v", view.Usage)
	}
	before := e.snapshot()
	for _, tt := range []struct {
		name, url, body string
		status          int
		field           string
	}{
		{"negative", url, `{"products":-1}`, 400, "products"},
		{"empty", url, `{}`, 400, "products"},
		{"unknown field", url, `{"orders":3}`, 400, "orders"},
		{"not a number", url, `{"cms_pages":"many"}`, 400, "cms_pages"},
		{"unknown vendor", e.decision + "/v1/vendors/nobody/usage", `{"products":1}`, 404, "vendor_id"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do(http.MethodPut, tt.url, tt.body)
			if r.Status != tt.status || !strings.Contains(string(r.Body), tt.field) {
				t.Errorf("= %d %s, want %d naming %s", r.Status, r.Body, tt.status, tt.field)
			}
		})
	}
	if after := e.snapshot(); len(after) != len(before) || after["1"] != before["1"] {
		t.Error("a refused report changed state")
	}
}

func TestCapacityAndSnapshots(t *testing.T) {
	e := newEnv(t, withCapacity)
	var c tollgate.CapacitySnapshot
	r := e.do(http.MethodGet, e.decision+"/v1/capacity", nil)
	if r.Status != http.StatusOK {
		t.Fatalf("GET /v1/capacity = %d %s", r.Status, r.Body)
	}
	r.decode(t, &c)
	if c.Vendors.Total != 4 || c.Vendors.Active != 3 || c.Usage.OrdersThisPeriod != 90 || c.Tiers["essential"]["active"] != 2 || c.StoreSizeBytes == 0 {
		t.Errorf("capacity = %+v", c)
	}

	snaps := e.decision + "/v1/capacity/snapshots"
	if r := e.do(http.MethodPost, snaps, nil); r.Status != http.StatusUnauthorized {
		t.Errorf("POST without token = %d", r.Status)
	}
	if r := e.admin(http.MethodPost, snaps, nil); r.Status != http.StatusCreated {
		t.Fatalf("first POST = %d %s", r.Status, r.Body)
	}
	var res api.SnapshotResult
	r = e.admin(http.MethodPost, snaps, nil)
	r.decode(t, &res)
	today := time.Now().UTC().Format(tollgate.DateLayout)
	if r.Status != http.StatusOK || res.Created || res.Snapshot.Date != today {
		t.Errorf("second POST = %d %+v", r.Status, res)
	}
	var list api.SnapshotList
	e.do(http.MethodGet, snaps+"?from="+today+"&to="+today, nil).decode(t, &list)
	if len(list.Snapshots) != 1 || list.Snapshots[0].Vendors.Total != 4 {
		t.Errorf("list = %+v", list)
	}
	for q, field := range map[string]string{"?from=2026-13-01": "from", "?to=yesterday": "to", "?from=2026-03-02&to=2026-03-01": "from"} {
		if r := e.do(http.MethodGet, snaps+q, nil); r.Status != 400 || !strings.Contains(string(r.Body), field) {
			t.Errorf("GET %s = %d %s, want 400 naming %s", q, r.Status, r.Body, field)
		}
	}
}

func TestCatalogDryRun(t *testing.T) {
	e := newEnv(t, withCapacity)
	cand := tollgate.DefaultCatalog()
	cand.Tiers[0].OrdersPerMonth = ptr(int64(50))
	before := e.snapshot()
	r := e.do(http.MethodPost, e.decision+"/v1/catalog/dry-run?limit=5", cand)
	if r.Status != http.StatusOK {
		t.Fatalf("dry run = %d %s", r.Status, r.Body)
	}
	var res tollgate.DryRunResult
	r.decode(t, &res)
	if len(res.Rules) != 1 || res.Rules[0].Rule != "orders_limit" || strings.Join(res.Rules[0].VendorIDs, ",") != "4" || res.Rules[0].ByTier["essential"] != 1 {
		t.Errorf("dry run = %+v", res)
	}
	if res.VendorsChecked != 4 {
		t.Errorf("checked %d vendors", res.VendorsChecked)
	}
	bad := tollgate.DefaultCatalog()
	bad.Tiers[1].OrdersPerMonth = ptr(int64(-5))
	for _, tt := range []struct {
		name, query string
		body        any
		want        string
	}{
		{"negative limit in a tier", "", bad, "tiers[professional].orders_per_month"},
		{"bad ?limit", "?limit=0", cand, "limit"},
		{"unknown field", "", `{"tiers":[],"bogus":1}`, "bogus"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do(http.MethodPost, e.decision+"/v1/catalog/dry-run"+tt.query, tt.body)
			if r.Status != 400 || !strings.Contains(string(r.Body), tt.want) {
				t.Errorf("= %d %s, want 400 naming %s", r.Status, r.Body, tt.want)
			}
		})
	}
	var tiers tollgate.Catalog
	e.do(http.MethodGet, e.decision+"/v1/tiers", nil).decode(t, &tiers)
	if *tiers.Tiers[0].OrdersPerMonth != 100 {
		t.Error("the dry run changed the catalog in service")
	}
	if after := e.snapshot(); after["4"] != before["4"] {
		t.Error("the dry run changed a vendor")
	}
}

// TestStaleModes: stale answers follow --when-stale, per action, and say so.
func TestStaleModes(t *testing.T) {
	fresh := tollgate.NewFreshness(time.Minute, time.Now())
	stale := tollgate.NewFreshness(time.Minute, time.Now().Add(-time.Hour))
	modes, err := tollgate.ParseWhenStale("order.create=deny, feature.use=allow, *=evaluate")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		freshness *tollgate.Freshness
		body      string
		allow     bool
		code      string
		stale     bool
		mode      string
	}{
		{"deny order", stale, `{"vendor_id":"1","action":"order.create"}`, false, "stale", true, "deny"},
		{"deny keeps a real denial", stale, `{"vendor_id":"3","action":"order.create"}`, false, "inactive", true, "deny"},
		{"allow feature", stale, `{"vendor_id":"1","action":"feature.use","feature":"api_access"}`, true, "ok", true, "allow"},
		{"evaluate others", stale, `{"vendor_id":"1","action":"product.add","count":3}`, true, "ok", true, "evaluate"},
		{"evaluate denial", stale, `{"vendor_id":"1","action":"product.add","count":300}`, false, "limit_reached", true, "evaluate"},
		{"fresh", fresh, `{"vendor_id":"1","action":"order.create"}`, true, "ok", false, ""},
		{"fresh after an event", func() *tollgate.Freshness {
			f := tollgate.NewFreshness(time.Minute, time.Now().Add(-time.Hour))
			f.Applied(time.Now())
			return f
		}(), `{"vendor_id":"1","action":"order.create"}`, true, "ok", false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, func(cfg *api.Config) { cfg.Checker.Freshness, cfg.Checker.WhenStale = tt.freshness, modes })
			r := e.do(http.MethodPost, e.decision+"/v1/check", tt.body)
			var d tollgate.Decision
			r.decode(t, &d)
			if d.Allow != tt.allow || d.Code != tt.code || d.Stale != tt.stale || d.StaleMode != tt.mode {
				t.Errorf("got %s", r.Body)
			}
			if !tt.stale && strings.Contains(string(r.Body), "stale_mode") {
				t.Errorf("fresh answer carries stale_mode: %s", r.Body)
			}
		})
	}
	if _, err := tollgate.ParseWhenStale("order.create=maybe"); err == nil {
		t.Error("a bad mode was accepted")
	}
}

// TestChecksRefreshUsage: a check's count and an allowed feature.use become usage facts once
// the store flushes them.
func TestChecksRefreshUsage(t *testing.T) {
	e := newEnv(t, func(cfg *api.Config) { cfg.Checker.Noter = cfg.Store.(*cache.Store) })
	for _, body := range []string{
		`{"vendor_id":"2","action":"product.add","count":33}`,
		`{"vendor_id":"2","action":"feature.use","feature":"customer_export"}`,
		`{"vendor_id":"2","action":"feature.use","feature":"api_access"}`,
	} {
		if r := e.do(http.MethodPost, e.decision+"/v1/check", body); r.Status != 200 {
			t.Fatalf("%s = %d", body, r.Status)
		}
	}
	e.store.FlushNoted(context.Background())
	var view api.VendorView
	e.do(http.MethodGet, e.decision+"/v1/vendors/2", nil).decode(t, &view)
	if view.Usage.Products == nil || *view.Usage.Products != 33 || strings.Join(view.Usage.FeaturesUsed, ",") != "customer_export" {
		t.Errorf("usage = %+v", view.Usage)
	}
}
