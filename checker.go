package tollgate

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Checker answers check requests: it gathers facts from the store, asks the evaluator, and for
// consuming checks counts the orders in the same step. It holds no business rule.
type Checker struct {
	Store  Store
	Policy Evaluator
	Now    func() time.Time

	// Optional collaborators; set them before the first Check.
	//
	// Freshness and WhenStale make decisions stale-aware: when Freshness says no Stripe state
	// was applied for too long, the facts carry the action's stale mode and the policy applies
	// it. Noter learns usage facts from checks. Logger receives decision log entries.
	Freshness *Freshness
	WhenStale WhenStale
	Noter     CheckNoter
	Logger    DecisionLogger

	// Ledger counts orders: the Store's StoreLedger unless a fleet shares one counter.
	Ledger OrderLedger

	ids decisionIDs
}

// NewChecker wires a checker; now defaults to time.Now.
func NewChecker(store Store, policy Evaluator, now func() time.Time) *Checker {
	if now == nil {
		now = time.Now
	}
	c := &Checker{Store: store, Policy: policy, Now: now, Ledger: NewStoreLedger(store)}
	c.ids.init()
	return c
}

// Check answers one request. The request must have been validated.
func (c *Checker) Check(ctx context.Context, req *CheckRequest) (Decision, error) {
	if req.Consume && req.Action == ActionOrderCreate {
		return c.consume(ctx, req)
	}
	started := c.started()
	now := c.Now()
	facts := Facts{Request: req, Now: now}
	if v, ok := c.Store.Vendor(string(req.VendorID)); ok {
		facts.Vendor = v
		facts.Period = PeriodKey(&v.Subscription, now)
	}
	d, err := c.decide(ctx, &facts)
	if err != nil {
		return Decision{}, fmt.Errorf("check %s for vendor %s: %w", req.Action, req.VendorID, err)
	}
	c.finish(&facts, &d, started)
	return d, nil
}

// started reads the clock for the decision log's latency only when a log is configured.
func (c *Checker) started() time.Time {
	if c.Logger == nil {
		return time.Time{}
	}
	return time.Now()
}

// decide evaluates the facts with their staleness: when no Stripe state was applied for too
// long the facts carry the action's stale mode (the policy decides what a stale answer is),
// and the answer is marked stale. It also names the decision.
func (c *Checker) decide(ctx context.Context, f *Facts) (Decision, error) {
	if c.Freshness.Stale(f.Now) {
		f.Stale, f.StaleMode = true, c.WhenStale.Mode(f.Request.Action)
	}
	d, err := c.Policy.Decide(ctx, f)
	if err != nil {
		return Decision{}, err
	}
	d.DecisionID = c.ids.next()
	if f.Stale {
		d.Stale = true
		if d.StaleMode == "" {
			d.StaleMode = f.StaleMode
		}
	}
	return d, nil
}

// finish tells the noter and logs the decision.
func (c *Checker) finish(f *Facts, d *Decision, started time.Time) {
	if c.Noter != nil && f.Vendor != nil {
		c.Noter.NoteCheck(f.Vendor, f.Request, d.Allow)
	}
	if c.Logger != nil && c.Logger.Sample(d.Allow) {
		c.Logger.Log(c.logEntry(f, d, started))
	}
}

// logEntry copies what the log needs: the request may live in a pooled buffer and its strings
// may point into the request's bytes, so nothing of it is kept by reference.
func (c *Checker) logEntry(f *Facts, d *Decision, started time.Time) *DecisionLogEntry {
	r := *f.Request
	r.VendorID = VendorID(strings.Clone(string(r.VendorID)))
	r.Action, r.Platform, r.Feature = strings.Clone(r.Action), strings.Clone(r.Platform), strings.Clone(r.Feature)
	r.IdempotencyKey = strings.Clone(r.IdempotencyKey)
	r.Count, r.CustomCount, r.Quantity, r.Months = copyInt(r.Count), copyInt(r.CustomCount), copyInt(r.Quantity), copyInt(r.Months)
	res := *d
	res.Explain = nil
	e := &DecisionLogEntry{
		DecisionID: d.DecisionID, Time: f.Now.UTC(), VendorID: string(r.VendorID), Action: r.Action,
		Request: r, Result: res, PolicyRevision: c.Policy.Revision(), BillingPeriod: f.Period,
	}
	if cr, ok := c.Policy.(interface{ CatalogRevision() string }); ok {
		e.CatalogRevision = cr.CatalogRevision()
	}
	if f.Vendor != nil {
		e.Tier = f.Vendor.Subscription.Tier
	}
	if !started.IsZero() {
		e.Latency = time.Since(started)
		e.LatencySeconds = e.Latency.Seconds()
	}
	return e
}

func copyInt(p *int64) *int64 {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}

// consume checks and counts in one step: the ledger holds the count the policy decides on and
// calls back for a decision on it, again with the fresh count when another writer moved it.
func (c *Checker) consume(ctx context.Context, req *CheckRequest) (Decision, error) {
	vendorID := string(req.VendorID)
	started := c.started()
	now := c.Now()
	facts := Facts{Request: req, Now: now}
	v, known := c.Store.Vendor(vendorID)
	if !known {
		d, err := c.decide(ctx, &facts)
		if err != nil {
			return Decision{}, fmt.Errorf("consume for vendor %s: %w", vendorID, err)
		}
		c.finish(&facts, &d, started)
		return d, nil
	}
	facts.Period = PeriodKey(&v.Subscription, now)
	var d Decision
	res, err := c.Ledger.Consume(ctx, OrderConsume{
		OrderIncrement: OrderIncrement{VendorID: vendorID, Period: facts.Period, Delta: req.QuantityOrDefault(),
			IdempotencyKey: req.IdempotencyKey, At: now},
		Decide: func(used int64) (ConsumeStep, error) {
			// Read again: a retry decides on the newest subscription too.
			if cur, ok := c.Store.Vendor(vendorID); ok {
				v = cur
			}
			facts.Vendor, facts.Uncached = withOrders(v, facts.Period, used)
			var err error
			if d, err = c.decide(ctx, &facts); err != nil {
				return ConsumeStep{}, err
			}
			if !d.Allow {
				return ConsumeStep{}, nil
			}
			explain := d.Explain
			d.Explain = nil
			resp, err := json.Marshal(d)
			d.Explain = explain
			if err != nil {
				return ConsumeStep{}, fmt.Errorf("encode decision: %w", err)
			}
			return ConsumeStep{Allow: true, Limit: d.Limit, Response: resp}, nil
		},
	})
	if err != nil {
		return Decision{}, fmt.Errorf("consume for vendor %s: %w", vendorID, err)
	}
	if !res.Applied && res.Response != nil {
		return replayed(res.Response)
	}
	c.finish(&facts, &d, started)
	return d, nil
}

func replayed(stored []byte) (Decision, error) {
	var d Decision
	if err := json.Unmarshal(stored, &d); err != nil {
		return Decision{}, fmt.Errorf("decode stored idempotent response: %w", err)
	}
	d.Replayed = true
	return d, nil
}

// UsageIncrement is a POST /v1/usage request.
type UsageIncrement struct {
	VendorID       VendorID `json:"vendor_id"`
	Metric         string   `json:"metric"`
	Delta          int64    `json:"delta"`
	IdempotencyKey string   `json:"idempotency_key,omitempty"`
}

// UsageResult answers a usage increment.
type UsageResult struct {
	VendorID string `json:"vendor_id"`
	Metric   string `json:"metric"`
	Period   string `json:"period"`
	Value    int64  `json:"value"`
	Applied  bool   `json:"applied"` // false: the idempotency key was seen before
}

// Validate checks the increment's shape.
func (u *UsageIncrement) Validate() error {
	if err := ValidateVendorID(string(u.VendorID)); err != nil {
		return err
	}
	if u.Metric != "orders" {
		return FieldErrorf("metric", `must be "orders", got %q`, truncate(u.Metric, 64))
	}
	if u.Delta < 1 || u.Delta > 1_000_000 {
		return FieldErrorf("delta", "must be between 1 and 1000000, got %d", u.Delta)
	}
	if len(u.IdempotencyKey) > MaxIdempotencyKey {
		return FieldErrorf("idempotency_key", "must be at most %d bytes", MaxIdempotencyKey)
	}
	return nil
}

// AddUsage counts orders the application placed without a consuming check.
func (c *Checker) AddUsage(ctx context.Context, inc *UsageIncrement) (UsageResult, error) {
	vendorID := string(inc.VendorID)
	v, ok := c.Store.Vendor(vendorID)
	if !ok {
		return UsageResult{}, &Error{Code: ENotFound, Field: "vendor_id", Message: "vendor_id: vendor " + strconv.Quote(vendorID) + " not found"}
	}
	now := c.Now()
	period := PeriodKey(&v.Subscription, now)
	// The limit comes from the policy (a zero-quantity order check), so orders_limit_reached_at
	// follows the same effective limit the decisions use.
	zero := int64(0)
	probe := CheckRequest{VendorID: inc.VendorID, Action: ActionOrderCreate, Quantity: &zero}
	d, err := c.Policy.Decide(ctx, &Facts{Request: &probe, Vendor: v, Period: period, Now: now})
	if err != nil {
		return UsageResult{}, fmt.Errorf("usage for vendor %s: %w", vendorID, err)
	}
	res, err := c.Ledger.Add(ctx, OrderIncrement{
		VendorID: vendorID, Period: period, Delta: inc.Delta, IdempotencyKey: inc.IdempotencyKey,
		Limit: d.Limit, At: now,
	})
	if err != nil {
		return UsageResult{}, fmt.Errorf("usage for vendor %s: %w", vendorID, err)
	}
	return UsageResult{VendorID: vendorID, Metric: inc.Metric, Period: period, Value: res.Orders, Applied: res.Applied}, nil
}

// decisionIDs makes unique, unguessable-enough decision ids without a syscall per decision: a
// random per-process prefix and a counter.
type decisionIDs struct {
	prefix string
	n      atomic.Uint64
}

func (d *decisionIDs) init() {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err))
	}
	d.prefix = hex.EncodeToString(b[:]) + "-"
}

func (d *decisionIDs) next() string {
	var buf [32]byte
	out := append(buf[:0], d.prefix...)
	out = strconv.AppendUint(out, d.n.Add(1), 36)
	return string(out)
}
