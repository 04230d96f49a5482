# Table tests of each action's rule, with the exact reasons vendors see.
package tollgate_test

order_reason(n) := sprintf("Monthly order limit reached (%d orders). Upgrade to continue.", [n])

product_reason(n) := sprintf("Product limit reached (%d products). Upgrade to add more.", [n])

team_reason(n) := sprintf("Team member limit reached (%d members). Upgrade to add more.", [n])

cms_reason(n) := sprintf("CMS page limit reached (%d pages). Upgrade to add more.", [n])

custom_cms_reason(n) := sprintf("Custom CMS page limit reached (%d pages). Upgrade to add more.", [n])

history_reason(n) := sprintf("Order history limited to %d months on your plan. Upgrade to see more.", [n])

order_cases := [
	{"name": "first order", "want": ok("essential", 100, 0, 100)},
	{"name": "under the limit", "usage": {"orders": 10}, "want": ok("essential", 100, 10, 90)},
	{"name": "last order of the month", "usage": {"orders": 99}, "want": ok("essential", 100, 99, 1)},
	{
		"name": "limit reached",
		"usage": {"orders": 100},
		"want": limited("essential", 100, 100, 0, "Monthly order limit reached (100 orders). Upgrade to continue.", "professional"),
	},
	{
		"name": "over the limit",
		"usage": {"orders": 130},
		"want": limited("essential", 100, 130, 0, order_reason(100), "professional"),
	},
	{
		"name": "quantity that does not fit",
		"req": {"quantity": 5}, "usage": {"orders": 96},
		"want": limited("essential", 100, 96, 4, order_reason(100), "professional"),
	},
	{"name": "quantity that fits exactly", "req": {"quantity": 4}, "usage": {"orders": 96}, "want": ok("essential", 100, 96, 4)},
	{"name": "quantity 0 at the limit", "req": {"quantity": 0}, "usage": {"orders": 100}, "want": ok("essential", 100, 100, 0)},
	{
		"name": "custom limit above the tier's",
		"sub": {"custom_orders_limit": 1000}, "usage": {"orders": 500},
		"want": ok("essential", 1000, 500, 500),
	},
	{
		"name": "custom limit below the tier's",
		"sub": {"custom_orders_limit": 10}, "usage": {"orders": 10},
		"want": limited("essential", 10, 10, 0, order_reason(10), "professional"),
	},
	{
		"name": "custom limit 0",
		"sub": {"custom_orders_limit": 0},
		"want": limited("essential", 0, 0, 0, order_reason(0), "professional"),
	},
	{
		"name": "unlimited tier",
		"sub": {"tier": "enterprise"}, "usage": {"orders": 5000},
		"want": ok("enterprise", null, 5000, null),
	},
	{
		"name": "business at its limit: enterprise is not public",
		"sub": {"tier": "business"}, "usage": {"orders": 2000},
		"want": limited("business", 2000, 2000, 0, order_reason(2000), null),
	},
	{
		"name": "professional at its limit",
		"sub": {"tier": "professional"}, "usage": {"orders": 500},
		"want": limited("professional", 500, 500, 0, order_reason(500), "business"),
	},
]

product_cases := [
	{"name": "no count: 0", "req": {"action": "product.add"}, "want": ok("essential", 200, 0, 200)},
	{"name": "under", "req": {"action": "product.add", "count": 199}, "want": ok("essential", 200, 199, 1)},
	{
		"name": "at the limit",
		"req": {"action": "product.add", "count": 200},
		"want": limited("essential", 200, 200, 0, "Product limit reached (200 products). Upgrade to add more.", "professional"),
	},
	{
		"name": "count from reported usage",
		"req": {"action": "product.add"}, "usage": {"products": 250},
		"want": limited("essential", 200, 250, 0, product_reason(200), "professional"),
	},
	{
		"name": "request count wins over reported usage",
		"req": {"action": "product.add", "count": 5}, "usage": {"products": 250},
		"want": ok("essential", 200, 5, 195),
	},
	{
		"name": "custom products limit",
		"req": {"action": "product.add", "count": 300}, "sub": {"custom_products_limit": 500},
		"want": ok("essential", 500, 300, 200),
	},
	{
		"name": "unlimited products",
		"req": {"action": "product.add", "count": 100000}, "sub": {"tier": "professional"},
		"want": ok("professional", null, 100000, null),
	},
]

team_cases := [
	{
		"name": "essential has one seat",
		"req": {"action": "team_member.add", "count": 1},
		"want": limited("essential", 1, 1, 0, "Team member limit reached (1 members). Upgrade to add more.", "professional"),
	},
	{"name": "first member", "req": {"action": "team_member.add", "count": 0}, "want": ok("essential", 1, 0, 1)},
	{
		"name": "professional full: business",
		"req": {"action": "team_member.add", "count": 3}, "sub": {"tier": "professional"},
		"want": limited("professional", 3, 3, 0, team_reason(3), "business"),
	},
	{
		"name": "count from reported usage",
		"req": {"action": "team_member.add"}, "sub": {"tier": "business"}, "usage": {"team_members": 10},
		"want": limited("business", 10, 10, 0, team_reason(10), null),
	},
	{
		"name": "custom team limit",
		"req": {"action": "team_member.add", "count": 4}, "sub": {"tier": "professional", "custom_team_limit": 5},
		"want": ok("professional", 5, 4, 1),
	},
]

feature_missing(tier, upgrade) := {
	"allow": false, "code": "feature_missing", "reason": "Feature not available on your plan",
	"limit": null, "used": 0, "remaining": null, "tier": tier, "status": "active", "upgrade_to": upgrade,
}

feature_cases := [
	{"name": "feature on the plan", "req": {"action": "feature.use", "feature": "letzshop_sync"}, "want": ok("essential", null, 0, null)},
	{
		"name": "feature of a higher plan",
		"req": {"action": "feature.use", "feature": "api_access"},
		"want": feature_missing("essential", "business"),
	},
	{
		"name": "feature of the next plan",
		"req": {"action": "feature.use", "feature": "customer_export"},
		"want": feature_missing("essential", "professional"),
	},
	{
		"name": "enterprise-only feature: no public tier has it",
		"req": {"action": "feature.use", "feature": "white_label"}, "sub": {"tier": "business"},
		"want": feature_missing("business", null),
	},
	{
		"name": "unknown feature",
		"req": {"action": "feature.use", "feature": "teleport"},
		"want": feature_missing("essential", null),
	},
	{
		"name": "platform-only feature: the platform tier",
		"req": {"action": "feature.use", "feature": "oms_routing", "platform": "oms"},
		"want": feature_missing("essential", "starter"),
	},
]

cms_cases := [
	{
		"name": "global tiers have no CMS limits",
		"req": {"action": "cms_page.create", "count": 1000, "custom": true, "custom_count": 1000},
		"want": ok("essential", null, 1000, null),
	},
	{
		"name": "under the page limit",
		"req": {"action": "cms_page.create", "count": 4, "platform": "oms"},
		"want": ok("essential", 5, 4, 1),
	},
	{
		"name": "page limit reached",
		"req": {"action": "cms_page.create", "count": 5, "platform": "oms"},
		"want": limited("essential", 5, 5, 0, "CMS page limit reached (5 pages). Upgrade to add more.", "starter"),
	},
	{
		"name": "page count from reported usage",
		"req": {"action": "cms_page.create", "platform": "oms"}, "usage": {"cms_pages": 7},
		"want": limited("essential", 5, 7, 0, cms_reason(5), "starter"),
	},
	{
		"name": "custom page limit reached",
		"req": {"action": "cms_page.create", "count": 2, "custom": true, "custom_count": 1, "platform": "oms"},
		"want": limited("essential", 1, 1, 0, "Custom CMS page limit reached (1 pages). Upgrade to add more.", "starter"),
	},
	{
		"name": "custom count from reported usage",
		"req": {"action": "cms_page.create", "count": 2, "custom": true, "platform": "oms"}, "usage": {"cms_custom_pages": 3},
		"want": limited("essential", 1, 3, 0, custom_cms_reason(1), "starter"),
	},
	{
		"name": "custom page under the custom limit",
		"req": {"action": "cms_page.create", "count": 2, "custom": true, "custom_count": 0, "platform": "oms"},
		"want": ok("essential", 5, 2, 3),
	},
	{
		"name": "a plain page ignores the custom limit",
		"req": {"action": "cms_page.create", "count": 2, "custom": false, "custom_count": 9, "platform": "oms"},
		"want": ok("essential", 5, 2, 3),
	},
	{
		"name": "page limit is checked before the custom limit",
		"req": {"action": "cms_page.create", "count": 5, "custom": true, "custom_count": 9, "platform": "oms"},
		# starter's custom limit (5) would still refuse 9 custom pages: professional has none.
		"want": limited("essential", 5, 5, 0, cms_reason(5), "professional"),
	},
]

history_cases := [
	{"name": "no months: 0", "req": {"action": "order_history.view"}, "want": ok("essential", 6, 0, 6)},
	{"name": "within", "req": {"action": "order_history.view", "months": 6}, "want": ok("essential", 6, 6, 0)},
	{
		"name": "beyond",
		"req": {"action": "order_history.view", "months": 7},
		"want": limited("essential", 6, 7, 0, "Order history limited to 6 months on your plan. Upgrade to see more.", "professional"),
	},
	{
		"name": "beyond professional",
		"req": {"action": "order_history.view", "months": 36}, "sub": {"tier": "professional"},
		"want": limited("professional", 24, 36, 0, history_reason(24), "business"),
	},
	{
		"name": "unlimited history",
		"req": {"action": "order_history.view", "months": 120}, "sub": {"tier": "business"},
		"want": ok("business", null, 120, null),
	},
]

test_order_create if {
	fails := failures_of(order_cases)
	print(fails)
	count(fails) == 0
}

test_product_add if {
	fails := failures_of(product_cases)
	print(fails)
	count(fails) == 0
}

test_team_member_add if {
	fails := failures_of(team_cases)
	print(fails)
	count(fails) == 0
}

test_feature_use if {
	fails := failures_of(feature_cases)
	print(fails)
	count(fails) == 0
}

test_cms_page_create if {
	fails := failures_of(cms_cases)
	print(fails)
	count(fails) == 0
}

test_order_history_view if {
	fails := failures_of(history_cases)
	print(fails)
	count(fails) == 0
}

# The table helper must be able to fail: a wrong expectation is reported.
test_failures_of_reports_a_mismatch if {
	count(failures_of([{"name": "wrong", "want": {"allow": false}}])) == 1
}
