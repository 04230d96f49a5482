package tollgate

import "time"

// Observer receives the events that operators count. The metrics package implements it; label
// values passed here are bounded by the implementation (unknown actions fold into "other").
// Implementations must be safe for concurrent use and must never block.
type Observer interface {
	// DecisionMade is called once per answered check.
	DecisionMade(action, code string, latency time.Duration)
	// WebhookHandled is called once per webhook delivery with its Stripe event type and outcome
	// (processed, duplicate, ignored, failed, rejected).
	WebhookHandled(eventType, outcome string)
	// SignatureFailed is called for each webhook refused for its signature.
	SignatureFailed()
	// StripeApplied is called when a Stripe event or reconciliation has been applied.
	StripeApplied(at time.Time)
	// ReconcileRun is called after each reconciliation or poll run.
	ReconcileRun(kind string, err error)
	// PolicyLoaded is called after each policy compile attempt.
	PolicyLoaded(revision string, err error)
}

// NopObserver ignores everything; for tests and tools that export no metrics.
type NopObserver struct{}

func (NopObserver) DecisionMade(string, string, time.Duration) {}
func (NopObserver) WebhookHandled(string, string)              {}
func (NopObserver) SignatureFailed()                           {}
func (NopObserver) StripeApplied(time.Time)                    {}
func (NopObserver) ReconcileRun(string, error)                 {}
func (NopObserver) PolicyLoaded(string, error)                 {}
