package tollgate

import (
	"context"
	"time"
)

// WebhookEvent is one Stripe event as the event log records it (GET /v1/events).
type WebhookEvent struct {
	ID             string    `json:"id"`
	Type           string    `json:"type"`
	Status         string    `json:"status"` // processed, ignored, failed (the Outcome* values)
	Error          string    `json:"error,omitempty"`
	VendorID       string    `json:"vendor_id,omitempty"`
	SubscriptionID string    `json:"subscription_id,omitempty"`
	ObjectID       string    `json:"object_id,omitempty"`
	Created        time.Time `json:"created"`      // the event's Stripe created time
	ProcessedAt    time.Time `json:"processed_at"` // when tollgate recorded it
	APIVersion     string    `json:"api_version,omitempty"`
	Source         string    `json:"source,omitempty"` // webhook, poll, replay
	// Payload is the raw event sealed with AES-256-GCM when a payload key is configured, else
	// nil. Never rendered.
	Payload []byte `json:"-"`
}

// EventFilter selects events of the log; zero fields match everything. Newest first.
type EventFilter struct {
	VendorID string
	Type     string
	Status   string
	Limit    int // <= 0: 100
}

// StripeTx is the Stripe state inside one durable store transaction. Kind names one of the
// sync package's small key-value tables (ordering marks, customer links, parked objects...);
// values are opaque to the store.
type StripeTx interface {
	Event(id string) (*WebhookEvent, bool, error)
	PutEvent(e *WebhookEvent) error
	Get(kind, key string) ([]byte, error) // nil, nil when absent
	Put(kind, key string, value []byte) error
	Delete(kind, key string) error
	PutInvoice(inv *Invoice) error
	Invoice(vendorID, invoiceID string) (*Invoice, bool, error)
}

// StripeStore is the durable storage the Stripe sync writes through (the cache implements it).
type StripeStore interface {
	// ApplyStripe runs fn in one durable transaction together with the vendor's current state
	// (nil: no such vendor, or vendorID is empty). A non-nil subscription returned by fn
	// becomes the vendor's (usage kept) and is published to the read model after the commit.
	// With an empty vendorID fn must return nil. fn may run more than once.
	ApplyStripe(ctx context.Context, vendorID string, fn func(tx StripeTx, cur *VendorState) (*Subscription, error)) (*VendorState, error)
	// ViewStripe runs fn in a read-only transaction.
	ViewStripe(ctx context.Context, fn func(tx StripeTx) error) error
	BillingReader
	// PruneEvents deletes events processed before the cutoff; it returns how many.
	PruneEvents(ctx context.Context, before time.Time) (int, error)
}

// BillingReader serves GET /v1/vendors/{id}/billing and GET /v1/events.
type BillingReader interface {
	// Billing lists the vendor's invoices, newest first.
	Billing(ctx context.Context, vendorID string) ([]Invoice, error)
	// Events lists recorded Stripe events, newest first.
	Events(ctx context.Context, f EventFilter) ([]WebhookEvent, error)
}

// StripeObject names the Stripe object a handled event carries; the sync package reads the
// event's data.object as that object.
type StripeObject string

// The Stripe objects tollgate reads from events.
const (
	StripeSubscription    StripeObject = "subscription"
	StripeInvoice         StripeObject = "invoice"
	StripeCheckoutSession StripeObject = "checkout.session"
	StripeCustomer        StripeObject = "customer"
	StripePrice           StripeObject = "price"
	StripeProduct         StripeObject = "product"
)

// The Stripe event types tollgate handles. Every other type is recorded as ignored and
// acknowledged.
const (
	EventSubscriptionCreated              = "customer.subscription.created"
	EventSubscriptionUpdated              = "customer.subscription.updated"
	EventSubscriptionDeleted              = "customer.subscription.deleted"
	EventSubscriptionTrialWillEnd         = "customer.subscription.trial_will_end"
	EventSubscriptionPaused               = "customer.subscription.paused"
	EventSubscriptionResumed              = "customer.subscription.resumed"
	EventSubscriptionPendingUpdateApplied = "customer.subscription.pending_update_applied"
	EventSubscriptionPendingUpdateExpired = "customer.subscription.pending_update_expired"
	EventInvoicePaid                      = "invoice.paid"
	EventInvoicePaymentSucceeded          = "invoice.payment_succeeded"
	EventInvoicePaymentFailed             = "invoice.payment_failed"
	EventInvoiceFinalized                 = "invoice.finalized"
	EventCheckoutSessionCompleted         = "checkout.session.completed"
	EventCustomerCreated                  = "customer.created"
	EventCustomerUpdated                  = "customer.updated"
	EventCustomerDeleted                  = "customer.deleted"
	EventProductCreated                   = "product.created"
	EventProductUpdated                   = "product.updated"
	EventProductDeleted                   = "product.deleted"
	EventPriceCreated                     = "price.created"
	EventPriceUpdated                     = "price.updated"
	EventPriceDeleted                     = "price.deleted"
)

// StripeEventType is one handled event type and the object it carries.
type StripeEventType struct {
	Type   string
	Object StripeObject
}

// StripeEventTypes is the one list of the Stripe event types tollgate handles: the sync
// dispatches by it and the metrics give each its own label. It is an array so that no caller
// can change it and ranging over it allocates nothing.
func StripeEventTypes() [22]StripeEventType {
	return [...]StripeEventType{
		{EventSubscriptionCreated, StripeSubscription},
		{EventSubscriptionUpdated, StripeSubscription},
		{EventSubscriptionDeleted, StripeSubscription},
		{EventSubscriptionTrialWillEnd, StripeSubscription},
		{EventSubscriptionPaused, StripeSubscription},
		{EventSubscriptionResumed, StripeSubscription},
		{EventSubscriptionPendingUpdateApplied, StripeSubscription},
		{EventSubscriptionPendingUpdateExpired, StripeSubscription},
		{EventInvoicePaid, StripeInvoice},
		{EventInvoicePaymentSucceeded, StripeInvoice},
		{EventInvoicePaymentFailed, StripeInvoice},
		{EventInvoiceFinalized, StripeInvoice},
		{EventCheckoutSessionCompleted, StripeCheckoutSession},
		{EventCustomerCreated, StripeCustomer},
		{EventCustomerUpdated, StripeCustomer},
		{EventCustomerDeleted, StripeCustomer},
		{EventProductCreated, StripeProduct},
		{EventProductUpdated, StripeProduct},
		{EventProductDeleted, StripeProduct},
		{EventPriceCreated, StripePrice},
		{EventPriceUpdated, StripePrice},
		{EventPriceDeleted, StripePrice},
	}
}

// StripeEventObject is the object a handled event type carries; false when tollgate does not
// handle the type.
func StripeEventObject(typ string) (StripeObject, bool) {
	for _, e := range StripeEventTypes() {
		if e.Type == typ {
			return e.Object, true
		}
	}
	return "", false
}
