# Test fixtures: the default catalog (catalog.go) plus two "oms" platform tiers, indexed the
# way policy/data.go indexes it, and helpers that build input documents.
package tollgate_test

essential_features := ["letzshop_sync", "inventory_basic", "invoice_lu", "customer_view"]

professional_features := [
	"letzshop_sync", "inventory_locations", "inventory_purchase_orders",
	"invoice_lu", "invoice_eu_vat", "customer_view", "customer_export",
]

business_features := array.concat(professional_features, [
	"invoice_bulk", "analytics_dashboard", "accounting_export",
	"api_access", "automation_rules", "team_roles",
])

enterprise_features := array.concat(business_features, [
	"white_label", "multi_vendor", "custom_integrations",
	"sla_guarantee", "dedicated_support",
])

tiers := [
	{
		"code": "essential", "name": "Essential", "price_monthly_cents": 4900, "price_annual_cents": 49000,
		"orders_per_month": 100, "products_limit": 200, "team_members": 1, "order_history_months": 6,
		"cms_pages_limit": null, "cms_custom_pages_limit": null, "features": essential_features,
		"display_order": 1, "is_active": true, "is_public": true,
	},
	{
		"code": "professional", "name": "Professional", "price_monthly_cents": 9900, "price_annual_cents": 99000,
		"orders_per_month": 500, "products_limit": null, "team_members": 3, "order_history_months": 24,
		"cms_pages_limit": null, "cms_custom_pages_limit": null, "features": professional_features,
		"display_order": 2, "is_active": true, "is_public": true,
	},
	{
		"code": "business", "name": "Business", "price_monthly_cents": 19900, "price_annual_cents": 199000,
		"orders_per_month": 2000, "products_limit": null, "team_members": 10, "order_history_months": null,
		"cms_pages_limit": null, "cms_custom_pages_limit": null, "features": business_features,
		"display_order": 3, "is_active": true, "is_public": true,
	},
	{
		"code": "enterprise", "name": "Enterprise", "price_monthly_cents": 39900, "price_annual_cents": null,
		"orders_per_month": null, "products_limit": null, "team_members": null, "order_history_months": null,
		"cms_pages_limit": null, "cms_custom_pages_limit": null, "features": enterprise_features,
		"display_order": 4, "is_active": true, "is_public": false,
	},
	{
		"code": "essential", "name": "OMS Essential", "platform": "oms", "price_monthly_cents": 2900,
		"price_annual_cents": null, "orders_per_month": 50, "products_limit": 100, "team_members": 1,
		"order_history_months": 3, "cms_pages_limit": 5, "cms_custom_pages_limit": 1,
		"features": ["letzshop_sync"], "display_order": 1, "is_active": true, "is_public": true,
	},
	{
		"code": "starter", "name": "OMS Starter", "platform": "oms", "price_monthly_cents": 5900,
		"price_annual_cents": null, "orders_per_month": 300, "products_limit": 1000, "team_members": 2,
		"order_history_months": 12, "cms_pages_limit": 20, "cms_custom_pages_limit": 5,
		"features": ["letzshop_sync", "oms_routing"], "display_order": 2, "is_active": true, "is_public": true,
	},
]

# catalog_of builds data.catalog as policy/data.go does: the tiers, their index by platform
# ("" = global) and code, and the policy's own upgrade_order evaluated on them.
catalog_of(ts) := object.union(doc, {"upgrade_order": order}) if {
	doc := {
		"tiers": ts,
		"add_ons": [],
		"tiers_by_platform": {p: {t.code: t | some t in ts; object.get(t, "platform", "") == p} |
			some p in {object.get(t, "platform", "") | some t in ts} | {""}
		},
	}
	order := data.tollgate.upgrade_order with data.catalog as doc
}

catalog := catalog_of(tiers)

now := 1773576000 # 2026-03-15T12:00:00Z

period_end := 1775001600 # 2026-04-01T00:00:00Z

base_request := {
	"vendor_id": "42", "action": "order.create", "platform": "", "count": null, "custom_count": null,
	"quantity": null, "feature": "", "months": null, "custom": false,
}

base_subscription := {
	"tier": "essential", "platform": "", "status": "active", "period_start": 1772323200,
	"period_end": period_end, "trial_ends_at": null, "scheduled_tier_change": "",
	"scheduled_change_at": null, "is_annual": false, "custom_orders_limit": null,
	"custom_products_limit": null, "custom_team_limit": null, "add_ons": [],
}

base_usage := {
	"period": "2026-03-01T00:00:00Z", "orders": 0, "products": null, "team_members": null,
	"cms_pages": null, "cms_custom_pages": null,
}

# input_of builds an input document from patches of the base request, subscription and usage.
input_of(c) := {
	"request": object.union(base_request, object.get(c, "req", {})),
	"vendor": {
		"subscription": object.union(base_subscription, object.get(c, "sub", {})),
		"usage": object.union(base_usage, object.get(c, "usage", {})),
		"revision": 1,
	},
	"now": now,
}

# decide evaluates the decision for a table case against the fixture catalog (or the case's own).
# Every case is also decided against the same catalog without data.catalog.upgrade_order (as a
# hand-written catalog document may be: the rule is then evaluated on the spot), which must give
# the very same decision.
decide(c) := d if {
	doc := object.get(c, "input", input_of(c))
	cat := object.get(c, "catalog", catalog)
	d := data.tollgate.decision with input as doc with data.catalog as cat
	d == data.tollgate.decision with input as doc with data.catalog as object.remove(cat, ["upgrade_order"])
}

# failures_of lists the cases whose decision does not contain every field of want.
failures_of(cases) := {[c.name, d] |
	some c in cases
	d := decide(c)
	not object.subset(d, c.want)
}

# An allowed answer to a limit question.
ok(tier, limit, used, remaining) := {
	"allow": true, "code": "ok", "reason": "", "limit": limit, "used": used,
	"remaining": remaining, "tier": tier, "status": "active", "upgrade_to": null,
}

# A limit denial.
limited(tier, limit, used, remaining, reason, upgrade) := {
	"allow": false, "code": "limit_reached", "reason": reason, "limit": limit, "used": used,
	"remaining": remaining, "tier": tier, "status": "active", "upgrade_to": upgrade,
}
