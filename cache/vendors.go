package cache

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/tollgate-pdp/tollgate"
	bolt "go.etcd.io/bbolt"
)

// PutSubscription creates or replaces a vendor's subscription, keeping its usage. CreatedAt is
// set on creation (to sub.CreatedAt when given, else now) and kept afterwards; UpdatedAt is
// always now. Validation against the catalog is the caller's; an empty vendor id is refused.
func (s *Store) PutSubscription(ctx context.Context, sub *tollgate.Subscription) (*tollgate.VendorState, error) {
	if sub == nil || sub.VendorID == "" {
		return nil, tollgate.FieldErrorf("vendor_id", "is required")
	}
	next := cloneSubscription(sub)
	now := s.now().UTC()
	var out *tollgate.VendorState
	err := s.write(ctx, func(tx *bolt.Tx) error {
		out = nil
		cur, err := s.txState(tx, next.VendorID)
		if err != nil {
			return err
		}
		st, err := replaceSubscription(tx, cur, next, now)
		out = st
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("put subscription of vendor %s: %w", sub.VendorID, err)
	}
	s.mem.swap(out)
	return out, nil
}

// replaceSubscription writes next as the vendor's subscription over cur (nil: a new vendor) and
// returns the new state. next must not be shared with any snapshot.
func replaceSubscription(tx *bolt.Tx, cur *tollgate.VendorState, next tollgate.Subscription, now time.Time) (*tollgate.VendorState, error) {
	st := &tollgate.VendorState{Subscription: next, Revision: 1}
	if cur != nil {
		st.Usage, st.Revision = cur.Usage, cur.Revision+1
		st.Subscription.CreatedAt = cur.Subscription.CreatedAt
	}
	if st.Subscription.CreatedAt == nil {
		st.Subscription.CreatedAt = &now
	}
	st.Subscription.UpdatedAt = &now
	if st.Usage.Periods == nil {
		st.Usage.Periods = []tollgate.PeriodUsage{}
	}
	if st.Subscription.AddOns == nil {
		st.Subscription.AddOns = []tollgate.SubscriptionAddOn{}
	}
	if err := putSubscription(tx, st); err != nil {
		return nil, err
	}
	if err := putUsage(tx, st); err != nil {
		return nil, err
	}
	return st, nil
}

// UpdateSubscription applies fn to a copy of the vendor's subscription and stores it; an error
// from fn changes nothing. ENotFound when the vendor does not exist. fn may be called more than
// once (group commit retries) and must depend only on the subscription it is given.
func (s *Store) UpdateSubscription(ctx context.Context, vendorID string, fn func(*tollgate.Subscription) error) (*tollgate.VendorState, error) {
	st, err := s.ApplyVendor(ctx, vendorID, func(_ *bolt.Tx, cur *tollgate.VendorState) (*tollgate.Subscription, error) {
		if cur == nil {
			return nil, notFound(vendorID)
		}
		next := cloneSubscription(&cur.Subscription)
		if err := fn(&next); err != nil {
			return nil, err
		}
		return &next, nil
	})
	if err != nil {
		return nil, fmt.Errorf("update subscription of vendor %s: %w", vendorID, err)
	}
	return st, nil
}

// ApplyVendor changes one vendor inside a durable transaction and then updates memory. It is
// the building block for the Stripe sync (cache/stripe_*.go): fn can record the event id (or
// billing rows) in its own bucket through tx AND return the vendor's new subscription, so both
// commit atomically; memory is swapped only after the commit is durable.
//
// fn receives the vendor's current state as the transaction sees it (nil: no such vendor; do
// not modify it) and returns the subscription to store, or nil to leave the vendor unchanged
// (for example a duplicate or out-of-date event). A returned subscription with an empty
// VendorID gets vendorID; another id is refused. Usage is kept, CreatedAt kept, UpdatedAt set.
// An error from fn rolls everything back and is returned wrapped.
//
// fn may run more than once (see Update) and must compute everything from tx and cur. The
// result is the vendor's state after the call (nil when it does not exist).
func (s *Store) ApplyVendor(ctx context.Context, vendorID string, fn func(tx *bolt.Tx, cur *tollgate.VendorState) (*tollgate.Subscription, error)) (*tollgate.VendorState, error) {
	if vendorID == "" {
		return nil, tollgate.FieldErrorf("vendor_id", "is required")
	}
	now := s.now().UTC()
	var out *tollgate.VendorState
	err := s.write(ctx, func(tx *bolt.Tx) error {
		out = nil
		cur, err := s.txState(tx, vendorID)
		if err != nil {
			return err
		}
		next, err := fn(tx, cur)
		if err != nil {
			return err
		}
		if next == nil {
			out = cur
			return nil
		}
		c := cloneSubscription(next)
		if c.VendorID == "" {
			c.VendorID = vendorID
		}
		if c.VendorID != vendorID {
			return tollgate.FieldErrorf("vendor_id", "cannot change from %q to %q", vendorID, c.VendorID)
		}
		out, err = replaceSubscription(tx, cur, c, now)
		return err
	})
	if err != nil {
		return nil, err
	}
	if out != nil {
		s.mem.swap(out)
	}
	return out, nil
}

// Import writes all records in one transaction: all or nothing. See ImportBatch.
func (s *Store) Import(ctx context.Context, records []tollgate.ImportRecord) error {
	return s.ImportBatch(ctx, tollgate.ImportBatch{Subscriptions: records})
}

// ImportBatch writes a migration in one transaction: all or nothing. Each record's
// subscription is put (as PutSubscription does) and its OrdersThisPeriod becomes the count of
// the vendor's current period (tollgate.PeriodKey at Options.Now), with OrdersLimitReachedAt:
// the count is set, not added, so importing the same rows twice gives the same store.
// Invoices and events are put by id, snapshots by date, replacing what was there.
func (s *Store) ImportBatch(ctx context.Context, b tollgate.ImportBatch) error {
	records := b.Subscriptions
	now := s.now().UTC()
	var out []*tollgate.VendorState
	err := s.write(ctx, func(tx *bolt.Tx) error {
		out = out[:0]
		for i := range records {
			r := &records[i]
			if r.Subscription.VendorID == "" {
				return tollgate.FieldErrorf(fmt.Sprintf("records[%d].vendor_id", i), "is required")
			}
			if r.OrdersThisPeriod < 0 {
				return tollgate.FieldErrorf(fmt.Sprintf("records[%d].orders_this_period", i), "must be >= 0, got %d", r.OrdersThisPeriod)
			}
			cur, err := s.txState(tx, r.Subscription.VendorID)
			if err != nil {
				return err
			}
			// A vendor listed twice: the earlier record of this import is already in tx, not in
			// memory, and txState sees it.
			st, err := replaceSubscription(tx, cur, cloneSubscription(&r.Subscription), now)
			if err != nil {
				return err
			}
			period := tollgate.PeriodKey(&st.Subscription, now)
			periods, idx, dropped, err := withPeriod(st.Usage.Periods, period)
			if err != nil {
				return fmt.Errorf("records[%d]: %w", i, err)
			}
			periods[idx].Orders = r.OrdersThisPeriod
			periods[idx].LimitReachedAt = cloneTime(r.OrdersLimitReachedAt)
			st.Usage.Periods = periods
			if err := dropIdempotency(tx, st.Subscription.VendorID, dropped); err != nil {
				return err
			}
			if err := putUsage(tx, st); err != nil {
				return err
			}
			out = append(out, st)
		}
		return importHistory(tx, &b)
	})
	if err != nil {
		return fmt.Errorf("import %d records: %w", len(records), err)
	}
	for _, st := range out {
		s.mem.swap(st)
	}
	return nil
}

// importHistory writes the batch's invoices, events and snapshots inside tx.
func importHistory(tx *bolt.Tx, b *tollgate.ImportBatch) error {
	st := stripeTx{tx}
	for i := range b.Invoices {
		if err := st.PutInvoice(&b.Invoices[i]); err != nil {
			return fmt.Errorf("invoices[%d]: %w", i, err)
		}
	}
	for i := range b.Events {
		if b.Events[i].ID == "" {
			return tollgate.FieldErrorf(fmt.Sprintf("events[%d].id", i), "is required")
		}
		if err := st.PutEvent(&b.Events[i]); err != nil {
			return fmt.Errorf("events[%d]: %w", i, err)
		}
	}
	snaps := tx.Bucket([]byte(bucketSnapshots))
	for i := range b.Snapshots {
		sn := &b.Snapshots[i]
		if _, err := tollgate.ParseDate(fmt.Sprintf("snapshots[%d].date", i), sn.Date); err != nil {
			return err
		}
		v, err := json.Marshal(sn)
		if err != nil {
			return fmt.Errorf("encode snapshot %s: %w", sn.Date, err)
		}
		if err := snaps.Put([]byte(sn.Date), v); err != nil {
			return fmt.Errorf("put snapshot %s: %w", sn.Date, err)
		}
	}
	return nil
}
