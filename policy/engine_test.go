package policy

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/rego"

	"github.com/tollgate-pdp/tollgate"
)

// want is the part of a decision a test pins; upgrade "" means null.
type want struct {
	allow            bool
	code, reason     string
	limit, remaining *int64
	used             int64
	tier, status     string
	upgrade          string
}

func check(t *testing.T, got tollgate.Decision, w want) {
	t.Helper()
	up := ""
	if got.UpgradeTo != nil {
		up = *got.UpgradeTo
	}
	if got.Allow != w.allow || got.Code != w.code || got.Reason != w.reason || got.Used != w.used ||
		!reflect.DeepEqual(got.Limit, w.limit) || !reflect.DeepEqual(got.Remaining, w.remaining) ||
		got.Tier != w.tier || got.Status != w.status || up != w.upgrade {
		gb, _ := json.Marshal(got)
		t.Errorf("decision = %s\nwant %+v (limit %v remaining %v)", gb, w, deref(w.limit), deref(w.remaining))
	}
}

func deref(p *int64) any {
	if p == nil {
		return nil
	}
	return *p
}

// TestDecideRules checks the engine end to end (Go input → Rego → Decision) for each rule; the
// Rego tests and the property test cover the rules in depth.
func TestDecideRules(t *testing.T) {
	e := newEngine(t, Options{})
	ctx := context.Background()
	withOverride := func(v *tollgate.VendorState, f func(*tollgate.Subscription)) *tollgate.VendorState {
		f(&v.Subscription)
		return v
	}
	withUsage := func(v *tollgate.VendorState, f func(*tollgate.Usage)) *tollgate.VendorState {
		f(&v.Usage)
		return v
	}
	active := tollgate.StatusActive
	cases := []struct {
		name string
		v    *tollgate.VendorState
		req  tollgate.CheckRequest
		want want
	}{
		{"unknown vendor", nil, tollgate.CheckRequest{Action: "order.create"},
			want{code: "unknown_vendor", reason: "Unknown vendor"}},
		{"unknown action", vendor("essential", active, 0), tollgate.CheckRequest{Action: "invoice.send"},
			want{code: "unknown_action", reason: "Unknown action", tier: "essential", status: "active"}},
		{"expired", vendor("essential", tollgate.StatusExpired, 0), tollgate.CheckRequest{Action: "order.create"},
			want{code: "inactive", reason: "Subscription is not active", tier: "essential", status: "expired"}},
		{"cancelled, period ended", withOverride(vendor("essential", tollgate.StatusCancelled, 0), func(s *tollgate.Subscription) {
			s.PeriodEnd = ts(testNow.Add(-time.Second))
		}), tollgate.CheckRequest{Action: "order.create"},
			want{code: "inactive", reason: "Subscription is not active", tier: "essential", status: "cancelled"}},
		{"cancelled, period running", vendor("essential", tollgate.StatusCancelled, 3), tollgate.CheckRequest{Action: "order.create"},
			want{allow: true, code: "ok", limit: i64(100), used: 3, remaining: i64(97), tier: "essential", status: "cancelled"}},
		{"tier not in catalog", vendor("gold", active, 0), tollgate.CheckRequest{Action: "order.create"},
			want{code: "inactive", reason: "Subscription plan is not available", tier: "gold", status: "active"}},
		{"order allowed", vendor("essential", active, 10), tollgate.CheckRequest{Action: "order.create"},
			want{allow: true, code: "ok", limit: i64(100), used: 10, remaining: i64(90), tier: "essential", status: "active"}},
		{"order limit", vendor("essential", active, 100), tollgate.CheckRequest{Action: "order.create"},
			want{code: "limit_reached", reason: "Monthly order limit reached (100 orders). Upgrade to continue.",
				limit: i64(100), used: 100, remaining: i64(0), tier: "essential", status: "active", upgrade: "professional"}},
		{"order quantity", vendor("essential", active, 96), tollgate.CheckRequest{Action: "order.create", Quantity: i64(5)},
			want{code: "limit_reached", reason: "Monthly order limit reached (100 orders). Upgrade to continue.",
				limit: i64(100), used: 96, remaining: i64(4), tier: "essential", status: "active", upgrade: "professional"}},
		{"orders of another period do not count", withUsage(vendor("essential", active, 0), func(u *tollgate.Usage) {
			u.Periods = append(u.Periods, tollgate.PeriodUsage{Period: "2026-02-01T00:00:00Z", Orders: 500})
		}), tollgate.CheckRequest{Action: "order.create"},
			want{allow: true, code: "ok", limit: i64(100), used: 0, remaining: i64(100), tier: "essential", status: "active"}},
		{"custom order limit", withOverride(vendor("essential", active, 150), func(s *tollgate.Subscription) {
			s.CustomOrdersLimit = i64(1000)
		}), tollgate.CheckRequest{Action: "order.create"},
			want{allow: true, code: "ok", limit: i64(1000), used: 150, remaining: i64(850), tier: "essential", status: "active"}},
		{"unlimited orders", vendor("enterprise", active, 9999), tollgate.CheckRequest{Action: "order.create"},
			want{allow: true, code: "ok", used: 9999, tier: "enterprise", status: "active"}},
		{"products", vendor("essential", active, 0), tollgate.CheckRequest{Action: "product.add", Count: i64(200)},
			want{code: "limit_reached", reason: "Product limit reached (200 products). Upgrade to add more.",
				limit: i64(200), used: 200, remaining: i64(0), tier: "essential", status: "active", upgrade: "professional"}},
		{"products from reported usage", withUsage(vendor("essential", active, 0), func(u *tollgate.Usage) { u.Products = i64(12) }),
			tollgate.CheckRequest{Action: "product.add"},
			want{allow: true, code: "ok", limit: i64(200), used: 12, remaining: i64(188), tier: "essential", status: "active"}},
		{"custom products limit", withOverride(vendor("essential", active, 0), func(s *tollgate.Subscription) { s.CustomProductsLimit = i64(10) }),
			tollgate.CheckRequest{Action: "product.add", Count: i64(10)},
			want{code: "limit_reached", reason: "Product limit reached (10 products). Upgrade to add more.",
				limit: i64(10), used: 10, remaining: i64(0), tier: "essential", status: "active", upgrade: "professional"}},
		{"team", vendor("professional", active, 0), tollgate.CheckRequest{Action: "team_member.add", Count: i64(3)},
			want{code: "limit_reached", reason: "Team member limit reached (3 members). Upgrade to add more.",
				limit: i64(3), used: 3, remaining: i64(0), tier: "professional", status: "active", upgrade: "business"}},
		{"custom team limit", withOverride(vendor("professional", active, 0), func(s *tollgate.Subscription) { s.CustomTeamLimit = i64(8) }),
			tollgate.CheckRequest{Action: "team_member.add", Count: i64(3)},
			want{allow: true, code: "ok", limit: i64(8), used: 3, remaining: i64(5), tier: "professional", status: "active"}},
		{"feature missing", vendor("essential", active, 0), tollgate.CheckRequest{Action: "feature.use", Feature: "api_access"},
			want{code: "feature_missing", reason: "Feature not available on your plan", tier: "essential", status: "active", upgrade: "business"}},
		{"feature present", vendor("business", active, 0), tollgate.CheckRequest{Action: "feature.use", Feature: "api_access"},
			want{allow: true, code: "ok", tier: "business", status: "active"}},
		{"cms pages", vendor("essential", active, 0), tollgate.CheckRequest{Action: "cms_page.create", Platform: "oms", Count: i64(5)},
			want{code: "limit_reached", reason: "CMS page limit reached (5 pages). Upgrade to add more.",
				limit: i64(5), used: 5, remaining: i64(0), tier: "essential", status: "active", upgrade: "starter"}},
		{"custom cms pages", vendor("essential", active, 0), tollgate.CheckRequest{Action: "cms_page.create", Platform: "oms",
			Count: i64(1), Custom: true, CustomCount: i64(1)},
			want{code: "limit_reached", reason: "Custom CMS page limit reached (1 pages). Upgrade to add more.",
				limit: i64(1), used: 1, remaining: i64(0), tier: "essential", status: "active", upgrade: "starter"}},
		{"order history", vendor("essential", active, 0), tollgate.CheckRequest{Action: "order_history.view", Months: i64(12)},
			want{code: "limit_reached", reason: "Order history limited to 6 months on your plan. Upgrade to see more.",
				limit: i64(6), used: 12, remaining: i64(0), tier: "essential", status: "active", upgrade: "professional"}},
		{"subscription platform", withOverride(vendor("essential", active, 50), func(s *tollgate.Subscription) { s.Platform = "oms" }),
			tollgate.CheckRequest{Action: "order.create"},
			want{code: "limit_reached", reason: "Monthly order limit reached (50 orders). Upgrade to continue.",
				limit: i64(50), used: 50, remaining: i64(0), tier: "essential", status: "active", upgrade: "starter"}},
		{"platform without tiers falls back to global", vendor("essential", active, 50),
			tollgate.CheckRequest{Action: "order.create", Platform: "pos"},
			want{allow: true, code: "ok", limit: i64(100), used: 50, remaining: i64(50), tier: "essential", status: "active"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d, err := e.Decide(ctx, facts(c.v, c.req))
			if err != nil {
				t.Fatal(err)
			}
			check(t, d, c.want)
		})
	}
}

func TestDecideNeedsARequest(t *testing.T) {
	e := newEngine(t, Options{})
	if _, err := e.Decide(context.Background(), &tollgate.Facts{}); tollgate.ErrorCode(err) != tollgate.EInvalid {
		t.Fatalf("err = %v, want EInvalid", err)
	}
}

// TestExplainReproduces runs the explained input through a fresh rego evaluation of the same
// policy and catalog: it must give the same decision.
func TestExplainReproduces(t *testing.T) {
	e := newEngine(t, Options{CacheTTL: time.Minute})
	ctx := context.Background()
	v := vendor("essential", tollgate.StatusActive, 100)
	v.Subscription.AddOns = []tollgate.SubscriptionAddOn{{Code: "domain", Quantity: 1, Status: "active"}}
	f := facts(v, tollgate.CheckRequest{Action: "order.create", Explain: true})
	d, err := e.Decide(ctx, f)
	if err != nil {
		t.Fatal(err)
	}
	x := d.Explain
	if x == nil {
		t.Fatal("no explanation")
	}
	if x.PolicyRevision != e.Revision() || x.CatalogRevision != testCatalog().Revision() ||
		x.Query != "data.tollgate.decision" || x.Cached {
		t.Fatalf("explanation = %+v", x)
	}
	var input map[string]any
	if err := json.Unmarshal(x.Input, &input); err != nil {
		t.Fatal(err)
	}
	sub := input["vendor"].(map[string]any)["subscription"].(map[string]any)
	if sub["period_end"] != float64(time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC).Unix()) || input["now"] != float64(testNow.Unix()) {
		t.Fatalf("timestamps are not Unix seconds: %s", x.Input)
	}

	src, err := loadSources("")
	if err != nil {
		t.Fatal(err)
	}
	compiler, err := src.compile()
	if err != nil {
		t.Fatal(err)
	}
	store, err := catalogStore(ctx, testCatalog(), compiler)
	if err != nil {
		t.Fatal(err)
	}
	opts := []func(*rego.Rego){rego.Query(x.Query), rego.Store(store), rego.Input(input)}
	for name, text := range src {
		opts = append(opts, rego.Module(name, text))
	}
	rs, err := rego.New(opts...).Eval(ctx)
	if err != nil || len(rs) != 1 {
		t.Fatalf("fresh eval: %v %v", rs, err)
	}
	var fresh tollgate.Decision
	b, _ := json.Marshal(rs[0].Expressions[0].Value)
	if err := json.Unmarshal(b, &fresh); err != nil {
		t.Fatal(err)
	}
	d.Explain = nil
	if !reflect.DeepEqual(fresh, d) {
		t.Fatalf("fresh eval = %+v\nengine = %+v", fresh, d)
	}
	// Explain never serves (or fills) the cache.
	if h, m := e.CacheStats(); h != 0 || m != 0 {
		t.Fatalf("cache stats = %d/%d, want untouched", h, m)
	}
}

func TestQuery(t *testing.T) {
	e := newEngine(t, Options{})
	ctx := context.Background()
	input := map[string]any{
		"request": map[string]any{"action": "order.create"},
		"vendor": map[string]any{"subscription": map[string]any{"tier": "essential", "status": "active"},
			"usage": map[string]any{"orders": json.Number("100")}},
		"now": 1,
	}
	res, defined, err := e.Query(ctx, "tollgate/decision", input)
	if err != nil || !defined {
		t.Fatalf("Query = %v %v %v", res, defined, err)
	}
	m := res.(map[string]any)
	if m["code"] != "limit_reached" || m["upgrade_to"] != "professional" {
		t.Fatalf("decision = %v", m)
	}
	res, defined, err = e.Query(ctx, "/catalog/tiers_by_platform/oms/starter/code", nil)
	if err != nil || !defined || res != "starter" {
		t.Fatalf("catalog query = %v %v %v", res, defined, err)
	}
	if _, defined, err := e.Query(ctx, "tollgate/no_such_rule", nil); err != nil || defined {
		t.Fatalf("undefined doc: defined=%v err=%v", defined, err)
	}
	// Without any input the decision is undefined, exactly as OPA's own Data API answers.
	if res, defined, err := e.Query(ctx, "tollgate/decision", nil); err != nil || defined {
		t.Fatalf("no input = %v %v %v", res, defined, err)
	}
	// A null vendor is an unknown vendor.
	res, _, err = e.Query(ctx, "tollgate/decision", map[string]any{"request": map[string]any{"action": "x"}, "vendor": nil})
	if err != nil || res.(map[string]any)["code"] != "unknown_vendor" {
		t.Fatalf("null vendor = %v %v", res, err)
	}
	if res, defined, err := e.Query(ctx, "", nil); err != nil || !defined || res.(map[string]any)["catalog"] == nil {
		t.Fatalf("whole data = %v", err)
	}
	for _, bad := range []string{"tollgate//decision", "tollgate/../catalog", "..", "tollgate/.", "a/b c", "tollgate/decision/", "x\x00y"} {
		_, _, err := e.Query(ctx, bad, nil)
		var te *tollgate.Error
		if !errors.As(err, &te) || te.Code != tollgate.EInvalid || te.Field != "path" || !strings.Contains(te.Message, "path") {
			t.Errorf("Query(%q) err = %v, want EInvalid naming path", bad, err)
		}
	}
}

func TestSetCatalog(t *testing.T) {
	e := newEngine(t, Options{CacheTTL: time.Minute})
	ctx := context.Background()
	f := facts(vendor("essential", tollgate.StatusActive, 100), tollgate.CheckRequest{Action: "order.create"})
	d, _ := e.Decide(ctx, f)
	if d.Allow {
		t.Fatal("want denied before the catalog change")
	}
	rev := e.Revision()
	plan := e.state.Load().plan
	c := testCatalog()
	c.Tiers[0].OrdersPerMonth = i64(150)
	if err := e.SetCatalog(ctx, c); err != nil {
		t.Fatal(err)
	}
	// The plan depends on the modules only, so a new catalog keeps it (and the decision below
	// still sees the new catalog's limit).
	if plan == nil || e.state.Load().plan != plan {
		t.Fatal("a catalog change rebuilt the plan")
	}
	c.Tiers[0].OrdersPerMonth = i64(1) // the engine holds its own copy
	if e.Revision() == rev || !strings.HasPrefix(e.Revision(), "p-") {
		t.Fatalf("revision %q after catalog change (was %q)", e.Revision(), rev)
	}
	d, _ = e.Decide(ctx, f)
	if !d.Allow || *d.Limit != 150 {
		t.Fatalf("after SetCatalog: %+v", d)
	}
	bad := testCatalog()
	bad.Tiers = nil
	if err := e.SetCatalog(ctx, bad); tollgate.ErrorCode(err) != tollgate.EInvalid {
		t.Fatalf("invalid catalog: %v", err)
	}
	if d, _ = e.Decide(ctx, f); !d.Allow {
		t.Fatal("an invalid catalog must change nothing")
	}
}

func TestReadiness(t *testing.T) {
	e := newEngine(t, Options{})
	ok, detail := e.Ready()
	if e.Name() != "policy" || !ok || !strings.Contains(detail, e.Revision()) {
		t.Fatalf("Ready = %v %q", ok, detail)
	}
}

// TestDecideConcurrent shares one vendor snapshot (and so one input.vendor object) between
// concurrent evaluations while the policy is swapped underneath; run under -race.
func TestDecideConcurrent(t *testing.T) {
	e := newEngine(t, Options{})
	v := vendor("essential", tollgate.StatusActive, 100)
	f := facts(v, tollgate.CheckRequest{Action: "order.create"})
	g := facts(v, tollgate.CheckRequest{Action: "feature.use", Feature: "api_access"})
	done := make(chan error, 8)
	for w := range 8 {
		go func() {
			for range 50 {
				ff := f
				if w%2 == 1 {
					ff = g
				}
				d, err := e.Decide(context.Background(), ff)
				if err == nil && (d.Allow || d.UpgradeTo == nil) {
					err = errors.New("wrong decision " + d.Code)
				}
				if err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
	}
	for range 3 {
		if err := e.SetCatalog(context.Background(), testCatalog()); err != nil {
			t.Fatal(err)
		}
	}
	for range 8 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}
