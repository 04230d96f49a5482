package policy

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
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

// Expired entries leave within a TTL, so the cache holds about request rate x TTL, not its
// capacity of dead entries (the soak test's memory climb).
func TestCacheDropsExpiredEntries(t *testing.T) {
	const ttl = time.Second
	c := newDecisionCache(ttl, DefaultCacheSize)
	now := testNow
	put := func(i int, at time.Time) {
		f := facts(vendor("essential", tollgate.StatusActive, 1), tollgate.CheckRequest{Action: "product.add",
			VendorID: tollgate.VendorID(fmt.Sprint("v", i)), Count: i64(int64(i))})
		k := makeKey(1, f, f.Period)
		c.put(&k, tollgate.Decision{Allow: true, Code: "ok"}, at, nil)
	}
	for i := range 5_000 {
		put(i, now)
	}
	if n := c.size(); n != 5_000 {
		t.Fatalf("size after 5,000 puts = %d", n)
	}
	// Two TTLs later every shard has been swept by the next puts into it.
	later := now.Add(2 * ttl)
	for i := range 5_000 {
		put(5_000+i, later)
	}
	if n := c.size(); n != 5_000 {
		t.Fatalf("size after 5,000 more puts two TTLs later = %d, want 5,000 (the expired first 5,000 dropped)", n)
	}
	// What was put two TTLs later is still there.
	f := facts(vendor("essential", tollgate.StatusActive, 1), tollgate.CheckRequest{Action: "product.add",
		VendorID: "v5000", Count: i64(5_000)})
	k := makeKey(1, f, f.Period)
	if _, ok := c.get(&k, later); !ok {
		t.Fatal("a live entry was dropped")
	}
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// size is the number of cached decisions.
func (c *decisionCache) size() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.RLock()
		n += len(s.m)
		s.mu.RUnlock()
	}
	return n
}
