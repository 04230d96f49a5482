package tollgate

import (
	"fmt"
	"strings"
	"sync/atomic"
	"time"
)

// Freshness is the shared "last applied from Stripe" clock. The Stripe sync calls Applied after
// every applied event or reconciliation; the Checker asks Stale on every decision (two atomic
// loads). A nil *Freshness, or one with a zero StaleAfter, is never stale: staleness only means
// something when Stripe sync is configured.
type Freshness struct {
	staleAfter time.Duration
	// last is the newest applied time in Unix nanoseconds. It starts at the creation time, so
	// a sidecar that just started (its state loaded from disk) gets StaleAfter to hear from
	// Stripe before it is considered stale.
	last atomic.Int64
}

// NewFreshness returns a clock that turns stale staleAfter after the last applied event;
// start is the baseline before any event. staleAfter <= 0 disables staleness.
func NewFreshness(staleAfter time.Duration, start time.Time) *Freshness {
	f := &Freshness{staleAfter: staleAfter}
	f.last.Store(start.UnixNano())
	return f
}

// Applied records that Stripe state was applied at `at`. Only a newer time moves the clock:
// webhooks and reconciliation report concurrently and out of order.
func (f *Freshness) Applied(at time.Time) {
	if f == nil {
		return
	}
	n := at.UnixNano()
	for {
		cur := f.last.Load()
		if n <= cur || f.last.CompareAndSwap(cur, n) {
			return
		}
	}
}

// LastApplied is the newest applied time (the creation time before any event).
func (f *Freshness) LastApplied() time.Time {
	if f == nil {
		return time.Time{}
	}
	return time.Unix(0, f.last.Load()).UTC()
}

// Stale reports whether nothing was applied for longer than StaleAfter before now.
func (f *Freshness) Stale(now time.Time) bool {
	if f == nil || f.staleAfter <= 0 {
		return false
	}
	return now.UnixNano()-f.last.Load() > int64(f.staleAfter)
}

// Stale modes: what a stale sidecar answers for an action. The policy applies them (the
// input carries `stale` and `stale_mode`); Go only looks the mode up.
const (
	StaleEvaluate = "evaluate" // decide as usual; the answer is marked stale
	StaleAllow    = "allow"    // fail open
	StaleDeny     = "deny"     // fail closed, code "stale"
)

// WhenStale maps actions to stale modes; "*" is the default for other actions (evaluate when
// absent). The zero value evaluates everything.
type WhenStale map[string]string

// ParseWhenStale reads "order.create=deny,feature.use=allow,*=evaluate"; a bare mode ("deny")
// applies to every action.
func ParseWhenStale(s string) (WhenStale, error) {
	w := WhenStale{}
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		action, mode, ok := strings.Cut(part, "=")
		if !ok {
			action, mode = "*", part
		}
		action, mode = strings.TrimSpace(action), strings.TrimSpace(mode)
		switch mode {
		case StaleAllow, StaleDeny, StaleEvaluate:
		default:
			return nil, fmt.Errorf("when-stale %q: mode must be allow, deny or evaluate, got %q", part, mode)
		}
		if action != "*" && !isAction(action) {
			return nil, fmt.Errorf("when-stale %q: %q is not an action name", part, action)
		}
		w[action] = mode
	}
	return w, nil
}

// Mode returns the stale mode of an action.
func (w WhenStale) Mode(action string) string {
	if m, ok := w[action]; ok {
		return m
	}
	if m, ok := w["*"]; ok {
		return m
	}
	return StaleEvaluate
}

// FreshnessObserver forwards every Observer call and also moves the Freshness clock on
// StripeApplied, so the Stripe sync reports once and both the metrics and the staleness of
// decisions follow.
type FreshnessObserver struct {
	Observer
	Freshness *Freshness
}

// StripeApplied implements Observer.
func (o FreshnessObserver) StripeApplied(at time.Time) {
	o.Freshness.Applied(at)
	o.Observer.StripeApplied(at)
}
