package tollgate

import (
	"slices"
	"strconv"
)

// Tier is one subscription tier of the catalog. Limits are pointers: nil means unlimited,
// never a magic number. Prices are integer cents (EUR); a nil annual price means "custom".
type Tier struct {
	Code                 string   `json:"code"`
	Name                 string   `json:"name"`
	Platform             string   `json:"platform,omitempty"` // empty: global tier
	PriceMonthlyCents    *int64   `json:"price_monthly_cents"`
	PriceAnnualCents     *int64   `json:"price_annual_cents"`
	OrdersPerMonth       *int64   `json:"orders_per_month"`
	ProductsLimit        *int64   `json:"products_limit"`
	TeamMembers          *int64   `json:"team_members"`
	OrderHistoryMonths   *int64   `json:"order_history_months"`
	CMSPagesLimit        *int64   `json:"cms_pages_limit"`
	CMSCustomPagesLimit  *int64   `json:"cms_custom_pages_limit"`
	Features             []string `json:"features"`
	StripeProductID      string   `json:"stripe_product_id"`
	StripePriceMonthlyID string   `json:"stripe_price_monthly_id"`
	StripePriceAnnualID  string   `json:"stripe_price_annual_id"`
	DisplayOrder         int      `json:"display_order"`
	IsActive             bool     `json:"is_active"`
	IsPublic             bool     `json:"is_public"`
}

// HasFeature reports whether the tier lists the feature.
func (t *Tier) HasFeature(feature string) bool { return slices.Contains(t.Features, feature) }

// validate checks one tier; errors name the tier and the field.
func (t *Tier) validate(i int) error {
	name := t.Code
	if name == "" {
		name = "#" + strconv.Itoa(i)
	}
	field := func(f string) string { return "tiers[" + name + "]." + f }
	if !isCode(t.Code) {
		return FieldErrorf(field("code"), "must match %s", codeSyntax)
	}
	if t.Platform != "" && !isCode(t.Platform) {
		return FieldErrorf(field("platform"), "must match %s", codeSyntax)
	}
	if t.Name == "" {
		return FieldErrorf(field("name"), "is required")
	}
	// an ordered list, not a map, so that the same bad tier always names the same field
	for _, l := range [...]struct {
		field string
		v     *int64
	}{
		{"price_monthly_cents", t.PriceMonthlyCents}, {"price_annual_cents", t.PriceAnnualCents},
		{"orders_per_month", t.OrdersPerMonth}, {"products_limit", t.ProductsLimit},
		{"team_members", t.TeamMembers}, {"order_history_months", t.OrderHistoryMonths},
		{"cms_pages_limit", t.CMSPagesLimit}, {"cms_custom_pages_limit", t.CMSCustomPagesLimit},
	} {
		if l.v != nil && *l.v < 0 {
			return FieldErrorf(field(l.field), "must be >= 0 or null (unlimited), got %d", *l.v)
		}
	}
	seen := map[string]bool{}
	for _, f := range t.Features {
		if !isCode(f) {
			return FieldErrorf(field("features"), "feature %q must match %s", f, codeSyntax)
		}
		if seen[f] {
			return FieldErrorf(field("features"), "feature %q is listed twice", f)
		}
		seen[f] = true
	}
	return nil
}

// AddOn categories and billing periods.
const (
	AddOnDomain  = "domain"
	AddOnSSL     = "ssl"
	AddOnEmail   = "email"
	AddOnStorage = "storage"

	BillingMonthly = "monthly"
	BillingAnnual  = "annual"
	BillingOneTime = "one_time"
)

// AddOn is an add-on product sold beside a tier (a domain, SSL, mailboxes, storage).
type AddOn struct {
	Code          string `json:"code"`
	Name          string `json:"name"`
	Category      string `json:"category"`
	PriceCents    int64  `json:"price_cents"`
	BillingPeriod string `json:"billing_period"`
	QuantityUnit  string `json:"quantity_unit,omitempty"`
	QuantityValue *int64 `json:"quantity_value,omitempty"`
	StripePriceID string `json:"stripe_price_id,omitempty"`
	// StripeProductID and DisplayOrder come over from the model's addon_products.
	StripeProductID string `json:"stripe_product_id,omitempty"`
	DisplayOrder    int    `json:"display_order,omitempty"`
	IsActive        bool   `json:"is_active"`
}

func (a *AddOn) validate(i int) error {
	name := a.Code
	if name == "" {
		name = "#" + strconv.Itoa(i)
	}
	field := func(f string) string { return "add_ons[" + name + "]." + f }
	if !isCode(a.Code) {
		return FieldErrorf(field("code"), "must match %s", codeSyntax)
	}
	if a.Name == "" {
		return FieldErrorf(field("name"), "is required")
	}
	switch a.Category {
	case AddOnDomain, AddOnSSL, AddOnEmail, AddOnStorage:
	default:
		return FieldErrorf(field("category"), "must be one of domain, ssl, email, storage, got %q", a.Category)
	}
	switch a.BillingPeriod {
	case BillingMonthly, BillingAnnual, BillingOneTime:
	default:
		return FieldErrorf(field("billing_period"), "must be one of monthly, annual, one_time, got %q", a.BillingPeriod)
	}
	if a.PriceCents < 0 {
		return FieldErrorf(field("price_cents"), "must be >= 0, got %d", a.PriceCents)
	}
	if a.QuantityValue != nil && *a.QuantityValue < 0 {
		return FieldErrorf(field("quantity_value"), "must be >= 0, got %d", *a.QuantityValue)
	}
	return nil
}
