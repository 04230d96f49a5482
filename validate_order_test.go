package tollgate_test

import (
	"testing"

	"github.com/tollgate-pdp/tollgate"
)

// TestValidationNamesTheFirstFieldInFixedOrder gives each validator input with several bad
// fields, many times over: the error must always name the same (first) field. Validators that
// ranged over a map literal named any of them, varying from run to run.
func TestValidationNamesTheFirstFieldInFixedOrder(t *testing.T) {
	neg := int64(-1)
	tests := []struct {
		name     string
		validate func() error
		want     string // the exact message
	}{
		{"tier limits", func() error {
			c := tollgate.Catalog{Tiers: []tollgate.Tier{{Code: "gold", Name: "Gold", PriceMonthlyCents: &neg,
				PriceAnnualCents: &neg, OrdersPerMonth: &neg, ProductsLimit: &neg, TeamMembers: &neg,
				OrderHistoryMonths: &neg, CMSPagesLimit: &neg, CMSCustomPagesLimit: &neg}}}
			return c.Validate()
		}, "tiers[gold].price_monthly_cents: must be >= 0 or null (unlimited), got -1"},
		{"tier limits after the prices", func() error {
			c := tollgate.Catalog{Tiers: []tollgate.Tier{{Code: "gold", Name: "Gold", TeamMembers: &neg,
				CMSCustomPagesLimit: &neg, ProductsLimit: &neg}}}
			return c.Validate()
		}, "tiers[gold].products_limit: must be >= 0 or null (unlimited), got -1"},
		{"overrides", func() error {
			o := tollgate.Overrides{CustomOrdersLimit: &neg, CustomProductsLimit: &neg, CustomTeamLimit: &neg}
			return o.Validate()
		}, "custom_orders_limit: must be >= 0 or null, got -1"},
		{"overrides, last two", func() error {
			o := tollgate.Overrides{CustomProductsLimit: &neg, CustomTeamLimit: &neg}
			return o.Validate()
		}, "custom_products_limit: must be >= 0 or null, got -1"},
		{"check request counts", func() error {
			r := tollgate.CheckRequest{VendorID: "1", Action: "order.create", CustomCount: &neg, Months: &neg, Quantity: &neg}
			return r.Validate()
		}, "custom_count: must be >= 0, got -1"},
		{"usage report", func() error {
			r := tollgate.UsageReport{TeamMembers: &neg, CMSPages: &neg, StorageBytes: &neg}
			return r.Validate()
		}, "team_members: must be >= 0, got -1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for i := 0; i < 200; i++ {
				err := tt.validate()
				if err == nil || err.Error() != tt.want || tollgate.ErrorCode(err) != tollgate.EInvalid {
					t.Fatalf("run %d: got %v (code %s), want %q", i, err, tollgate.ErrorCode(err), tt.want)
				}
			}
		})
	}
}
