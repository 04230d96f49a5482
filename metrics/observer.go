package metrics

import "time"

// DecisionMade counts one answered check and observes its latency. It runs on every check, so
// it only indexes children resolved in New: no hashing of label values, no allocation.
func (m *Metrics) DecisionMade(action, code string, latency time.Duration) {
	a := actionIndex(action)
	m.decisions[a][codeIndex(code)].Inc()
	m.latency[a].Observe(latency.Seconds())
}

// WebhookHandled counts one webhook delivery; unknown types and outcomes count as "other".
func (m *Metrics) WebhookHandled(eventType, outcome string) {
	t, ok := m.webhookTypes[eventType]
	if !ok {
		t = m.webhookTypes[labelOther]
	}
	o, ok := m.webhookOutcomes[outcome]
	if !ok {
		o = m.webhookOutcomes[labelOther]
	}
	m.webhooks[t][o].Inc()
}

// SignatureFailed counts one webhook refused for its signature.
func (m *Metrics) SignatureFailed() { m.sigFailures.Inc() }

// StripeApplied records when Stripe state was last applied. Only a newer time moves it:
// webhooks and reconciliation runs report concurrently and may arrive out of order, and the
// age metric must not jump back because an older event was reported last.
func (m *Metrics) StripeApplied(at time.Time) {
	n := at.UnixNano()
	for {
		cur := m.lastApplied.Load()
		if n <= cur || m.lastApplied.CompareAndSwap(cur, n) {
			return
		}
	}
}

// ReconcileRun counts one reconciliation, poll or backfill run; other kinds count as "other".
func (m *Metrics) ReconcileRun(kind string, err error) {
	m.reconcile[kindIndex(kind)][resultIndex(err)].Inc()
}

// PolicyLoaded counts one policy compile attempt. On success the revision becomes the only
// series of tollgate_policy_info; on failure the previous revision is still the one in
// service, so the info metric is left alone.
func (m *Metrics) PolicyLoaded(revision string, err error) {
	m.policyReloads[resultIndex(err)].Inc()
	if err != nil {
		return
	}
	m.policyMu.Lock()
	defer m.policyMu.Unlock()
	if m.policyLoaded && revision == m.policyRevision {
		return
	}
	// Reset first: an info metric with two revisions at 1 would claim both are in service.
	m.policyInfo.Reset()
	m.policyInfo.WithLabelValues(revision).Set(1)
	m.policyRevision, m.policyLoaded = revision, true
}

func kindIndex(kind string) int {
	switch kind {
	case KindReconcile:
		return 0
	case KindPoll:
		return 1
	case KindBackfill:
		return 2
	}
	return 3 // "other"
}

func resultIndex(err error) int {
	if err != nil {
		return 1 // ResultError
	}
	return 0 // ResultOK
}
