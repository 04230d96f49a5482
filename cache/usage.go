package cache

import (
	"bytes"
	"context"
	"fmt"

	"github.com/tollgate-pdp/tollgate"
	bolt "go.etcd.io/bbolt"
)

// AddOrders counts orders in a period, at most once per idempotency key; see
// tollgate.OrderIncrement. ENotFound when the vendor does not exist.
func (s *Store) AddOrders(ctx context.Context, inc tollgate.OrderIncrement) (tollgate.OrderIncrementResult, error) {
	id := inc.VendorID
	switch {
	case id == "":
		return tollgate.OrderIncrementResult{}, tollgate.FieldErrorf("vendor_id", "is required")
	case inc.Period == "":
		return tollgate.OrderIncrementResult{}, tollgate.FieldErrorf("period", "is required")
	case inc.Delta < 0:
		return tollgate.OrderIncrementResult{}, tollgate.FieldErrorf("delta", "must be >= 0, got %d", inc.Delta)
	}
	// Vendors are never deleted and memory is updated before a write returns, so a vendor
	// missing from memory is missing on disk: answer without queueing a transaction.
	if _, ok := s.mem.get(id); !ok {
		return tollgate.OrderIncrementResult{}, fmt.Errorf("add orders: %w", notFound(id))
	}
	at := inc.At
	if at.IsZero() {
		at = s.now()
	}
	at = at.UTC()
	var res tollgate.OrderIncrementResult
	err := s.write(ctx, func(tx *bolt.Tx) error {
		res = tollgate.OrderIncrementResult{}
		cur, err := s.txState(tx, id)
		if err != nil {
			return err
		}
		if cur == nil {
			return notFound(id)
		}
		idem := tx.Bucket([]byte(bucketIdempotency))
		var key []byte
		if inc.IdempotencyKey != "" {
			key = idemKey(id, inc.Period, inc.IdempotencyKey)
			if v := idem.Get(key); v != nil {
				res = tollgate.OrderIncrementResult{Applied: false, Orders: cur.Usage.OrdersIn(inc.Period),
					Response: storedResponse(v), State: cur}
				return nil
			}
		}
		periods, idx, dropped, err := withPeriod(cur.Usage.Periods, inc.Period)
		if err != nil {
			return err
		}
		p := &periods[idx]
		p.Orders += inc.Delta
		if inc.Limit != nil && p.LimitReachedAt == nil && p.Orders >= *inc.Limit {
			p.LimitReachedAt = &at
		}
		st := &tollgate.VendorState{Subscription: cur.Subscription, Usage: cur.Usage, Revision: cur.Revision + 1}
		st.Usage.Periods = periods
		if err := dropIdempotency(tx, id, dropped); err != nil {
			return err
		}
		if key != nil {
			// A leading marker byte, so a nil Response (usage increments) is still a present key.
			if err := idem.Put(key, append([]byte{1}, inc.Response...)); err != nil {
				return fmt.Errorf("put idempotency key: %w", err)
			}
		}
		if err := putUsage(tx, st); err != nil {
			return err
		}
		res = tollgate.OrderIncrementResult{Applied: true, Orders: p.Orders, State: st}
		return nil
	})
	if err != nil {
		return tollgate.OrderIncrementResult{}, fmt.Errorf("add orders: %w", err)
	}
	if res.Applied {
		s.mem.swap(res.State)
	}
	return res, nil
}

func storedResponse(v []byte) []byte {
	if len(v) <= 1 {
		return nil
	}
	return bytes.Clone(v[1:])
}

// IdempotentResponse returns the response stored with a key in a period, if any. It opens a
// read transaction: it is only on the consume path, which writes anyway.
func (s *Store) IdempotentResponse(ctx context.Context, vendorID, period, key string) ([]byte, bool, error) {
	if err := ctx.Err(); err != nil {
		return nil, false, err
	}
	var resp []byte
	var found bool
	err := s.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket([]byte(bucketIdempotency)).Get(idemKey(vendorID, period, key)); v != nil {
			resp, found = storedResponse(v), true
		}
		return nil
	})
	if err != nil {
		return nil, false, &tollgate.Error{Code: tollgate.EUnavailable, Message: "the store cannot read right now",
			Err: fmt.Errorf("idempotency key of vendor %s: %w", vendorID, err)}
	}
	return resp, found, nil
}

// withPeriod returns a copy of periods (newest first) that contains period, the index of that
// period, and the periods dropped to keep at most MaxPeriods. The copy never shares its backing
// array with a snapshot, so the caller may modify it.
func withPeriod(periods []tollgate.PeriodUsage, period string) (out []tollgate.PeriodUsage, idx int, dropped []string, err error) {
	// RFC 3339 UTC keys of one format sort as strings in time order.
	idx = len(periods)
	for i, p := range periods {
		if p.Period == period {
			out = append(make([]tollgate.PeriodUsage, 0, len(periods)), periods...)
			return out, i, nil, nil
		}
		if p.Period < period {
			idx = i
			break
		}
	}
	if idx >= MaxPeriods {
		return nil, 0, nil, tollgate.FieldErrorf("period", "%s is older than the %d periods kept", period, MaxPeriods)
	}
	out = make([]tollgate.PeriodUsage, 0, len(periods)+1)
	out = append(out, periods[:idx]...)
	out = append(out, tollgate.PeriodUsage{Period: period})
	out = append(out, periods[idx:]...)
	for len(out) > MaxPeriods {
		dropped = append(dropped, out[len(out)-1].Period)
		out = out[:len(out)-1]
	}
	return out, idx, dropped, nil
}

// dropIdempotency deletes a vendor's idempotency keys of periods no longer kept.
func dropIdempotency(tx *bolt.Tx, vendorID string, periods []string) error {
	b := tx.Bucket([]byte(bucketIdempotency))
	for _, p := range periods {
		prefix := idemPrefix(vendorID, p)
		c := b.Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Seek(prefix) {
			if err := c.Delete(); err != nil {
				return fmt.Errorf("drop idempotency keys of vendor %s period %s: %w", vendorID, p, err)
			}
		}
	}
	return nil
}

// ReportUsage records application-reported counts for a vendor, durably before it returns
// (PUT /v1/vendors/{id}/usage). ReportedAt becomes r.At (now when zero). ENotFound when the
// vendor does not exist; EInvalid for a negative count.
func (s *Store) ReportUsage(ctx context.Context, vendorID string, r tollgate.UsageReport) (*tollgate.VendorState, error) {
	// an ordered list, not a map, so that the same bad report always names the same field
	for _, c := range [...]struct {
		field string
		v     *int64
	}{{"products", r.Products}, {"team_members", r.TeamMembers}, {"cms_pages", r.CMSPages},
		{"cms_custom_pages", r.CMSCustomPages}, {"storage_bytes", r.StorageBytes}} {
		if c.v != nil && *c.v < 0 {
			return nil, tollgate.FieldErrorf(c.field, "must be >= 0, got %d", *c.v)
		}
	}
	if _, ok := s.mem.get(vendorID); !ok {
		return nil, fmt.Errorf("report usage: %w", notFound(vendorID))
	}
	at := r.At
	if at.IsZero() {
		at = s.now()
	}
	at = at.UTC()
	var out *tollgate.VendorState
	err := s.write(ctx, func(tx *bolt.Tx) error {
		out = nil
		cur, err := s.txState(tx, vendorID)
		if err != nil {
			return err
		}
		if cur == nil {
			return notFound(vendorID)
		}
		st := &tollgate.VendorState{Subscription: cur.Subscription, Usage: cur.Usage, Revision: cur.Revision + 1}
		u := &st.Usage
		set := func(dst **int64, v *int64) {
			if v != nil {
				*dst = cloneInt(v)
			}
		}
		set(&u.Products, r.Products)
		set(&u.TeamMembers, r.TeamMembers)
		set(&u.CMSPages, r.CMSPages)
		set(&u.CMSCustomPages, r.CMSCustomPages)
		set(&u.StorageBytes, r.StorageBytes)
		u.ReportedAt = &at
		if err := putUsage(tx, st); err != nil {
			return err
		}
		out = st
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("report usage of vendor %s: %w", vendorID, err)
	}
	s.mem.swap(out)
	return out, nil
}
