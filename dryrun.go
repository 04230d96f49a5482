package tollgate

// DryRunResult answers POST /v1/catalog/dry-run: which vendors a candidate catalog would put
// over a limit or take a used feature from. Nothing is changed.
type DryRunResult struct {
	CatalogRevision string `json:"catalog_revision"` // of the candidate
	VendorsChecked  int64  `json:"vendors_checked"`
	// Rules lists each finding the policy reported (e.g. "orders_limit", "feature:api_access"),
	// by rule name.
	Rules []DryRunRule `json:"rules"`
}

// DryRunRule is one finding: how many vendors, by tier, and the first vendor ids (sorted).
type DryRunRule struct {
	Rule      string           `json:"rule"`
	Vendors   int64            `json:"vendors"`
	ByTier    map[string]int64 `json:"by_tier"`
	VendorIDs []string         `json:"vendor_ids"`
}
