package cache

import (
	"context"
	"fmt"

	"github.com/tollgate-pdp/tollgate"
	bolt "go.etcd.io/bbolt"
)

var _ tollgate.OrderCountSetter = (*Store)(nil)

// SetOrders raises period counts to a fleet's shared counts in one durable write; see
// tollgate.OrderCountSetter. A count that would not raise the stored one (nor record a first
// orders_limit_reached_at) writes nothing, and a period older than the MaxPeriods kept is
// ignored: the fleet still counts it, the local copy no longer shows it.
func (s *Store) SetOrders(ctx context.Context, counts []tollgate.OrderCount) ([]tollgate.OrderCount, error) {
	var missing []tollgate.OrderCount
	var changed map[string]*tollgate.VendorState
	err := s.write(ctx, func(tx *bolt.Tx) error {
		missing, changed = nil, map[string]*tollgate.VendorState{}
		for _, c := range counts {
			cur := changed[c.VendorID]
			if cur == nil {
				var err error
				if cur, err = s.txState(tx, c.VendorID); err != nil {
					return err
				}
			}
			if cur == nil {
				missing = append(missing, c)
				continue
			}
			if p, ok := cur.Usage.PeriodUsageOf(c.Period); ok && p.Orders >= c.Orders &&
				(p.LimitReachedAt != nil || c.LimitReachedAt == nil) {
				continue
			}
			periods, idx, dropped, err := withPeriod(cur.Usage.Periods, c.Period)
			if tollgate.ErrorCode(err) == tollgate.EInvalid {
				continue
			}
			if err != nil {
				return err
			}
			p := &periods[idx]
			p.Orders = max(p.Orders, c.Orders)
			if p.LimitReachedAt == nil && c.LimitReachedAt != nil {
				at := c.LimitReachedAt.UTC()
				p.LimitReachedAt = &at
			}
			if err := dropIdempotency(tx, c.VendorID, dropped); err != nil {
				return err
			}
			st := &tollgate.VendorState{Subscription: cur.Subscription, Usage: cur.Usage, Revision: cur.Revision + 1}
			st.Usage.Periods = periods
			changed[c.VendorID] = st
		}
		for _, st := range changed {
			if err := putUsage(tx, st); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("set fleet order counts: %w", err)
	}
	for _, st := range changed {
		s.mem.swap(st)
	}
	return missing, nil
}
