package modeldb_test

import (
	"context"
	"crypto/sha256"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tollgate-pdp/tollgate"
	"github.com/tollgate-pdp/tollgate/modeldb"
	"github.com/tollgate-pdp/tollgate/modeldb/modeltest"
)

var (
	t0        = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	processed = time.Date(2026, 12, 7, 14, 25, 20, 768411000, time.UTC)
)

// databases runs fn against a SQLite file and the test PostgreSQL, each with the model's schema.
func databases(t *testing.T, fn func(t *testing.T, db *modeltest.DB)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, modeltest.SQLite(t, filepath.Join(t.TempDir(), "app.db"))) })
	t.Run("postgres", func(t *testing.T) { fn(t, modeltest.Postgres(t)) })
}

// seed fills the tables with one row of every kind the import maps.
func seed(t *testing.T, db *modeltest.DB) {
	db.Insert(t, "platforms", modeltest.Row{"id": 1, "code": "oms", "name": "OMS"})
	db.Insert(t, "subscription_tiers", modeltest.Row{"id": 1, "code": "essential", "name": "Essential",
		"price_monthly_cents": 4900, "price_annual_cents": 49000, "orders_per_month": 100, "products_limit": 200,
		"team_members": 1, "order_history_months": 6, "display_order": 1, "is_active": true, "is_public": true,
		"features":          modeltest.JSON(`["letzshop_sync", "inventory_basic", "invoice_lu", "customer_view"]`),
		"stripe_product_id": "prod_ess", "stripe_price_monthly_id": "price_ess_m", "stripe_price_annual_id": "price_ess_y"})
	db.Insert(t, "subscription_tiers", modeltest.Row{"id": 2, "platform_id": 1, "code": "business", "name": "OMS Business",
		"price_monthly_cents": 25000, "orders_per_month": 3000, "team_members": 12, "cms_pages_limit": 40,
		"cms_custom_pages_limit": 10, "display_order": 3, "is_active": true, "is_public": false,
		"features": modeltest.JSON(`["api_access", "white_label"]`)})
	db.Insert(t, "addon_products", modeltest.Row{"id": 1, "code": "domain", "name": "Custom domain", "category": "domain",
		"price_cents": 1500, "billing_period": "annual", "stripe_product_id": "prod_dom", "stripe_price_id": "price_dom",
		"display_order": 2, "is_active": true})
	db.Insert(t, "vendor_subscriptions", modeltest.Row{"id": 1, "vendor_id": 42, "tier_id": 2, "tier": "essential",
		"status": "active", "period_start": t0, "period_end": t0.AddDate(0, 1, 0), "is_annual": true,
		"trial_ends_at": t0.AddDate(0, 0, -10), "card_collected_at": processed, "orders_this_period": 17,
		"orders_limit_reached_at": nil, "custom_orders_limit": 5000, "stripe_customer_id": "cus_42",
		"stripe_subscription_id": "sub_42", "stripe_price_id": "price_x", "stripe_payment_method_id": "pm_42",
		"proration_behavior": "create_prorations", "scheduled_tier_change": "essential", "scheduled_change_at": t0.AddDate(0, 1, 0),
		"payment_retry_count": 2, "last_payment_error": "card_declined", "cancelled_at": nil, "cancellation_reason": nil})
	db.Insert(t, "vendor_subscriptions", modeltest.Row{"id": 2, "vendor_id": 7, "tier": "professional", "status": "trial",
		"period_start": t0, "period_end": t0.AddDate(0, 1, 0), "is_annual": false, "orders_this_period": 0,
		"payment_retry_count": 0, "stripe_subscription_id": "sub_7"})
	db.Insert(t, "vendor_addons", modeltest.Row{"id": 1, "vendor_id": 42, "addon_product_id": 1, "status": "active",
		"domain_name": "shop.example.com", "quantity": 1, "stripe_subscription_item_id": "si_1",
		"period_start": t0, "period_end": t0.AddDate(1, 0, 0)})
	db.Insert(t, "billing_history", modeltest.Row{"id": 1, "vendor_id": 42, "stripe_invoice_id": "in_1",
		"stripe_payment_intent_id": "pi_1", "invoice_number": "INV-1", "invoice_date": t0, "due_date": t0.AddDate(0, 0, 14),
		"subtotal_cents": 20000, "tax_cents": 3400, "total_cents": 23400, "amount_paid_cents": 23400, "currency": "EUR",
		"status": "paid", "hosted_invoice_url": "https://pay.example/in_1", "invoice_pdf_url": "https://pay.example/in_1.pdf",
		"line_items": modeltest.JSON(`[{"description": "OMS Business", "amount": 20000, "quantity": 1}]`)})
	db.Insert(t, "stripe_webhook_events", modeltest.Row{"id": 1, "event_id": "evt_done", "event_type": "invoice.paid",
		"status": "processed", "processed_at": processed, "vendor_id": 42, "subscription_id": 1, "created_at": processed})
	db.Insert(t, "stripe_webhook_events", modeltest.Row{"id": 2, "event_id": "evt_pending", "event_type": "invoice.paid",
		"status": "pending", "vendor_id": 42})
	db.Insert(t, "capacity_snapshots", modeltest.Row{"id": 1, "snapshot_date": t0, "total_vendors": 2, "active_vendors": 1,
		"trial_vendors": 1, "total_subscriptions": 2, "active_subscriptions": 2, "total_products": 150,
		"total_orders_month": 17, "total_team_members": 3, "storage_used_gb": 1.5, "db_size_mb": 12.25,
		"theoretical_orders_limit": 5500, "tier_distribution": modeltest.JSON(`{"business": 1, "professional": 1}`),
		"avg_response_ms": 40, "peak_cpu_percent": 55.5})
}

func TestReadMapsEveryTable(t *testing.T) {
	databases(t, func(t *testing.T, db *modeltest.DB) {
		seed(t, db)
		res, err := modeldb.Read(context.Background(), db.URL, modeldb.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Problems) != 0 {
			t.Fatalf("problems: %v", res.Problems)
		}
		// Catalog: both database tiers, and TIER_LIMITS' professional for vendor 7 (tier_id NULL).
		var codes []string
		for _, tr := range res.Catalog.Tiers {
			codes = append(codes, tr.Platform+"/"+tr.Code)
		}
		if want := []string{"/essential", "oms/business", "/professional"}; !slices.Equal(codes, want) {
			t.Fatalf("catalog tiers %v, want %v", codes, want)
		}
		biz, _ := res.Catalog.Lookup("oms", "business")
		if *biz.OrdersPerMonth != 3000 || biz.ProductsLimit != nil || *biz.TeamMembers != 12 || *biz.CMSPagesLimit != 40 ||
			*biz.CMSCustomPagesLimit != 10 || biz.IsPublic || !biz.IsActive || biz.PriceAnnualCents != nil ||
			!slices.Equal(biz.Features, []string{"api_access", "white_label"}) || biz.DisplayOrder != 3 {
			t.Fatalf("platform tier: %+v", biz)
		}
		ess, _ := res.Catalog.Lookup("", "essential")
		if ess.StripePriceAnnualID != "price_ess_y" || ess.StripeProductID != "prod_ess" || *ess.PriceAnnualCents != 49000 {
			t.Fatalf("essential: %+v", ess)
		}
		if len(res.Catalog.AddOns) != 1 || res.Catalog.AddOns[0] != (tollgate.AddOn{Code: "domain", Name: "Custom domain",
			Category: "domain", PriceCents: 1500, BillingPeriod: "annual", StripePriceID: "price_dom",
			StripeProductID: "prod_dom", DisplayOrder: 2, IsActive: true}) {
			t.Fatalf("add-ons: %+v", res.Catalog.AddOns)
		}
		// Subscriptions: tier_id wins over the tier column and brings its platform.
		subs := res.Batch.Subscriptions
		if len(subs) != 2 {
			t.Fatalf("subscriptions: %+v", subs)
		}
		s := subs[0].Subscription
		if s.VendorID != "42" || s.Tier != "business" || s.Platform != "oms" || s.Status != "active" || !s.IsAnnual ||
			subs[0].OrdersThisPeriod != 17 || *s.CustomOrdersLimit != 5000 || s.StripeCustomerID != "cus_42" ||
			s.StripePaymentMethodID != "pm_42" || s.ScheduledTierChange != "essential" || s.PaymentRetryCount != 2 ||
			s.LastPaymentError != "card_declined" || !s.CardCollectedAt.Equal(processed) || !s.PeriodStart.Equal(t0) {
			t.Fatalf("vendor 42: %+v", s)
		}
		if len(s.AddOns) != 1 || s.AddOns[0].Code != "domain" || s.AddOns[0].DomainName != "shop.example.com" ||
			s.AddOns[0].StripeItem != "si_1" || s.AddOns[0].Quantity != 1 {
			t.Fatalf("vendor 42 add-ons: %+v", s.AddOns)
		}
		if v7 := subs[1].Subscription; v7.VendorID != "7" || v7.Tier != "professional" || v7.Platform != "" || v7.IsAnnual {
			t.Fatalf("vendor 7: %+v", v7)
		}
		// History.
		if len(res.Batch.Invoices) != 1 {
			t.Fatalf("invoices: %+v", res.Batch.Invoices)
		}
		inv := res.Batch.Invoices[0]
		if inv.ID != "in_1" || inv.VendorID != "42" || inv.Total != 23400 || inv.Tax != 3400 || inv.Currency != "eur" ||
			inv.AmountRemaining != 0 || inv.PaymentIntentID != "pi_1" || len(inv.Lines) != 1 || inv.Lines[0].Amount != 20000 ||
			!inv.Created.Equal(t0) || !inv.DueDate.Equal(t0.AddDate(0, 0, 14)) {
			t.Fatalf("invoice: %+v", inv)
		}
		if len(res.Batch.Events) != 1 {
			t.Fatalf("events: %+v", res.Batch.Events)
		}
		ev := res.Batch.Events[0]
		if ev.ID != "evt_done" || ev.Status != tollgate.OutcomeProcessed || ev.SubscriptionID != "sub_42" ||
			!ev.ProcessedAt.Equal(processed) || ev.Source != tollgate.EventSourceImport {
			t.Fatalf("event: %+v", ev)
		}
		if len(res.Notes) == 0 || !strings.Contains(strings.Join(notes(res), "\n"), `stripe_webhook_events id=2: event evt_pending (invoice.paid) has status "pending"`) {
			t.Fatalf("the pending event is not noted: %v", res.Notes)
		}
		if len(res.Batch.Snapshots) != 1 {
			t.Fatalf("snapshots: %+v", res.Batch.Snapshots)
		}
		sn := res.Batch.Snapshots[0]
		if sn.Date != "2026-12-01" || sn.Vendors.Total != 2 || sn.Usage.StorageBytes != 1_500_000_000 ||
			sn.StoreSizeBytes != 12_250_000 || sn.Limits.Orders.Sum != 5500 || sn.Tiers["business"]["all"] != 1 ||
			sn.Decisions.AverageLatencySecs != 0.04 || sn.Process.PeakCPUCores != 0.555 {
			t.Fatalf("snapshot: %+v", sn)
		}
		want := map[string][3]int{modeldb.TableSubscriptions: {2, 2, 0}, modeldb.TableWebhookEvents: {2, 1, 0},
			modeldb.TableVendorAddOns: {1, 1, 0}, modeldb.TableTiers: {2, 2, 0}}
		for _, c := range res.Counts {
			if w, ok := want[c.Table]; ok && (c.Rows != w[0] || c.Imported != w[1] || c.Refused != w[2]) {
				t.Errorf("%s: %+v, want rows/imported/refused %v", c.Table, c, w)
			}
		}
	})
}

func notes(r *modeldb.Result) []string {
	var out []string
	for _, n := range r.Notes {
		out = append(out, n.String())
	}
	return out
}

func TestReadNamesEveryProblem(t *testing.T) {
	databases(t, func(t *testing.T, db *modeltest.DB) {
		db.Insert(t, "subscription_tiers", modeltest.Row{"id": 1, "code": "essential", "name": "Essential",
			"price_monthly_cents": 4900, "orders_per_month": 150, "products_limit": 200, "team_members": 1,
			"is_active": true, "is_public": true, "features": modeltest.JSON(`["letzshop_sync"]`)})
		db.Insert(t, "subscription_tiers", modeltest.Row{"id": 2, "code": "gold", "name": "Gold",
			"price_monthly_cents": 100, "is_active": true, "is_public": true, "features": modeltest.JSON(`{"not": "a list"}`)})
		db.Insert(t, "subscription_tiers", modeltest.Row{"id": 3, "code": "silver", "name": "Silver",
			"price_monthly_cents": 100, "orders_per_month": -1, "is_active": true, "is_public": true})
		db.Insert(t, "addon_products", modeltest.Row{"id": 1, "code": "box", "name": "Box", "category": "boxes",
			"price_cents": 1, "billing_period": "monthly", "is_active": true})
		sub := func(id, vendor int, tier string, extra modeltest.Row) {
			r := modeltest.Row{"id": id, "vendor_id": vendor, "tier": tier, "status": "active", "period_start": t0,
				"period_end": t0.AddDate(0, 1, 0), "is_annual": false, "orders_this_period": 0, "payment_retry_count": 0}
			for k, v := range extra {
				r[k] = v
			}
			db.Insert(t, "vendor_subscriptions", r)
		}
		sub(1, 1, "essential", nil)                                     // tier_id NULL, row 1 differs from TIER_LIMITS
		sub(2, 2, "platinum", nil)                                      // unknown tier
		sub(3, 3, "business", modeltest.Row{"status": "frozen"})        // bad status
		sub(4, 4, "business", modeltest.Row{"orders_this_period": -3})  // negative count
		sub(5, 5, "business", modeltest.Row{"tier_id": 2})              // tier row refused
		sub(6, 6, "business", modeltest.Row{"custom_team_limit": -1})   // negative override
		sub(7, 7, "business", modeltest.Row{"payment_retry_count": -2}) // negative count
		sub(8, 8, "essential", modeltest.Row{"tier_id": 1})             // fine: the row is used
		db.Insert(t, "vendor_addons", modeltest.Row{"id": 1, "vendor_id": 8, "addon_product_id": 1, "status": "active", "quantity": 1})
		db.Insert(t, "billing_history", modeltest.Row{"id": 1, "vendor_id": 8, "invoice_date": t0, "subtotal_cents": 1,
			"tax_cents": 0, "total_cents": -5, "amount_paid_cents": 0, "currency": "EUR", "status": "open"})
		res, err := modeldb.Read(context.Background(), db.URL, modeldb.Options{})
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]bool{}
		for _, p := range res.Problems {
			got[p.String()] = true
		}
		for _, want := range []string{
			`subscription_tiers id=2: features: must be a JSON array of feature codes, got "{\"not\": \"a list\"}"`,
			`subscription_tiers id=3: tiers[silver].orders_per_month: must be >= 0 or null (unlimited), got -1`,
			`addon_products id=1: add_ons[box].category: must be one of domain, ssl, email, storage, got "boxes"`,
			`vendor_subscriptions id=1: tier_id: is NULL, so the model decides with its built-in "essential" limits, but subscription_tiers row 1 (global "essential") differs (orders_per_month 150 vs 100); set tier_id = 1 to keep the row's limits, or make the row match`,
			`vendor_subscriptions id=2: tier: unknown tier "platinum": tier_id is NULL and the model's TIER_LIMITS has no such tier`,
			`vendor_subscriptions id=3: status: must be one of trial, active, past_due, cancelled, expired, got "frozen"`,
			`vendor_subscriptions id=4: orders_this_period: must be >= 0, got -3`,
			`vendor_subscriptions id=5: tier_id: subscription_tiers row 2 is refused (see its problem)`,
			`vendor_subscriptions id=6: custom_team_limit: must be >= 0 or null, got -1`,
			`vendor_subscriptions id=7: payment_retry_count: must be >= 0, got -2`,
			`vendor_addons id=1: addon_product_id: no importable addon_products row with id 1`,
			`billing_history id=1: total_cents: must be >= 0, got -5`,
		} {
			if !got[want] {
				t.Errorf("missing problem %s", want)
			}
		}
		if len(res.Problems) != 12 {
			t.Errorf("%d problems, want 12: %v", len(res.Problems), res.Problems)
		}
		for _, p := range res.Problems {
			if p.Field == "" || p.RowID == 0 {
				t.Errorf("problem without field or row: %+v", p)
			}
		}
		if len(res.Batch.Subscriptions) != 1 || res.Batch.Subscriptions[0].Subscription.VendorID != "8" {
			t.Errorf("imported %+v, want vendor 8 only", res.Batch.Subscriptions)
		}
	})
}

// TestReadIsReadOnly: the SQLite file is byte for byte unchanged, and the PostgreSQL snapshot
// refuses writes (the transaction is READ ONLY).
func TestReadIsReadOnly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.db")
	db := modeltest.SQLite(t, path)
	seed(t, db)
	before := fileSum(t, path)
	if _, err := modeldb.Read(context.Background(), db.URL, modeldb.Options{}); err != nil {
		t.Fatal(err)
	}
	if fileSum(t, path) != before {
		t.Fatal("the SQLite file changed")
	}
}

func fileSum(t *testing.T, path string) [32]byte {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

func TestReadRefusesBadURLs(t *testing.T) {
	dir := t.TempDir()
	tests := []struct{ url, want string }{
		{"mysql://x", `database-url: must start with sqlite:// or postgres://, got "mysql://x"`},
		{"sqlite://" + filepath.Join(dir, "missing.db"), "database-url: cannot read SQLite file"},
		{"sqlite://", "database-url: names no file"},
	}
	for _, tt := range tests {
		_, err := modeldb.Read(context.Background(), tt.url, modeldb.Options{})
		if err == nil || !strings.Contains(tollgate.ErrorMessage(err), tt.want) {
			t.Errorf("%s: %v, want %q", tt.url, err, tt.want)
		}
	}
	empty := filepath.Join(dir, "empty.db")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := modeldb.Read(context.Background(), "sqlite://"+empty, modeldb.Options{})
	if err == nil || !strings.Contains(err.Error(), "has no vendor_subscriptions table") {
		t.Errorf("empty file: %v", err)
	}
}

// TestReadReportsProgress: the callback sees every row, against the total counted first.
func TestReadReportsProgress(t *testing.T) {
	db := modeltest.SQLite(t, filepath.Join(t.TempDir(), "app.db"))
	seed(t, db)
	var calls, last, total int
	_, err := modeldb.Read(context.Background(), db.URL, modeldb.Options{Progress: func(done, n int) {
		calls++
		if done != last+1 {
			t.Errorf("progress went from %d to %d", last, done)
		}
		last, total = done, n
	}})
	if err != nil {
		t.Fatal(err)
	}
	if rows := 11; calls != rows || last != rows || total != rows {
		t.Fatalf("progress: %d calls, last %d of %d; want %d rows", calls, last, total, rows)
	}
}

// TestReadWithoutTierRowsIsTheBuiltInCatalog: a database that never filled subscription_tiers
// decides with TIER_LIMITS, so the catalog is the built-in one, all four tiers.
func TestReadWithoutTierRowsIsTheBuiltInCatalog(t *testing.T) {
	db := modeltest.SQLite(t, filepath.Join(t.TempDir(), "app.db"))
	db.Insert(t, "vendor_subscriptions", modeltest.Row{"id": 1, "vendor_id": 42, "tier": "business", "status": "active",
		"period_start": t0, "period_end": t0.AddDate(0, 1, 0), "is_annual": 0, "orders_this_period": 3, "payment_retry_count": 0})
	res, err := modeldb.Read(context.Background(), db.URL, modeldb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Catalog.Revision() != tollgate.DefaultCatalog().Revision() {
		t.Fatalf("catalog %+v, want the built-in one", res.Catalog)
	}
	if want := "subscription_tiers: no global row for essential, professional, business, enterprise: the model's built-in TIER_LIMITS tiers are added to the catalog (rows with tier_id NULL use them)"; !slices.Contains(notes(res), want) {
		t.Fatalf("notes %v lack %q", notes(res), want)
	}
}

// TestReadIsOneSnapshot: rows the application commits while the import reads (here: after the
// first row) are not seen, in any table: every table comes from the same instant. SQLite runs
// in WAL mode, where a writer can commit beside a reader.
func TestReadIsOneSnapshot(t *testing.T) {
	databases(t, func(t *testing.T, db *modeltest.DB) {
		if !db.Postgres {
			db.Exec(t, "PRAGMA journal_mode=WAL")
		}
		seed(t, db)
		wrote := false
		res, err := modeldb.Read(context.Background(), db.URL, modeldb.Options{Progress: func(done, _ int) {
			if done == 1 {
				db.Insert(t, "vendor_subscriptions", modeltest.Row{"id": 99, "vendor_id": 99, "tier": "essential",
					"status": "active", "period_start": t0, "period_end": t0.AddDate(0, 1, 0), "is_annual": false,
					"orders_this_period": 0, "payment_retry_count": 0})
				db.Insert(t, "billing_history", modeltest.Row{"id": 99, "vendor_id": 42, "stripe_invoice_id": "in_99",
					"invoice_date": t0, "subtotal_cents": 1, "tax_cents": 0, "total_cents": 1, "amount_paid_cents": 0,
					"currency": "EUR", "status": "open"})
				wrote = true
			}
		}})
		if err != nil {
			t.Fatal(err)
		}
		if !wrote {
			t.Fatal("nothing was written during the read")
		}
		if n, m := len(res.Batch.Subscriptions), len(res.Batch.Invoices); n != 2 || m != 1 {
			t.Fatalf("the read saw rows committed after it started: %d subscriptions, %d invoices", n, m)
		}
		again, err := modeldb.Read(context.Background(), db.URL, modeldb.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if len(again.Batch.Subscriptions) != 3 || len(again.Batch.Invoices) != 2 {
			t.Fatalf("a later read misses the new rows: %d, %d", len(again.Batch.Subscriptions), len(again.Batch.Invoices))
		}
	})
}
