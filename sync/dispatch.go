package sync

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/tollgate-pdp/tollgate"
)

// maxVendorAttempts bounds the retries of an event whose vendor moved under it.
const maxVendorAttempts = 5

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

// decoded is an event's data.object decoded as the object its type carries
// (tollgate.StripeEventTypes); nil for types tollgate does not handle.
type decoded struct {
	sub      *Subscription
	invoice  *Invoice
	checkout *CheckoutSession
	customer *Customer
	price    *Price
	product  *Product
}

func decodeObject(ev *Event) (*decoded, error) {
	object, handled := tollgate.StripeEventObject(ev.Type)
	if !handled {
		return nil, nil
	}
	d := &decoded{}
	var target any
	switch object {
	case tollgate.StripeSubscription:
		d.sub = &Subscription{}
		target = d.sub
	case tollgate.StripeInvoice:
		d.invoice = &Invoice{}
		target = d.invoice
	case tollgate.StripeCheckoutSession:
		d.checkout = &CheckoutSession{}
		target = d.checkout
	case tollgate.StripeCustomer:
		d.customer = &Customer{}
		target = d.customer
	case tollgate.StripePrice:
		d.price = &Price{}
		target = d.price
	case tollgate.StripeProduct:
		d.product = &Product{}
		target = d.product
	default:
		return nil, fmt.Errorf("event type %s: object %s has no decoder", ev.Type, object)
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
		if ev.Type != tollgate.EventCustomerDeleted {
			if v := strings.TrimSpace(d.customer.Metadata["vendor_id"]); v != "" && tollgate.ValidateVendorID(v) == nil {
				return v, nil
			}
			return get(tx, kindLinkCheckout, d.customer.ID)
		}
		return customerVendor(tx, d.customer.ID)
	}
	return "", nil
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
		if h.ev.Type == tollgate.EventCustomerDeleted {
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
