package sync

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/tollgate-pdp/tollgate"
)

// Kinds of the small key-value tables the sync keeps in the store (tollgate.StripeTx).
const (
	kindMarks           = "marks"            // "<object kind>:<id>" -> 8-byte created of the last applied event
	kindLinkMeta        = "link_meta"        // customer id -> vendor id (customer metadata.vendor_id)
	kindLinkCheckout    = "link_checkout"    // customer id -> vendor id (checkout client_reference_id)
	kindDeleted         = "customer_deleted" // customer id -> 8-byte created of customer.deleted
	kindPending         = "pending"          // customer id -> JSON map[sub id]snapshot, subscriptions without a vendor yet
	kindSubs            = "subscriptions"    // sub id -> JSON snapshot (vendor, customer, created, raw object)
	kindVendorSubs      = "vendor_subs"      // vendor id -> JSON []sub id
	kindCustomerSubs    = "customer_subs"    // customer id -> JSON []sub id (applied, with a vendor)
	kindPendingInvoices = "pending_invoices" // customer id -> JSON []parkedInvoice, invoices without a vendor yet
	kindCards           = "cards"            // sub id 0x00 payment method id -> 8-byte earliest created seen
	kindPayments        = "payments"         // sub id -> JSON paymentState
	kindCatalog         = "catalog"          // tier code 0x00 product|monthly|annual, "addon:<code>" 0x00 price -> Stripe id
	kindCursor          = "cursor"           // "events" -> JSON pollCursor
	maxVendorAttempts   = 5
)

// snapshot is the newest applied state of one Stripe subscription.
type snapshot struct {
	Vendor     string          `json:"vendor"`
	Customer   string          `json:"customer"`
	Created    int64           `json:"created"`     // created of the event (or API read) it came from
	SubCreated int64           `json:"sub_created"` // the subscription's own creation time
	Raw        json.RawMessage `json:"raw"`
}

type paymentState struct {
	RetryCount int64  `json:"retry_count"`
	LastError  string `json:"last_error,omitempty"`
}

// applied is what one event did.
type applied struct {
	outcome        string
	vendor         string
	catalogChanged bool
	tie            bool
	refetch        string // "subscriptions/<id>" to settle a tie from the API
	detail         string // the recorded error or reason, if any
}

// vendorMismatch aborts a transaction whose event turned out to touch another vendor than the
// one the transaction was opened for (a link changed between the look-up and the write).
type vendorMismatch struct{ want, got string }

func (e *vendorMismatch) Error() string {
	return fmt.Sprintf("event touches vendor %q, transaction opened for %q", e.got, e.want)
}

// decoded is an event's data.object decoded by type; nil for types tollgate does not handle.
type decoded struct {
	sub      *Subscription
	invoice  *Invoice
	checkout *CheckoutSession
	customer *Customer
	price    *Price
	product  *Product
}

func decodeObject(ev *Event) (*decoded, error) {
	d := &decoded{}
	var target any
	switch {
	case strings.HasPrefix(ev.Type, "customer.subscription."):
		d.sub = &Subscription{}
		target = d.sub
	case ev.Type == "invoice.paid" || ev.Type == "invoice.payment_failed" || ev.Type == "invoice.finalized" ||
		ev.Type == "invoice.payment_succeeded":
		d.invoice = &Invoice{}
		target = d.invoice
	case ev.Type == "checkout.session.completed":
		d.checkout = &CheckoutSession{}
		target = d.checkout
	case ev.Type == "customer.created" || ev.Type == "customer.updated" || ev.Type == "customer.deleted":
		d.customer = &Customer{}
		target = d.customer
	case strings.HasPrefix(ev.Type, "price."):
		d.price = &Price{}
		target = d.price
	case strings.HasPrefix(ev.Type, "product."):
		d.product = &Product{}
		target = d.product
	default:
		return nil, nil
	}
	if err := json.Unmarshal(ev.Data.Object, target); err != nil {
		return nil, fmt.Errorf("decode %s object: %w", ev.Type, err)
	}
	return d, nil
}

// applyEvent records and applies one event in one durable transaction. The transaction is
// opened for the vendor the event touches; when a concurrent change moved that, it retries.
func (s *Syncer) applyEvent(ctx context.Context, ev *Event, source string, sealed []byte) (applied, error) {
	obj, decErr := decodeObject(ev)
	var a applied
	for attempt := 0; attempt < maxVendorAttempts; attempt++ {
		var want string
		if decErr == nil && obj != nil {
			err := s.store.ViewStripe(ctx, func(tx tollgate.StripeTx) error {
				var err error
				want, err = s.targetVendor(tx, ev, obj)
				return err
			})
			if err != nil {
				return a, fmt.Errorf("resolve vendor of event %s: %w", ev.ID, err)
			}
		}
		cat := s.catalog.Load()
		_, err := s.store.ApplyStripe(ctx, want, func(tx tollgate.StripeTx, cur *tollgate.VendorState) (*tollgate.Subscription, error) {
			a = applied{}
			if _, seen, err := tx.Event(ev.ID); err != nil {
				return nil, err
			} else if seen {
				a.outcome = tollgate.OutcomeDuplicate
				return nil, nil
			}
			rec := &tollgate.WebhookEvent{ID: ev.ID, Type: ev.Type, Created: unixTime(ev.Created).UTC(),
				ProcessedAt: s.now().UTC(), APIVersion: ev.APIVersion, Source: source, Payload: sealed}
			var next *tollgate.Subscription
			var err error
			switch {
			case decErr != nil:
				a.outcome, rec.Error = tollgate.OutcomeFailed, decErr.Error()
			case obj == nil:
				a.outcome = tollgate.OutcomeIgnored
				rec.Error = "event type not handled"
			default:
				h := &handler{s: s, tx: tx, cur: cur, want: want, ev: ev, rec: rec, a: &a, cat: cat}
				next, err = h.handle(obj)
				if err != nil {
					return nil, err
				}
			}
			rec.Status = a.outcome
			rec.Error = sanitize(rec.Error)
			a.detail = rec.Error
			if rec.VendorID == "" {
				rec.VendorID = a.vendor
			}
			if err := tx.PutEvent(rec); err != nil {
				return nil, err
			}
			return next, nil
		})
		var mm *vendorMismatch
		if errors.As(err, &mm) {
			continue
		}
		if err != nil {
			return a, fmt.Errorf("apply event %s (%s): %w", ev.ID, ev.Type, err)
		}
		return a, nil
	}
	return a, fmt.Errorf("apply event %s: the vendor it touches kept changing", ev.ID)
}

// targetVendor is the vendor the event will change, as the store sees it now.
func (s *Syncer) targetVendor(tx tollgate.StripeTx, ev *Event, d *decoded) (string, error) {
	switch {
	case d.sub != nil:
		link, err := linkOf(tx, d.sub.Customer.ID)
		if err != nil {
			return "", err
		}
		v := VendorOf(d.sub, link)
		if tollgate.ValidateVendorID(v) != nil {
			return "", nil
		}
		return v, nil
	case d.invoice != nil:
		return invoiceVendor(tx, d.invoice)
	case d.checkout != nil:
		meta, err := get(tx, kindLinkMeta, d.checkout.Customer.ID)
		if err != nil || meta != "" {
			return meta, err
		}
		v := checkoutVendor(d.checkout)
		if tollgate.ValidateVendorID(v) != nil {
			return "", nil
		}
		return v, nil
	case d.customer != nil:
		if ev.Type != "customer.deleted" {
			if v := strings.TrimSpace(d.customer.Metadata["vendor_id"]); v != "" && tollgate.ValidateVendorID(v) == nil {
				return v, nil
			}
			return get(tx, kindLinkCheckout, d.customer.ID)
		}
		return customerVendor(tx, d.customer.ID)
	}
	return "", nil
}

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

// handler applies one event inside its transaction.
type handler struct {
	s    *Syncer
	tx   tollgate.StripeTx
	cur  *tollgate.VendorState
	want string
	ev   *Event
	rec  *tollgate.WebhookEvent
	a    *applied
	cat  *tollgate.Catalog
	// the subscription this event carries, already decoded, so compose need not decode its
	// snapshot again
	memoID      string
	memoCreated int64
	memo        *Subscription
}

func (h *handler) ignored(format string, args ...any) {
	h.a.outcome = tollgate.OutcomeIgnored
	h.rec.Error = fmt.Sprintf(format, args...)
}

func (h *handler) failed(format string, args ...any) {
	h.a.outcome = tollgate.OutcomeFailed
	h.rec.Error = fmt.Sprintf(format, args...)
}

// touch checks that the event changes the vendor the transaction was opened for.
func (h *handler) touch(vendor string) error {
	if vendor != h.want {
		return &vendorMismatch{want: h.want, got: vendor}
	}
	h.a.vendor = vendor
	return nil
}

func (h *handler) handle(d *decoded) (*tollgate.Subscription, error) {
	switch {
	case d.sub != nil:
		return h.subscription(d.sub)
	case d.invoice != nil:
		return h.invoice(d.invoice)
	case d.checkout != nil:
		return h.checkout(d.checkout)
	case d.customer != nil:
		if h.ev.Type == "customer.deleted" {
			return h.customerDeleted(d.customer)
		}
		return h.customer(d.customer)
	case d.price != nil:
		return nil, h.price(d.price)
	case d.product != nil:
		return nil, h.product(d.product)
	}
	h.ignored("event type not handled")
	return nil, nil
}

// order implements the ordering rule for one object: apply unless an event with a later
// created was already applied to it; equal created times tie, and the later arrival wins.
func (h *handler) order(key string) (apply, tie bool, err error) { return h.orderAt(key, h.ev.Created) }

func (h *handler) orderAt(key string, created int64) (apply, tie bool, err error) {
	last, ok, err := getInt(h.tx, kindMarks, key)
	if err != nil {
		return false, false, err
	}
	if ok && created < last {
		return false, false, nil
	}
	return true, ok && created == last, putInt(h.tx, kindMarks, key, created)
}

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
	if typ == "invoice.payment_failed" {
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
	if subID == "" || (typ != "invoice.paid" && typ != "invoice.payment_failed" && typ != "invoice.payment_succeeded") {
		return changed, nil, nil
	}
	apply, _, err := h.orderAt("payment:"+subID, created)
	if err != nil || !apply {
		return changed, nil, err
	}
	p := paymentState{}
	if typ == "invoice.payment_failed" {
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

func (h *handler) price(p *Price) error {
	h.rec.ObjectID = p.ID
	apply, _, err := h.order("price:" + p.ID)
	if err != nil {
		return err
	}
	if !apply {
		h.ignored("older than the last applied event of price %s", p.ID)
		return nil
	}
	deleted := h.ev.Type == "price.deleted" || p.Deleted
	for _, name := range []string{p.Metadata["tier"], p.LookupKey} {
		code, annual := splitTierName(name)
		if code == "" {
			continue
		}
		if _, ok := h.s.base.Lookup(p.Metadata["platform"], code); !ok {
			continue
		}
		field := "monthly"
		if annual || p.Annual() {
			field = "annual"
		}
		return h.catalogID(catalogKey(code, field), p.ID, deleted)
	}
	for _, name := range []string{p.Metadata["addon"], p.Metadata["add_on"]} {
		if name == "" {
			continue
		}
		if slices.ContainsFunc(h.s.base.AddOns, func(a tollgate.AddOn) bool { return a.Code == name }) {
			return h.catalogID(catalogKey("addon:"+name, "price"), p.ID, deleted)
		}
	}
	h.ignored("price %s names no catalog tier or add-on (metadata.tier, lookup_key, metadata.addon)", p.ID)
	return nil
}

func (h *handler) product(p *Product) error {
	h.rec.ObjectID = p.ID
	apply, _, err := h.order("product:" + p.ID)
	if err != nil {
		return err
	}
	if !apply {
		h.ignored("older than the last applied event of product %s", p.ID)
		return nil
	}
	code, _ := splitTierName(p.Metadata["tier"])
	if _, ok := h.s.base.Lookup(p.Metadata["platform"], code); code == "" || !ok {
		h.ignored("product %s names no catalog tier (metadata.tier)", p.ID)
		return nil
	}
	return h.catalogID(catalogKey(code, "product"), p.ID, h.ev.Type == "product.deleted" || p.Deleted)
}

func (h *handler) catalogID(key, id string, deleted bool) error {
	cur, err := get(h.tx, kindCatalog, key)
	if err != nil {
		return err
	}
	h.a.outcome = tollgate.OutcomeProcessed
	switch {
	case deleted && cur == id:
		h.a.catalogChanged = true
		return h.tx.Delete(kindCatalog, key)
	case deleted:
		return nil
	case cur != id:
		h.a.catalogChanged = true
		var keys []string
		if _, err := getJSON(h.tx, kindCatalog, catalogIndex, &keys); err != nil {
			return err
		}
		if !slices.Contains(keys, key) {
			if err := putJSON(h.tx, kindCatalog, catalogIndex, append(keys, key)); err != nil {
				return err
			}
		}
		return put(h.tx, kindCatalog, key, id)
	}
	return nil
}

// catalogIndex lists the catalog keys ever written.
const catalogIndex = "\x00index"

func loadCatalogIDs(tx tollgate.StripeTx) (map[string]string, error) {
	// the catalog is small: tiers × 3 + add-ons; read the keys the base catalog can use
	out := map[string]string{}
	var keys []string
	if err := func() error {
		b, err := tx.Get(kindCatalog, catalogIndex)
		if err != nil || b == nil {
			return err
		}
		return json.Unmarshal(b, &keys)
	}(); err != nil {
		return nil, err
	}
	for _, k := range keys {
		v, err := get(tx, kindCatalog, k)
		if err != nil {
			return nil, err
		}
		if v != "" {
			out[k] = v
		}
	}
	return out, nil
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

func get(tx tollgate.StripeTx, kind, key string) (string, error) {
	b, err := tx.Get(kind, key)
	return string(b), err
}

func put(tx tollgate.StripeTx, kind, key, v string) error { return tx.Put(kind, key, []byte(v)) }

func getInt(tx tollgate.StripeTx, kind, key string) (int64, bool, error) {
	b, err := tx.Get(kind, key)
	if err != nil || b == nil {
		return 0, false, err
	}
	if len(b) != 8 {
		return 0, false, fmt.Errorf("stripe %s %q: corrupt value", kind, key)
	}
	return int64(binary.BigEndian.Uint64(b)), true, nil
}

func putInt(tx tollgate.StripeTx, kind, key string, v int64) error {
	return tx.Put(kind, key, binary.BigEndian.AppendUint64(nil, uint64(v)))
}

func getJSON(tx tollgate.StripeTx, kind, key string, v any) (bool, error) {
	b, err := tx.Get(kind, key)
	if err != nil || b == nil {
		return false, err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return false, fmt.Errorf("stripe %s %q: %w", kind, key, err)
	}
	return true, nil
}

func putJSON(tx tollgate.StripeTx, kind, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode stripe %s %q: %w", kind, key, err)
	}
	return tx.Put(kind, key, b)
}

// Snapshots are stored in a small binary frame around the raw object, so that storing one
// does not re-encode (and re-validate) kilobytes of JSON inside the write transaction:
// version 1, created and sub_created (8 bytes BE each), vendor and customer (uvarint length +
// bytes), then the raw object.
func putSnap(tx tollgate.StripeTx, subID string, snap snapshot) error {
	b := make([]byte, 0, 1+16+len(snap.Vendor)+len(snap.Customer)+4+len(snap.Raw))
	b = append(b, 1)
	b = binary.BigEndian.AppendUint64(b, uint64(snap.Created))
	b = binary.BigEndian.AppendUint64(b, uint64(snap.SubCreated))
	b = binary.AppendUvarint(b, uint64(len(snap.Vendor)))
	b = append(b, snap.Vendor...)
	b = binary.AppendUvarint(b, uint64(len(snap.Customer)))
	b = append(b, snap.Customer...)
	b = append(b, snap.Raw...)
	return tx.Put(kindSubs, subID, b)
}

func getSnap(tx tollgate.StripeTx, subID string, snap *snapshot) (bool, error) {
	b, err := tx.Get(kindSubs, subID)
	if err != nil || b == nil {
		return false, err
	}
	corrupt := fmt.Errorf("stripe subscription snapshot %q: corrupt record", subID)
	if len(b) < 17 || b[0] != 1 {
		return false, corrupt
	}
	snap.Created = int64(binary.BigEndian.Uint64(b[1:9]))
	snap.SubCreated = int64(binary.BigEndian.Uint64(b[9:17]))
	b = b[17:]
	str := func() (string, bool) {
		n, k := binary.Uvarint(b)
		if k <= 0 || uint64(len(b)-k) < n {
			return "", false
		}
		v := string(b[k : k+int(n)])
		b = b[k+int(n):]
		return v, true
	}
	var ok1, ok2 bool
	snap.Vendor, ok1 = str()
	snap.Customer, ok2 = str()
	if !ok1 || !ok2 {
		return false, corrupt
	}
	snap.Raw = json.RawMessage(b)
	return true, nil
}
