package tollgate

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"slices"
)

// Catalog is the set of tiers and add-on products the business sells. A tier with a platform
// applies to that platform only; lookup is (platform, code) first, then the global tier.
type Catalog struct {
	Tiers  []Tier  `json:"tiers"`
	AddOns []AddOn `json:"add_ons"`
}

func i64(v int64) *int64 { return &v }

// DefaultCatalog returns the built-in catalog: the four tiers of the design, exactly.
func DefaultCatalog() *Catalog {
	essential := []string{"letzshop_sync", "inventory_basic", "invoice_lu", "customer_view"}
	professional := []string{"letzshop_sync", "inventory_locations", "inventory_purchase_orders",
		"invoice_lu", "invoice_eu_vat", "customer_view", "customer_export"}
	business := append(slices.Clone(professional), "invoice_bulk", "analytics_dashboard",
		"accounting_export", "api_access", "automation_rules", "team_roles")
	enterprise := append(slices.Clone(business), "white_label", "multi_vendor",
		"custom_integrations", "sla_guarantee", "dedicated_support")
	return &Catalog{
		Tiers: []Tier{
			{Code: "essential", Name: "Essential", PriceMonthlyCents: i64(4900), PriceAnnualCents: i64(49000),
				OrdersPerMonth: i64(100), ProductsLimit: i64(200), TeamMembers: i64(1), OrderHistoryMonths: i64(6),
				Features: essential, DisplayOrder: 1, IsActive: true, IsPublic: true},
			{Code: "professional", Name: "Professional", PriceMonthlyCents: i64(9900), PriceAnnualCents: i64(99000),
				OrdersPerMonth: i64(500), TeamMembers: i64(3), OrderHistoryMonths: i64(24),
				Features: professional, DisplayOrder: 2, IsActive: true, IsPublic: true},
			{Code: "business", Name: "Business", PriceMonthlyCents: i64(19900), PriceAnnualCents: i64(199000),
				OrdersPerMonth: i64(2000), TeamMembers: i64(10),
				Features: business, DisplayOrder: 3, IsActive: true, IsPublic: true},
			{Code: "enterprise", Name: "Enterprise", PriceMonthlyCents: i64(39900),
				Features: enterprise, DisplayOrder: 4, IsActive: true, IsPublic: false},
		},
		AddOns: []AddOn{},
	}
}

// DecodeCatalog reads a catalog from JSON, refusing unknown fields, and validates it.
func DecodeCatalog(r io.Reader) (*Catalog, error) {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	var c Catalog
	if err := dec.Decode(&c); err != nil {
		return nil, &Error{Code: EInvalid, Message: "catalog: " + err.Error(), Err: err}
	}
	if c.AddOns == nil {
		c.AddOns = []AddOn{}
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// Validate checks every tier and add-on; the error names the tier (or add-on) and the field.
func (c *Catalog) Validate() error {
	if len(c.Tiers) == 0 {
		return FieldErrorf("tiers", "at least one tier is required")
	}
	type key struct{ platform, code string }
	seen := map[key]bool{}
	for i := range c.Tiers {
		t := &c.Tiers[i]
		if err := t.validate(i); err != nil {
			return err
		}
		k := key{t.Platform, t.Code}
		if seen[k] {
			return FieldErrorf("tiers["+t.Code+"].code", "duplicate tier %q for platform %q", t.Code, t.Platform)
		}
		seen[k] = true
	}
	addOns := map[string]bool{}
	for i := range c.AddOns {
		a := &c.AddOns[i]
		if err := a.validate(i); err != nil {
			return err
		}
		if addOns[a.Code] {
			return FieldErrorf("add_ons["+a.Code+"].code", "duplicate add-on %q", a.Code)
		}
		addOns[a.Code] = true
	}
	return nil
}

// Lookup returns the tier for (platform, code), falling back to the global tier of that code.
func (c *Catalog) Lookup(platform, code string) (*Tier, bool) {
	var global *Tier
	for i := range c.Tiers {
		t := &c.Tiers[i]
		if t.Code != code {
			continue
		}
		if platform != "" && t.Platform == platform {
			return t, true
		}
		if t.Platform == "" {
			global = t
		}
	}
	return global, global != nil
}

// TierByStripePrice returns the tier whose monthly or annual Stripe price id is priceID, and
// whether that price is the annual one.
func (c *Catalog) TierByStripePrice(priceID string) (tier *Tier, annual bool, ok bool) {
	if priceID == "" {
		return nil, false, false
	}
	for i := range c.Tiers {
		t := &c.Tiers[i]
		switch priceID {
		case t.StripePriceMonthlyID:
			return t, false, true
		case t.StripePriceAnnualID:
			return t, true, true
		}
	}
	return nil, false, false
}

// AddOnByStripePrice returns the add-on product whose Stripe price id is priceID.
func (c *Catalog) AddOnByStripePrice(priceID string) (*AddOn, bool) {
	if priceID == "" {
		return nil, false
	}
	for i := range c.AddOns {
		if c.AddOns[i].StripePriceID == priceID {
			return &c.AddOns[i], true
		}
	}
	return nil, false
}

// Revision is a content hash of the catalog: equal catalogs have equal revisions, so a decision
// cached under one revision is valid for any catalog with the same one.
func (c *Catalog) Revision() string {
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(c); err != nil {
		panic(fmt.Sprintf("catalog is always encodable: %v", err))
	}
	sum := sha256.Sum256(buf.Bytes())
	return hex.EncodeToString(sum[:8])
}

// Clone returns a deep copy, so a catalog can be edited (e.g. by Stripe product events) without
// changing one that readers hold.
func (c *Catalog) Clone() *Catalog {
	out := &Catalog{Tiers: make([]Tier, len(c.Tiers)), AddOns: slices.Clone(c.AddOns)}
	for i, t := range c.Tiers {
		t.Features = slices.Clone(t.Features)
		out.Tiers[i] = t
	}
	if out.AddOns == nil {
		out.AddOns = []AddOn{}
	}
	return out
}
