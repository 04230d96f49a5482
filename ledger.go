package tollgate

import (
	"context"
	"fmt"
	"hash/maphash"
	"sync"
	"time"
)

// OrderLedger counts a vendor's orders per billing period. A single sidecar counts in its own
// Store (StoreLedger); a fleet shares one counter per vendor and period, so a limit holds across
// every sidecar. The ledger only counts: the policy decides, through the Decide callback.
type OrderLedger interface {
	// Consume is one atomic check-and-count. It calls c.Decide with the period's count as the
	// ledger holds it and, when the decision allows, adds c.Delta; when another writer moved
	// the count meanwhile, it calls Decide again with the fresh count. A key seen before
	// answers the response stored with it (Applied false) without calling Decide.
	Consume(ctx context.Context, c OrderConsume) (OrderIncrementResult, error)
	// Add counts orders with no decision (POST /v1/usage), at most once per idempotency key.
	Add(ctx context.Context, inc OrderIncrement) (OrderIncrementResult, error)
}

// OrderConsume is one consuming order check. Response and Limit of the embedded increment are
// left empty: they come from Decide.
type OrderConsume struct {
	OrderIncrement
	Decide func(used int64) (ConsumeStep, error)
}

// ConsumeStep is what Decide answered for one count.
type ConsumeStep struct {
	Allow    bool
	Limit    *int64 // the effective order limit (nil: unlimited)
	Response []byte // the encoded decision, stored with the idempotency key
}

// StoreLedger counts in the sidecar's own Store: the single-sidecar ledger. A per-vendor lock
// makes check-and-count atomic among this process's consumers, which are the only writers.
type StoreLedger struct {
	Store Store
	locks *vendorLocks
}

// NewStoreLedger returns the ledger of a single sidecar.
func NewStoreLedger(s Store) *StoreLedger {
	return &StoreLedger{Store: s, locks: newVendorLocks()}
}

// Consume checks and counts under the vendor's lock.
func (l *StoreLedger) Consume(ctx context.Context, c OrderConsume) (OrderIncrementResult, error) {
	mu := l.locks.of(c.VendorID)
	mu.Lock()
	defer mu.Unlock()
	if c.IdempotencyKey != "" {
		stored, ok, err := l.Store.IdempotentResponse(ctx, c.VendorID, c.Period, c.IdempotencyKey)
		if err != nil {
			return OrderIncrementResult{}, err
		}
		if ok {
			return OrderIncrementResult{Response: stored}, nil
		}
	}
	var used int64
	if v, ok := l.Store.Vendor(c.VendorID); ok {
		used = v.Usage.OrdersIn(c.Period)
	}
	step, err := c.Decide(used)
	if err != nil || !step.Allow {
		return OrderIncrementResult{Orders: used}, err
	}
	inc := c.OrderIncrement
	inc.Response, inc.Limit = step.Response, step.Limit
	return l.Store.AddOrders(ctx, inc)
}

// Add counts under the vendor's lock, so it never interleaves with a consume of the vendor.
func (l *StoreLedger) Add(ctx context.Context, inc OrderIncrement) (OrderIncrementResult, error) {
	mu := l.locks.of(inc.VendorID)
	mu.Lock()
	defer mu.Unlock()
	res, err := l.Store.AddOrders(ctx, inc)
	if err != nil {
		return OrderIncrementResult{}, fmt.Errorf("count orders: %w", err)
	}
	return res, nil
}

// vendorLocks serialises a vendor's counting; striped so unrelated vendors do not contend.
type vendorLocks struct {
	seed  maphash.Seed
	locks [256]sync.Mutex
}

func newVendorLocks() *vendorLocks { return &vendorLocks{seed: maphash.MakeSeed()} }

func (l *vendorLocks) of(vendorID string) *sync.Mutex {
	return &l.locks[maphash.String(l.seed, vendorID)%uint64(len(l.locks))]
}

// withOrders returns the vendor with used orders in the period: v itself when it already holds
// that count, else a copy, and then uncached is true (the copy's revision names v's count, so a
// decision cached under it must not answer for the copy).
func withOrders(v *VendorState, period string, used int64) (_ *VendorState, uncached bool) {
	if v.Usage.OrdersIn(period) == used {
		return v, false
	}
	st := *v
	st.Usage.Periods = make([]PeriodUsage, 0, len(v.Usage.Periods)+1)
	placed := false
	for _, p := range v.Usage.Periods {
		switch {
		case p.Period == period:
			p.Orders, placed = used, true
		case !placed && p.Period < period: // newest first: RFC 3339 UTC keys sort by time
			st.Usage.Periods = append(st.Usage.Periods, PeriodUsage{Period: period, Orders: used})
			placed = true
		}
		st.Usage.Periods = append(st.Usage.Periods, p)
	}
	if !placed {
		st.Usage.Periods = append(st.Usage.Periods, PeriodUsage{Period: period, Orders: used})
	}
	return &st, true
}

// OrderCount is one period's count as a fleet's shared counter holds it.
type OrderCount struct {
	VendorID       string
	Period         string
	Orders         int64
	LimitReachedAt *time.Time
}

// OrderCountSetter is the local copy of a fleet's shared counters (the Store in fleet mode).
type OrderCountSetter interface {
	// SetOrders raises each vendor's period count to the fleet's, durably, in one write. It
	// never lowers a count: the fleet's count only grows, and a watch may deliver an older
	// value after a newer one was set. Counts of vendors the store does not hold are returned.
	SetOrders(ctx context.Context, counts []OrderCount) (missing []OrderCount, err error)
}
