package sync

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/tollgate-pdp/tollgate"
)

type paymentState struct {
	RetryCount int64  `json:"retry_count"`
	LastError  string `json:"last_error,omitempty"`
}

// invoiceVendor finds the invoice's vendor: invoice or subscription metadata, then the
// subscription's known vendor, then the customer's link.
func invoiceVendor(tx tollgate.StripeTx, inv *Invoice) (string, error) {
	for _, v := range []string{inv.Metadata["vendor_id"], inv.SubscriptionMetadata()["vendor_id"]} {
		if v = strings.TrimSpace(v); v != "" && tollgate.ValidateVendorID(v) == nil {
			return v, nil
		}
	}
	if id := inv.SubscriptionID(); id != "" {
		var snap snapshot
		if ok, err := getSnap(tx, id, &snap); err != nil {
			return "", err
		} else if ok && snap.Vendor != "" {
			return snap.Vendor, nil
		}
	}
	return linkOf(tx, inv.Customer.ID)
}

func (h *handler) invoice(inv *Invoice) (*tollgate.Subscription, error) {
	h.rec.ObjectID, h.rec.SubscriptionID = inv.ID, inv.SubscriptionID()
	vendor, err := invoiceVendor(h.tx, inv)
	if err != nil {
		return nil, err
	}
	if vendor == "" {
		if inv.Customer.ID != "" {
			var parked []parkedInvoice
			if _, err := getJSON(h.tx, kindPendingInvoices, inv.Customer.ID, &parked); err != nil {
				return nil, err
			}
			parked = append(parked, parkedInvoice{Type: h.ev.Type, Created: h.ev.Created, Raw: h.ev.Data.Object})
			if err := putJSON(h.tx, kindPendingInvoices, inv.Customer.ID, parked); err != nil {
				return nil, err
			}
		}
		h.failed("invoice %s: no vendor yet (no metadata.vendor_id, subscription %q and customer %q unknown); kept until the customer is linked", inv.ID, inv.SubscriptionID(), inv.Customer.ID)
		return nil, nil
	}
	if err := h.touch(vendor); err != nil {
		return nil, err
	}
	changed, pay, err := h.applyInvoice(inv, h.ev.Type, h.ev.Created, vendor)
	if err != nil {
		return nil, err
	}
	if !changed {
		h.ignored("older than the last applied event of invoice %s", inv.ID)
		return nil, nil
	}
	h.a.outcome = tollgate.OutcomeProcessed
	if pay == nil {
		return nil, nil
	}
	next, err := h.compose(vendor)
	if err != nil {
		return nil, err
	}
	subID := inv.SubscriptionID()
	if next == nil && h.cur != nil && h.cur.Subscription.StripeSubscriptionID == subID {
		// a vendor imported with its Stripe ids, of which no subscription event was seen yet
		c := h.cur.Subscription
		c.AddOns = slices.Clone(c.AddOns)
		c.PaymentRetryCount, c.LastPaymentError = pay.RetryCount, pay.LastError
		next = &c
	}
	return next, nil
}

// parkedInvoice is an invoice event that arrived before its vendor was known.
type parkedInvoice struct {
	Type    string          `json:"type"`
	Created int64           `json:"created"`
	Raw     json.RawMessage `json:"raw"`
}

// applyInvoice writes the billing row and the subscription's payment state, each under its
// own ordering mark. pay is the new payment state when it changed.
func (h *handler) applyInvoice(inv *Invoice, typ string, created int64, vendor string) (changed bool, pay *paymentState, err error) {
	payErr := ""
	if typ == tollgate.EventInvoicePaymentFailed {
		payErr = inv.PaymentError()
		if payErr == "" {
			payErr = fmt.Sprintf("payment failed (attempt %d)", inv.AttemptCount)
		}
	}
	if apply, _, err := h.orderAt("invoice:"+inv.ID, created); err != nil {
		return false, nil, err
	} else if apply {
		if err := h.tx.PutInvoice(mapInvoice(inv, vendor, payErr)); err != nil {
			return false, nil, err
		}
		changed = true
	}
	subID := inv.SubscriptionID()
	if subID == "" || (typ != tollgate.EventInvoicePaid && typ != tollgate.EventInvoicePaymentFailed && typ != tollgate.EventInvoicePaymentSucceeded) {
		return changed, nil, nil
	}
	apply, _, err := h.orderAt("payment:"+subID, created)
	if err != nil || !apply {
		return changed, nil, err
	}
	p := paymentState{}
	if typ == tollgate.EventInvoicePaymentFailed {
		p = paymentState{RetryCount: inv.AttemptCount, LastError: payErr}
	}
	if err := putJSON(h.tx, kindPayments, subID, p); err != nil {
		return false, nil, err
	}
	return true, &p, nil
}

// unparkInvoices applies the customer's parked invoices that now resolve to vendor.
func (h *handler) unparkInvoices(customer, vendor string) error {
	var parked []parkedInvoice
	if ok, err := getJSON(h.tx, kindPendingInvoices, customer, &parked); err != nil || !ok {
		return err
	}
	slices.SortStableFunc(parked, func(a, b parkedInvoice) int { return cmpInt(a.Created, b.Created) })
	var keep []parkedInvoice
	for _, p := range parked {
		var inv Invoice
		if err := json.Unmarshal(p.Raw, &inv); err != nil {
			continue
		}
		v, err := invoiceVendor(h.tx, &inv)
		if err != nil {
			return err
		}
		if v != vendor {
			keep = append(keep, p)
			continue
		}
		if _, _, err := h.applyInvoice(&inv, p.Type, p.Created, vendor); err != nil {
			return err
		}
	}
	if len(keep) == 0 {
		return h.tx.Delete(kindPendingInvoices, customer)
	}
	return putJSON(h.tx, kindPendingInvoices, customer, keep)
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func mapInvoice(inv *Invoice, vendor, payErr string) *tollgate.Invoice {
	out := &tollgate.Invoice{ID: inv.ID, Number: inv.Number, VendorID: vendor, CustomerID: inv.Customer.ID,
		SubscriptionID: inv.SubscriptionID(), Status: inv.Status, Currency: inv.Currency,
		AmountDue: inv.AmountDue, AmountPaid: inv.AmountPaid, AmountRemaining: inv.AmountRemaining,
		Subtotal: inv.Subtotal, Total: inv.Total, AttemptCount: inv.AttemptCount, BillingReason: inv.BillingReason,
		LastPaymentError: payErr, HostedInvoiceURL: inv.HostedInvoiceURL, InvoicePDF: inv.InvoicePDF,
		Created: unixTime(inv.Created).UTC(), PaidAt: unixPtr(inv.StatusTransitions.PaidAt),
		Lines: make([]tollgate.InvoiceLine, 0, len(inv.Lines.Data))}
	if inv.PeriodStart > 0 {
		out.PeriodStart = unixTime(inv.PeriodStart)
	}
	if inv.PeriodEnd > 0 {
		out.PeriodEnd = unixTime(inv.PeriodEnd)
	}
	for _, l := range inv.Lines.Data {
		q := int64(1)
		if l.Quantity != nil {
			q = *l.Quantity
		}
		line := tollgate.InvoiceLine{ID: l.ID, Description: l.Description, PriceID: l.PriceID(),
			Currency: l.Currency, Amount: l.Amount, Quantity: q}
		if l.Period.Start > 0 {
			line.PeriodStart, line.PeriodEnd = unixTime(l.Period.Start), unixTime(l.Period.End)
		}
		out.Lines = append(out.Lines, line)
	}
	return out
}
