package cache

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/tollgate-pdp/tollgate"
)

// clock is a settable Options.Now for tests.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2025, 3, 14, 10, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// mustOpen opens a store at path (a new file in a temp dir when empty) and closes it with the
// test.
func mustOpen(tb testing.TB, path string, now func() time.Time) *Store {
	tb.Helper()
	if path == "" {
		path = filepath.Join(tb.TempDir(), "tollgate.db")
	}
	s, err := Open(context.Background(), Options{Path: path, Now: now})
	if err != nil {
		tb.Fatalf("Open(%s): %v", path, err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	return s
}

func ptr[T any](v T) *T { return &v }

func testSub(id string) *tollgate.Subscription {
	ps := time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
	pe := time.Date(2025, 4, 1, 0, 0, 0, 0, time.UTC)
	return &tollgate.Subscription{VendorID: id, Platform: "oms", Tier: "essential",
		Status: tollgate.StatusActive, PeriodStart: &ps, PeriodEnd: &pe,
		StripeCustomerID: "cus_" + id, StripeSubscriptionID: "sub_1PabcdefGHIJKLMNOPQRSTUV"}
}

func mustPut(tb testing.TB, s *Store, sub *tollgate.Subscription) *tollgate.VendorState {
	tb.Helper()
	st, err := s.PutSubscription(context.Background(), sub)
	if err != nil {
		tb.Fatalf("PutSubscription(%s): %v", sub.VendorID, err)
	}
	return st
}

func mustVendor(tb testing.TB, s *Store, id string) *tollgate.VendorState {
	tb.Helper()
	v, ok := s.Vendor(id)
	if !ok {
		tb.Fatalf("vendor %s not in memory", id)
	}
	return v
}
