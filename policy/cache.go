package policy

import (
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tollgate-pdp/tollgate"
)

const cacheShards = 64

// cacheKey names every fact a decision is computed from, except now (see expiry). It is a
// comparable struct so building it allocates nothing: its strings share the request's memory.
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

type cacheEntry struct {
	// d is handed out by value to every hit; its pointer fields (Limit, Remaining, UpgradeTo)
	// are shared between callers, who must treat them as read-only (as they do any decision).
	d tollgate.Decision
	// from and until bound the evaluation times the entry answers for, in Unix nanoseconds:
	// [now of the evaluation, min(now+TTL, the vendor's next time boundary)).
	from, until int64
}

type cacheShard struct {
	mu sync.RWMutex
	m  map[cacheKey]cacheEntry
	// sweepAt is when put next drops the shard's expired entries (Unix nanoseconds).
	sweepAt int64
}

// decisionCache is sharded by vendor so that concurrent checks for different vendors rarely
// meet on a lock. Each shard holds at most perShard entries.
type decisionCache struct {
	ttl      time.Duration
	perShard int
	seed     maphash.Seed
	shards   [cacheShards]cacheShard
	hits     atomic.Uint64
	misses   atomic.Uint64
}

func newDecisionCache(ttl time.Duration, size int) *decisionCache {
	if ttl <= 0 {
		return nil
	}
	per := max(size/cacheShards, 1)
	c := &decisionCache{ttl: ttl, perShard: per, seed: maphash.MakeSeed()}
	for i := range c.shards {
		c.shards[i].m = make(map[cacheKey]cacheEntry)
	}
	return c
}

func (c *decisionCache) shard(k *cacheKey) *cacheShard {
	return &c.shards[maphash.String(c.seed, k.vendor)%cacheShards]
}

func (c *decisionCache) get(k *cacheKey, now time.Time) (tollgate.Decision, bool) {
	s := c.shard(k)
	s.mu.RLock()
	e, ok := s.m[*k]
	s.mu.RUnlock()
	if ok {
		// A clock that went back before the evaluation could cross a boundary backwards, so
		// such an entry is not used either.
		if n := now.UnixNano(); n >= e.from && n < e.until {
			c.hits.Add(1)
			return e.d, true
		}
	}
	c.misses.Add(1)
	return tollgate.Decision{}, false
}

func (c *decisionCache) put(k *cacheKey, d tollgate.Decision, now time.Time, v *tollgate.VendorState) {
	until := now.Add(c.ttl)
	if v != nil {
		until = nextBoundary(&v.Subscription, now, until)
	}
	if !until.After(now) {
		return
	}
	s := c.shard(k)
	n := now.UnixNano()
	s.mu.Lock()
	if n >= s.sweepAt {
		// Once per TTL, drop what has expired: an entry answers for at most a TTL, and under
		// steady usage most are superseded by a newer vendor revision long before the shard
		// fills, so without this the cache held its full capacity of dead entries (found by the
		// soak test: ~25 MiB at 65,536 entries), not request rate x TTL.
		for key, e := range s.m {
			if e.until <= n {
				delete(s.m, key)
			}
		}
		s.sweepAt = n + int64(c.ttl)
	}
	if len(s.m) >= c.perShard {
		// Full: drop an arbitrary entry (map iteration order is random). Entries of old
		// generations and revisions are never asked for again and leave this way.
		for old := range s.m {
			delete(s.m, old)
			break
		}
	}
	s.m[*k] = cacheEntry{d: d, from: n, until: until.UnixNano()}
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
// returns their memory early.
func (c *decisionCache) purge() {
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		clear(s.m)
		s.mu.Unlock()
	}
}
