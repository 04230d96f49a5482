package sync

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/tollgate-pdp/tollgate"
)

func (h *handler) subscription(sub *Subscription) (*tollgate.Subscription, error) {
	h.rec.ObjectID, h.rec.SubscriptionID = sub.ID, sub.ID
	if sub.ID == "" {
		h.failed("subscription without an id")
		return nil, nil
	}
	// the first sighting of a payment method counts from every delivery, older ones included,
	// so card_collected_at does not depend on delivery order
	lowered, err := h.noteCard(sub)
	if err != nil {
		return nil, err
	}
	apply, tie, err := h.order("subscription:" + sub.ID)
	if err != nil {
		return nil, err
	}
	if !apply {
		h.ignored("older than the last applied event of subscription %s", sub.ID)
		var snap snapshot
		if ok, err := getSnap(h.tx, sub.ID, &snap); err != nil || !ok {
			return nil, err
		}
		h.rec.VendorID = snap.Vendor
		if lowered {
			if err := h.touch(snap.Vendor); err != nil {
				return nil, err
			}
			return h.compose(snap.Vendor)
		}
		return nil, nil
	}
	h.a.tie, h.a.refetch = tie, "subscriptions/"+sub.ID
	link, err := linkOf(h.tx, sub.Customer.ID)
	if err != nil {
		return nil, err
	}
	snap := snapshot{Customer: sub.Customer.ID, Created: h.ev.Created, SubCreated: sub.Created, Raw: h.ev.Data.Object}
	vendor := VendorOf(sub, link)
	if vendor == "" || tollgate.ValidateVendorID(vendor) != nil {
		if sub.Customer.ID == "" {
			// no customer: no link can ever name its vendor, so there is nothing to park it under
			h.failed("subscription %s: no vendor (metadata.vendor_id %q and no customer)", sub.ID, vendor)
			return nil, nil
		}
		if err := h.park(sub.ID, snap); err != nil {
			return nil, err
		}
		if vendor == "" {
			h.failed("subscription %s: no vendor yet (no metadata.vendor_id, customer %q not linked); kept until the customer is linked", sub.ID, sub.Customer.ID)
		} else {
			h.failed("subscription %s: metadata vendor_id %q is not a valid vendor id", sub.ID, vendor)
		}
		return nil, nil
	}
	if err := h.touch(vendor); err != nil {
		return nil, err
	}
	snap.Vendor = vendor
	if err := h.storeSnapshot(sub.ID, snap); err != nil {
		return nil, err
	}
	h.memoID, h.memoCreated, h.memo = sub.ID, snap.Created, sub
	if err := h.unparkInvoices(sub.Customer.ID, vendor); err != nil {
		return nil, err
	}
	return h.compose(vendor)
}

func (h *handler) noteCard(sub *Subscription) (lowered bool, err error) {
	pm := sub.DefaultPaymentMethod.ID
	if pm == "" {
		pm = sub.DefaultSource.ID
	}
	if pm == "" {
		return false, nil
	}
	at := sub.PaymentMethodCreated()
	if at <= 0 {
		at = h.ev.Created
	}
	key := sub.ID + "\x00" + pm
	old, ok, err := getInt(h.tx, kindCards, key)
	if err != nil || (ok && old <= at) {
		return false, err
	}
	return ok, putInt(h.tx, kindCards, key, at)
}

func (h *handler) park(subID string, snap snapshot) error {
	pending := map[string]snapshot{}
	if _, err := getJSON(h.tx, kindPending, snap.Customer, &pending); err != nil {
		return err
	}
	pending[subID] = snap
	return putJSON(h.tx, kindPending, snap.Customer, pending)
}

// unpark moves the customer's parked subscriptions to the vendor now linked to it.
func (h *handler) unpark(customer, vendor string) (bool, error) {
	pending := map[string]snapshot{}
	ok, err := getJSON(h.tx, kindPending, customer, &pending)
	if err != nil || !ok {
		return false, err
	}
	ids := slices.Sorted(func(yield func(string) bool) {
		for id := range pending {
			if !yield(id) {
				return
			}
		}
	})
	for _, id := range ids {
		snap := pending[id]
		var existing snapshot
		if found, err := getSnap(h.tx, id, &existing); err != nil {
			return false, err
		} else if found && existing.Created > snap.Created {
			continue
		}
		snap.Vendor = vendor
		if err := h.storeSnapshot(id, snap); err != nil {
			return false, err
		}
	}
	return true, h.tx.Delete(kindPending, customer)
}

func (h *handler) storeSnapshot(subID string, snap snapshot) error {
	if err := putSnap(h.tx, subID, snap); err != nil {
		return err
	}
	if snap.Customer != "" {
		var subs []string
		if _, err := getJSON(h.tx, kindCustomerSubs, snap.Customer, &subs); err != nil {
			return err
		}
		if !slices.Contains(subs, subID) {
			subs = append(subs, subID)
			slices.Sort(subs)
			if err := putJSON(h.tx, kindCustomerSubs, snap.Customer, subs); err != nil {
				return err
			}
		}
	}
	var ids []string
	if _, err := getJSON(h.tx, kindVendorSubs, snap.Vendor, &ids); err != nil {
		return err
	}
	if !slices.Contains(ids, subID) {
		ids = append(ids, subID)
		slices.Sort(ids)
		return putJSON(h.tx, kindVendorSubs, snap.Vendor, ids)
	}
	return nil
}

// compose computes the vendor's subscription from everything known about its Stripe
// subscriptions: each one's newest snapshot, its payment state, its customer's deletion. When a
// vendor has several, a live one wins over an expired one, then the most recently created.
// It depends only on stored state, never on the order events arrived in.
func (h *handler) compose(vendor string) (*tollgate.Subscription, error) {
	var ids []string
	if _, err := getJSON(h.tx, kindVendorSubs, vendor, &ids); err != nil {
		return nil, err
	}
	var prev *tollgate.Subscription
	if h.cur != nil {
		p := h.cur.Subscription
		prev = &p
	}
	var (
		best     *tollgate.Subscription
		bestRank [2]int64
		bestID   string
		errs     []string
	)
	for _, id := range ids {
		var snap snapshot
		if ok, err := getSnap(h.tx, id, &snap); err != nil {
			return nil, err
		} else if !ok {
			continue
		}
		var sub Subscription
		if h.memo != nil && id == h.memoID && snap.Created == h.memoCreated {
			sub = *h.memo
		} else if err := json.Unmarshal(snap.Raw, &sub); err != nil {
			errs = append(errs, fmt.Sprintf("subscription %s: %v", id, err))
			continue
		}
		pm := sub.DefaultPaymentMethod.ID
		if pm == "" {
			pm = sub.DefaultSource.ID
		}
		var cardSince int64
		if pm != "" {
			var err error
			if cardSince, _, err = getInt(h.tx, kindCards, id+"\x00"+pm); err != nil {
				return nil, err
			}
		}
		m, err := MapSubscription(&sub, MapInput{Catalog: h.cat, LinkedVendor: vendor, Prev: prev, CardSince: cardSince, EventCreated: snap.Created})
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		m.VendorID = vendor
		var pay paymentState
		if ok, err := getJSON(h.tx, kindPayments, id, &pay); err != nil {
			return nil, err
		} else if ok {
			m.PaymentRetryCount, m.LastPaymentError = pay.RetryCount, pay.LastError
		} else if prev == nil || prev.StripeSubscriptionID != id {
			m.PaymentRetryCount, m.LastPaymentError = 0, ""
		}
		if _, deleted, err := getInt(h.tx, kindDeleted, snap.Customer); err != nil {
			return nil, err
		} else if deleted {
			m.Status = tollgate.StatusExpired
			for i := range m.AddOns {
				m.AddOns[i].Status = "expired"
			}
		}
		live := int64(0)
		if m.Status != tollgate.StatusExpired {
			live = 1
		}
		rank := [2]int64{live, snap.SubCreated}
		if best == nil || rank[0] > bestRank[0] || (rank[0] == bestRank[0] && (rank[1] > bestRank[1] || (rank[1] == bestRank[1] && id > bestID))) {
			best, bestRank, bestID = m, rank, id
		}
	}
	if len(errs) > 0 && h.a.outcome == "" {
		h.failed("%s", strings.Join(errs, "; "))
	}
	if best == nil {
		return nil, nil
	}
	if h.a.outcome == "" {
		h.a.outcome = tollgate.OutcomeProcessed
	}
	return best, nil
}
