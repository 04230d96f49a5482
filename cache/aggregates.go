package cache

import (
	"context"
	"hash/maphash"
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
	memo   map[memoKey]*tollgate.EffectiveLimits

	mu sync.Mutex
	// per holds each vendor's contribution by value (32 bytes, no allocation of its own): at a
	// million vendors it is a large part of the resident memory per vendor. It is split into
	// maps of at most perShard vendors after a load (see sizeFor and perShard): one map of a
	// million entries would be half empty.
	per     []map[string]contribution
	perSeed maphash.Seed
	t       totals
	// built is closed when the figures of the vendors loaded by Open are complete (see
	// Store.buildAggregates); snapshot waits for it.
	built chan struct{}
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

// contribution is what one vendor adds to the figures. What can be read again, exactly, from
// the immutable snapshot it was computed from (revision, tier, status, reported counts) is read
// from it; what depended on the time or the policy when it was computed is kept.
type contribution struct {
	v      *tollgate.VendorState     // the snapshot it was computed from (the read model's own)
	lim    *tollgate.EffectiveLimits // shared with every vendor of equal limit facts (the memo)
	orders int64
	month  int32
	near   int8 // thresholds of lim.NearOrders reached: 1 near the order limit, 2 at it
}

// noLimits is the contribution's limits when they are unknown: no access.
var noLimits = &tollgate.EffectiveLimits{}

func reported(p *int64) int64 {
	if p == nil {
		return 0
	}
	return *p
}

func newAggregates(limits tollgate.LimitsResolver, now func() time.Time, log *slog.Logger) *aggregates {
	return &aggregates{limits: limits, now: now, log: log, per: []map[string]contribution{{}}, perSeed: maphash.MakeSeed(),
		t: totals{vendors: map[tollgate.TierStatus]int64{}}, byPeriod: map[int32]*periodTotals{},
		built: make(chan struct{})}
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
	old, ok := a.perMap(v.Subscription.VendorID)[v.Subscription.VendorID]
	a.mu.Unlock()
	if ok && old.v.Revision >= v.Revision {
		return
	}
	a.apply(a.contribution(v))
}

// contribution computes v's contribution. Its limits come from the memo while a vendor with
// equal limit facts was evaluated under the same policy revision: an order count (the common
// write) never evaluates the policy.
func (a *aggregates) contribution(v *tollgate.VendorState) contribution {
	s := &v.Subscription
	now := a.now()
	c := contribution{v: v, lim: noLimits}
	if s.PeriodStart == nil {
		c.month = monthOf(now)
	}
	c.orders = v.Usage.OrdersIn(tollgate.PeriodKey(s, now))
	if a.limits != nil {
		c.lim = a.evaluate(v, factsOf(s), a.limits.Revision(), now)
	}
	if c.lim.Access {
		for _, n := range c.lim.NearOrders {
			if c.orders >= n {
				c.near++
			}
		}
	}
	return c
}

// evaluate asks the policy for v's limits, or reuses the answer for equal facts.
func (a *aggregates) evaluate(v *tollgate.VendorState, f limitFacts, rev string, now time.Time) *tollgate.EffectiveLimits {
	k := memoKey{facts: f, policyRev: rev}
	switch {
	case f.periodEnd == 0:
	case f.periodEnd <= now.Unix():
		k.facts.periodEnd = 1
	default:
		k.facts.periodEnd = 2
	}
	a.memoMu.Lock()
	memo, ok := a.memo[k]
	a.memoMu.Unlock()
	if ok {
		return memo
	}
	lim, err := a.limits.EffectiveLimits(context.Background(), v, now)
	if err != nil {
		// Counted as without access: the figures must not invent limits. Not memoised.
		a.log.Warn("capacity: effective limits", "vendor", v.Subscription.VendorID, "err", err)
		return noLimits
	}
	a.memoMu.Lock()
	if a.memo == nil || len(a.memo) >= maxMemo {
		a.memo = make(map[memoKey]*tollgate.EffectiveLimits)
	}
	if prev, ok := a.memo[k]; ok { // evaluated meanwhile by another worker: share its answer
		a.memoMu.Unlock()
		return prev
	}
	p := &lim
	a.memo[k] = p
	a.memoMu.Unlock()
	return p
}

// apply replaces the vendor's contribution with c unless a newer one is in place.
func (a *aggregates) apply(c contribution) {
	a.mu.Lock()
	a.applyLocked(c)
	a.mu.Unlock()
}

// sizeFor lays the contributions out for n vendors; only before the first one is applied.
func (a *aggregates) sizeFor(n int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.t.total != 0 || n == 0 {
		return
	}
	a.per = make([]map[string]contribution, shardsFor(n, 1))
	for i := range a.per {
		a.per[i] = make(map[string]contribution, n/len(a.per)+1)
	}
}

func (a *aggregates) perMap(id string) map[string]contribution {
	if len(a.per) == 1 {
		return a.per[0]
	}
	return a.per[maphash.String(a.perSeed, id)%uint64(len(a.per))]
}

// applyLocked is apply with mu held.
func (a *aggregates) applyLocked(c contribution) {
	id := c.v.Subscription.VendorID
	per := a.perMap(id)
	old, ok := per[id]
	if ok && old.v.Revision > c.v.Revision {
		return
	}
	if ok {
		a.add(&old, -1)
	}
	a.add(&c, 1)
	per[id] = c
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
	s := &c.v.Subscription
	k := tollgate.TierStatus{Tier: s.Tier, Status: s.Status}
	if t.vendors[k] += sign; t.vendors[k] == 0 {
		delete(t.vendors, k)
	}
	t.total += sign
	t.subsTotal += sign
	switch s.Status {
	case tollgate.StatusActive:
		t.active += sign
	case tollgate.StatusTrial:
		t.trial += sign
	}
	u := &c.v.Usage
	t.repProducts += sign * reported(u.Products)
	t.repTeam += sign * reported(u.TeamMembers)
	t.repStorage += sign * reported(u.StorageBytes)
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
		n := p.near[s.Tier]
		if n == nil {
			n = &tollgate.NearLimit{}
			p.near[s.Tier] = n
		}
		n.AtLeast80 += sign
		if c.near == 2 {
			n.AtLeast100 += sign
		}
		if *n == (tollgate.NearLimit{}) {
			delete(p.near, s.Tier)
		}
	}
	if p.vendors == 0 {
		delete(a.byPeriod, c.month)
	}
}

// snapshot reads the figures at now: O(tiers × statuses), no vendor is visited. Right after
// Open it first waits for the initial build.
func (a *aggregates) snapshot(now time.Time) tollgate.VendorAggregates {
	<-a.built
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
			cs := make([]contribution, 0, batch)
			for vs := range work {
				cs = cs[:0]
				for _, v := range vs {
					if ctx.Err() != nil { // abandoned: drain the queue without evaluating
						break
					}
					cs = append(cs, a.contribution(v))
				}
				a.mu.Lock()
				for _, c := range cs {
					a.applyLocked(c)
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
	if err == nil {
		err = ctx.Err() // workers may have skipped vendors after the walk ended
	}
	return err
}
