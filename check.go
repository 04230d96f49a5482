package tollgate

import (
	"bytes"
	"encoding/json"
	"strconv"
	"time"
)

// Actions the default policy knows. A custom policy may add more; the Go side only checks that
// an action is a well-formed name.
const (
	ActionOrderCreate      = "order.create"
	ActionProductAdd       = "product.add"
	ActionTeamMemberAdd    = "team_member.add"
	ActionFeatureUse       = "feature.use"
	ActionCMSPageCreate    = "cms_page.create"
	ActionOrderHistoryView = "order_history.view"
)

// DefaultActions lists the actions of the default policy, as an array so that no caller can
// change the list and ranging over it allocates nothing.
func DefaultActions() [6]string {
	return [...]string{ActionOrderCreate, ActionProductAdd, ActionTeamMemberAdd, ActionFeatureUse,
		ActionCMSPageCreate, ActionOrderHistoryView}
}

// Decision codes.
const (
	CodeOK             = "ok"
	CodeInactive       = "inactive"
	CodeLimitReached   = "limit_reached"
	CodeFeatureMissing = "feature_missing"
	CodeUnknownVendor  = "unknown_vendor"
	CodeUnknownAction  = "unknown_action"
	// CodeStale is a denial forced by --when-stale deny: the subscription state is older
	// than --stale-after, so the policy refused to vouch for it.
	CodeStale = "stale"
)

// VendorID is a vendor id that decodes from a JSON string or a JSON integer (the seed's ids are
// integers) and always encodes as a string.
type VendorID string

// UnmarshalJSON accepts "42" or 42; anything else (floats, objects, null) is refused.
func (v *VendorID) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*v = VendorID(s)
		return nil
	}
	n, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return FieldErrorf("vendor_id", "must be a string or an integer")
	}
	*v = VendorID(strconv.FormatInt(n, 10))
	return nil
}

// CheckRequest asks "may vendor V do X right now?". Only VendorID and Action are required.
type CheckRequest struct {
	VendorID       VendorID `json:"vendor_id"`
	Action         string   `json:"action"`
	Platform       string   `json:"platform,omitempty"`
	Count          *int64   `json:"count,omitempty"`        // current products / members / CMS pages
	CustomCount    *int64   `json:"custom_count,omitempty"` // current custom CMS pages
	Quantity       *int64   `json:"quantity,omitempty"`     // orders to place (default 1)
	Feature        string   `json:"feature,omitempty"`
	Months         *int64   `json:"months,omitempty"`
	Custom         bool     `json:"custom,omitempty"`
	Consume        bool     `json:"consume,omitempty"`
	IdempotencyKey string   `json:"idempotency_key,omitempty"`
	Explain        bool     `json:"explain,omitempty"`
}

// MaxIdempotencyKey is the longest accepted idempotency key, in bytes.
const MaxIdempotencyKey = 255

// Validate checks the request's shape; the error names the field at fault.
func (r *CheckRequest) Validate() error {
	if err := ValidateVendorID(string(r.VendorID)); err != nil {
		return err
	}
	if r.Action == "" {
		return FieldErrorf("action", "is required")
	}
	if !isAction(r.Action) {
		return FieldErrorf("action", "must be a name like order.create, got %q", truncate(r.Action, 64))
	}
	if r.Platform != "" && !isCode(r.Platform) {
		return FieldErrorf("platform", "must match %s", codeSyntax)
	}
	// quantity is orders to place: zero orders is no question, and a consume of zero would
	// store an idempotency record that counted nothing.
	for _, c := range [...]struct {
		field string
		v     *int64
		min   int64
	}{{"count", r.Count, 0}, {"custom_count", r.CustomCount, 0}, {"quantity", r.Quantity, 1}, {"months", r.Months, 0}} {
		if c.v != nil && *c.v < c.min {
			return FieldErrorf(c.field, "must be >= %d, got %d", c.min, *c.v)
		}
	}
	if r.Feature != "" && !isCode(r.Feature) {
		return FieldErrorf("feature", "must match %s", codeSyntax)
	}
	if r.Action == ActionFeatureUse && r.Feature == "" {
		return FieldErrorf("feature", "is required for feature.use")
	}
	if r.Consume && r.Action != ActionOrderCreate {
		return FieldErrorf("consume", "is only valid for order.create")
	}
	if len(r.IdempotencyKey) > MaxIdempotencyKey {
		return FieldErrorf("idempotency_key", "must be at most %d bytes", MaxIdempotencyKey)
	}
	if r.IdempotencyKey != "" && !r.Consume {
		return FieldErrorf("idempotency_key", "is only meaningful with consume: true")
	}
	return nil
}

// QuantityOrDefault returns the order quantity, 1 when absent.
func (r *CheckRequest) QuantityOrDefault() int64 {
	if r.Quantity == nil {
		return 1
	}
	return *r.Quantity
}

// Decision is the policy's answer. Limit and Remaining are nil when unlimited (or not a limit
// question); UpgradeTo is nil when no tier would allow the request.
type Decision struct {
	Allow      bool    `json:"allow"`
	Code       string  `json:"code"`
	Reason     string  `json:"reason"`
	Limit      *int64  `json:"limit"`
	Used       int64   `json:"used"`
	Remaining  *int64  `json:"remaining"`
	Tier       string  `json:"tier"`
	Status     string  `json:"status"`
	UpgradeTo  *string `json:"upgrade_to"`
	DecisionID string  `json:"decision_id"`
	Stale      bool    `json:"stale"`
	// StaleMode says what a stale sidecar did (allow, deny or evaluate); empty when not stale.
	StaleMode string `json:"stale_mode,omitempty"`
	// Replayed is true when the answer is the stored answer to an earlier consume with the same
	// idempotency key: nothing was counted this time.
	Replayed bool         `json:"replayed,omitempty"`
	Explain  *Explanation `json:"explain,omitempty"`
}

// Explanation is what an "explain": true check adds: the exact input document Rego saw and the
// policy revision, so `opa eval` can reproduce the decision.
type Explanation struct {
	Input           json.RawMessage `json:"input"`
	PolicyRevision  string          `json:"policy_revision"`
	CatalogRevision string          `json:"catalog_revision"`
	Query           string          `json:"query"`
	Cached          bool            `json:"cached"`
}

// Facts are everything a decision is computed from. Go gathers them; the policy decides.
type Facts struct {
	Request *CheckRequest
	Vendor  *VendorState // nil: unknown vendor
	Period  string       // billing period key the orders are counted in
	Now     time.Time
	// Stale is set when no Stripe state was applied for longer than --stale-after; StaleMode
	// is then the action's --when-stale mode, which the policy applies.
	Stale     bool
	StaleMode string
	// Uncached asks for a fresh evaluation: Vendor carries a count its Revision does not name
	// (a fleet's shared counter ahead of the local copy).
	Uncached bool
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
