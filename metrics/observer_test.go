package metrics

import (
	"testing"
	"time"

	"github.com/tollgate-pdp/tollgate"
)

func TestDecisionMade(t *testing.T) {
	tests := []struct {
		action, code         string
		wantAction, wantCode string
	}{
		{tollgate.ActionOrderCreate, tollgate.CodeOK, "order.create", "ok"},
		{tollgate.ActionFeatureUse, tollgate.CodeFeatureMissing, "feature.use", "feature_missing"},
		{tollgate.ActionOrderHistoryView, tollgate.CodeLimitReached, "order_history.view", "limit_reached"},
		{"loyalty.points.redeem", tollgate.CodeUnknownAction, "other", "unknown_action"},
		{"", "", "other", "other"},
		{tollgate.ActionProductAdd, "something_new", "product.add", "other"},
		{"Order.Create", tollgate.CodeOK, "other", "ok"}, // labels are exact, not case-folded
	}
	for _, tt := range tests {
		t.Run(tt.action+"/"+tt.code, func(t *testing.T) {
			m := New(Options{})
			m.DecisionMade(tt.action, tt.code, 250*time.Microsecond)
			labels := map[string]string{"action": tt.wantAction, "code": tt.wantCode}
			if v, _ := sample(t, m.Registry(), "tollgate_decisions_total", labels); v != 1 {
				t.Errorf("decisions_total%v = %v, want 1", labels, v)
			}
			if v, _ := sample(t, m.Registry(), "tollgate_decision_duration_seconds",
				map[string]string{"action": tt.wantAction}); v != 1 {
				t.Errorf("duration count{action=%s} = %v, want 1", tt.wantAction, v)
			}
		})
	}
}

func TestWebhookHandled(t *testing.T) {
	tests := []struct {
		typ, outcome          string
		wantType, wantOutcome string
	}{
		{"invoice.paid", tollgate.OutcomeProcessed, "invoice.paid", "processed"},
		{"customer.subscription.trial_will_end", tollgate.OutcomeIgnored, "customer.subscription.trial_will_end", "ignored"},
		{"price.deleted", tollgate.OutcomeDuplicate, "price.deleted", "duplicate"},
		{"charge.refunded", tollgate.OutcomeIgnored, "other", "ignored"},
		{"", tollgate.OutcomeRejected, "other", "rejected"},
		{"checkout.session.completed", "weird", "checkout.session.completed", "other"},
		{"invoice.payment_succeeded", tollgate.OutcomeProcessed, "invoice.payment_succeeded", "processed"},
		{"customer.created", tollgate.OutcomeProcessed, "customer.created", "processed"},
	}
	for _, tt := range tests {
		t.Run(tt.typ+"/"+tt.outcome, func(t *testing.T) {
			m := New(Options{})
			m.WebhookHandled(tt.typ, tt.outcome)
			labels := map[string]string{"type": tt.wantType, "outcome": tt.wantOutcome}
			if v, _ := sample(t, m.Registry(), "tollgate_webhook_events_total", labels); v != 1 {
				t.Errorf("webhook_events_total%v = %v, want 1", labels, v)
			}
		})
	}
}

// TestEveryHandledEventTypeHasItsOwnLabel holds the labels to the list the sync dispatches
// by: a handled type counted as "other" is a type whose deliveries cannot be watched.
func TestEveryHandledEventTypeHasItsOwnLabel(t *testing.T) {
	m := New(Options{})
	for _, e := range tollgate.StripeEventTypes() {
		m.WebhookHandled(e.Type, tollgate.OutcomeProcessed)
	}
	for _, e := range tollgate.StripeEventTypes() {
		labels := map[string]string{"type": e.Type, "outcome": tollgate.OutcomeProcessed}
		if v, _ := sample(t, m.Registry(), "tollgate_webhook_events_total", labels); v != 1 {
			t.Errorf("webhook_events_total%v = %v, want 1", labels, v)
		}
	}
	other := map[string]string{"type": "other", "outcome": tollgate.OutcomeProcessed}
	if v, _ := sample(t, m.Registry(), "tollgate_webhook_events_total", other); v != 0 {
		t.Errorf("webhook_events_total%v = %v, want 0", other, v)
	}
}

func TestReconcileRun(t *testing.T) {
	tests := []struct {
		kind       string
		err        error
		wantKind   string
		wantResult string
	}{
		{KindReconcile, nil, "reconcile", "ok"},
		{KindPoll, errBoom, "poll", "error"},
		{KindBackfill, nil, "backfill", "ok"},
		{"nightly", errBoom, "other", "error"},
	}
	for _, tt := range tests {
		t.Run(tt.kind, func(t *testing.T) {
			m := New(Options{})
			m.ReconcileRun(tt.kind, tt.err)
			labels := map[string]string{"kind": tt.wantKind, "result": tt.wantResult}
			if v, _ := sample(t, m.Registry(), "tollgate_reconcile_runs_total", labels); v != 1 {
				t.Errorf("reconcile_runs_total%v = %v, want 1", labels, v)
			}
		})
	}
}

func TestPolicyLoaded(t *testing.T) {
	m := New(Options{})
	if _, ok := sample(t, m.Registry(), "tollgate_policy_info", map[string]string{"revision": ""}); ok {
		t.Error("policy_info exported before any load")
	}
	steps := []struct {
		revision string
		err      error
		inInfo   string // the only revision expected in policy_info afterwards
		ok, fail float64
	}{
		{"r1", nil, "r1", 1, 0},
		{"r2", errBoom, "r1", 1, 1}, // a failed compile leaves r1 in service
		{"r2", nil, "r2", 2, 1},
		{"r2", nil, "r2", 3, 1},
	}
	for i, s := range steps {
		m.PolicyLoaded(s.revision, s.err)
		mfs, _ := m.Registry().Gather()
		for _, mf := range mfs {
			if mf.GetName() != "tollgate_policy_info" {
				continue
			}
			if n := len(mf.GetMetric()); n != 1 {
				t.Fatalf("step %d: policy_info has %d series, want 1", i, n)
			}
			if got := mf.GetMetric()[0].GetLabel()[0].GetValue(); got != s.inInfo {
				t.Errorf("step %d: revision %q, want %q", i, got, s.inInfo)
			}
		}
		if v, _ := sample(t, m.Registry(), "tollgate_policy_reloads_total", map[string]string{"result": "ok"}); v != s.ok {
			t.Errorf("step %d: ok reloads %v, want %v", i, v, s.ok)
		}
		if v, _ := sample(t, m.Registry(), "tollgate_policy_reloads_total", map[string]string{"result": "error"}); v != s.fail {
			t.Errorf("step %d: failed reloads %v, want %v", i, v, s.fail)
		}
	}
}

func TestStripeApplied(t *testing.T) {
	now := time.Unix(1_700_000_100, 0)
	m := New(Options{Now: func() time.Time { return now }})
	reg := m.Registry()
	if v, ok := sample(t, reg, "tollgate_stripe_last_applied_timestamp_seconds", nil); !ok || v != 0 {
		t.Errorf("timestamp before any event = %v (present %v), want 0", v, ok)
	}
	if _, ok := sample(t, reg, "tollgate_stripe_seconds_since_last_applied", nil); ok {
		t.Error("age exported before any event")
	}
	m.StripeApplied(time.Unix(1_700_000_040, 0))
	m.StripeApplied(time.Unix(1_700_000_010, 0)) // older, reported late: ignored
	if v, _ := sample(t, reg, "tollgate_stripe_last_applied_timestamp_seconds", nil); v != 1_700_000_040 {
		t.Errorf("timestamp = %v, want 1700000040", v)
	}
	if v, _ := sample(t, reg, "tollgate_stripe_seconds_since_last_applied", nil); v != 60 {
		t.Errorf("age = %v, want 60", v)
	}
	m.StripeApplied(now.Add(5 * time.Second)) // ahead of our clock
	if v, _ := sample(t, reg, "tollgate_stripe_seconds_since_last_applied", nil); v != 0 {
		t.Errorf("age with a future event = %v, want 0", v)
	}
}

func TestScrapedCallbacks(t *testing.T) {
	m := New(fullOptions())
	reg := m.Registry()
	tests := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"tollgate_decision_cache_hits_total", nil, 7},
		{"tollgate_decision_cache_misses_total", nil, 3},
		{"tollgate_store_size_bytes", nil, 1 << 20},
		{"tollgate_orders_used", nil, 150},
		{"tollgate_orders_capacity", nil, 600},
		{"tollgate_vendors_unlimited_orders", nil, 1},
		{"tollgate_vendors", map[string]string{"tier": "essential", "status": "active"}, 4},
		{"tollgate_vendors", map[string]string{"tier": "essential", "status": "trial"}, 2},
		{"tollgate_vendors", map[string]string{"tier": "business", "status": "other"}, 3}, // two bogus statuses summed
		{"tollgate_vendors", map[string]string{"tier": "none", "status": "expired"}, 5},
	}
	for _, tt := range tests {
		if v, ok := sample(t, reg, tt.name, tt.labels); !ok || v != tt.want {
			t.Errorf("%s%v = %v (present %v), want %v", tt.name, tt.labels, v, ok, tt.want)
		}
	}
}

// TestDecisionMadeAllocs guards the hot path: counting a decision must not allocate.
func TestDecisionMadeAllocs(t *testing.T) {
	m := New(Options{})
	allocs := testing.AllocsPerRun(1000, func() {
		m.DecisionMade(tollgate.ActionOrderCreate, tollgate.CodeLimitReached, 37*time.Microsecond)
		m.DecisionMade("custom.action", tollgate.CodeOK, 2*time.Millisecond)
	})
	if allocs != 0 {
		t.Errorf("DecisionMade allocates %v times per call, want 0", allocs)
	}
}

func BenchmarkDecisionMade(b *testing.B) {
	m := New(Options{})
	actions := knownActions()
	codes := knownCodes()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		m.DecisionMade(actions[i%len(actions)], codes[i%len(codes)], time.Duration(i%4096)*time.Microsecond)
		i++
	}
}

func BenchmarkDecisionMadeParallel(b *testing.B) {
	m := New(Options{})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.DecisionMade(tollgate.ActionOrderCreate, tollgate.CodeOK, 40*time.Microsecond)
		}
	})
}

func BenchmarkWebhookHandled(b *testing.B) {
	m := New(Options{})
	b.ReportAllocs()
	for b.Loop() {
		m.WebhookHandled("customer.subscription.updated", tollgate.OutcomeProcessed)
	}
}

// TestIndexesMatchLabels guards the switches against drifting from the label lists they index.
func TestIndexesMatchLabels(t *testing.T) {
	tests := []struct {
		name   string
		values []string
		index  func(string) int
	}{
		{"action", knownActions(), actionIndex},
		{"code", knownCodes(), codeIndex},
		{"kind", knownKinds(), kindIndex},
	}
	for _, tt := range tests {
		for i, v := range tt.values {
			if got := tt.index(v); got != i {
				t.Errorf("%s %q: index %d, want %d", tt.name, v, got, i)
			}
		}
		if got := tt.index("no such value"); got != len(tt.values)-1 || tt.values[got] != labelOther {
			t.Errorf("%s: unknown value maps to %d, want the last slot (other)", tt.name, got)
		}
	}
	if len(knownActions()) != numActions || len(knownCodes()) != numCodes {
		t.Error("numActions/numCodes out of step with the label lists")
	}
}
