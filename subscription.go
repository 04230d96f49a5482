package tollgate

import (
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Status is a subscription status.
type Status string

const (
	StatusTrial     Status = "trial"
	StatusActive    Status = "active"
	StatusPastDue   Status = "past_due"  // payment failed, grace period
	StatusCancelled Status = "cancelled" // access until period end
	StatusExpired   Status = "expired"
)

// Valid reports whether s is one of Statuses.
func (s Status) Valid() bool { return slices.Contains(Statuses[:], s) }

// Statuses lists every status, in lifecycle order.
var Statuses = [...]Status{StatusTrial, StatusActive, StatusPastDue, StatusCancelled, StatusExpired}

// Overrides are per-vendor custom limits (enterprise deals). Nil leaves the tier's limit.
type Overrides struct {
	CustomOrdersLimit   *int64 `json:"custom_orders_limit"`
	CustomProductsLimit *int64 `json:"custom_products_limit"`
	CustomTeamLimit     *int64 `json:"custom_team_limit"`
}

// Validate refuses negative overrides.
func (o *Overrides) Validate() error {
	// an ordered list, not a map, so that the same bad overrides always name the same field
	for _, l := range [...]struct {
		field string
		v     *int64
	}{{"custom_orders_limit", o.CustomOrdersLimit}, {"custom_products_limit", o.CustomProductsLimit},
		{"custom_team_limit", o.CustomTeamLimit}} {
		if l.v != nil && *l.v < 0 {
			return FieldErrorf(l.field, "must be >= 0 or null, got %d", *l.v)
		}
	}
	return nil
}

// SubscriptionAddOn is an add-on a vendor has bought.
type SubscriptionAddOn struct {
	Code        string     `json:"code"`
	Quantity    int64      `json:"quantity"`
	Status      string     `json:"status"` // active, cancelled, expired
	DomainName  string     `json:"domain_name,omitempty"`
	PeriodStart *time.Time `json:"period_start,omitempty"`
	PeriodEnd   *time.Time `json:"period_end,omitempty"`
	StripeItem  string     `json:"stripe_subscription_item_id,omitempty"`
}

// Subscription is a vendor's subscription, as the seed model holds it.
type Subscription struct {
	VendorID        string     `json:"vendor_id"`
	Platform        string     `json:"platform,omitempty"`
	Tier            string     `json:"tier"`
	Status          Status     `json:"status"`
	PeriodStart     *time.Time `json:"period_start,omitempty"`
	PeriodEnd       *time.Time `json:"period_end,omitempty"`
	IsAnnual        bool       `json:"is_annual"`
	TrialEndsAt     *time.Time `json:"trial_ends_at,omitempty"`
	CardCollectedAt *time.Time `json:"card_collected_at,omitempty"`
	Overrides

	StripeCustomerID      string `json:"stripe_customer_id,omitempty"`
	StripeSubscriptionID  string `json:"stripe_subscription_id,omitempty"`
	StripePriceID         string `json:"stripe_price_id,omitempty"`
	StripePaymentMethodID string `json:"stripe_payment_method_id,omitempty"`
	StripeStatus          string `json:"stripe_status,omitempty"` // the raw Stripe status

	ScheduledTierChange string     `json:"scheduled_tier_change,omitempty"`
	ScheduledChangeAt   *time.Time `json:"scheduled_change_at,omitempty"`
	PaymentRetryCount   int64      `json:"payment_retry_count"`
	LastPaymentError    string     `json:"last_payment_error,omitempty"`
	CancelledAt         *time.Time `json:"cancelled_at,omitempty"`
	CancellationReason  string     `json:"cancellation_reason,omitempty"`

	AddOns []SubscriptionAddOn `json:"add_ons"`

	CreatedAt *time.Time `json:"created_at,omitempty"`
	UpdatedAt *time.Time `json:"updated_at,omitempty"`
}

// ValidateVendorID refuses ids that cannot be keys: empty, too long, control or invisible
// characters, or leading/trailing space.
func ValidateVendorID(id string) error {
	if id == "" {
		return FieldErrorf("vendor_id", "is required")
	}
	if len(id) > 128 {
		return FieldErrorf("vendor_id", "must be at most 128 bytes, got %d", len(id))
	}
	if plainVendorID(id) {
		return nil
	}
	return vendorIDCharacters(id)
}

// vendorIDCharacters refuses the characters a vendor id must not have, naming what is wrong.
func vendorIDCharacters(id string) error {
	if !utf8.ValidString(id) {
		return FieldErrorf("vendor_id", "must be valid UTF-8")
	}
	if strings.TrimSpace(id) != id {
		return FieldErrorf("vendor_id", "must not start or end with white space")
	}
	for _, r := range id {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == '/' {
			return FieldErrorf("vendor_id", "must not contain control, format or '/' characters")
		}
	}
	return nil
}

// plainVendorID reports whether id is printable ASCII without '/' and without a leading or
// trailing space: such an id passes every check of ValidateVendorID, which every check request
// runs, so it is accepted without decoding runes and looking them up in Unicode tables.
func plainVendorID(id string) bool {
	if id[0] == ' ' || id[len(id)-1] == ' ' {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c < ' ' || c > '~' || c == '/' {
			return false
		}
	}
	return true
}

// Validate checks a whole subscription against the catalog (the tier must exist).
func (s *Subscription) Validate(c *Catalog) error {
	if err := ValidateVendorID(s.VendorID); err != nil {
		return err
	}
	if s.Platform != "" && !isCode(s.Platform) {
		return FieldErrorf("platform", "must match %s", codeSyntax)
	}
	if s.Tier == "" {
		return FieldErrorf("tier", "is required")
	}
	if _, ok := c.Lookup(s.Platform, s.Tier); !ok {
		return FieldErrorf("tier", "unknown tier %q for platform %q", s.Tier, s.Platform)
	}
	if !s.Status.Valid() {
		return FieldErrorf("status", "must be one of trial, active, past_due, cancelled, expired, got %q", s.Status)
	}
	if s.PeriodStart != nil && s.PeriodEnd != nil && s.PeriodEnd.Before(*s.PeriodStart) {
		return FieldErrorf("period_end", "must not be before period_start")
	}
	if err := s.Overrides.Validate(); err != nil {
		return err
	}
	if s.PaymentRetryCount < 0 {
		return FieldErrorf("payment_retry_count", "must be >= 0, got %d", s.PaymentRetryCount)
	}
	seen := map[string]bool{}
	for i, a := range s.AddOns {
		f := "add_ons[" + a.Code + "]"
		if a.Code == "" {
			return FieldErrorf("add_ons["+strconv.Itoa(i)+"].code", "is required")
		}
		if seen[a.Code+"\x00"+a.DomainName] {
			return FieldErrorf(f+".code", "listed twice")
		}
		seen[a.Code+"\x00"+a.DomainName] = true
		if a.Quantity < 0 {
			return FieldErrorf(f+".quantity", "must be >= 0, got %d", a.Quantity)
		}
	}
	return nil
}
