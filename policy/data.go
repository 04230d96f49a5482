package policy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/util"

	"github.com/tollgate-pdp/tollgate"
)

// UpgradeOrderQuery is the upgrade candidates of every platform, in order (upgrade.rego). It
// reads the catalog only, so it is evaluated once per policy and catalog (see catalogDocument).
const UpgradeOrderQuery = "data.tollgate.upgrade_order"

// catalogStore puts the catalog document (see catalogDocument) at data.catalog.
func catalogStore(ctx context.Context, c *tollgate.Catalog, compiler *ast.Compiler) (storage.Store, error) {
	doc, err := catalogDocument(ctx, c, compiler)
	if err != nil {
		return nil, err
	}
	// AST values on read: the store hands the evaluator ready-made terms instead of converting
	// the catalog on every decision.
	return inmem.NewFromObjectWithOpts(map[string]any{"catalog": doc},
		inmem.OptRoundTripOnWrite(false), inmem.OptReturnASTValuesOnRead(true)), nil
}

// CatalogDocument is data.catalog as the embedded policy reads it (see catalogDocument). Tools
// that run the policy elsewhere (opa run, the benchmark harness) load exactly this document.
func CatalogDocument(c *tollgate.Catalog) (map[string]any, error) {
	src, err := embeddedSources()
	if err != nil {
		return nil, err
	}
	compiler, err := src.compile()
	if err != nil {
		return nil, err
	}
	// Computed once, off any request: nothing to cancel.
	return catalogDocument(context.Background(), c, compiler)
}

// catalogDocument is the catalog as the Tier and AddOn types marshal to JSON (so the document
// the policy reads is the one GET /v1/tiers shows), plus the same tiers indexed
// (tiers_by_platform) and the policy's own upgrade_order evaluated on them: a rule over the
// catalog alone, stored with it so a denial reads it instead of sorting the tiers again. A
// policy without the rule gets no upgrade_order.
func catalogDocument(ctx context.Context, c *tollgate.Catalog, compiler *ast.Compiler) (map[string]any, error) {
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
	cat := doc.(map[string]any)
	rs, err := rego.New(rego.Query(UpgradeOrderQuery), rego.Compiler(compiler),
		rego.Store(inmem.NewFromObject(map[string]any{"catalog": cat}))).Eval(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", UpgradeOrderQuery, err)
	}
	if len(rs) == 1 && len(rs[0].Expressions) == 1 {
		cat["upgrade_order"] = rs[0].Expressions[0].Value
	}
	return cat, nil
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
