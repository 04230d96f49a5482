package cache

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/tollgate-pdp/tollgate"
	"github.com/tollgate-pdp/tollgate/policy"
)

// genState is a generated population: what was put into the store, so expectations can be
// computed by hand from it rather than from the store.
type genState struct {
	subs     map[string]*tollgate.Subscription
	orders   map[string]int64 // orders in the current period
	reported map[string][3]*int64
}

// generate builds n vendors of every tier (and one tier the catalog lacks), every status,
// cancelled ones before and after their period end, overrides, vendors with and without a
// billing period, some with reported usage.
func generate(n int, now time.Time, seed uint64) genState {
	r := rand.New(rand.NewPCG(seed, 2))
	tiers := []string{"essential", "professional", "business", "enterprise", "legacy"}
	g := genState{subs: map[string]*tollgate.Subscription{}, orders: map[string]int64{}, reported: map[string][3]*int64{}}
	for i := range n {
		id := fmt.Sprintf("v%05d", i)
		s := &tollgate.Subscription{VendorID: id, Tier: tiers[r.IntN(len(tiers))], Status: tollgate.Statuses[r.IntN(5)]}
		if r.IntN(3) > 0 {
			ps := now.AddDate(0, 0, -r.IntN(28)).Truncate(24 * time.Hour)
			pe := now.Add(time.Duration(r.IntN(200)-50) * time.Hour)
			s.PeriodStart, s.PeriodEnd = &ps, &pe
		}
		if r.IntN(8) == 0 {
			s.CustomOrdersLimit = ptr(int64(r.IntN(3000)))
		}
		if r.IntN(10) == 0 {
			s.CustomProductsLimit = ptr(int64(r.IntN(500)))
		}
		if r.IntN(10) == 0 {
			s.CustomTeamLimit = ptr(int64(r.IntN(20)))
		}
		g.subs[id] = s
		g.orders[id] = int64(r.IntN(2200))
		var rep [3]*int64
		for k := range rep {
			if r.IntN(2) == 0 {
				rep[k] = ptr(int64(r.IntN(1 << 20)))
			}
		}
		g.reported[id] = rep
	}
	return g
}

// expected computes every capacity figure by hand from the generated facts, with the
// semantics of the decision rules (README.md, Decisions) spelled out here (not asked of the policy).
func (g genState) expected(now time.Time) tollgate.VendorAggregates {
	cat := tollgate.DefaultCatalog()
	want := tollgate.VendorAggregates{Vendors: map[tollgate.TierStatus]int64{}, NearOrderLimit: map[string]tollgate.NearLimit{}}
	eff := func(override, tier *int64) *int64 {
		if override != nil {
			return override
		}
		return tier
	}
	add := func(t *tollgate.LimitTotal, l *int64) {
		if l == nil {
			t.Unlimited++
			return
		}
		t.Limited++
		t.Sum += *l
	}
	for id, s := range g.subs {
		want.Vendors[tollgate.TierStatus{Tier: s.Tier, Status: s.Status}]++
		want.TotalVendors++
		want.TotalSubscriptions++
		switch s.Status {
		case tollgate.StatusActive:
			want.ActiveVendors++
		case tollgate.StatusTrial:
			want.TrialVendors++
		}
		want.OrdersUsed += g.orders[id]
		rep := g.reported[id]
		for k, p := range rep {
			if p == nil {
				continue
			}
			switch k {
			case 0:
				want.ReportedProducts += *p
			case 1:
				want.ReportedTeamMembers += *p
			case 2:
				want.ReportedStorageBytes += *p
			}
		}
		tier, ok := cat.Lookup("", s.Tier)
		access := ok && (s.Status == tollgate.StatusTrial || s.Status == tollgate.StatusActive ||
			s.Status == tollgate.StatusPastDue ||
			(s.Status == tollgate.StatusCancelled && (s.PeriodEnd == nil || s.PeriodEnd.After(now))))
		if !access {
			continue
		}
		want.ActiveSubscriptions++
		orders := eff(s.CustomOrdersLimit, tier.OrdersPerMonth)
		add(&want.Orders, orders)
		add(&want.Products, eff(s.CustomProductsLimit, tier.ProductsLimit))
		add(&want.TeamMembers, eff(s.CustomTeamLimit, tier.TeamMembers))
		if orders != nil {
			used := g.orders[id]
			n := want.NearOrderLimit[s.Tier]
			if used*10 >= *orders*8 {
				n.AtLeast80++
			}
			if used >= *orders {
				n.AtLeast100++
			}
			if n != (tollgate.NearLimit{}) {
				want.NearOrderLimit[s.Tier] = n
			}
		}
	}
	want.OrdersCapacity, want.UnlimitedOrders = want.Orders.Sum, want.Orders.Unlimited
	return want
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func openWithPolicyTB(tb testing.TB, path string) *Store {
	tb.Helper()
	eng, err := policy.New(context.Background(), policy.Options{Logger: quietLog()})
	if err != nil {
		tb.Fatal(err)
	}
	s, err := Open(context.Background(), Options{Path: path, Limits: eng, Logger: quietLog()})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

func openWithPolicy(t *testing.T, path string, now func() time.Time) *Store {
	t.Helper()
	eng, err := policy.New(context.Background(), policy.Options{Logger: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(context.Background(), Options{Path: path, Now: now, Limits: eng, Logger: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func compareAggregates(t *testing.T, got, want tollgate.VendorAggregates) {
	t.Helper()
	type fig struct {
		name      string
		got, want any
	}
	for _, f := range []fig{
		{"total vendors", got.TotalVendors, want.TotalVendors},
		{"active vendors", got.ActiveVendors, want.ActiveVendors},
		{"trial vendors", got.TrialVendors, want.TrialVendors},
		{"total subscriptions", got.TotalSubscriptions, want.TotalSubscriptions},
		{"active subscriptions", got.ActiveSubscriptions, want.ActiveSubscriptions},
		{"orders this period", got.OrdersUsed, want.OrdersUsed},
		{"order limits", got.Orders, want.Orders},
		{"product limits", got.Products, want.Products},
		{"team limits", got.TeamMembers, want.TeamMembers},
		{"orders capacity", got.OrdersCapacity, want.OrdersCapacity},
		{"unlimited orders", got.UnlimitedOrders, want.UnlimitedOrders},
		{"reported products", got.ReportedProducts, want.ReportedProducts},
		{"reported team members", got.ReportedTeamMembers, want.ReportedTeamMembers},
		{"reported storage", got.ReportedStorageBytes, want.ReportedStorageBytes},
		{"tier distribution", fmt.Sprint(got.Vendors), fmt.Sprint(want.Vendors)},
		{"near order limit", fmt.Sprint(got.NearOrderLimit), fmt.Sprint(want.NearOrderLimit)},
	} {
		if f.got != f.want {
			t.Errorf("%s = %v, want %v", f.name, f.got, f.want)
		}
	}
}

// TestCapacityFigures checks every figure against hand-computed expectations on 1,000
// generated vendors: after the import, after changes of every kind (each swap takes the old
// contribution out), after a reopen (load path), and after a month boundary.
func TestCapacityFigures(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	now := clk.Now()
	g := generate(1000, now, 11)
	path := filepath.Join(t.TempDir(), "tollgate.db")
	s := openWithPolicy(t, path, clk.Now)

	records := make([]tollgate.ImportRecord, 0, len(g.subs))
	for id, sub := range g.subs {
		records = append(records, tollgate.ImportRecord{Subscription: *sub, OrdersThisPeriod: g.orders[id]})
	}
	if err := s.Import(ctx, records); err != nil {
		t.Fatal(err)
	}
	for id, rep := range g.reported {
		if rep == ([3]*int64{}) {
			continue
		}
		if _, err := s.ReportUsage(ctx, id, tollgate.UsageReport{Products: rep[0], TeamMembers: rep[1], StorageBytes: rep[2]}); err != nil {
			t.Fatal(err)
		}
	}
	t.Run("after import", func(t *testing.T) { compareAggregates(t, s.Aggregates(), g.expected(now)) })

	// Changes of every kind: orders, tier and status changes, overrides, reports.
	r := rand.New(rand.NewPCG(5, 5))
	i := 0
	for id, sub := range g.subs {
		i++
		switch i % 4 {
		case 0:
			n := int64(r.IntN(50))
			if n == 0 {
				continue
			}
			if _, err := s.AddOrders(ctx, tollgate.OrderIncrement{VendorID: id, Period: tollgate.PeriodKey(sub, now), Delta: n}); err != nil {
				t.Fatal(err)
			}
			g.orders[id] += n
		case 1:
			sub.Tier = []string{"essential", "business", "enterprise"}[r.IntN(3)]
			sub.Status = tollgate.Statuses[r.IntN(5)]
			mustPut(t, s, sub)
		case 2:
			sub.CustomOrdersLimit = ptr(int64(r.IntN(100)))
			mustPut(t, s, sub)
		case 3:
			rep := g.reported[id]
			rep[0] = ptr(int64(r.IntN(100)))
			g.reported[id] = rep
			if _, err := s.ReportUsage(ctx, id, tollgate.UsageReport{Products: rep[0]}); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Run("after changes", func(t *testing.T) { compareAggregates(t, s.Aggregates(), g.expected(now)) })

	s.Close()
	s = openWithPolicy(t, path, clk.Now)
	t.Run("after reopen", func(t *testing.T) { compareAggregates(t, s.Aggregates(), g.expected(now)) })

	// A new calendar month: vendors without a billing period start at zero, nobody changed.
	next := time.Date(now.Year(), now.Month()+1, 2, 0, 0, 0, 0, time.UTC)
	clk.Set(next)
	for id, sub := range g.subs {
		if sub.PeriodStart == nil {
			g.orders[id] = 0
		}
	}
	got := s.Aggregates()
	want := g.expected(now) // access as of the vendors' last change (documented)
	if got.OrdersUsed != want.OrdersUsed {
		t.Errorf("orders this period after the month ended = %d, want %d", got.OrdersUsed, want.OrdersUsed)
	}
}

// TestCapacityRefresh: a catalog change re-evaluates every vendor's limits.
func TestCapacityRefresh(t *testing.T) {
	ctx := context.Background()
	eng, err := policy.New(ctx, policy.Options{Logger: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(ctx, Options{Path: filepath.Join(t.TempDir(), "t.db"), Limits: eng, Logger: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := range 10 {
		mustPut(t, s, &tollgate.Subscription{VendorID: fmt.Sprint(i), Tier: "essential", Status: tollgate.StatusActive})
	}
	if got := s.Aggregates().Orders; got.Sum != 1000 || got.Limited != 10 {
		t.Fatalf("orders = %+v", got)
	}
	cat := tollgate.DefaultCatalog()
	cat.Tiers[0].OrdersPerMonth = ptr(int64(50))
	if err := eng.SetCatalog(ctx, cat); err != nil {
		t.Fatal(err)
	}
	if err := s.RefreshAggregates(ctx); err != nil {
		t.Fatal(err)
	}
	if got := s.Aggregates().Orders; got.Sum != 500 {
		t.Errorf("after the catalog change orders = %+v, want sum 500", got)
	}
}

// TestNoteCheck: counts and features from checks are written by the flusher; an unchanged
// count writes nothing and bumps no revision.
func TestNoteCheck(t *testing.T) {
	ctx := context.Background()
	s := mustOpen(t, "", nil)
	mustPut(t, s, testSub("1"))
	if _, err := s.ReportUsage(ctx, "1", tollgate.UsageReport{Products: ptr(int64(5))}); err != nil {
		t.Fatal(err)
	}
	v := mustVendor(t, s, "1")
	rev := v.Revision
	same := &tollgate.CheckRequest{VendorID: "1", Action: tollgate.ActionProductAdd, Count: ptr(int64(5))}
	s.NoteCheck(v, same, true)
	s.FlushNoted(ctx)
	if got := mustVendor(t, s, "1").Revision; got != rev {
		t.Fatalf("an unchanged count bumped the revision %d -> %d", rev, got)
	}
	s.NoteCheck(v, &tollgate.CheckRequest{VendorID: "1", Action: tollgate.ActionProductAdd, Count: ptr(int64(6))}, true)
	s.NoteCheck(v, &tollgate.CheckRequest{VendorID: "1", Action: tollgate.ActionProductAdd, Count: ptr(int64(7))}, true)
	s.NoteCheck(v, &tollgate.CheckRequest{VendorID: "1", Action: tollgate.ActionFeatureUse, Feature: "invoice_lu"}, true)
	s.NoteCheck(v, &tollgate.CheckRequest{VendorID: "1", Action: tollgate.ActionFeatureUse, Feature: "api_access"}, false)
	s.NoteCheck(v, &tollgate.CheckRequest{VendorID: "1", Action: tollgate.ActionFeatureUse, Feature: "customer_view"}, true)
	s.FlushNoted(ctx)
	got := mustVendor(t, s, "1")
	if got.Revision != rev+1 || *got.Usage.Products != 7 || fmt.Sprint(got.Usage.FeaturesUsed) != "[customer_view invoice_lu]" {
		t.Errorf("after flush: revision %d (want %d), products %d, features %v", got.Revision, rev+1, *got.Usage.Products, got.Usage.FeaturesUsed)
	}
	// Durable after a flush: features survive a reopen (encoding).
	path := s.Path()
	s.Close()
	s2 := mustOpen(t, path, nil)
	if got := mustVendor(t, s2, "1"); fmt.Sprint(got.Usage.FeaturesUsed) != "[customer_view invoice_lu]" || *got.Usage.Products != 7 {
		t.Errorf("after reopen: %+v", got.Usage)
	}
}

func TestSnapshots(t *testing.T) {
	ctx := context.Background()
	s := mustOpen(t, "", nil)
	day := time.Date(2026, 3, 1, 0, 5, 0, 0, time.UTC)
	for i := range 5 {
		snap := tollgate.CapacitySnapshot{TakenAt: day.AddDate(0, 0, i), Vendors: tollgate.CapacityVendors{Total: int64(i)}}
		got, created, err := tollgate.TakeSnapshot(ctx, s, snap)
		if err != nil || !created || got.Date != day.AddDate(0, 0, i).Format(tollgate.DateLayout) {
			t.Fatalf("day %d: %+v %v %v", i, got, created, err)
		}
	}
	again, created, err := tollgate.TakeSnapshot(ctx, s, tollgate.CapacitySnapshot{TakenAt: day.Add(time.Hour), Vendors: tollgate.CapacityVendors{Total: 99}})
	if err != nil || created || again.Vendors.Total != 0 {
		t.Errorf("second snapshot of a day: created=%v total=%d err=%v, want the first kept", created, again.Vendors.Total, err)
	}
	tests := []struct {
		from, to string
		want     int
	}{{"", "", 5}, {"2026-03-02", "2026-03-03", 2}, {"2026-03-04", "", 2}, {"", "2026-03-01", 1}, {"2026-04-01", "", 0}}
	for _, tt := range tests {
		list, err := s.Snapshots(ctx, tt.from, tt.to)
		if err != nil || len(list) != tt.want {
			t.Errorf("Snapshots(%q, %q) = %d, %v; want %d", tt.from, tt.to, len(list), err, tt.want)
		}
	}
	if _, _, err := s.PutSnapshot(ctx, &tollgate.CapacitySnapshot{Date: "yesterday"}); tollgate.ErrorCode(err) != tollgate.EInvalid {
		t.Errorf("bad date: %v", err)
	}
}

// slowLimits answers like a fixed policy, slowly, so Open's background build of the aggregates
// is still running while the test writes and closes.
type slowLimits struct{ delay time.Duration }

func (l slowLimits) EffectiveLimits(_ context.Context, v *tollgate.VendorState, _ time.Time) (tollgate.EffectiveLimits, error) {
	time.Sleep(l.delay)
	n := int64(100)
	if p := v.Subscription.CustomOrdersLimit; p != nil {
		n = *p
	}
	return tollgate.EffectiveLimits{Orders: &n, Access: v.Subscription.Status == tollgate.StatusActive}, nil
}

func (slowLimits) Revision() string { return "slow" }

// TestAggregatesBuiltInBackground: Open returns before the aggregates are built; writes during
// the build leave them exactly as a full refresh computes them, and Close during a build returns
// promptly.
func TestAggregatesBuiltInBackground(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "t.db")
	s := mustOpen(t, path, nil)
	recs := make([]tollgate.ImportRecord, 600)
	for i := range recs {
		sub := testSub(fmt.Sprintf("v%d", i))
		lim := int64(1000 + i) // distinct limit facts: every vendor is evaluated
		sub.CustomOrdersLimit = &lim
		recs[i] = tollgate.ImportRecord{Subscription: *sub, OrdersThisPeriod: int64(i)}
	}
	if err := s.Import(ctx, recs); err != nil {
		t.Fatal(err)
	}
	s.Close()

	lim := slowLimits{delay: 2 * time.Millisecond}
	s, err := Open(ctx, Options{Path: path, Limits: lim, Logger: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 600; i += 7 {
		id := fmt.Sprintf("v%d", i)
		if _, err := s.UpdateSubscription(ctx, id, func(sub *tollgate.Subscription) error {
			sub.Status = tollgate.StatusCancelled
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.AddOrders(ctx, tollgate.OrderIncrement{VendorID: id, Period: "2025-03-01T00:00:00Z", Delta: 5,
			IdempotencyKey: "k" + id}); err != nil {
			t.Fatal(err)
		}
	}
	got := s.Aggregates()
	if err := s.RefreshAggregates(ctx); err != nil {
		t.Fatal(err)
	}
	compareAggregates(t, got, s.Aggregates())
	if got.TotalVendors != 600 {
		t.Errorf("total vendors = %d", got.TotalVendors)
	}
	s.Close()

	s, err = Open(ctx, Options{Path: path, Limits: slowLimits{delay: 20 * time.Millisecond}, Logger: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(t0); d > 5*time.Second {
		t.Errorf("Close during the build took %v", d)
	}
}
