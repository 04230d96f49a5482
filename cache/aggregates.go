package cache

import (
	"context"
	"log/slog"
	"maps"
	"runtime"
	"sync"
	"time"

	"github.com/tollgate-pdp/tollgate"
)

// aggregates keeps the vendor population's figures (tollgate.VendorAggregates) incrementally:
// every read-model swap takes the vendor's previous contribution out and puts its new one in,
// so reading them (a scrape, GET /v1/capacity) costs O(tiers), never O(vendors).
//
// Effective limits and access come from the policy (tollgate.LimitsResolver), evaluated when a
// vendor's limit facts change and cached in its contribution while they do not: an order count
// (the common write) never evaluates the policy.
type aggregates struct {
	limits tollgate.LimitsResolver // nil: limits unknown, no subscription counts as active
	now    func() time.Time
	log    *slog.Logger

	// memo shares one evaluation among vendors with equal limit facts (most vendors: same
	// tier, status, no overrides), so loading or refreshing a million vendors evaluates the
	// policy a few hundred times rather than a million. Keyed with the policy revision.
	memoMu sync.Mutex
	memo   map[memoKey]tollgate.EffectiveLimits

	mu  sync.Mutex
	per map[string]*contribution
	t   totals
	// byPeriod holds what depends on the billing period: key 0 is vendors with a billing
	// period of their own (its key is a fact until the subscription changes), other keys are
	// calendar months (yyyymm) of vendors without one, so a month that ends drops out of the
	// figures without any vendor changing.
	byPeriod map[int32]*periodTotals
}

type totals struct {
	vendors                          map[tollgate.TierStatus]int64
	total, active, trial             int64
	subsTotal, subsActive            int64
	orders, products, team           tollgate.LimitTotal
	repProducts, repTeam, repStorage int64
}

type periodTotals struct {
	vendors int64 // contributions keyed here, so an empty entry can be dropped
	orders  int64
	near    map[string]*tollgate.NearLimit
}

// limitFacts are the facts effective limits and access depend on, besides the policy and
// catalog: equal facts share one evaluation (see memoKey).
type limitFacts struct {
	tier, platform                           string
	status                                   tollgate.Status
	customOrders, customProducts, customTeam int64
	hasOrders, hasProducts, hasTeam          bool
	periodEnd                                int64
}

// memoKey is limitFacts with period_end reduced to whether it has passed at evaluation time:
// the policy reads time facts by comparing them with now, so vendors whose period ends on
// different days share an answer. (A custom policy whose capacity_facts depend on period_end in
// another way would need the exact value here.)
type memoKey struct {
	facts     limitFacts
	policyRev string
}

const maxMemo = 1 << 16

type contribution struct {
	revision   uint64
	tier       string
	status     tollgate.Status
	facts      limitFacts
	policyRev  string
	lim        tollgate.EffectiveLimits
	month      int32
	orders     int64
	near       int8 // 1: >= 80% of the order limit, 2: >= 100%
	rp, rt, rs int64
}

func newAggregates(limits tollgate.LimitsResolver, now func() time.Time, log *slog.Logger) *aggregates {
	return &aggregates{limits: limits, now: now, log: log, per: map[string]*contribution{},
		t: totals{vendors: map[tollgate.TierStatus]int64{}}, byPeriod: map[int32]*periodTotals{}}
}

func factsOf(s *tollgate.Subscription) limitFacts {
	f := limitFacts{tier: s.Tier, platform: s.Platform, status: s.Status}
	if s.CustomOrdersLimit != nil {
		f.customOrders, f.hasOrders = *s.CustomOrdersLimit, true
	}
	if s.CustomProductsLimit != nil {
		f.customProducts, f.hasProducts = *s.CustomProductsLimit, true
	}
	if s.CustomTeamLimit != nil {
		f.customTeam, f.hasTeam = *s.CustomTeamLimit, true
	}
	if s.PeriodEnd != nil {
		f.periodEnd = s.PeriodEnd.Unix()
	}
	return f
}

func monthOf(t time.Time) int32 {
	t = t.UTC()
	return int32(t.Year()*100 + int(t.Month()))
}

// changed is the read model's swap hook: v was installed. Contributions only move forward in
// revision, so hooks of one vendor running out of order cannot undo a newer state.
func (a *aggregates) changed(v *tollgate.VendorState) {
	a.mu.Lock()
	old := a.per[v.Subscription.VendorID]
	a.mu.Unlock()
	// Contributions are immutable once in the map (apply replaces them), so old can be read
	// without the lock.
	if old != nil && old.revision >= v.Revision {
		return
	}
	a.apply(v, a.contribution(v))
}

// contribution computes v's contribution. Its limits come from the memo while a vendor with
// equal limit facts was evaluated under the same policy revision: an order count (the common
// write) never evaluates the policy.
func (a *aggregates) contribution(v *tollgate.VendorState) *contribution {
	s := &v.Subscription
	now := a.now()
	c := &contribution{revision: v.Revision, tier: s.Tier, status: s.Status}
	if s.PeriodStart == nil {
		c.month = monthOf(now)
	}
	c.orders = v.Usage.OrdersIn(tollgate.PeriodKey(s, now))
	if p := v.Usage.Products; p != nil {
		c.rp = *p
	}
	if p := v.Usage.TeamMembers; p != nil {
		c.rt = *p
	}
	if p := v.Usage.StorageBytes; p != nil {
		c.rs = *p
	}
	if a.limits != nil {
		c.lim = a.evaluate(v, factsOf(s), a.limits.Revision(), now)
	}
	if c.lim.Access && c.lim.Orders != nil {
		switch l := *c.lim.Orders; {
		case c.orders >= l:
			c.near = 2
		case c.orders*5 >= l*4:
			c.near = 1
		}
	}
	return c
}

// evaluate asks the policy for v's limits, or reuses the answer for equal facts.
func (a *aggregates) evaluate(v *tollgate.VendorState, f limitFacts, rev string, now time.Time) tollgate.EffectiveLimits {
	k := memoKey{facts: f, policyRev: rev}
	switch {
	case f.periodEnd == 0:
	case f.periodEnd <= now.Unix():
		k.facts.periodEnd = 1
	default:
		k.facts.periodEnd = 2
	}
	a.memoMu.Lock()
	lim, ok := a.memo[k]
	a.memoMu.Unlock()
	if ok {
		return lim
	}
	lim, err := a.limits.EffectiveLimits(context.Background(), v, now)
	if err != nil {
		// Counted as without access: the figures must not invent limits. Not memoised.
		a.log.Warn("capacity: effective limits", "vendor", v.Subscription.VendorID, "err", err)
		return tollgate.EffectiveLimits{}
	}
	a.memoMu.Lock()
	if a.memo == nil || len(a.memo) >= maxMemo {
		a.memo = make(map[memoKey]tollgate.EffectiveLimits)
	}
	a.memo[k] = lim
	a.memoMu.Unlock()
	return lim
}

// apply replaces v's contribution with c unless a newer one is in place.
func (a *aggregates) apply(v *tollgate.VendorState, c *contribution) {
	a.mu.Lock()
	a.applyLocked(v, c)
	a.mu.Unlock()
}

// applyLocked is apply with mu held.
func (a *aggregates) applyLocked(v *tollgate.VendorState, c *contribution) {
	id := v.Subscription.VendorID
	old := a.per[id]
	if old != nil && old.revision > c.revision {
		return
	}
	if old != nil {
		a.add(old, -1)
	}
	a.add(c, 1)
	a.per[id] = c
}

func addLimit(t *tollgate.LimitTotal, l *int64, sign int64) {
	if l == nil {
		t.Unlimited += sign
		return
	}
	t.Limited += sign
	t.Sum += sign * *l
}

// add adds (sign 1) or removes (sign -1) a contribution; the caller holds mu.
func (a *aggregates) add(c *contribution, sign int64) {
	t := &a.t
	k := tollgate.TierStatus{Tier: c.tier, Status: c.status}
	if t.vendors[k] += sign; t.vendors[k] == 0 {
		delete(t.vendors, k)
	}
	t.total += sign
	t.subsTotal += sign
	switch c.status {
	case tollgate.StatusActive:
		t.active += sign
	case tollgate.StatusTrial:
		t.trial += sign
	}
	t.repProducts += sign * c.rp
	t.repTeam += sign * c.rt
	t.repStorage += sign * c.rs
	if c.lim.Access {
		t.subsActive += sign
		addLimit(&t.orders, c.lim.Orders, sign)
		addLimit(&t.products, c.lim.Products, sign)
		addLimit(&t.team, c.lim.TeamMembers, sign)
	}
	p := a.byPeriod[c.month]
	if p == nil {
		p = &periodTotals{near: map[string]*tollgate.NearLimit{}}
		a.byPeriod[c.month] = p
	}
	p.vendors += sign
	p.orders += sign * c.orders
	if c.near > 0 {
		n := p.near[c.tier]
		if n == nil {
			n = &tollgate.NearLimit{}
			p.near[c.tier] = n
		}
		n.AtLeast80 += sign
		if c.near == 2 {
			n.AtLeast100 += sign
		}
		if *n == (tollgate.NearLimit{}) {
			delete(p.near, c.tier)
		}
	}
	if p.vendors == 0 {
		delete(a.byPeriod, c.month)
	}
}

// snapshot reads the figures at now: O(tiers × statuses), no vendor is visited.
func (a *aggregates) snapshot(now time.Time) tollgate.VendorAggregates {
	a.mu.Lock()
	defer a.mu.Unlock()
	t := &a.t
	out := tollgate.VendorAggregates{
		Vendors:      maps.Clone(t.vendors),
		TotalVendors: t.total, ActiveVendors: t.active, TrialVendors: t.trial,
		TotalSubscriptions: t.subsTotal, ActiveSubscriptions: t.subsActive,
		Orders: t.orders, Products: t.products, TeamMembers: t.team,
		OrdersCapacity: t.orders.Sum, UnlimitedOrders: t.orders.Unlimited,
		ReportedProducts: t.repProducts, ReportedTeamMembers: t.repTeam, ReportedStorageBytes: t.repStorage,
		NearOrderLimit: map[string]tollgate.NearLimit{},
	}
	for _, key := range []int32{0, monthOf(now)} {
		p := a.byPeriod[key]
		if p == nil {
			continue
		}
		out.OrdersUsed += p.orders
		for tier, n := range p.near {
			cur := out.NearOrderLimit[tier]
			cur.AtLeast80 += n.AtLeast80
			cur.AtLeast100 += n.AtLeast100
			out.NearOrderLimit[tier] = cur
		}
	}
	return out
}

// refresh re-evaluates every vendor's limits (after a policy or catalog change), on all CPUs.
// It is the one full walk, and it runs off the request paths. Work goes out in batches, and
// each batch's contributions are applied under one lock, so a million vendors cost a few
// thousand channel operations and lock acquisitions rather than millions.
func (a *aggregates) refresh(ctx context.Context, forEach func(func(*tollgate.VendorState) bool)) error {
	const batch = 512
	work := make(chan []*tollgate.VendorState, 2*runtime.GOMAXPROCS(0))
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cs := make([]*contribution, 0, batch)
			for vs := range work {
				cs = cs[:0]
				for _, v := range vs {
					cs = append(cs, a.contribution(v))
				}
				a.mu.Lock()
				for i, v := range vs {
					a.applyLocked(v, cs[i])
				}
				a.mu.Unlock()
			}
		}()
	}
	var err error
	buf := make([]*tollgate.VendorState, 0, batch)
	forEach(func(v *tollgate.VendorState) bool {
		if err = ctx.Err(); err != nil {
			return false
		}
		if buf = append(buf, v); len(buf) == batch {
			work <- buf
			buf = make([]*tollgate.VendorState, 0, batch)
		}
		return true
	})
	if len(buf) > 0 && err == nil {
		work <- buf
	}
	close(work)
	wg.Wait()
	return err
}
