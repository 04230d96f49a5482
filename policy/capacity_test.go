package policy

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/tollgate-pdp/tollgate"
)

// generated returns n vendors of every tier and status, some with overrides, some at or over
// their limits, some using features.
func generated(n int, seed uint64) []*tollgate.VendorState {
	r := rand.New(rand.NewPCG(seed, 1))
	tiers := []string{"essential", "professional", "business", "enterprise"}
	out := make([]*tollgate.VendorState, n)
	for i := range out {
		status := tollgate.Statuses[r.IntN(len(tollgate.Statuses))]
		v := vendor(tiers[r.IntN(len(tiers))], status, int64(r.IntN(160)))
		v.Subscription.VendorID = fmt.Sprintf("v%04d", i)
		if r.IntN(10) == 0 {
			v.Subscription.CustomOrdersLimit = i64(int64(r.IntN(120)))
		}
		if status == tollgate.StatusCancelled && r.IntN(2) == 0 {
			v.Subscription.PeriodEnd = ts(testNow.Add(-time.Hour))
		}
		if r.IntN(4) == 0 {
			v.Usage.FeaturesUsed = []string{"api_access"}
		}
		out[i] = v
	}
	return out
}

func each(vs []*tollgate.VendorState) func(func(*tollgate.VendorState) bool) {
	return func(fn func(*tollgate.VendorState) bool) {
		for _, v := range vs {
			if !fn(v) {
				return
			}
		}
	}
}

// TestDryRunHalvedEssentialOrders: the dry run names exactly the vendors a brute-force count
// names.
func TestDryRunHalvedEssentialOrders(t *testing.T) {
	e := newEngine(t, Options{Catalog: tollgate.DefaultCatalog()})
	vs := generated(1000, 7)
	cand := tollgate.DefaultCatalog()
	cand.Tiers[0].OrdersPerMonth = i64(*cand.Tiers[0].OrdersPerMonth / 2)

	var want []string
	for _, v := range vs {
		s := v.Subscription
		access := s.Status == tollgate.StatusActive || s.Status == tollgate.StatusTrial || s.Status == tollgate.StatusPastDue ||
			(s.Status == tollgate.StatusCancelled && s.PeriodEnd.After(testNow))
		limit := cand.Tiers[0].OrdersPerMonth
		if s.Tier != "essential" {
			for _, tr := range cand.Tiers {
				if tr.Code == s.Tier {
					limit = tr.OrdersPerMonth
				}
			}
		}
		if s.CustomOrdersLimit != nil {
			limit = s.CustomOrdersLimit
		}
		if access && limit != nil && v.Usage.Periods[0].Orders > *limit {
			want = append(want, s.VendorID)
		}
	}
	slices.Sort(want)
	res, err := e.DryRun(context.Background(), cand, each(vs), testNow, len(vs))
	if err != nil {
		t.Fatal(err)
	}
	if res.VendorsChecked != 1000 {
		t.Errorf("checked %d vendors, want 1000", res.VendorsChecked)
	}
	var got []string
	for _, r := range res.Rules {
		if r.Rule == "orders_limit" {
			got = r.VendorIDs
			var sum int64
			for _, n := range r.ByTier {
				sum += n
			}
			if sum != r.Vendors || r.Vendors != int64(len(r.VendorIDs)) {
				t.Errorf("by tier sums to %d, vendors %d, ids %d", sum, r.Vendors, len(r.VendorIDs))
			}
		}
	}
	if len(want) == 0 || !slices.Equal(got, want) {
		t.Errorf("dry run named %d vendors, brute force %d\ngot  %v\nwant %v", len(got), len(want), got, want)
	}
	// The engine in service is untouched.
	if e.Catalog().Revision() != tollgate.DefaultCatalog().Revision() {
		t.Error("dry run changed the catalog in service")
	}
}

func TestDryRunFeaturesAndLimit(t *testing.T) {
	e := newEngine(t, Options{Catalog: tollgate.DefaultCatalog()})
	vs := generated(200, 3)
	cand := tollgate.DefaultCatalog()
	cand.Tiers[2].Features = slices.DeleteFunc(slices.Clone(cand.Tiers[2].Features), func(f string) bool { return f == "api_access" })
	res, err := e.DryRun(context.Background(), cand, each(vs), testNow, 3)
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, r := range res.Rules {
		if r.Rule != "feature:api_access" {
			continue
		}
		found = true
		if len(r.VendorIDs) > 3 || r.Vendors < int64(len(r.VendorIDs)) {
			t.Errorf("rule lists %d ids of %d vendors, limit 3", len(r.VendorIDs), r.Vendors)
		}
		for tier := range r.ByTier {
			if tier == "essential" || tier == "professional" {
				continue // they never had it: api_access is business+
			}
			if tier != "business" {
				t.Errorf("tier %s lost api_access", tier)
			}
		}
	}
	if !found {
		t.Error("no feature:api_access finding")
	}
	bad := tollgate.DefaultCatalog()
	bad.Tiers[0].Code = ""
	if _, err := e.DryRun(context.Background(), bad, each(vs), testNow, 3); tollgate.ErrorCode(err) != tollgate.EInvalid {
		t.Errorf("invalid candidate: %v, want invalid", err)
	}
}

func TestEffectiveLimits(t *testing.T) {
	e := newEngine(t, Options{Catalog: tollgate.DefaultCatalog()})
	tests := []struct {
		name string
		v    *tollgate.VendorState
		want tollgate.EffectiveLimits
	}{
		{"essential", vendor("essential", tollgate.StatusActive, 0), tollgate.EffectiveLimits{Orders: i64(100), Products: i64(200), TeamMembers: i64(1), Access: true,
			NearOrders: []int64{80, 100}}},
		{"enterprise unlimited", vendor("enterprise", tollgate.StatusTrial, 0), tollgate.EffectiveLimits{Access: true}},
		{"expired", vendor("business", tollgate.StatusExpired, 0), tollgate.EffectiveLimits{Orders: i64(2000), TeamMembers: i64(10)}},
		{"override", func() *tollgate.VendorState {
			v := vendor("essential", tollgate.StatusActive, 0)
			v.Subscription.CustomOrdersLimit = i64(7)
			return v
		}(), tollgate.EffectiveLimits{Orders: i64(7), Products: i64(200), TeamMembers: i64(1), Access: true,
			NearOrders: []int64{6, 7}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := e.EffectiveLimits(context.Background(), tt.v, testNow)
			if err != nil {
				t.Fatal(err)
			}
			eq := func(a, b *int64) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }
			if got.Access != tt.want.Access || !eq(got.Orders, tt.want.Orders) || !eq(got.Products, tt.want.Products) || !eq(got.TeamMembers, tt.want.TeamMembers) ||
				!slices.Equal(got.NearOrders, tt.want.NearOrders) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestStaleModes(t *testing.T) {
	e := newEngine(t, Options{Catalog: tollgate.DefaultCatalog(), CacheTTL: time.Minute})
	atLimit := vendor("essential", tollgate.StatusActive, 100)
	fresh := vendor("essential", tollgate.StatusActive, 0)
	tests := []struct {
		mode      string
		v         *tollgate.VendorState
		allow     bool
		code      string
		staleMode string
		reason    string
	}{
		{tollgate.StaleEvaluate, atLimit, false, tollgate.CodeLimitReached, "evaluate",
			"Monthly order limit reached (100 orders). Upgrade to continue."},
		{tollgate.StaleAllow, atLimit, true, tollgate.CodeOK, "allow", ""},
		{tollgate.StaleDeny, fresh, false, tollgate.CodeStale, "deny",
			"Subscription status could not be verified recently. Try again later."},
		{tollgate.StaleDeny, atLimit, false, tollgate.CodeLimitReached, "deny",
			"Monthly order limit reached (100 orders). Upgrade to continue."},
		{tollgate.StaleAllow, nil, true, tollgate.CodeOK, "allow", ""},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			f := facts(tt.v, tollgate.CheckRequest{Action: tollgate.ActionOrderCreate})
			f.Stale, f.StaleMode = true, tt.mode
			d, err := e.Decide(context.Background(), f)
			if err != nil {
				t.Fatal(err)
			}
			if d.Allow != tt.allow || d.Code != tt.code || d.StaleMode != tt.staleMode || d.Reason != tt.reason {
				t.Errorf("got allow=%v code=%s mode=%s reason=%q", d.Allow, d.Code, d.StaleMode, d.Reason)
			}
			// The same facts, fresh, are decided (and cached) as usual.
			f.Stale, f.StaleMode = false, ""
			if d, err = e.Decide(context.Background(), f); err != nil || d.StaleMode != "" {
				t.Errorf("fresh: %+v %v", d, err)
			}
		})
	}
}

// BenchmarkDryRun100k: a plan-change dry run over 100,000 vendors (every vendor evaluated).
func BenchmarkDryRun100k(b *testing.B) {
	e := newEngine(b, Options{Catalog: tollgate.DefaultCatalog()})
	vs := generated(100_000, 9)
	cand := tollgate.DefaultCatalog()
	cand.Tiers[0].OrdersPerMonth = i64(50)
	for b.Loop() {
		if _, err := e.DryRun(context.Background(), cand, each(vs), testNow, 20); err != nil {
			b.Fatal(err)
		}
	}
}
