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
