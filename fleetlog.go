package tollgate

import (
	"context"
	"time"
)

// In fleet mode every change of vendor state is a message of one shared, ordered log, and each
// sidecar applies the log to its own store. The types below are how the store, the Stripe sync
// and the fleet package meet without importing each other.

// logSequenceKey carries the log sequence a write applies (see WithLogSequence).
type logSequenceKey struct{}

// WithLogSequence marks the writes made under ctx as the application of log message seq: a
// SequencedStore records seq in the same durable transaction as the write itself, so after a
// crash the store resumes exactly after the last message whose effect it kept.
func WithLogSequence(ctx context.Context, seq uint64) context.Context {
	return context.WithValue(ctx, logSequenceKey{}, seq)
}

// LogSequence returns the sequence set by WithLogSequence, if any.
func LogSequence(ctx context.Context) (uint64, bool) {
	seq, ok := ctx.Value(logSequenceKey{}).(uint64)
	return seq, ok && seq > 0
}

// SequencedStore is a store that records which log message it applied last.
type SequencedStore interface {
	// AppliedSequence is the highest log sequence recorded (0: none).
	AppliedSequence() uint64
	// RecordSequence durably records seq alone, for a message whose application wrote nothing
	// (a duplicate, a refused write). A seq not above the recorded one changes nothing.
	RecordSequence(ctx context.Context, seq uint64) error
}

// StripeLog takes trusted Stripe events (verified webhooks, events found by polling,
// reconciliation and backfill) into the fleet's log instead of applying them directly. It
// returns once the event is in the log and applied locally; EUnavailable when the log cannot
// be reached (the caller answers 503 so Stripe retries).
type StripeLog interface {
	PublishStripe(ctx context.Context, payload []byte, source string) (WebhookResult, error)
}

// StripeApplier applies one Stripe event taken from the log to the local store, with the
// idempotency and ordering rules, and never calls the Stripe API.
type StripeApplier interface {
	ApplyStripeEvent(ctx context.Context, payload []byte, source string) (WebhookResult, error)
}

// FleetObserver receives what operators watch about the fleet log. The metrics package
// implements it; implementations must be safe for concurrent use and never block.
type FleetObserver interface {
	// FleetConnected reports the connection to NATS going up or down.
	FleetConnected(up bool)
	// FleetLag reports the messages not yet applied and the age of the oldest of them (0
	// when caught up).
	FleetLag(messages uint64, oldest time.Duration)
	// FleetApplied reports the log sequence applied last.
	FleetApplied(seq uint64)
	// FleetApplyError counts a message that failed to apply.
	FleetApplyError()
	// FleetCASRetry counts a compare-and-set retried after a revision conflict.
	FleetCASRetry()
	// FleetCASConflict counts a consume that gave up after its retry budget (answered 503).
	FleetCASConflict()
}

// NopFleetObserver ignores everything.
type NopFleetObserver struct{}

func (NopFleetObserver) FleetConnected(bool)            {}
func (NopFleetObserver) FleetLag(uint64, time.Duration) {}
func (NopFleetObserver) FleetApplied(uint64)            {}
func (NopFleetObserver) FleetApplyError()               {}
func (NopFleetObserver) FleetCASRetry()                 {}
func (NopFleetObserver) FleetCASConflict()              {}
