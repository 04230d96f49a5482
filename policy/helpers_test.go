package policy

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/tollgate-pdp/tollgate"
)

func i64(v int64) *int64 { return &v }

func strp(s string) *string { return &s }

// testCatalog is the default catalog plus platform tiers: an "oms" essential (shadowing the
// global one on oms) and an oms-only "starter".
func testCatalog() *tollgate.Catalog {
	c := tollgate.DefaultCatalog()
	c.Tiers = append(c.Tiers,
		tollgate.Tier{Code: "essential", Name: "OMS Essential", Platform: "oms",
			PriceMonthlyCents: i64(2900), OrdersPerMonth: i64(50), ProductsLimit: i64(100), TeamMembers: i64(1),
			OrderHistoryMonths: i64(3), CMSPagesLimit: i64(5), CMSCustomPagesLimit: i64(1),
			Features: []string{"letzshop_sync"}, DisplayOrder: 1, IsActive: true, IsPublic: true},
		tollgate.Tier{Code: "starter", Name: "OMS Starter", Platform: "oms",
			PriceMonthlyCents: i64(5900), OrdersPerMonth: i64(300), ProductsLimit: i64(1000), TeamMembers: i64(2),
			OrderHistoryMonths: i64(12), CMSPagesLimit: i64(20), CMSCustomPagesLimit: i64(5),
			Features: []string{"letzshop_sync", "oms_routing"}, DisplayOrder: 2, IsActive: true, IsPublic: true},
	)
	return c
}

func newEngine(tb testing.TB, opts Options) *Engine {
	tb.Helper()
	if opts.Catalog == nil {
		opts.Catalog = testCatalog()
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	e, err := New(context.Background(), opts)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	return e
}

var testNow = time.Date(2026, 3, 15, 12, 0, 0, 0, time.UTC)

func ts(t time.Time) *time.Time { return &t }

// vendor builds a vendor state with orders counted in its current period.
func vendor(tier string, status tollgate.Status, orders int64) *tollgate.VendorState {
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	end := time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)
	s := tollgate.Subscription{VendorID: "42", Tier: tier, Status: status, PeriodStart: &start, PeriodEnd: &end}
	v := &tollgate.VendorState{Subscription: s, Revision: 1}
	v.Usage.Periods = []tollgate.PeriodUsage{{Period: tollgate.PeriodKey(&s, testNow), Orders: orders}}
	return v
}

func facts(v *tollgate.VendorState, req tollgate.CheckRequest) *tollgate.Facts {
	if req.VendorID == "" {
		req.VendorID = "42"
	}
	f := &tollgate.Facts{Request: &req, Vendor: v, Now: testNow}
	if v != nil {
		f.Period = tollgate.PeriodKey(&v.Subscription, testNow)
	}
	return f
}
