package cache

import (
	"fmt"
	"strconv"
	"time"

	"github.com/tollgate-pdp/tollgate"
	bolt "go.etcd.io/bbolt"
)

// txState reads a vendor's current state inside tx; nil when the vendor does not exist. It
// reflects earlier writes of the same transaction (group commits), unlike the read model.
func (s *Store) txState(tx *bolt.Tx, id string) (*tollgate.VendorState, error) {
	sv := tx.Bucket([]byte(bucketVendors)).Get([]byte(id))
	if sv == nil {
		return nil, nil
	}
	var rec usageRecord
	if uv := tx.Bucket([]byte(bucketUsage)).Get([]byte(id)); uv != nil {
		if err := decodeUsage(uv, &rec, nil); err != nil {
			return nil, fmt.Errorf("vendor %q: %w", id, err)
		}
	} else {
		rec.Usage.Periods = []tollgate.PeriodUsage{}
	}
	st := &tollgate.VendorState{Usage: rec.Usage, Revision: rec.Revision}
	// Memory holds exactly the committed state of its revision, so when it is at the revision
	// the transaction sees, its subscription can be shared instead of decoded (the common case
	// for order counting).
	if m, ok := s.mem.get(id); ok && m.Revision == rec.Revision {
		st.Subscription = m.Subscription
	} else if err := decodeSubscription(sv, &st.Subscription); err != nil {
		return nil, fmt.Errorf("vendor %q: %w", id, err)
	}
	return st, nil
}

// putSubscription stores st's subscription; putUsage its usage and revision.
func putSubscription(tx *bolt.Tx, st *tollgate.VendorState) error {
	id := st.Subscription.VendorID
	if err := tx.Bucket([]byte(bucketVendors)).Put([]byte(id), appendSubscription(nil, &st.Subscription)); err != nil {
		return fmt.Errorf("put vendor %q: %w", id, err)
	}
	return nil
}

func putUsage(tx *bolt.Tx, st *tollgate.VendorState) error {
	id := st.Subscription.VendorID
	rec := usageRecord{Revision: st.Revision, Usage: st.Usage}
	if err := tx.Bucket([]byte(bucketUsage)).Put([]byte(id), appendUsage(nil, &rec)); err != nil {
		return fmt.Errorf("put usage of vendor %q: %w", id, err)
	}
	return nil
}

func notFound(id string) error {
	return &tollgate.Error{Code: tollgate.ENotFound, Field: "vendor_id",
		Message: "vendor_id: vendor " + strconv.Quote(id) + " not found"}
}

// cloneSubscription deep-copies s, so a caller's function may modify the copy (pointees
// included) without touching a snapshot readers hold.
func cloneSubscription(s *tollgate.Subscription) tollgate.Subscription {
	c := *s
	c.PeriodStart = cloneTime(s.PeriodStart)
	c.PeriodEnd = cloneTime(s.PeriodEnd)
	c.TrialEndsAt = cloneTime(s.TrialEndsAt)
	c.CardCollectedAt = cloneTime(s.CardCollectedAt)
	c.CustomOrdersLimit = cloneInt(s.CustomOrdersLimit)
	c.CustomProductsLimit = cloneInt(s.CustomProductsLimit)
	c.CustomTeamLimit = cloneInt(s.CustomTeamLimit)
	c.ScheduledChangeAt = cloneTime(s.ScheduledChangeAt)
	c.CancelledAt = cloneTime(s.CancelledAt)
	c.CreatedAt = cloneTime(s.CreatedAt)
	c.UpdatedAt = cloneTime(s.UpdatedAt)
	c.AddOns = make([]tollgate.SubscriptionAddOn, len(s.AddOns))
	for i, a := range s.AddOns {
		a.PeriodStart = cloneTime(a.PeriodStart)
		a.PeriodEnd = cloneTime(a.PeriodEnd)
		c.AddOns[i] = a
	}
	return c
}

func cloneTime(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	c := t.UTC()
	return &c
}

func cloneInt(v *int64) *int64 {
	if v == nil {
		return nil
	}
	c := *v
	return &c
}
