package policy

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/util"

	"github.com/tollgate-pdp/tollgate"
)

// catalogStore puts the catalog document (see CatalogDocument) at data.catalog.
func catalogStore(c *tollgate.Catalog) (storage.Store, error) {
	doc, err := CatalogDocument(c)
	if err != nil {
		return nil, err
	}
	// AST values on read: the store hands the evaluator ready-made terms instead of converting
	// the catalog on every decision.
	return inmem.NewFromObjectWithOpts(map[string]any{"catalog": doc},
		inmem.OptRoundTripOnWrite(false), inmem.OptReturnASTValuesOnRead(true)), nil
}

// CatalogDocument is data.catalog as the policy reads it: the catalog as the Tier and AddOn
// types marshal to JSON (so the document the policy reads is the one GET /v1/tiers shows), plus
// the same tiers indexed (tiers_by_platform) and ordered for upgrades (upgrade_order). Tools
// that run the policy elsewhere (opa run, the benchmark harness) load exactly this document.
func CatalogDocument(c *tollgate.Catalog) (map[string]any, error) {
	b, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("encode catalog: %w", err)
	}
	var doc any
	if err := util.NewJSONDecoder(bytes.NewReader(b)).Decode(&doc); err != nil {
		return nil, fmt.Errorf("decode catalog: %w", err)
	}
	if err := indexTiers(doc); err != nil {
		return nil, err
	}
	addUpgradeOrder(doc.(map[string]any), c)
	return doc.(map[string]any), nil
}

// indexTiers adds data.catalog.tiers_by_platform: {platform: {code: tier}}, global tiers under
// "". It is the same tiers, keyed for lookup, so the policy finds a vendor's tier with two key
// reads instead of scanning the list on every decision. Which tier applies (platform first,
// then global) stays the policy's decision.
func indexTiers(doc any) error {
	cat, ok := doc.(map[string]any)
	if !ok {
		return fmt.Errorf("catalog document is %T, not an object", doc)
	}
	tiers, _ := cat["tiers"].([]any)
	index := map[string]any{"": map[string]any{}}
	for i, t := range tiers {
		tier, ok := t.(map[string]any)
		if !ok {
			return fmt.Errorf("catalog tier %d is %T, not an object", i, t)
		}
		platform, _ := tier["platform"].(string)
		code, _ := tier["code"].(string)
		byCode, ok := index[platform].(map[string]any)
		if !ok {
			byCode = map[string]any{}
			index[platform] = byCode
		}
		byCode[code] = tier
	}
	cat["tiers_by_platform"] = index
	return nil
}

// addUpgradeOrder adds data.catalog.upgrade_order: {platform: [tier]}, for "" and every platform
// of the catalog, the tiers an upgrade may be offered on that platform (active, public, the
// platform's own tiers plus the global tiers none of them shadows by code), cheapest first
// (monthly price, a tier without one last; then display_order, then code). It is the catalog
// reshaped: the same tier objects, filtered and ordered by their own fields, computed once per
// catalog instead of on every denial. Which of them upgrade_to names (not the current tier, and
// one whose own limits allow the request) stays the policy's decision (upgrade.rego). A
// platform without tiers of its own sees the global list, upgrade_order[""].
func addUpgradeOrder(doc map[string]any, c *tollgate.Catalog) {
	docTiers, _ := doc["tiers"].([]any)
	if len(docTiers) != len(c.Tiers) {
		return // not the catalog's own document: leave the policy to its fallback
	}
	platforms := []string{""}
	for i := range c.Tiers {
		if p := c.Tiers[i].Platform; p != "" && !slices.Contains(platforms, p) {
			platforms = append(platforms, p)
		}
	}
	order := make(map[string]any, len(platforms))
	for _, p := range platforms {
		var idx []int
		for i := range c.Tiers {
			t := &c.Tiers[i]
			if !t.IsActive || !t.IsPublic {
				continue
			}
			switch {
			case p != "" && t.Platform == p:
			case t.Platform == "" && !shadowed(c, p, t.Code):
			default:
				continue
			}
			idx = append(idx, i)
		}
		slices.SortStableFunc(idx, func(a, b int) int {
			ta, tb := &c.Tiers[a], &c.Tiers[b]
			if r := cmp.Compare(priceRank(ta), priceRank(tb)); r != 0 {
				return r
			}
			if ta.PriceMonthlyCents != nil && tb.PriceMonthlyCents != nil {
				if r := cmp.Compare(*ta.PriceMonthlyCents, *tb.PriceMonthlyCents); r != 0 {
					return r
				}
			}
			if r := cmp.Compare(ta.DisplayOrder, tb.DisplayOrder); r != 0 {
				return r
			}
			return cmp.Compare(ta.Code, tb.Code)
		})
		list := make([]any, len(idx))
		for j, i := range idx {
			list[j] = docTiers[i]
		}
		order[p] = list
	}
	doc["upgrade_order"] = order
}

func priceRank(t *tollgate.Tier) int {
	if t.PriceMonthlyCents == nil {
		return 1
	}
	return 0
}

// shadowed: platform p has a tier of its own with this code.
func shadowed(c *tollgate.Catalog, p, code string) bool {
	if p == "" {
		return false
	}
	for i := range c.Tiers {
		if c.Tiers[i].Platform == p && c.Tiers[i].Code == code {
			return true
		}
	}
	return false
}
