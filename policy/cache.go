package policy

import (
	"hash/maphash"
	"math/bits"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tollgate-pdp/tollgate"
)

const (
	// cacheShards is the number of independently locked parts of the table, chosen by the
	// key's hash.
	cacheShards     = 64
	cacheShardShift = 64 - 6 // the hash's top 6 bits pick the shard
	// cacheWays is how many entries a bucket holds: a key can live in any way of its bucket.
	cacheWays = 4
)

// cacheKey names every fact a decision is computed from, except now (see expiry). It is a
// comparable struct so building it allocates nothing: its strings share the request's memory.
// That memory must be the request's own (the api decoder allocates every string it keeps):
// put stores the key as it is, so a string aliasing a buffer that is reused for the next
// request would change a cached key under the table (put would then have to clone it).
// Usage is covered by the vendor revision, which the store bumps on every usage change; gen
// changes with every policy or catalog swap.
type cacheKey struct {
	gen         uint64
	revision    uint64
	vendor      string
	period      string
	action      string
	platform    string
	feature     string
	count       int64
	customCount int64
	quantity    int64
	months      int64
	flags       uint8
}

const (
	hasCount uint8 = 1 << iota
	hasCustomCount
	hasQuantity
	hasMonths
	isCustom
	knownVendor
)

func makeKey(gen uint64, f *tollgate.Facts, period string) cacheKey {
	r := f.Request
	k := cacheKey{gen: gen, vendor: string(r.VendorID), period: period, action: r.Action,
		platform: r.Platform, feature: r.Feature}
	if f.Vendor != nil {
		k.revision = f.Vendor.Revision
		k.flags |= knownVendor
	}
	if r.Count != nil {
		k.count, k.flags = *r.Count, k.flags|hasCount
	}
	if r.CustomCount != nil {
		k.customCount, k.flags = *r.CustomCount, k.flags|hasCustomCount
	}
	if r.Quantity != nil {
		k.quantity, k.flags = *r.Quantity, k.flags|hasQuantity
	}
	if r.Months != nil {
		k.months, k.flags = *r.Months, k.flags|hasMonths
	}
	if r.Custom {
		k.flags |= isCustom
	}
	return k
}

// cacheSlot is one cached decision: its key, when it was computed, and the decision's fields
// an evaluation sets (Allow is in the bucket's header). The pointer fields (Limit, Remaining,
// UpgradeTo) are handed out to every hit as they were put, so callers share them and must
// treat them as read-only (as they do any decision).
type cacheSlot struct {
	key                        cacheKey
	from                       int64 // Unix nanoseconds: the evaluation's now
	code, reason, tier, status string
	limit, remaining           *int64
	upgradeTo                  *string
	used                       int64
}

// cacheBucket is cacheWays slots and, in its first cache line, what a lookup reads before it
// touches a slot: each way's hash tag and the end of its validity (0: never written).
type cacheBucket struct {
	tag   [cacheWays]uint32
	until [cacheWays]int64 // Unix nanoseconds
	allow [cacheWays]bool
	_     [8]byte // header padded to 64 bytes, the bucket to 1 KiB
	slot  [cacheWays]cacheSlot
}

type cacheShard struct {
	mu      sync.RWMutex
	buckets []cacheBucket // a part of decisionCache.table
	hits    atomic.Uint64
	misses  atomic.Uint64
	_       [64]byte // the next shard's lock and counters on other cache lines
}

// decisionCache is a fixed-capacity, set-associative table allocated once: a key's hash
// picks a shard (its own lock, so concurrent checks rarely meet) and a bucket in it, and the
// key lives in one of the bucket's ways. An entry answers for the times in [from, until); a
// put overwrites the way holding the same key, else the one whose validity ends first, so
// empty and expired ways are reused before any live entry is dropped. Nothing is allocated
// after newDecisionCache and there is no sweep: memory is the table and what its entries
// point to, whatever the load.
type decisionCache struct {
	ttl     time.Duration
	ways    int    // ways used per bucket: cacheWays, fewer when a shard holds fewer entries
	buckets uint64 // per shard
	seed    maphash.Seed
	table   []cacheBucket
	shards  [cacheShards]cacheShard
}

// newDecisionCache returns a cache of at most size entries (at least one per shard), nil when
// ttl disables it.
func newDecisionCache(ttl time.Duration, size int) *decisionCache {
	if ttl <= 0 {
		return nil
	}
	per := max(size/cacheShards, 1)
	ways := min(per, cacheWays)
	nb := per / ways
	c := &decisionCache{ttl: ttl, ways: ways, buckets: uint64(nb), seed: maphash.MakeSeed(),
		table: make([]cacheBucket, cacheShards*nb)}
	for i := range c.shards {
		c.shards[i].buckets = c.table[i*nb : (i+1)*nb : (i+1)*nb]
	}
	return c
}

// capacity is the number of entries the table holds.
func (c *decisionCache) capacity() int { return len(c.table) * c.ways }

// hash covers every field of the key. Collisions only cost a lookup a key comparison, or an
// entry its way: a hit always compares the whole key.
func (c *decisionCache) hash(k *cacheKey) uint64 {
	h := mix(k.gen^0xa0761d6478bd642f, k.revision^0xe7037ed1a0b428db)
	h = mix(h^uint64(k.count), uint64(k.customCount)^0x8ebc6af09c88c6e3)
	h = mix(h^uint64(k.quantity), uint64(k.months)^uint64(k.flags)<<56^0x589965cc75374cc3)
	h = mix(h, maphash.String(c.seed, k.vendor))
	h = mix(h, maphash.String(c.seed, k.period))
	h = mix(h, maphash.String(c.seed, k.action))
	h = mix(h, maphash.String(c.seed, k.platform))
	return mix(h, maphash.String(c.seed, k.feature))
}

// mix folds the 128-bit product of a and b (wyhash's mum).
func mix(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b^0x1d8e4e27c47d124f)
	return hi ^ lo
}

// locate returns the key's shard, bucket and tag.
func (c *decisionCache) locate(k *cacheKey) (*cacheShard, *cacheBucket, uint32) {
	h := c.hash(k)
	s := &c.shards[h>>cacheShardShift]
	// The low 32 bits pick the bucket (multiply-shift, no division), the high 32 are the tag.
	return s, &s.buckets[uint64(uint32(h))*c.buckets>>32], uint32(h >> 32)
}

func (c *decisionCache) get(k *cacheKey, now time.Time) (tollgate.Decision, bool) {
	s, b, tag := c.locate(k)
	n := now.UnixNano()
	s.mu.RLock()
	for w := range cacheWays {
		// A clock that went back before the evaluation could cross a boundary backwards, so
		// an entry is served only for times in [from, until). Unused ways (past c.ways, or
		// never written) have until 0 and are never served.
		if b.tag[w] != tag || n >= b.until[w] {
			continue
		}
		e := &b.slot[w]
		if n < e.from || e.key != *k {
			continue
		}
		d := tollgate.Decision{Allow: b.allow[w], Code: e.code, Reason: e.reason, Limit: e.limit,
			Used: e.used, Remaining: e.remaining, Tier: e.tier, Status: e.status, UpgradeTo: e.upgradeTo}
		s.mu.RUnlock()
		s.hits.Add(1)
		return d, true
	}
	s.mu.RUnlock()
	s.misses.Add(1)
	return tollgate.Decision{}, false
}

// cacheable says whether a slot holds all of d: the fields an evaluation sets. The others
// (the decision id, staleness, replay, explanation) are the caller's and never come from a
// fresh evaluation; a decision carrying them is not cached rather than served without them.
func cacheable(d *tollgate.Decision) bool {
	return d.DecisionID == "" && !d.Stale && d.StaleMode == "" && !d.Replayed && d.Explain == nil
}

func (c *decisionCache) put(k *cacheKey, d tollgate.Decision, now time.Time, v *tollgate.VendorState) {
	if !cacheable(&d) {
		return
	}
	until := now.Add(c.ttl)
	if v != nil {
		until = nextBoundary(&v.Subscription, now, until)
	}
	if !until.After(now) {
		return
	}
	s, b, tag := c.locate(k)
	n := now.UnixNano()
	s.mu.Lock()
	// The way holding this key, else the one whose validity ends first: never written (0),
	// expired, or the live entry that had least time left.
	victim := 0
	for w := range c.ways {
		if b.tag[w] == tag && b.slot[w].key == *k {
			victim = w
			break
		}
		if b.until[w] < b.until[victim] {
			victim = w
		}
	}
	b.tag[victim], b.until[victim], b.allow[victim] = tag, until.UnixNano(), d.Allow
	b.slot[victim] = cacheSlot{key: *k, from: n, code: d.Code, reason: d.Reason, tier: d.Tier,
		status: d.Status, limit: d.Limit, remaining: d.Remaining, upgradeTo: d.UpgradeTo, used: d.Used}
	s.mu.Unlock()
}

// nextBoundary returns the earliest of until and the subscription's time facts that are still
// ahead of now: at such an instant a decision may change with no change to any fact (a
// cancelled subscription lapses, a trial ends, a scheduled change falls due).
func nextBoundary(s *tollgate.Subscription, now, until time.Time) time.Time {
	for _, t := range [...]*time.Time{s.PeriodEnd, s.TrialEndsAt, s.ScheduledChangeAt} {
		if t == nil {
			continue
		}
		// The policy sees whole Unix seconds, so the boundary is the second it falls in.
		b := time.Unix(t.Unix(), 0)
		if b.After(now) && b.Before(until) {
			until = b
		}
	}
	return until
}

// purge empties the cache; entries of the old generation could never be hit again, this only
// releases the memory they hold on to (their strings and pointers) early.
func (c *decisionCache) purge() {
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		clear(s.buckets)
		s.mu.Unlock()
	}
}

// stats returns the hit and miss counts.
func (c *decisionCache) stats() (hits, misses uint64) {
	for i := range c.shards {
		hits += c.shards[i].hits.Load()
		misses += c.shards[i].misses.Load()
	}
	return hits, misses
}
