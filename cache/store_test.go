package cache

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/tollgate-pdp/tollgate"
	bolt "go.etcd.io/bbolt"
)

func TestReopenKeepsStateAndRevisions(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "tollgate.db")
	clk := newClock()
	s := mustOpen(t, path, clk.Now)
	mustPut(t, s, testSub("1"))
	mustPut(t, s, testSub("2"))
	if _, err := s.AddOrders(ctx, tollgate.OrderIncrement{VendorID: "1", Period: "2025-03-01T00:00:00Z", Delta: 3, IdempotencyKey: "k"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ReportUsage(ctx, "2", tollgate.UsageReport{Products: ptr[int64](7)}); err != nil {
		t.Fatal(err)
	}
	want := map[string]*tollgate.VendorState{"1": mustVendor(t, s, "1"), "2": mustVendor(t, s, "2")}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = mustOpen(t, path, clk.Now)
	if s.VendorCount() != 2 {
		t.Fatalf("VendorCount %d after reopen", s.VendorCount())
	}
	for id, w := range want {
		got := mustVendor(t, s, id)
		if !statesEqual(got, w) {
			t.Fatalf("vendor %s after reopen:\n got %+v\nwant %+v", id, got, w)
		}
	}
	// The revision keeps growing from where it was, never restarting.
	st, err := s.UpdateSubscription(ctx, "1", func(sub *tollgate.Subscription) error { sub.Tier = "business"; return nil })
	if err != nil {
		t.Fatal(err)
	}
	if st.Revision != want["1"].Revision+1 {
		t.Fatalf("revision %d after reopen and update, want %d", st.Revision, want["1"].Revision+1)
	}
	if resp, ok, err := s.IdempotentResponse(ctx, "1", "2025-03-01T00:00:00Z", "k"); err != nil || !ok || resp != nil {
		t.Fatalf("IdempotentResponse after reopen: %q %v %v", resp, ok, err)
	}
}

// statesEqual compares snapshots by their encoded form (pointer identity does not matter).
func statesEqual(a, b *tollgate.VendorState) bool {
	ra, rb := usageRecord{a.Revision, a.Usage}, usageRecord{b.Revision, b.Usage}
	return bytes.Equal(appendSubscription(nil, &a.Subscription), appendSubscription(nil, &b.Subscription)) &&
		bytes.Equal(appendUsage(nil, &ra), appendUsage(nil, &rb))
}

func TestPutSubscription(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	s := mustOpen(t, "", clk.Now)
	created := clk.Now()
	st := mustPut(t, s, testSub("1"))
	if st.Revision != 1 || !st.Subscription.CreatedAt.Equal(created) || !st.Subscription.UpdatedAt.Equal(created) {
		t.Fatalf("first put: revision %d created %v updated %v", st.Revision, st.Subscription.CreatedAt, st.Subscription.UpdatedAt)
	}
	if _, err := s.AddOrders(ctx, tollgate.OrderIncrement{VendorID: "1", Period: "p1", Delta: 5}); err != nil {
		t.Fatal(err)
	}
	clk.Set(created.Add(time.Hour))
	sub := testSub("1")
	sub.Tier = "professional"
	st = mustPut(t, s, sub)
	switch {
	case st.Revision != 3:
		t.Fatalf("revision %d, want 3", st.Revision)
	case !st.Subscription.CreatedAt.Equal(created):
		t.Fatalf("CreatedAt changed to %v", st.Subscription.CreatedAt)
	case !st.Subscription.UpdatedAt.Equal(created.Add(time.Hour)):
		t.Fatalf("UpdatedAt %v", st.Subscription.UpdatedAt)
	case st.Usage.OrdersIn("p1") != 5:
		t.Fatal("usage lost by replacing the subscription")
	case st.Subscription.Tier != "professional" || mustVendor(t, s, "1") != st:
		t.Fatal("memory not updated")
	}
	sub.Tier = "mutated by the caller"
	if mustVendor(t, s, "1").Subscription.Tier != "professional" {
		t.Fatal("snapshot aliases the caller's subscription")
	}
	if _, err := s.PutSubscription(ctx, &tollgate.Subscription{}); tollgate.ErrorCode(err) != tollgate.EInvalid {
		t.Fatalf("empty vendor id: %v", err)
	}
}

func TestUpdateSubscription(t *testing.T) {
	ctx := context.Background()
	s := mustOpen(t, "", nil)
	before := mustPut(t, s, testSub("1"))
	boom := errors.New("boom")
	tests := []struct {
		name     string
		id       string
		fn       func(*tollgate.Subscription) error
		wantErr  error
		wantCode string
	}{
		{"fn error changes nothing", "1", func(s *tollgate.Subscription) error {
			s.Tier = "business"
			*s.PeriodEnd = time.Time{} // modifying pointees of the copy must not leak either
			return boom
		}, boom, tollgate.EInternal},
		{"missing vendor", "nope", func(*tollgate.Subscription) error { return nil }, nil, tollgate.ENotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.UpdateSubscription(ctx, tt.id, tt.fn)
			if err == nil || tollgate.ErrorCode(err) != tt.wantCode || (tt.wantErr != nil && !errors.Is(err, tt.wantErr)) {
				t.Fatalf("err %v, want code %s", err, tt.wantCode)
			}
			if v := mustVendor(t, s, "1"); v != before || v.Subscription.PeriodEnd.IsZero() {
				t.Fatal("memory changed")
			}
		})
	}
	st, err := s.UpdateSubscription(ctx, "1", func(s *tollgate.Subscription) error { s.Status = tollgate.StatusCancelled; return nil })
	if err != nil || st.Subscription.Status != tollgate.StatusCancelled || st.Revision != before.Revision+1 {
		t.Fatalf("update: %v %+v", err, st)
	}
}

func TestAddOrdersIdempotency(t *testing.T) {
	ctx := context.Background()
	s := mustOpen(t, "", nil)
	mustPut(t, s, testSub("1"))
	const period = "2025-03-01T00:00:00Z"
	inc := tollgate.OrderIncrement{VendorID: "1", Period: period, Delta: 2, IdempotencyKey: "order-9", Response: []byte(`{"allow":true}`)}
	first, err := s.AddOrders(ctx, inc)
	if err != nil || !first.Applied || first.Orders != 2 {
		t.Fatalf("first: %+v %v", first, err)
	}
	inc.Response = []byte(`{"other":1}`)
	second, err := s.AddOrders(ctx, inc)
	switch {
	case err != nil:
		t.Fatal(err)
	case second.Applied || second.Orders != 2 || string(second.Response) != `{"allow":true}`:
		t.Fatalf("replay: %+v", second)
	case second.State.Revision != first.State.Revision || mustVendor(t, s, "1") != first.State:
		t.Fatal("replay changed the vendor")
	}
	resp, ok, err := s.IdempotentResponse(ctx, "1", period, "order-9")
	if err != nil || !ok || string(resp) != `{"allow":true}` {
		t.Fatalf("IdempotentResponse: %q %v %v", resp, ok, err)
	}
	if _, ok, _ := s.IdempotentResponse(ctx, "1", "2025-04-01T00:00:00Z", "order-9"); ok {
		t.Fatal("key leaked into another period")
	}
	// The same key in another period is a new order.
	inc.Period = "2025-04-01T00:00:00Z"
	if r, err := s.AddOrders(ctx, inc); err != nil || !r.Applied || r.Orders != 2 {
		t.Fatalf("other period: %+v %v", r, err)
	}
	// A key without a response (usage increments) still deduplicates.
	u := tollgate.OrderIncrement{VendorID: "1", Period: period, Delta: 1, IdempotencyKey: "usage-1"}
	for i, want := range []bool{true, false} {
		r, err := s.AddOrders(ctx, u)
		if err != nil || r.Applied != want || r.Orders != 3 {
			t.Fatalf("usage increment %d: %+v %v", i, r, err)
		}
	}
}

func TestAddOrdersErrors(t *testing.T) {
	s := mustOpen(t, "", nil)
	mustPut(t, s, testSub("1"))
	tests := []struct {
		name string
		inc  tollgate.OrderIncrement
		code string
	}{
		{"unknown vendor", tollgate.OrderIncrement{VendorID: "2", Period: "p", Delta: 1}, tollgate.ENotFound},
		{"no vendor", tollgate.OrderIncrement{Period: "p", Delta: 1}, tollgate.EInvalid},
		{"no period", tollgate.OrderIncrement{VendorID: "1", Delta: 1}, tollgate.EInvalid},
		{"negative delta", tollgate.OrderIncrement{VendorID: "1", Period: "p", Delta: -1}, tollgate.EInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := s.AddOrders(context.Background(), tt.inc); tollgate.ErrorCode(err) != tt.code {
				t.Fatalf("err %v, want %s", err, tt.code)
			}
		})
	}
}

func TestLimitReachedAtRecordedOnce(t *testing.T) {
	ctx := context.Background()
	s := mustOpen(t, "", nil)
	mustPut(t, s, testSub("1"))
	limit := int64(5)
	t0 := time.Date(2025, 3, 2, 0, 0, 0, 0, time.UTC)
	steps := []struct {
		delta   int64
		limit   *int64
		wantAt  *time.Time
		comment string
	}{
		{3, &limit, nil, "below the limit"},
		{1, nil, nil, "unlimited: nothing recorded even past nothing"},
		{1, &limit, ptr(t0.Add(2 * time.Hour)), "reaches the limit"},
		{4, &limit, ptr(t0.Add(2 * time.Hour)), "past the limit keeps the first time"},
	}
	for i, st := range steps {
		r, err := s.AddOrders(ctx, tollgate.OrderIncrement{VendorID: "1", Period: "p", Delta: st.delta, Limit: st.limit, At: t0.Add(time.Duration(i) * time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		p, _ := r.State.Usage.PeriodUsageOf("p")
		if (p.LimitReachedAt == nil) != (st.wantAt == nil) || (p.LimitReachedAt != nil && !p.LimitReachedAt.Equal(*st.wantAt)) {
			t.Fatalf("step %d (%s): LimitReachedAt %v, want %v", i, st.comment, p.LimitReachedAt, st.wantAt)
		}
	}
}

func TestUsagePeriods(t *testing.T) {
	ctx := context.Background()
	s := mustOpen(t, "", nil)
	mustPut(t, s, testSub("1"))
	add := func(period string, delta int64, key string) tollgate.OrderIncrementResult {
		t.Helper()
		r, err := s.AddOrders(ctx, tollgate.OrderIncrement{VendorID: "1", Period: period, Delta: delta, IdempotencyKey: key})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	month := func(i int) string {
		return time.Date(2023, time.Month(1+i), 1, 0, 0, 0, 0, time.UTC).Format(time.RFC3339)
	}
	add(month(0), 7, "a")
	if r := add(month(1), 1, ""); r.Orders != 1 {
		t.Fatalf("new period starts at %d, want 1 after one order", r.Orders-1)
	}
	u := mustVendor(t, s, "1").Usage
	if u.OrdersIn(month(0)) != 7 || u.Periods[0].Period != month(1) {
		t.Fatalf("periods %+v", u.Periods)
	}
	// An out-of-order older period is placed by date, newest first.
	add(month(-1), 2, "")
	got := mustVendor(t, s, "1").Usage.Periods
	if len(got) != 3 || got[0].Period != month(1) || got[1].Period != month(0) || got[2].Period != month(-1) {
		t.Fatalf("order %+v", got)
	}
	// Beyond MaxPeriods the oldest period goes, with its idempotency keys.
	for i := 2; i < MaxPeriods+2; i++ {
		add(month(i), 1, "")
	}
	u = mustVendor(t, s, "1").Usage
	if len(u.Periods) != MaxPeriods || u.Periods[0].Period != month(MaxPeriods+1) || u.OrdersIn(month(0)) != 0 {
		t.Fatalf("after %d periods: %d kept, newest %s", MaxPeriods+3, len(u.Periods), u.Periods[0].Period)
	}
	if _, ok, _ := s.IdempotentResponse(ctx, "1", month(0), "a"); ok {
		t.Fatal("idempotency key of a dropped period kept")
	}
	if _, err := s.AddOrders(ctx, tollgate.OrderIncrement{VendorID: "1", Period: month(-5), Delta: 1}); tollgate.ErrorCode(err) != tollgate.EInvalid {
		t.Fatalf("period older than the window: %v", err)
	}
}

func TestImport(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	s := mustOpen(t, "", clk.Now)
	mustPut(t, s, testSub("existing"))
	reached := time.Date(2025, 3, 10, 0, 0, 0, 0, time.UTC)
	noPeriod := testSub("monthly")
	noPeriod.PeriodStart, noPeriod.PeriodEnd = nil, nil

	bad := []tollgate.ImportRecord{
		{Subscription: *testSub("a"), OrdersThisPeriod: 3},
		{Subscription: *testSub("existing"), OrdersThisPeriod: 9},
		{Subscription: tollgate.Subscription{}}, // invalid: empty vendor id
	}
	before := mustVendor(t, s, "existing")
	if err := s.Import(ctx, bad); tollgate.ErrorCode(err) != tollgate.EInvalid {
		t.Fatalf("Import with an invalid record: %v", err)
	}
	if _, ok := s.Vendor("a"); ok || mustVendor(t, s, "existing") != before || s.VendorCount() != 1 {
		t.Fatal("failed import changed memory")
	}
	s.Close()
	s = mustOpen(t, s.Path(), clk.Now)
	if _, ok := s.Vendor("a"); ok || mustVendor(t, s, "existing").Usage.OrdersIn("2025-03-01T00:00:00Z") != 0 {
		t.Fatal("failed import changed the file")
	}

	good := []tollgate.ImportRecord{
		{Subscription: *testSub("a"), OrdersThisPeriod: 100, OrdersLimitReachedAt: &reached},
		{Subscription: *noPeriod, OrdersThisPeriod: 4},
		{Subscription: *testSub("existing"), OrdersThisPeriod: 9},
	}
	if err := s.Import(ctx, good); err != nil {
		t.Fatal(err)
	}
	a := mustVendor(t, s, "a")
	p, ok := a.Usage.PeriodUsageOf("2025-03-01T00:00:00Z")
	if !ok || p.Orders != 100 || p.LimitReachedAt == nil || !p.LimitReachedAt.Equal(reached) {
		t.Fatalf("imported usage %+v", a.Usage)
	}
	// No billing period: the calendar month of Now.
	if got := mustVendor(t, s, "monthly").Usage.OrdersIn("2025-03-01T00:00:00Z"); got != 4 {
		t.Fatalf("monthly vendor orders %d", got)
	}
	if e := mustVendor(t, s, "existing"); e.Usage.OrdersIn("2025-03-01T00:00:00Z") != 9 || e.Revision <= before.Revision {
		t.Fatalf("existing vendor %+v", e)
	}
	if s.VendorCount() != 3 {
		t.Fatalf("VendorCount %d", s.VendorCount())
	}
}

func TestConcurrentAddOrdersSumExactly(t *testing.T) {
	ctx := context.Background()
	s := mustOpen(t, "", nil)
	for _, id := range []string{"1", "2"} {
		mustPut(t, s, testSub(id))
	}
	const workers, each = 16, 50
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				id := []string{"1", "2"}[(w+i)%2]
				if _, err := s.AddOrders(ctx, tollgate.OrderIncrement{VendorID: id, Period: "p", Delta: 1}); err != nil {
					errs <- err
					return
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	total := mustVendor(t, s, "1").Usage.OrdersIn("p") + mustVendor(t, s, "2").Usage.OrdersIn("p")
	if total != workers*each {
		t.Fatalf("counted %d, want %d", total, workers*each)
	}
	// Memory holds the latest revision: one per write plus the creation.
	if r := mustVendor(t, s, "1").Revision; r != workers*each/2+1 {
		t.Fatalf("revision %d, want %d", r, workers*each/2+1)
	}
	s.Close()
	s = mustOpen(t, s.Path(), nil)
	if got := mustVendor(t, s, "1").Usage.OrdersIn("p") + mustVendor(t, s, "2").Usage.OrdersIn("p"); got != total {
		t.Fatalf("after reopen %d, want %d", got, total)
	}
}

func TestFailedWriteLeavesMemoryUnchanged(t *testing.T) {
	ctx := context.Background()
	s := mustOpen(t, "", nil)
	before := mustPut(t, s, testSub("1"))
	// Close bbolt under the store: every transaction now fails as a broken disk would.
	if err := s.db.Close(); err != nil {
		t.Fatal(err)
	}
	writes := map[string]func() error{
		"AddOrders": func() error {
			_, err := s.AddOrders(ctx, tollgate.OrderIncrement{VendorID: "1", Period: "p", Delta: 1})
			return err
		},
		"PutSubscription":     func() error { _, err := s.PutSubscription(ctx, testSub("1")); return err },
		"PutSubscription new": func() error { _, err := s.PutSubscription(ctx, testSub("2")); return err },
		"UpdateSubscription": func() error {
			_, err := s.UpdateSubscription(ctx, "1", func(s *tollgate.Subscription) error { s.Tier = "x"; return nil })
			return err
		},
		"ReportUsage": func() error {
			_, err := s.ReportUsage(ctx, "1", tollgate.UsageReport{Products: ptr[int64](1)})
			return err
		},
		"Import": func() error {
			return s.Import(ctx, []tollgate.ImportRecord{{Subscription: *testSub("3"), OrdersThisPeriod: 1}})
		},
	}
	for name, write := range writes {
		t.Run(name, func(t *testing.T) {
			if err := write(); tollgate.ErrorCode(err) != tollgate.EUnavailable {
				t.Fatalf("err %v, want unavailable", err)
			}
			if mustVendor(t, s, "1") != before || s.VendorCount() != 1 {
				t.Fatal("memory changed by a failed write")
			}
		})
	}
}

func TestReportUsage(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	s := mustOpen(t, "", clk.Now)
	mustPut(t, s, testSub("1"))
	st, err := s.ReportUsage(ctx, "1", tollgate.UsageReport{Products: ptr[int64](10), TeamMembers: ptr[int64](2)})
	if err != nil || *st.Usage.Products != 10 || *st.Usage.TeamMembers != 2 || !st.Usage.ReportedAt.Equal(clk.Now()) {
		t.Fatalf("report: %+v %v", st, err)
	}
	st, err = s.ReportUsage(ctx, "1", tollgate.UsageReport{StorageBytes: ptr[int64](1 << 30)})
	if err != nil || *st.Usage.Products != 10 || *st.Usage.StorageBytes != 1<<30 {
		t.Fatalf("second report must keep earlier counts: %+v %v", st.Usage, err)
	}
	tests := []struct {
		name, id string
		r        tollgate.UsageReport
		code     string
	}{
		{"unknown vendor", "2", tollgate.UsageReport{}, tollgate.ENotFound},
		{"negative", "1", tollgate.UsageReport{CMSPages: ptr[int64](-1)}, tollgate.EInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := s.ReportUsage(ctx, tt.id, tt.r); tollgate.ErrorCode(err) != tt.code {
				t.Fatalf("err %v, want %s", err, tt.code)
			}
		})
	}
}

func TestApplyVendorIsAtomicWithOtherBuckets(t *testing.T) {
	ctx := context.Background()
	s := mustOpen(t, "", nil)
	recordEvent := func(tx *bolt.Tx, id string) error {
		return tx.Bucket([]byte(bucketStripeEvents)).Put([]byte(id), []byte("processed"))
	}
	eventSeen := func(id string) bool {
		var ok bool
		_ = s.db.View(func(tx *bolt.Tx) error {
			ok = tx.Bucket([]byte(bucketStripeEvents)).Get([]byte(id)) != nil
			return nil
		})
		return ok
	}
	// Creates the vendor and records the event in one transaction.
	st, err := s.ApplyVendor(ctx, "9", func(tx *bolt.Tx, cur *tollgate.VendorState) (*tollgate.Subscription, error) {
		if cur != nil {
			t.Error("cur should be nil for a new vendor")
		}
		sub := testSub("")
		return sub, recordEvent(tx, "evt_1")
	})
	if err != nil || st.Subscription.VendorID != "9" || !eventSeen("evt_1") || mustVendor(t, s, "9") != st {
		t.Fatalf("apply: %+v %v", st, err)
	}
	// A failing apply rolls back the event record too.
	_, err = s.ApplyVendor(ctx, "9", func(tx *bolt.Tx, cur *tollgate.VendorState) (*tollgate.Subscription, error) {
		if err := recordEvent(tx, "evt_2"); err != nil {
			return nil, err
		}
		return nil, tollgate.Errorf(tollgate.EConflict, "no mapping")
	})
	if tollgate.ErrorCode(err) != tollgate.EConflict || eventSeen("evt_2") || mustVendor(t, s, "9") != st {
		t.Fatalf("failed apply: %v, event kept %v", err, eventSeen("evt_2"))
	}
	// nil subscription: event recorded, vendor unchanged.
	st2, err := s.ApplyVendor(ctx, "9", func(tx *bolt.Tx, cur *tollgate.VendorState) (*tollgate.Subscription, error) {
		return nil, recordEvent(tx, "evt_3")
	})
	if err != nil || !eventSeen("evt_3") || st2.Revision != st.Revision {
		t.Fatalf("no-op apply: %+v %v", st2, err)
	}
	if err := s.Update(ctx, func(tx *bolt.Tx) error { return recordEvent(tx, "evt_4") }); err != nil || !eventSeen("evt_4") {
		t.Fatalf("Update: %v", err)
	}
}

func TestCheckAndBackup(t *testing.T) {
	ctx := context.Background()
	s := mustOpen(t, "", nil)
	for _, id := range []string{"1", "2", "3"} {
		mustPut(t, s, testSub(id))
	}
	if _, err := s.AddOrders(ctx, tollgate.OrderIncrement{VendorID: "2", Period: "p", Delta: 4, IdempotencyKey: "k"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Check(ctx); err != nil {
		t.Fatalf("Check: %v", err)
	}
	path := filepath.Join(t.TempDir(), "backup.db")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	n, err := s.Backup(ctx, f)
	if err != nil || n <= 0 {
		t.Fatalf("Backup: %d %v", n, err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	b := mustOpen(t, path, nil)
	if b.VendorCount() != 3 {
		t.Fatalf("backup has %d vendors", b.VendorCount())
	}
	s.ForEachVendor(func(v *tollgate.VendorState) bool {
		if !statesEqual(mustVendor(t, b, v.Subscription.VendorID), v) {
			t.Errorf("vendor %s differs in the backup", v.Subscription.VendorID)
		}
		return true
	})
	if err := b.Check(ctx); err != nil {
		t.Fatalf("Check of the backup: %v", err)
	}
	seen := 0
	s.ForEachVendor(func(*tollgate.VendorState) bool { seen++; return false })
	if seen != 1 {
		t.Fatalf("ForEachVendor did not stop: %d calls", seen)
	}
}
