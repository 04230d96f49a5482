package tollgate

import "context"

// Webhook delivery outcomes, as counted and as recorded in the event log.
const (
	OutcomeProcessed = "processed" // applied to state
	OutcomeDuplicate = "duplicate" // event id seen before; nothing changed
	OutcomeIgnored   = "ignored"   // recorded, but the type is not handled or the event is older than state
	OutcomeFailed    = "failed"    // recorded, but applying it failed (e.g. no vendor mapping)
	OutcomeRejected  = "rejected"  // not verified or not decodable; nothing recorded
)

// WebhookReceiver verifies and durably records Stripe deliveries. A nil error means the event
// is durably recorded (or was a duplicate) and the caller may answer 2xx. Errors carry a code:
// EUnauthorized for a bad signature, EInvalid for an undecodable payload, EUnavailable when
// the write could not be made durable (the caller answers 5xx so Stripe retries).
type WebhookReceiver interface {
	Receive(ctx context.Context, payload []byte, signatureHeader string) (WebhookResult, error)
}

// WebhookResult describes one handled delivery.
type WebhookResult struct {
	EventID  string `json:"event_id"`
	Type     string `json:"type"`
	Outcome  string `json:"outcome"`
	VendorID string `json:"vendor_id,omitempty"`
	// Detail is why an event was ignored or failed (as the event log records it); not rendered.
	Detail string `json:"-"`
}

// ReadinessCheck reports whether a component can serve; the ops listener's /health/ready lists
// every check with its detail.
type ReadinessCheck interface {
	Name() string
	Ready() (ok bool, detail string)
}
