package main

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tollgate-pdp/tollgate"
	"github.com/tollgate-pdp/tollgate/cache"
	"github.com/tollgate-pdp/tollgate/modeldb/modeltest"
)

// smallModel is a model database with one row of each kind, vendor 42 on the essential tier
// row with Stripe subscription sub_42, and one event the old application processed.
func smallModel(t *testing.T, db *modeltest.DB, now time.Time) {
	start := now.Add(-5 * 24 * time.Hour).Truncate(time.Microsecond)
	db.Insert(t, "subscription_tiers", modeltest.Row{"id": 1, "code": "essential", "name": "Essential",
		"price_monthly_cents": 4900, "price_annual_cents": 49000, "orders_per_month": 100, "products_limit": 200,
		"team_members": 1, "order_history_months": 6, "display_order": 1, "is_active": true, "is_public": true,
		"features": modeltest.JSON(`["letzshop_sync", "inventory_basic", "invoice_lu", "customer_view"]`)})
	db.Insert(t, "vendor_subscriptions", modeltest.Row{"id": 1, "vendor_id": 42, "tier_id": 1, "tier": "essential",
		"status": "active", "period_start": start, "period_end": start.AddDate(0, 1, 0), "is_annual": false,
		"orders_this_period": 37, "payment_retry_count": 0, "stripe_customer_id": "cus_42",
		"stripe_subscription_id": "sub_42", "proration_behavior": "create_prorations"})
	db.Insert(t, "billing_history", modeltest.Row{"id": 1, "vendor_id": 42, "stripe_invoice_id": "in_42",
		"invoice_date": start, "subtotal_cents": 4900, "tax_cents": 0, "total_cents": 4900, "amount_paid_cents": 4900,
		"currency": "EUR", "status": "paid"})
	db.Insert(t, "stripe_webhook_events", modeltest.Row{"id": 1, "event_id": "evt_done",
		"event_type": "customer.subscription.updated", "status": "processed", "processed_at": now.Add(-time.Hour),
		"vendor_id": 42, "subscription_id": 1})
	db.Insert(t, "capacity_snapshots", modeltest.Row{"id": 1, "snapshot_date": start, "total_vendors": 1,
		"active_vendors": 1, "trial_vendors": 0, "total_subscriptions": 1, "active_subscriptions": 1,
		"total_products": 10, "total_orders_month": 37, "total_team_members": 1, "storage_used_gb": 0.5, "db_size_mb": 3})
}

// storeContents is what an import leaves in the store, without the bookkeeping that changes
// on every write (revision, updated_at).
type storeContents struct {
	Subs      map[string]tollgate.Subscription
	Orders    map[string]int64
	Invoices  []tollgate.Invoice
	Events    []tollgate.WebhookEvent
	Snapshots []tollgate.CapacitySnapshot
}

func readStore(t *testing.T, dataDir string) storeContents {
	t.Helper()
	ctx := context.Background()
	st, err := cache.Open(ctx, cache.Options{Path: storePath(dataDir)})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	c := storeContents{Subs: map[string]tollgate.Subscription{}, Orders: map[string]int64{}}
	st.ForEachVendor(func(v *tollgate.VendorState) bool {
		s := v.Subscription
		s.UpdatedAt = nil
		c.Subs[s.VendorID] = s
		for _, p := range v.Usage.Periods {
			c.Orders[s.VendorID] += p.Orders
		}
		return true
	})
	for id := range c.Subs {
		inv, err := st.Billing(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		c.Invoices = append(c.Invoices, inv...)
	}
	if c.Events, err = st.Events(ctx, tollgate.EventFilter{}); err != nil {
		t.Fatal(err)
	}
	if c.Snapshots, err = st.Snapshots(ctx, "", ""); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestImportDatabaseTwiceGivesTheSameStore: orders_this_period sets the current period's
// count, so a second run does not add it again; invoices, events and snapshots are the same.
func TestImportDatabaseTwiceGivesTheSameStore(t *testing.T) {
	db := modeltest.SQLite(t, filepath.Join(t.TempDir(), "app.db"))
	smallModel(t, db, time.Now().UTC())
	dataDir := filepath.Join(t.TempDir(), "data")
	catalog := filepath.Join(t.TempDir(), "catalog.yaml")
	// The database has its own tiers: without --catalog-out serve would not know them.
	if _, _, err := run(t, "import", "--database-url", db.URL, "--data-dir", dataDir); err == nil ||
		!strings.Contains(err.Error(), "--catalog-out is required") {
		t.Fatalf("import without --catalog-out: %v", err)
	}
	if _, err := os.Stat(dataDir); !os.IsNotExist(err) {
		t.Fatalf("a refused import created the data directory: %v", err)
	}
	var runs []storeContents
	for i := range 2 {
		if out, stderr, err := run(t, "import", "--database-url", db.URL, "--data-dir", dataDir, "--catalog-out", catalog); err != nil {
			t.Fatalf("import %d: %v\n%s\n%s", i+1, err, out, stderr)
		}
		runs = append(runs, readStore(t, dataDir))
	}
	if runs[0].Orders["42"] != 37 {
		t.Fatalf("orders after the first import: %d, want 37", runs[0].Orders["42"])
	}
	if !reflect.DeepEqual(runs[0], runs[1]) {
		t.Fatalf("the second import changed the store:\n%+v\n%+v", runs[0], runs[1])
	}
	if len(runs[1].Invoices) != 1 || len(runs[1].Events) != 1 || len(runs[1].Snapshots) != 1 {
		t.Fatalf("history: %+v", runs[1])
	}
}

// TestImportDatabaseDryRunWritesNothing: the data directory and the catalog file are not
// created; every row and every problem is printed, then the summary.
func TestImportDatabaseDryRunWritesNothing(t *testing.T) {
	db := modeltest.SQLite(t, filepath.Join(t.TempDir(), "app.db"))
	smallModel(t, db, time.Now().UTC())
	db.Insert(t, "vendor_subscriptions", modeltest.Row{"id": 2, "vendor_id": 43, "tier": "gold", "status": "active",
		"period_start": time.Now(), "period_end": time.Now().AddDate(0, 1, 0), "is_annual": 1,
		"orders_this_period": 0, "payment_retry_count": 0})
	dir := t.TempDir()
	dataDir, catalog := filepath.Join(dir, "data"), filepath.Join(dir, "catalog.yaml")
	out, stderr, err := run(t, "import", "--database-url", db.URL, "--data-dir", dataDir, "--catalog-out", catalog, "--dry-run")
	if err != nil {
		t.Fatalf("dry run: %v\n%s\n%s", err, out, stderr)
	}
	for _, want := range []string{
		"vendor_subscriptions id=1: vendor 42: tier essential, status active, 37 orders this period",
		"billing_history id=1: invoice in_42 of vendor 42, paid, total 4900 eur",
		"stripe_webhook_events id=1: event evt_done (customer.subscription.updated) marked as processed",
		"dry run: 1 problem(s); nothing written",
		"vendor_subscriptions   2     1         1        0",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if want := `problem: vendor_subscriptions id=2: tier: unknown tier "gold"`; !strings.Contains(stderr, want) {
		t.Errorf("stderr lacks %q:\n%s", want, stderr)
	}
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) != 0 {
		t.Fatalf("a dry run wrote %v (%v)", entries, err)
	}
	// Without --dry-run the problem refuses the whole import: still nothing written.
	if _, _, err := run(t, "import", "--database-url", db.URL, "--data-dir", dataDir, "--catalog-out", catalog); err == nil ||
		!strings.Contains(err.Error(), "1 problem(s); nothing imported") {
		t.Fatalf("import with a problem: %v", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("a refused import wrote %v", entries)
	}
}

// TestImportedEventReplayIsDuplicate: an event the old application processed is in the event
// log after the import, so Stripe redelivering it at cut-over changes nothing; the same event
// under a new id is applied (the replay would have changed the state).
func TestImportedEventReplayIsDuplicate(t *testing.T) {
	now := time.Now().UTC()
	db := modeltest.SQLite(t, filepath.Join(t.TempDir(), "app.db"))
	smallModel(t, db, now)
	dir := t.TempDir()
	dataDir, catalog := filepath.Join(dir, "data"), filepath.Join(dir, "catalog.yaml")
	if out, stderr, err := run(t, "import", "--database-url", db.URL, "--data-dir", dataDir, "--catalog-out", catalog); err != nil {
		t.Fatalf("import: %v\n%s\n%s", err, out, stderr)
	}
	before := readStore(t, dataDir)
	old := subscriptionEvent(t, "evt_done", "customer.subscription.updated", "42", "past_due", "essential", now)
	out, _, err := run(t, "replay", "--data-dir", dataDir, "--catalog", catalog, writeFile(t, dir, "old.jsonl", string(old)+"\n"))
	if err != nil || !strings.Contains(out, "duplicate: 1") {
		t.Fatalf("replaying an imported event: %v\n%s", err, out)
	}
	after := readStore(t, dataDir)
	if !reflect.DeepEqual(before, after) {
		t.Fatalf("a duplicate changed the store:\n%+v\n%+v", before, after)
	}
	fresh := subscriptionEvent(t, "evt_new", "customer.subscription.updated", "42", "past_due", "essential", now)
	out, _, err = run(t, "replay", "--data-dir", dataDir, "--catalog", catalog, writeFile(t, dir, "new.jsonl", string(fresh)+"\n"))
	if err != nil || !strings.Contains(out, "processed: 1") {
		t.Fatalf("replaying a new event: %v\n%s", err, out)
	}
	if got := readStore(t, dataDir).Subs["42"].Status; got != tollgate.StatusPastDue {
		t.Fatalf("the new event was not applied: status %s", got)
	}
}

// TestImportJSONLinesAsDatabasesDumpThem: a vendor_subscriptions row dumped from SQLite (0/1
// booleans, microsecond timestamps, tier_id, proration_behavior, id, created_at) imports into a
// data directory that does not exist yet; bad rows still name the line and the field.
func TestImportJSONLinesAsDatabasesDumpThem(t *testing.T) {
	dir := t.TempDir()
	rows := `{"id": 3, "vendor_id": 42, "tier_id": 2, "tier": "business", "status": "active", "period_start": "2026-12-01 00:00:00.000000", "period_end": "2026-12-31 23:59:59.999999+00:00", "is_annual": 1, "trial_ends_at": null, "card_collected_at": "2026-12-07 14:25:20.768411", "orders_this_period": 12, "orders_limit_reached_at": null, "custom_orders_limit": null, "custom_products_limit": null, "custom_team_limit": 4, "stripe_customer_id": "cus_42", "stripe_subscription_id": "sub_42", "stripe_price_id": null, "stripe_payment_method_id": null, "proration_behavior": "create_prorations", "scheduled_tier_change": null, "scheduled_change_at": null, "payment_retry_count": 0, "last_payment_error": null, "cancelled_at": null, "cancellation_reason": null, "created_at": "2026-11-01 10:00:00.123456", "updated_at": "2026-12-07 14:25:20.768411"}
{"vendor_id": 43, "tier": "essential", "status": "trial", "is_annual": 0, "period_start": "2026-12-01T00:00:00+01:00"}
`
	dataDir := filepath.Join(dir, "new", "data")
	out, stderr, err := run(t, "import", "--data-dir", dataDir, writeFile(t, dir, "rows.jsonl", rows))
	if err != nil {
		t.Fatalf("import: %v\n%s\n%s", err, out, stderr)
	}
	c := readStore(t, dataDir)
	s := c.Subs["42"]
	if !s.IsAnnual || s.Tier != "business" || *s.CustomTeamLimit != 4 || c.Orders["42"] != 12 ||
		!s.CardCollectedAt.Equal(time.Date(2026, 12, 7, 14, 25, 20, 768411000, time.UTC)) ||
		!s.PeriodEnd.Equal(time.Date(2026, 12, 31, 23, 59, 59, 999999000, time.UTC)) {
		t.Fatalf("vendor 42: %+v", s)
	}
	if v := c.Subs["43"]; v.IsAnnual || !v.PeriodStart.Equal(time.Date(2026, 11, 30, 23, 0, 0, 0, time.UTC)) {
		t.Fatalf("vendor 43: %+v", v)
	}
	bad := `{"vendor_id": 1, "tier": "gold", "status": "active"}
{"vendor_id": 2, "tier": "essential", "status": "paused"}
{"vendor_id": 3, "tier": "essential", "status": "active", "orders_this_period": -1}
{"vendor_id": 4, "tier": "essential", "status": "active", "is_annual": 2}
{"vendor_id": 5, "tier": "essential", "status": "active", "period_start": "07/12/2026"}
`
	_, stderr, err = run(t, "import", "--data-dir", dataDir, writeFile(t, dir, "bad.jsonl", bad))
	if err == nil || !strings.Contains(err.Error(), "5 invalid line(s); nothing imported") {
		t.Fatalf("bad rows: %v", err)
	}
	for _, want := range []string{
		`line 1: tier: unknown tier "gold" for platform ""`,
		`line 2: status: must be one of trial, active, past_due, cancelled, expired, got "paused"`,
		`line 3: orders_this_period: must be >= 0, got -1`,
		`line 4: is_annual: must be a boolean (true, false, 0 or 1), got 2`,
		`line 5: period_start: not a timestamp: "07/12/2026"`,
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
}

// TestImportFlagsRefuseMixing: FILE and --database-url exclude each other, and each refuses
// the other mode's flags.
func TestImportFlagsRefuseMixing(t *testing.T) {
	dir := t.TempDir()
	file := writeFile(t, dir, "rows.jsonl", "")
	db := "sqlite://" + filepath.Join(dir, "app.db")
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"import", file, "--database-url", db}, "give either FILE or --database-url, not both"},
		{[]string{"import"}, "give FILE (JSON lines) or --database-url URL"},
		{[]string{"import", file, "--catalog-out", filepath.Join(dir, "c.yaml")}, "--catalog-out: only with --database-url"},
		{[]string{"import", "--database-url", db, "--catalog", file}, "--catalog: not used with --database-url"},
		{[]string{"import", "--database-url", db}, "database-url: cannot read SQLite file"},
	}
	for _, tt := range tests {
		if _, _, err := run(t, tt.args...); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: %v, want %q", tt.args, err, tt.want)
		}
	}
}
