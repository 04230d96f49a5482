package tollgate_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/tollgate-pdp/tollgate"
)

// The built-in catalog must be exactly the four tiers of README.md (Decisions) and
// docs/configuration.md (Catalog file); this pins it field by field in JSON.
func TestDefaultCatalogExact(t *testing.T) {
	c := tollgate.DefaultCatalog()
	if err := c.Validate(); err != nil {
		t.Fatalf("default catalog invalid: %v", err)
	}
	pro := `"letzshop_sync","inventory_locations","inventory_purchase_orders","invoice_lu","invoice_eu_vat","customer_view","customer_export"`
	bus := pro + `,"invoice_bulk","analytics_dashboard","accounting_export","api_access","automation_rules","team_roles"`
	ent := bus + `,"white_label","multi_vendor","custom_integrations","sla_guarantee","dedicated_support"`
	want := map[string]string{
		"essential":    `{"code":"essential","name":"Essential","price_monthly_cents":4900,"price_annual_cents":49000,"orders_per_month":100,"products_limit":200,"team_members":1,"order_history_months":6,"cms_pages_limit":null,"cms_custom_pages_limit":null,"features":["letzshop_sync","inventory_basic","invoice_lu","customer_view"],"stripe_product_id":"","stripe_price_monthly_id":"","stripe_price_annual_id":"","display_order":1,"is_active":true,"is_public":true}`,
		"professional": `{"code":"professional","name":"Professional","price_monthly_cents":9900,"price_annual_cents":99000,"orders_per_month":500,"products_limit":null,"team_members":3,"order_history_months":24,"cms_pages_limit":null,"cms_custom_pages_limit":null,"features":[` + pro + `],"stripe_product_id":"","stripe_price_monthly_id":"","stripe_price_annual_id":"","display_order":2,"is_active":true,"is_public":true}`,
		"business":     `{"code":"business","name":"Business","price_monthly_cents":19900,"price_annual_cents":199000,"orders_per_month":2000,"products_limit":null,"team_members":10,"order_history_months":null,"cms_pages_limit":null,"cms_custom_pages_limit":null,"features":[` + bus + `],"stripe_product_id":"","stripe_price_monthly_id":"","stripe_price_annual_id":"","display_order":3,"is_active":true,"is_public":true}`,
		"enterprise":   `{"code":"enterprise","name":"Enterprise","price_monthly_cents":39900,"price_annual_cents":null,"orders_per_month":null,"products_limit":null,"team_members":null,"order_history_months":null,"cms_pages_limit":null,"cms_custom_pages_limit":null,"features":[` + ent + `],"stripe_product_id":"","stripe_price_monthly_id":"","stripe_price_annual_id":"","display_order":4,"is_active":true,"is_public":false}`,
	}
	if len(c.Tiers) != 4 {
		t.Fatalf("want 4 tiers, got %d", len(c.Tiers))
	}
	for _, tier := range c.Tiers {
		got, err := json.Marshal(tier)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != want[tier.Code] {
			t.Errorf("tier %s:\n got %s\nwant %s", tier.Code, got, want[tier.Code])
		}
	}
}

func TestDecodeCatalogErrorsNameTierAndField(t *testing.T) {
	tests := []struct {
		name, json, want string
	}{
		{"negative limit", `{"tiers":[{"code":"gold","name":"Gold","orders_per_month":-1}]}`, "tiers[gold].orders_per_month: must be >= 0"},
		{"bad code", `{"tiers":[{"code":"Gold!","name":"Gold"}]}`, "tiers[Gold!].code: must match"},
		{"missing name", `{"tiers":[{"code":"gold"}]}`, "tiers[gold].name: is required"},
		{"duplicate", `{"tiers":[{"code":"gold","name":"G"},{"code":"gold","name":"G"}]}`, `tiers[gold].code: duplicate tier "gold"`},
		{"duplicate feature", `{"tiers":[{"code":"gold","name":"G","features":["a","a"]}]}`, `tiers[gold].features: feature "a" is listed twice`},
		{"unknown field", `{"tiers":[{"code":"gold","name":"G","colour":"red"}]}`, `unknown field "colour"`},
		{"wrong type", `{"tiers":[{"code":"gold","name":"G","orders_per_month":"ten"}]}`, "orders_per_month"},
		{"no tiers", `{"tiers":[]}`, "tiers: at least one tier is required"},
		{"addon category", `{"tiers":[{"code":"gold","name":"G"}],"add_ons":[{"code":"dom","name":"Domain","category":"car","billing_period":"annual"}]}`, "add_ons[dom].category: must be one of"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tollgate.DecodeCatalog(strings.NewReader(tt.json))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("want error containing %q, got %v", tt.want, err)
			}
			if tollgate.ErrorCode(err) != tollgate.EInvalid {
				t.Fatalf("want code invalid, got %s", tollgate.ErrorCode(err))
			}
		})
	}
}

func TestCatalogLookupPlatformFallback(t *testing.T) {
	c, err := tollgate.DecodeCatalog(strings.NewReader(`{"tiers":[
		{"code":"essential","name":"Essential global","is_active":true},
		{"code":"essential","name":"Essential OMS","platform":"oms","is_active":true},
		{"code":"business","name":"Business global","is_active":true}]}`))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ platform, code, want string }{
		{"oms", "essential", "Essential OMS"},
		{"", "essential", "Essential global"},
		{"cms", "essential", "Essential global"},
		{"oms", "business", "Business global"},
		{"oms", "gold", ""},
	}
	for _, tt := range tests {
		tier, ok := c.Lookup(tt.platform, tt.code)
		got := ""
		if ok {
			got = tier.Name
		}
		if got != tt.want {
			t.Errorf("Lookup(%q,%q) = %q, want %q", tt.platform, tt.code, got, tt.want)
		}
	}
}

func TestCatalogRevisionFollowsContent(t *testing.T) {
	a, b := tollgate.DefaultCatalog(), tollgate.DefaultCatalog()
	if a.Revision() != b.Revision() {
		t.Fatal("equal catalogs must have equal revisions")
	}
	b.Tiers[0].StripePriceMonthlyID = "price_x"
	if a.Revision() == b.Revision() {
		t.Fatal("a changed catalog must change revision")
	}
	c := a.Clone()
	c.Tiers[0].Features[0] = "changed"
	if a.Tiers[0].Features[0] == "changed" {
		t.Fatal("Clone must deep-copy features")
	}
}
