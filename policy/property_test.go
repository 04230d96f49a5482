package policy

import (
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/tollgate-pdp/tollgate"
)

// model is an independent statement of the decision rules (README.md, Decisions) in plain Go: the test oracle the
// Rego policy is compared against. (Only a test may restate a rule in Go.)
func model(cat *tollgate.Catalog, f *tollgate.Facts) tollgate.Decision {
	r := f.Request
	if f.Vendor == nil {
		return tollgate.Decision{Code: "unknown_vendor", Reason: "Unknown vendor"}
	}
	s := &f.Vendor.Subscription
	d := tollgate.Decision{Tier: s.Tier, Status: string(s.Status)}
	switch r.Action {
	case "order.create", "product.add", "team_member.add", "feature.use", "cms_page.create", "order_history.view":
	default:
		d.Code, d.Reason = "unknown_action", "Unknown action"
		return d
	}
	switch s.Status {
	case "trial", "active", "past_due":
	case "cancelled":
		if s.PeriodEnd != nil && s.PeriodEnd.Unix() <= f.Now.Unix() {
			d.Code, d.Reason = "inactive", "Subscription is not active"
			return d
		}
	default:
		d.Code, d.Reason = "inactive", "Subscription is not active"
		return d
	}
	platform := r.Platform
	if platform == "" {
		platform = s.Platform
	}
	tier, ok := cat.Lookup(platform, s.Tier)
	if !ok {
		d.Code, d.Reason = "inactive", "Subscription plan is not available"
		return d
	}
	or := func(p *int64, def int64) int64 {
		if p != nil {
			return *p
		}
		return def
	}
	orP := func(a, b *int64) *int64 {
		if a != nil {
			return a
		}
		return b
	}
	u := &f.Vendor.Usage
	orders := u.OrdersIn(f.Period)
	qty := or(r.Quantity, 1)
	products := or(r.Count, or(u.Products, 0))
	team := or(r.Count, or(u.TeamMembers, 0))
	pages := or(r.Count, or(u.CMSPages, 0))
	custom := or(r.CustomCount, or(u.CMSCustomPages, 0))
	months := or(r.Months, 0)
	lt := func(n int64, lim *int64) bool { return lim == nil || n < *lim }
	le := func(n int64, lim *int64) bool { return lim == nil || n <= *lim }

	// allows answers "would this limit set allow the request?"; own=true uses the tier's own
	// limits (upgrade candidates), own=false the vendor's effective ones.
	allows := func(t *tollgate.Tier, own bool) bool {
		switch r.Action {
		case "order.create":
			lim := t.OrdersPerMonth
			if !own {
				lim = orP(s.CustomOrdersLimit, lim)
			}
			return le(orders+qty, lim)
		case "product.add":
			lim := t.ProductsLimit
			if !own {
				lim = orP(s.CustomProductsLimit, lim)
			}
			return lt(products, lim)
		case "team_member.add":
			lim := t.TeamMembers
			if !own {
				lim = orP(s.CustomTeamLimit, lim)
			}
			return lt(team, lim)
		case "feature.use":
			return slices.Contains(t.Features, r.Feature)
		case "cms_page.create":
			return lt(pages, t.CMSPagesLimit) && (!r.Custom || lt(custom, t.CMSCustomPagesLimit))
		default:
			return le(months, t.OrderHistoryMonths)
		}
	}
	var limit *int64
	var used int64
	reason := ""
	switch r.Action {
	case "order.create":
		limit, used = orP(s.CustomOrdersLimit, tier.OrdersPerMonth), orders
		if limit != nil {
			reason = fmt.Sprintf("Monthly order limit reached (%d orders). Upgrade to continue.", *limit)
		}
	case "product.add":
		limit, used = orP(s.CustomProductsLimit, tier.ProductsLimit), products
		if limit != nil {
			reason = fmt.Sprintf("Product limit reached (%d products). Upgrade to add more.", *limit)
		}
	case "team_member.add":
		limit, used = orP(s.CustomTeamLimit, tier.TeamMembers), team
		if limit != nil {
			reason = fmt.Sprintf("Team member limit reached (%d members). Upgrade to add more.", *limit)
		}
	case "feature.use":
		reason = "Feature not available on your plan"
	case "cms_page.create":
		limit, used = tier.CMSPagesLimit, pages
		if !lt(pages, tier.CMSPagesLimit) {
			reason = fmt.Sprintf("CMS page limit reached (%d pages). Upgrade to add more.", *limit)
		} else if r.Custom && !lt(custom, tier.CMSCustomPagesLimit) {
			limit, used = tier.CMSCustomPagesLimit, custom
			reason = fmt.Sprintf("Custom CMS page limit reached (%d pages). Upgrade to add more.", *limit)
		}
	case "order_history.view":
		limit, used = tier.OrderHistoryMonths, months
		if limit != nil {
			reason = fmt.Sprintf("Order history limited to %d months on your plan. Upgrade to see more.", *limit)
		}
	}
	d.Limit, d.Used = limit, used
	if limit != nil {
		d.Remaining = new(max(*limit-used, 0))
	}
	if allows(tier, false) {
		d.Allow, d.Code = true, "ok"
		return d
	}
	d.Code, d.Reason = "limit_reached", reason
	if r.Action == "feature.use" {
		d.Code = "feature_missing"
	}
	// upgrade_to: cheapest visible active public other tier whose own limits allow it.
	var cands []*tollgate.Tier
	for i := range cat.Tiers {
		t := &cat.Tiers[i]
		if t.Code == s.Tier || !t.IsActive || !t.IsPublic {
			continue
		}
		visible := platform != "" && t.Platform == platform
		if t.Platform == "" {
			visible = true
			for j := range cat.Tiers {
				if platform != "" && cat.Tiers[j].Platform == platform && cat.Tiers[j].Code == t.Code {
					visible = false
				}
			}
		}
		if visible && allows(t, true) {
			cands = append(cands, t)
		}
	}
	slices.SortFunc(cands, func(a, b *tollgate.Tier) int {
		if (a.PriceMonthlyCents == nil) != (b.PriceMonthlyCents == nil) {
			if a.PriceMonthlyCents == nil {
				return 1
			}
			return -1
		}
		if a.PriceMonthlyCents != nil && *a.PriceMonthlyCents != *b.PriceMonthlyCents {
			return cmp.Compare(*a.PriceMonthlyCents, *b.PriceMonthlyCents)
		}
		return cmp.Or(cmp.Compare(a.DisplayOrder, b.DisplayOrder), cmp.Compare(a.Code, b.Code))
	})
	if len(cands) > 0 {
		d.UpgradeTo = &cands[0].Code
	}
	return d
}

// propertyCatalog adds, to the test catalog, tiers that exercise upgrade_to's ordering: a
// global tier without a price, a price tie broken by display order, an inactive and a private
// tier, and CMS limits on global tiers.
func propertyCatalog() *tollgate.Catalog {
	c := testCatalog()
	c.Tiers[1].CMSPagesLimit, c.Tiers[1].CMSCustomPagesLimit = i64(50), i64(10)
	c.Tiers = append(c.Tiers,
		tollgate.Tier{Code: "custom", Name: "Custom", OrdersPerMonth: i64(5000), ProductsLimit: i64(5000),
			TeamMembers: i64(50), OrderHistoryMonths: i64(60), Features: []string{"white_label"},
			DisplayOrder: 0, IsActive: true, IsPublic: true},
		tollgate.Tier{Code: "growth", Name: "Growth", PriceMonthlyCents: i64(9900), OrdersPerMonth: i64(800),
			ProductsLimit: i64(300), TeamMembers: i64(2), OrderHistoryMonths: i64(12), CMSPagesLimit: i64(10),
			Features: []string{"api_access"}, DisplayOrder: 1, IsActive: true, IsPublic: true},
		tollgate.Tier{Code: "legacy", Name: "Legacy", PriceMonthlyCents: i64(100), OrdersPerMonth: i64(100000),
			DisplayOrder: 9, IsActive: false, IsPublic: true},
		tollgate.Tier{Code: "partner", Name: "Partner", PriceMonthlyCents: i64(200), OrdersPerMonth: i64(100000),
			DisplayOrder: 9, IsActive: true, IsPublic: false},
		tollgate.Tier{Code: "professional", Name: "POS Professional", Platform: "pos", PriceMonthlyCents: i64(3900),
			OrdersPerMonth: i64(150), ProductsLimit: i64(500), TeamMembers: i64(2), OrderHistoryMonths: i64(6),
			Features: []string{"letzshop_sync", "customer_export"}, DisplayOrder: 2, IsActive: true, IsPublic: true},
	)
	return c
}

func pick[T any](r *rand.Rand, xs ...T) T { return xs[r.IntN(len(xs))] }

// optN is nil a third of the time, else one of the interesting numbers around the limits.
func optN(r *rand.Rand) *int64 {
	if r.IntN(3) == 0 {
		return nil
	}
	return i64(num(r))
}

func num(r *rand.Rand) int64 {
	if r.IntN(4) == 0 {
		return r.Int64N(6000)
	}
	return pick(r, int64(0), 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 19, 20, 24, 25, 49, 50, 51, 99, 100, 101,
		149, 150, 199, 200, 201, 299, 300, 499, 500, 501, 799, 800, 999, 1000, 1999, 2000, 2001, 4999, 5000)
}

func randomFacts(r *rand.Rand) *tollgate.Facts {
	req := tollgate.CheckRequest{
		VendorID: "v1",
		Action: pick(r, "order.create", "order.create", "product.add", "team_member.add", "feature.use",
			"cms_page.create", "order_history.view", "invoice.send"),
		Platform: pick(r, "", "", "oms", "pos", "web"),
		Count:    optN(r), CustomCount: optN(r), Quantity: optN(r), Months: optN(r),
		Feature: pick(r, "letzshop_sync", "api_access", "customer_export", "white_label", "oms_routing", "teleport"),
		Custom:  r.IntN(2) == 0,
	}
	if req.Quantity != nil && r.IntN(2) == 0 {
		req.Quantity = i64(r.Int64N(4))
	}
	f := &tollgate.Facts{Request: &req, Now: testNow}
	if r.IntN(20) == 0 {
		return f
	}
	v := vendor(pick(r, "essential", "professional", "business", "enterprise", "starter", "custom", "growth", "gold"),
		pick[tollgate.Status](r, "active", "active", "trial", "past_due", "cancelled", "cancelled", "expired", "paused"), num(r))
	s := &v.Subscription
	s.Platform = pick(r, "", "", "oms", "pos")
	switch r.IntN(4) {
	case 0:
		s.PeriodEnd = nil
	case 1:
		s.PeriodEnd = ts(testNow.Add(-time.Duration(r.IntN(3)) * time.Second))
	case 2:
		s.PeriodEnd = ts(testNow.Add(time.Duration(1+r.IntN(3)) * time.Second))
	}
	if r.IntN(3) == 0 {
		s.CustomOrdersLimit = i64(num(r))
	}
	if r.IntN(3) == 0 {
		s.CustomProductsLimit = i64(num(r))
	}
	if r.IntN(3) == 0 {
		s.CustomTeamLimit = i64(num(r))
	}
	u := &v.Usage
	u.Products, u.TeamMembers, u.CMSPages, u.CMSCustomPages = optN(r), optN(r), optN(r), optN(r)
	f.Vendor = v
	f.Period = tollgate.PeriodKey(s, testNow)
	return f
}

// TestPropertyMatchesModel compares the engine (cache off) with the model on random facts.
func TestPropertyMatchesModel(t *testing.T) {
	const cases = 10_000
	seed := uint64(20260315)
	t.Logf("seed %d, %d cases", seed, cases)
	cat := propertyCatalog()
	e := newEngine(t, Options{Catalog: cat})
	r := rand.New(rand.NewPCG(seed, seed))
	facts := make([]*tollgate.Facts, cases)
	for i := range facts {
		facts[i] = randomFacts(r)
	}
	// The cases are independent: spread them over the CPUs so the test stays fast (also under
	// -race, which slows evaluation several times).
	const workers = 4
	errs := make(chan string, workers)
	for w := range workers {
		go func() {
			var msg string
			for i := w; i < cases && msg == ""; i += workers {
				f := facts[i]
				got, err := e.Decide(context.Background(), f)
				if err != nil {
					msg = fmt.Sprintf("case %d: %v", i, err)
					break
				}
				want := model(cat, f)
				if !reflect.DeepEqual(got, want) {
					msg = fmt.Sprintf("case %d (seed %d): facts %s\n got  %s\n want %s", i, seed, describe(f), show(got), show(want))
				}
			}
			errs <- msg
		}()
	}
	for range workers {
		if msg := <-errs; msg != "" {
			t.Error(msg)
		}
	}
	// The random facts must reach every outcome, or the comparison proves little.
	seen := map[string]int{}
	for _, f := range facts {
		d := model(cat, f)
		key := d.Code
		if d.UpgradeTo != nil {
			key += "+upgrade"
		}
		seen[key]++
	}
	t.Logf("outcomes: %v", seen)
	for _, k := range []string{"ok", "inactive", "limit_reached", "limit_reached+upgrade", "feature_missing",
		"feature_missing+upgrade", "unknown_vendor", "unknown_action"} {
		if seen[k] < 20 {
			t.Errorf("outcome %s reached %d times, want >= 20", k, seen[k])
		}
	}
}

func show(d tollgate.Decision) string {
	up := "null"
	if d.UpgradeTo != nil {
		up = *d.UpgradeTo
	}
	return fmt.Sprintf("allow=%v code=%s reason=%q limit=%v used=%d remaining=%v tier=%s status=%s upgrade_to=%s",
		d.Allow, d.Code, d.Reason, deref(d.Limit), d.Used, deref(d.Remaining), d.Tier, d.Status, up)
}

func describe(f *tollgate.Facts) string {
	r := f.Request
	s := fmt.Sprintf("request{action=%s platform=%q count=%v custom_count=%v quantity=%v feature=%s months=%v custom=%v}",
		r.Action, r.Platform, deref(r.Count), deref(r.CustomCount), deref(r.Quantity), r.Feature, deref(r.Months), r.Custom)
	if v := f.Vendor; v != nil {
		sub := &v.Subscription
		s += fmt.Sprintf(" sub{tier=%s platform=%q status=%s period_end=%v overrides=%v/%v/%v} usage{orders=%d products=%v team=%v cms=%v/%v}",
			sub.Tier, sub.Platform, sub.Status, sub.PeriodEnd, deref(sub.CustomOrdersLimit), deref(sub.CustomProductsLimit),
			deref(sub.CustomTeamLimit), v.Usage.OrdersIn(f.Period), deref(v.Usage.Products), deref(v.Usage.TeamMembers),
			deref(v.Usage.CMSPages), deref(v.Usage.CMSCustomPages))
	}
	return s
}
