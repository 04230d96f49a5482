package tollgate

import (
	"context"
	"time"
)

// VendorState is everything the policy sees about one vendor. Values handed out by a
// VendorReader are immutable snapshots: a writer builds a new one and swaps it in.
type VendorState struct {
	Subscription Subscription `json:"subscription"`
	Usage        Usage        `json:"usage"`
	// Revision increases with every durable change to the vendor (subscription, overrides,
	// add-ons, usage). A decision cached under one revision is valid while it is unchanged.
	Revision uint64 `json:"revision"`
}

// VendorReader serves the decision path from memory; it never opens a store transaction.
type VendorReader interface {
	// Vendor returns the vendor's current snapshot. The caller must not modify it.
	Vendor(id string) (*VendorState, bool)
}

// OrderIncrement adds orders to a vendor's counter for one billing period, at most once per
// idempotency key.
type OrderIncrement struct {
	VendorID       string
	Period         string
	Delta          int64
	IdempotencyKey string // empty: not deduplicated
	// Response is stored with the key and handed back to a later request with the same key.
	Response []byte
	// Limit is the effective order limit the policy reported (nil: unlimited); the store records
	// orders_limit_reached_at the first time the count reaches it.
	Limit *int64
	At    time.Time
}

// OrderIncrementResult says what an OrderIncrement did.
type OrderIncrementResult struct {
	Applied  bool   // false: the idempotency key was seen before and nothing was counted
	Orders   int64  // the period's count after the call
	Response []byte // for a replay, the response stored with the key
	State    *VendorState
}

// ImportRecord is one migrated subscription row with its usage this period.
type ImportRecord struct {
	Subscription         Subscription
	OrdersThisPeriod     int64
	OrdersLimitReachedAt *time.Time
}

// Store is the durable vendor state. Every method that returns without error has made its
// write durable (fsync) and updated the in-memory read model.
type Store interface {
	VendorReader
	// PutSubscription creates or replaces a vendor's subscription, keeping its usage.
	PutSubscription(ctx context.Context, s *Subscription) (*VendorState, error)
	// UpdateSubscription applies fn to a copy of the vendor's subscription and stores it; an
	// error from fn changes nothing. ENotFound when the vendor does not exist.
	UpdateSubscription(ctx context.Context, vendorID string, fn func(*Subscription) error) (*VendorState, error)
	UsageReporter
	// AddOrders counts orders; see OrderIncrement.
	AddOrders(ctx context.Context, inc OrderIncrement) (OrderIncrementResult, error)
	// IdempotentResponse returns the response stored with a key in a period, if any.
	IdempotentResponse(ctx context.Context, vendorID, period, key string) ([]byte, bool, error)
	// Import writes all records in one transaction: all or nothing.
	Import(ctx context.Context, records []ImportRecord) error
	// ForEachVendor calls fn with every vendor's snapshot until fn returns false.
	ForEachVendor(fn func(*VendorState) bool)
	// VendorCount is the number of vendors held.
	VendorCount() int
	Close() error
}

// Evaluator computes decisions with the policy.
type Evaluator interface {
	// Decide evaluates data.tollgate.decision on the facts (or serves an equal cached result).
	// DecisionID and Stale are left for the caller.
	Decide(ctx context.Context, f *Facts) (Decision, error)
	// Query evaluates an arbitrary document under data (the OPA Data API); path is slash
	// separated ("tollgate/decision"). defined is false when the document is undefined.
	Query(ctx context.Context, path string, input any) (result any, defined bool, err error)
	// LimitsResolver answers a vendor's effective limits (Revision names the compiled policy
	// in service).
	LimitsResolver
}
