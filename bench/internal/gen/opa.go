package gen

import (
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/tollgate-pdp/tollgate"
	"github.com/tollgate-pdp/tollgate/policy"
)

// EntryPackage is the thin Rego entry point the OPA server is queried through; EntryPath is its
// Data API path.
const (
	EntryPackage = "bench.entry"
	EntryPath    = "/v1/data/bench/entry/decision"
)

// EntryRego reads the vendor from data.vendors by the request's vendor id and evaluates the
// same default policy (data.tollgate.decision) with the input document tollgate's policy
// package builds: {request, vendor (null when unknown), now (Unix seconds)}.
const EntryRego = `package bench.entry

decision := d if {
	d := data.tollgate.decision with input as {
		"request": input.request,
		"vendor": object.get(data.vendors, input.request.vendor_id, null),
		"now": floor(time.now_ns() / 1000000000),
	}
}
`

// unix is a timestamp as the policy input carries it: Unix seconds, null when unset.
func unix(t *time.Time) any {
	if t == nil {
		return nil
	}
	return t.Unix()
}

// VendorDoc is the vendor object of the policy input for v (the same facts as
// policy.vendorObject builds: subscription, usage of the current period, revision).
func VendorDoc(v *tollgate.VendorState, now time.Time) map[string]any {
	s := &v.Subscription
	addOns := make([]any, 0, len(s.AddOns))
	for _, a := range s.AddOns {
		addOns = append(addOns, map[string]any{"code": a.Code, "quantity": a.Quantity, "status": a.Status})
	}
	optInt := func(p *int64) any {
		if p == nil {
			return nil
		}
		return *p
	}
	period := tollgate.PeriodKey(s, now)
	u := &v.Usage
	return map[string]any{
		"subscription": map[string]any{
			"tier":                  s.Tier,
			"platform":              s.Platform,
			"status":                string(s.Status),
			"period_start":          unix(s.PeriodStart),
			"period_end":            unix(s.PeriodEnd),
			"trial_ends_at":         unix(s.TrialEndsAt),
			"scheduled_tier_change": s.ScheduledTierChange,
			"scheduled_change_at":   unix(s.ScheduledChangeAt),
			"is_annual":             s.IsAnnual,
			"custom_orders_limit":   optInt(s.CustomOrdersLimit),
			"custom_products_limit": optInt(s.CustomProductsLimit),
			"custom_team_limit":     optInt(s.CustomTeamLimit),
			"add_ons":               addOns,
		},
		"usage": map[string]any{
			"period":           period,
			"orders":           u.OrdersIn(period),
			"products":         optInt(u.Products),
			"team_members":     optInt(u.TeamMembers),
			"cms_pages":        optInt(u.CMSPages),
			"cms_custom_pages": optInt(u.CMSCustomPages),
		},
		"revision": v.Revision,
	}
}

// CatalogDoc is data.catalog exactly as tollgate's policy package loads it.
func CatalogDoc(c *tollgate.Catalog) (map[string]any, error) { return policy.CatalogDocument(c) }

// VendorSource iterates the store's vendors (cache.Store.ForEachVendor).
type VendorSource interface {
	ForEachVendor(fn func(*tollgate.VendorState) bool)
}

// WriteOPAData writes {"catalog": ..., "vendors": {id: vendor}} from the store's state.
func WriteOPAData(w io.Writer, src VendorSource, c *tollgate.Catalog, now time.Time) (int, error) {
	cat, err := CatalogDoc(c)
	if err != nil {
		return 0, err
	}
	vendors := map[string]any{}
	src.ForEachVendor(func(v *tollgate.VendorState) bool {
		vendors[v.Subscription.VendorID] = VendorDoc(v, now)
		return true
	})
	enc := json.NewEncoder(w)
	if err := enc.Encode(map[string]any{"catalog": cat, "vendors": vendors}); err != nil {
		return 0, fmt.Errorf("write OPA data: %w", err)
	}
	return len(vendors), nil
}
