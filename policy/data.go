package policy

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/util"

	"github.com/tollgate-pdp/tollgate"
)

// catalogStore puts the catalog at data.catalog, as the Tier and AddOn types marshal to JSON
// (so the document the policy reads is the one GET /v1/tiers shows), plus an index of the same
// tiers (see indexTiers).
func catalogStore(c *tollgate.Catalog) (storage.Store, error) {
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
	// AST values on read: the store hands the evaluator ready-made terms instead of converting
	// the catalog on every decision.
	return inmem.NewFromObjectWithOpts(map[string]any{"catalog": doc},
		inmem.OptRoundTripOnWrite(false), inmem.OptReturnASTValuesOnRead(true)), nil
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
