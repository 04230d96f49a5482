package sync

import (
	"slices"
	"strings"

	"github.com/tollgate-pdp/tollgate"
)

// customerVendor is the vendor a customer belongs to: its link, else the vendor of its
// subscriptions.
func customerVendor(tx tollgate.StripeTx, customer string) (string, error) {
	if v, err := linkOf(tx, customer); err != nil || v != "" {
		return v, err
	}
	var subs []string
	if _, err := getJSON(tx, kindCustomerSubs, customer, &subs); err != nil || len(subs) == 0 {
		return "", err
	}
	var snap snapshot
	if _, err := getSnap(tx, subs[0], &snap); err != nil {
		return "", err
	}
	return snap.Vendor, nil
}

func checkoutVendor(cs *CheckoutSession) string {
	if v := strings.TrimSpace(cs.ClientReferenceID); v != "" {
		return v
	}
	return strings.TrimSpace(cs.Metadata["vendor_id"])
}

func (h *handler) checkout(cs *CheckoutSession) (*tollgate.Subscription, error) {
	h.rec.ObjectID, h.rec.SubscriptionID = cs.ID, cs.Subscription.ID
	vendor := checkoutVendor(cs)
	if cs.Customer.ID == "" || vendor == "" {
		h.ignored("checkout session %s links no customer to a vendor (customer %q, client_reference_id %q)", cs.ID, cs.Customer.ID, vendor)
		return nil, nil
	}
	if err := tollgate.ValidateVendorID(vendor); err != nil {
		h.failed("checkout session %s: client_reference_id: %v", cs.ID, err)
		return nil, nil
	}
	if apply, _, err := h.order("checkout_link:" + cs.Customer.ID); err != nil {
		return nil, err
	} else if apply {
		if err := put(h.tx, kindLinkCheckout, cs.Customer.ID, vendor); err != nil {
			return nil, err
		}
	}
	return h.relink(cs.Customer.ID)
}

// relink re-evaluates a customer's vendor after a link changed: parked subscriptions move to
// it, and the vendor's subscription is recomputed.
func (h *handler) relink(customer string) (*tollgate.Subscription, error) {
	target, err := linkOf(h.tx, customer)
	if err != nil {
		return nil, err
	}
	if err := h.touch(target); err != nil {
		return nil, err
	}
	h.a.outcome = tollgate.OutcomeProcessed
	if target == "" {
		return nil, nil
	}
	if _, err := h.unpark(customer, target); err != nil {
		return nil, err
	}
	if err := h.unparkInvoices(customer, target); err != nil {
		return nil, err
	}
	return h.compose(target)
}

func (h *handler) customer(c *Customer) (*tollgate.Subscription, error) {
	h.rec.ObjectID = c.ID
	apply, _, err := h.order("customer:" + c.ID)
	if err != nil {
		return nil, err
	}
	if !apply {
		h.ignored("older than the last applied event of customer %s", c.ID)
		return nil, nil
	}
	v := strings.TrimSpace(c.Metadata["vendor_id"])
	if v != "" && tollgate.ValidateVendorID(v) != nil {
		h.failed("customer %s: metadata vendor_id %q is not a valid vendor id", c.ID, v)
		v = ""
	}
	if v != "" {
		err = put(h.tx, kindLinkMeta, c.ID, v)
	} else {
		err = h.tx.Delete(kindLinkMeta, c.ID)
	}
	if err != nil {
		return nil, err
	}
	outcome := h.a.outcome
	next, err := h.relink(c.ID)
	if outcome != "" {
		h.a.outcome = outcome
	}
	return next, err
}

func (h *handler) customerDeleted(c *Customer) (*tollgate.Subscription, error) {
	h.rec.ObjectID = c.ID
	if err := putInt(h.tx, kindDeleted, c.ID, h.ev.Created); err != nil {
		return nil, err
	}
	vendor, err := customerVendor(h.tx, c.ID)
	if err != nil {
		return nil, err
	}
	if err := h.touch(vendor); err != nil {
		return nil, err
	}
	h.a.outcome = tollgate.OutcomeProcessed
	if vendor == "" {
		h.rec.Error = "customer " + c.ID + " is linked to no vendor"
		return nil, nil
	}
	next, err := h.compose(vendor)
	if err != nil || next != nil {
		return next, err
	}
	if h.cur != nil && h.cur.Subscription.StripeCustomerID == c.ID {
		cp := h.cur.Subscription
		cp.AddOns = slices.Clone(cp.AddOns)
		cp.Status = tollgate.StatusExpired
		return &cp, nil
	}
	return nil, nil
}

// linkOf is the vendor a customer is linked to: its metadata.vendor_id, else a checkout
// session's client_reference_id.
func linkOf(tx tollgate.StripeTx, customer string) (string, error) {
	if customer == "" {
		return "", nil
	}
	if v, err := get(tx, kindLinkMeta, customer); err != nil || v != "" {
		return v, err
	}
	return get(tx, kindLinkCheckout, customer)
}
