package policy

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/tollgate-pdp/tollgate"
)

func decide(t *testing.T, e *Engine, f *tollgate.Facts) tollgate.Decision {
	t.Helper()
	d, err := e.Decide(context.Background(), f)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func wantStats(t *testing.T, e *Engine, hits, misses uint64) {
	t.Helper()
	if h, m := e.CacheStats(); h != hits || m != misses {
		t.Fatalf("cache hits/misses = %d/%d, want %d/%d", h, m, hits, misses)
	}
}

func TestCacheHit(t *testing.T) {
	e := newEngine(t, Options{CacheTTL: time.Minute})
	f := facts(vendor("essential", tollgate.StatusActive, 100), tollgate.CheckRequest{Action: "order.create"})
	d1 := decide(t, e, f)
	d2 := decide(t, e, f)
	wantStats(t, e, 1, 1)
	if d1.Reason != d2.Reason || *d2.UpgradeTo != "professional" {
		t.Fatalf("cached decision differs: %+v vs %+v", d1, d2)
	}
	// Every request field that matters is part of the key.
	for i, req := range []tollgate.CheckRequest{
		{Action: "order.create", Quantity: i64(0)},
		{Action: "order.create", Platform: "oms"},
		{Action: "product.add"},
		{Action: "product.add", Count: i64(0)},
		{Action: "cms_page.create", CustomCount: i64(0)},
		{Action: "cms_page.create", Custom: true},
		{Action: "order_history.view", Months: i64(0)},
		{Action: "feature.use", Feature: "api_access"},
		{Action: "order.create", VendorID: "43"},
	} {
		decide(t, e, facts(vendor("essential", tollgate.StatusActive, 100), req))
		wantStats(t, e, 1, uint64(2+i))
	}
}

func TestCacheVendorRevision(t *testing.T) {
	e := newEngine(t, Options{CacheTTL: time.Minute})
	v := vendor("essential", tollgate.StatusActive, 99)
	f := facts(v, tollgate.CheckRequest{Action: "order.create"})
	if d := decide(t, e, f); !d.Allow {
		t.Fatal("want allowed at 99")
	}
	// The store builds a new snapshot with a higher revision for every change.
	v2 := vendor("essential", tollgate.StatusActive, 100)
	v2.Revision = v.Revision + 1
	if d := decide(t, e, facts(v2, tollgate.CheckRequest{Action: "order.create"})); d.Allow {
		t.Fatal("a new revision must not be served the old decision")
	}
	wantStats(t, e, 0, 2)
}

func TestCacheTTL(t *testing.T) {
	e := newEngine(t, Options{CacheTTL: 10 * time.Second})
	f := facts(vendor("essential", tollgate.StatusActive, 1), tollgate.CheckRequest{Action: "order.create"})
	decide(t, e, f)
	f.Now = testNow.Add(9 * time.Second)
	decide(t, e, f)
	wantStats(t, e, 1, 1)
	f.Now = testNow.Add(10 * time.Second)
	decide(t, e, f)
	wantStats(t, e, 1, 2)
	// A clock that went back before the evaluation is not served from the entry.
	f.Now = testNow
	decide(t, e, f)
	wantStats(t, e, 1, 3)
}

func TestCacheTimeBoundary(t *testing.T) {
	e := newEngine(t, Options{CacheTTL: time.Hour})
	v := vendor("essential", tollgate.StatusCancelled, 1)
	end := testNow.Add(30 * time.Second)
	v.Subscription.PeriodEnd = &end
	f := facts(v, tollgate.CheckRequest{Action: "order.create"})
	if d := decide(t, e, f); !d.Allow {
		t.Fatal("cancelled before period end: want allowed")
	}
	f.Now = end.Add(-time.Second)
	if d := decide(t, e, f); !d.Allow {
		t.Fatal("want allowed just before the boundary")
	}
	wantStats(t, e, 1, 1)
	f.Now = end
	if d := decide(t, e, f); d.Allow || d.Code != "inactive" {
		t.Fatalf("at period end the cached 'allowed' must not be served: %+v", d)
	}
	wantStats(t, e, 1, 2)

	// Trial end and scheduled changes are boundaries too.
	for _, set := range []func(*tollgate.Subscription, time.Time){
		func(s *tollgate.Subscription, at time.Time) { s.TrialEndsAt = &at },
		func(s *tollgate.Subscription, at time.Time) { s.ScheduledChangeAt = &at },
	} {
		e := newEngine(t, Options{CacheTTL: time.Hour})
		v := vendor("essential", tollgate.StatusActive, 1)
		set(&v.Subscription, testNow.Add(5*time.Second))
		f := facts(v, tollgate.CheckRequest{Action: "order.create"})
		decide(t, e, f)
		f.Now = testNow.Add(5 * time.Second)
		decide(t, e, f)
		wantStats(t, e, 0, 2)
	}
}

func TestCacheDisabled(t *testing.T) {
	e := newEngine(t, Options{})
	f := facts(vendor("essential", tollgate.StatusActive, 1), tollgate.CheckRequest{Action: "order.create"})
	decide(t, e, f)
	decide(t, e, f)
	wantStats(t, e, 0, 0)
}

func TestCacheUnknownVendor(t *testing.T) {
	e := newEngine(t, Options{CacheTTL: time.Minute})
	f := facts(nil, tollgate.CheckRequest{Action: "order.create"})
	decide(t, e, f)
	if d := decide(t, e, f); d.Code != "unknown_vendor" {
		t.Fatalf("%+v", d)
	}
	wantStats(t, e, 1, 1)
	// The vendor appearing (a known vendor, revision >= 1) is a different key.
	if d := decide(t, e, facts(vendor("essential", tollgate.StatusActive, 0), tollgate.CheckRequest{Action: "order.create"})); !d.Allow {
		t.Fatalf("%+v", d)
	}
	wantStats(t, e, 1, 2)
}

func TestCachePolicyReload(t *testing.T) {
	dir := t.TempDir()
	e := newEngine(t, Options{CacheTTL: time.Minute, PolicyDir: dir})
	f := facts(vendor("essential", tollgate.StatusActive, 100), tollgate.CheckRequest{Action: "order.create"})
	if d := decide(t, e, f); *d.UpgradeTo != "professional" {
		t.Fatalf("%+v", d)
	}
	writeFile(t, filepath.Join(dir, "upgrade.rego"), "package tollgate\n\nupgrade_to := \"call_sales\"\n")
	if err := e.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if d := decide(t, e, f); *d.UpgradeTo != "call_sales" {
		t.Fatalf("after reload: %+v", d)
	}
	wantStats(t, e, 0, 2)
}

func TestCacheBounded(t *testing.T) {
	e := newEngine(t, Options{CacheTTL: time.Minute, CacheSize: cacheShards})
	v := vendor("essential", tollgate.StatusActive, 1)
	for i := range int64(500) {
		decide(t, e, facts(v, tollgate.CheckRequest{Action: "product.add", Count: i64(i)}))
	}
	if n := e.cache.size(); n > cacheShards {
		t.Fatalf("cache holds %d entries, bound is %d", n, cacheShards)
	}
}

// The table is allocated once and never grows: however many keys are put, it holds at most
// its capacity of entries, and keeps the most recent ones.
func TestCacheCapacity(t *testing.T) {
	for _, tc := range []struct {
		name          string
		size          int
		capacity      int
		ways, buckets int
	}{
		{"default", DefaultCacheSize, DefaultCacheSize, cacheWays, DefaultCacheSize / cacheShards / cacheWays},
		{"one per shard", cacheShards, cacheShards, 1, 1},
		{"below one per shard", 10, cacheShards, 1, 1},
		{"two per shard", 2 * cacheShards, 2 * cacheShards, 2, 1},
		{"rounded down to whole buckets", 1000, 768, cacheWays, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newDecisionCache(time.Minute, tc.size)
			if c.capacity() != tc.capacity || c.ways != tc.ways || c.buckets != uint64(tc.buckets) {
				t.Fatalf("capacity %d, %d ways, %d buckets per shard; want %d, %d, %d",
					c.capacity(), c.ways, c.buckets, tc.capacity, tc.ways, tc.buckets)
			}
			keys := testKeys(4 * tc.capacity)
			now := testNow
			for i := range keys {
				c.put(&keys[i], testDecision(i), now, nil)
				now = now.Add(time.Microsecond)
				if i%(tc.capacity/4+1) == 0 {
					if n := c.size(); n > tc.capacity {
						t.Fatalf("after %d puts the cache holds %d entries, capacity %d", i+1, n, tc.capacity)
					}
				}
			}
			if n := c.size(); n > tc.capacity {
				t.Fatalf("the cache holds %d entries, capacity %d", n, tc.capacity)
			}
			// The latest puts are there, with their decisions: a put drops the entry with least
			// time left in its bucket, and each bucket holds c.ways of them.
			for i := len(keys) - c.ways; i < len(keys); i++ {
				if d, ok := c.get(&keys[i], now); !ok || !reflect.DeepEqual(d, testDecision(i)) {
					t.Fatalf("put %d of %d: %v %+v", i+1, len(keys), ok, d)
				}
			}
		})
	}
}

// A full table drops the entry with least time left in the key's bucket: an expired one
// before any live one, and a live one only when all ways are live.
func TestCacheReusesExpiredSlots(t *testing.T) {
	const ttl = time.Second
	// One bucket per shard: the keys of a shard share a bucket.
	c := newDecisionCache(ttl, cacheShards*cacheWays)
	keys := testKeys(20_000)
	byShard := map[*cacheShard][]*cacheKey{}
	for i := range keys {
		s, _, _ := c.locate(&keys[i])
		byShard[s] = append(byShard[s], &keys[i])
	}
	s := &c.shards[0]
	ks := byShard[s]
	if len(ks) < 2*cacheWays+1 {
		t.Fatalf("%d keys in shard 0", len(ks))
	}
	now := testNow
	d := tollgate.Decision{Allow: true, Code: "ok"}
	for _, k := range ks[:cacheWays] {
		c.put(k, d, now, nil)
	}
	for _, k := range ks[:cacheWays] {
		if _, ok := c.get(k, now); !ok {
			t.Fatal("a put key is missing")
		}
	}
	// Past until, an entry is never served, though it is still in its slot.
	later := now.Add(ttl)
	for _, k := range ks[:cacheWays] {
		if _, ok := c.get(k, later); ok {
			t.Fatal("an expired entry was served")
		}
	}
	if n := c.size(); n != cacheWays {
		t.Fatalf("%d entries, want the %d expired ones still in their slots", n, cacheWays)
	}
	// New keys go into the expired ways, one each: all of them stay.
	for _, k := range ks[cacheWays : 2*cacheWays] {
		c.put(k, d, later, nil)
	}
	if n := c.size(); n != cacheWays {
		t.Fatalf("%d entries, want %d: the expired slots reused", n, cacheWays)
	}
	for _, k := range ks[cacheWays : 2*cacheWays] {
		if _, ok := c.get(k, later); !ok {
			t.Fatal("a key put into an expired slot is missing")
		}
	}
	for _, k := range ks[:cacheWays] {
		if _, ok := c.get(k, later); ok {
			t.Fatal("a replaced key was served")
		}
	}
	// All ways live: a new key replaces the one put earliest (least time left).
	c.put(ks[2*cacheWays], d, later.Add(time.Millisecond), nil)
	if _, ok := c.get(ks[cacheWays], later.Add(time.Millisecond)); ok {
		t.Fatal("the entry with least time left was kept")
	}
	for _, k := range append(ks[cacheWays+1:2*cacheWays], ks[2*cacheWays]) {
		if _, ok := c.get(k, later.Add(time.Millisecond)); !ok {
			t.Fatal("a live entry with more time left was dropped")
		}
	}
	// Putting a key again overwrites its own slot.
	c.put(ks[2*cacheWays], tollgate.Decision{Code: "again"}, later.Add(2*time.Millisecond), nil)
	if got, ok := c.get(ks[2*cacheWays], later.Add(2*time.Millisecond)); !ok || got.Code != "again" {
		t.Fatalf("%v %+v", ok, got)
	}
	if n := c.size(); n != cacheWays {
		t.Fatalf("%d entries after putting a key again, want %d", n, cacheWays)
	}
}

// A hit hands out exactly the decision put, pointer fields included (shared, not copied).
func TestCacheRoundTrip(t *testing.T) {
	c := newDecisionCache(time.Minute, DefaultCacheSize)
	keys := testKeys(3)
	for i, d := range []tollgate.Decision{
		{},
		{Allow: true, Code: "ok", Reason: "r", Used: 3, Tier: "essential", Status: "active", Limit: i64(10), Remaining: i64(7)},
		{Code: "limit_reached", Limit: i64(0), Remaining: i64(0), UpgradeTo: strp("")},
	} {
		c.put(&keys[i], d, testNow, nil)
		got, ok := c.get(&keys[i], testNow)
		if !ok || !reflect.DeepEqual(got, d) || got.Limit != d.Limit || got.Remaining != d.Remaining ||
			got.UpgradeTo != d.UpgradeTo {
			t.Fatalf("put %+v, got %v %+v", d, ok, got)
		}
	}
	// What a slot cannot hold is not cached.
	for i, d := range []tollgate.Decision{
		{DecisionID: "x"}, {Stale: true}, {StaleMode: "deny"}, {Replayed: true},
		{Explain: &tollgate.Explanation{}},
	} {
		k := testKeys(10)[5+i]
		c.put(&k, d, testNow, nil)
		if _, ok := c.get(&k, testNow); ok {
			t.Fatalf("%+v was cached", d)
		}
	}
}

// Purge (a policy or catalog swap) empties every slot.
func TestCachePurge(t *testing.T) {
	c := newDecisionCache(time.Minute, 1024)
	keys := testKeys(500)
	for i := range keys {
		c.put(&keys[i], testDecision(i), testNow, nil)
	}
	if c.size() == 0 {
		t.Fatal("empty")
	}
	c.purge()
	for i := range c.table {
		if c.table[i] != (cacheBucket{}) {
			t.Fatalf("bucket %d not cleared", i)
		}
	}
}

func TestCacheAllocatesNothing(t *testing.T) {
	c := newDecisionCache(time.Second, DefaultCacheSize)
	keys := testKeys(1024)
	d := testDecision(1)
	now := testNow
	i := 0
	allocs := testing.AllocsPerRun(10_000, func() {
		k := &keys[i%len(keys)]
		k.revision++ // a new key every time, as under steady usage
		c.put(k, d, now, nil)
		if _, ok := c.get(k, now); !ok {
			t.Fatal("miss")
		}
		now = now.Add(100 * time.Microsecond) // entries expire and their slots are reused
		i++
	})
	if allocs != 0 {
		t.Fatalf("put+get allocates %v times", allocs)
	}
}

// Concurrent gets and puts of shared keys (run with -race): every hit is the decision put for
// that key.
func TestCacheConcurrent(t *testing.T) {
	c := newDecisionCache(time.Second, 256)
	keys := testKeys(2000)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			now := testNow
			for i := range 20_000 {
				// Each key twice in a row: the second read finds the first's put whatever the
				// scheduling, so hits cannot be zero (keys of other goroutines are a bonus).
				j := ((i/2)*7 + g*13) % len(keys)
				if d, ok := c.get(&keys[j], now); ok {
					if !reflect.DeepEqual(d, testDecision(j)) {
						t.Errorf("key %d served %+v", j, d)
						return
					}
				} else {
					c.put(&keys[j], testDecision(j), now, nil)
				}
				if i%1000 == 0 {
					c.purge()
				}
				now = now.Add(10 * time.Microsecond)
			}
		}()
	}
	wg.Wait()
	if h, m := c.stats(); h+m != 4*20_000 || h == 0 {
		t.Fatalf("hits %d + misses %d", h, m)
	}
}

// testKeys returns n distinct keys whose strings are owned, as the api decoder's are.
func testKeys(n int) []cacheKey {
	keys := make([]cacheKey, n)
	for i := range keys {
		keys[i] = cacheKey{gen: 1, revision: 1, vendor: fmt.Sprint("v", i%97), period: "2026-03",
			action: tollgate.ActionProductAdd, count: int64(i), flags: knownVendor | hasCount}
	}
	return keys
}

// testDecision is a decision particular to i.
func testDecision(i int) tollgate.Decision {
	return tollgate.Decision{Allow: i%2 == 0, Code: fmt.Sprint("c", i), Reason: "r", Limit: i64(int64(i)),
		Used: int64(i), Tier: "essential", Status: "active", UpgradeTo: strp("professional")}
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// size is the number of slots holding an entry, live or expired.
func (c *decisionCache) size() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.RLock()
		for j := range s.buckets {
			for _, u := range s.buckets[j].until {
				if u != 0 {
					n++
				}
			}
		}
		s.mu.RUnlock()
	}
	return n
}
