package tollgate

import "time"

// DecisionLogEntry is one line of the decision log (--decision-log): what was asked, what was
// answered, and under which policy, catalog and vendor facts.
type DecisionLogEntry struct {
	DecisionID      string        `json:"decision_id"`
	Time            time.Time     `json:"time"`
	VendorID        string        `json:"vendor_id"`
	Action          string        `json:"action"`
	Request         CheckRequest  `json:"request"`
	Result          Decision      `json:"result"`
	PolicyRevision  string        `json:"policy_revision"`
	CatalogRevision string        `json:"catalog_revision"`
	Tier            string        `json:"tier"`
	BillingPeriod   string        `json:"billing_period"`
	Latency         time.Duration `json:"-"`
	LatencySeconds  float64       `json:"latency_seconds"`
}

// DecisionLogger receives decisions to log. Both methods are called on the decision path and
// must never block: an implementation buffers and drops (and counts) what it cannot keep.
type DecisionLogger interface {
	// Sample says whether a decision with this outcome is to be logged (denials always are),
	// so the Checker builds an entry only when it will be used.
	Sample(allow bool) bool
	// Log hands over an entry; the logger owns it afterwards.
	Log(e *DecisionLogEntry)
}
