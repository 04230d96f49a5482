# Per-action rules. Each rule is written once, over a limit: the current tier's effective limit
# decides (decision.rego picks the action's rule), and tier_allows asks the same question of
# other tiers' own limits for upgrade_to.
package tollgate

# --- facts, with their defaults ---

# Orders counted in the current billing period.
orders_used := n if {
	n := input.vendor.usage.orders
	is_number(n)
} else := 0

quantity := n if {
	n := input.request.quantity
	is_number(n)
} else := 1

product_count := n if {
	n := input.request.count
	is_number(n)
} else := n if {
	n := input.vendor.usage.products
	is_number(n)
} else := 0

team_count := n if {
	n := input.request.count
	is_number(n)
} else := n if {
	n := input.vendor.usage.team_members
	is_number(n)
} else := 0

cms_count := n if {
	n := input.request.count
	is_number(n)
} else := n if {
	n := input.vendor.usage.cms_pages
	is_number(n)
} else := 0

cms_custom_count := n if {
	n := input.request.custom_count
	is_number(n)
} else := n if {
	n := input.vendor.usage.cms_custom_pages
	is_number(n)
} else := 0

months := n if {
	n := input.request.months
	is_number(n)
} else := 0

# --- effective limits: the vendor's custom override when set, else the tier's; null = unlimited ---

orders_limit := n if {
	n := input.vendor.subscription.custom_orders_limit
	is_number(n)
} else := tier.orders_per_month

products_limit := n if {
	n := input.vendor.subscription.custom_products_limit
	is_number(n)
} else := tier.products_limit

team_limit := n if {
	n := input.vendor.subscription.custom_team_limit
	is_number(n)
} else := tier.team_members

# --- comparisons; a null limit is unlimited ---

# below: one more may be added (count < limit).
below(_, null)

below(n, limit) if n < limit

# fits: the total stays within the limit (total <= limit).
fits(_, null)

fits(n, limit) if n <= limit

# --- decisions ---

# order.create is the hot path: the allowed answers are spelled out rather than built by a
# function call, which costs a separate evaluation frame.
order_decision := {
	"allow": true,
	"code": "ok",
	"reason": "",
	"limit": null,
	"used": orders_used,
	"remaining": null,
	"tier": input.vendor.subscription.tier,
	"status": input.vendor.subscription.status,
	"upgrade_to": null,
} if {
	orders_limit == null
} else := {
	"allow": true,
	"code": "ok",
	"reason": "",
	"limit": orders_limit,
	"used": orders_used,
	"remaining": orders_limit - orders_used,
	"tier": input.vendor.subscription.tier,
	"status": input.vendor.subscription.status,
	"upgrade_to": null,
} if {
	# used + quantity <= limit (quantity >= 0) also means remaining = limit - used >= 0.
	orders_used + quantity <= orders_limit
} else := limit_denied(orders_limit, orders_used, reasons.orders)

limit_decision(limit, used, reason_format) := limit_denied(limit, used, reason_format) if {
	not below(used, limit)
} else := allowed(limit, used)

feature_decision := {
	"allow": false,
	"code": "feature_missing",
	"reason": reasons.feature_missing,
	"limit": null,
	"used": 0,
	"remaining": null,
	"tier": input.vendor.subscription.tier,
	"status": input.vendor.subscription.status,
	"upgrade_to": upgrade_to,
} if {
	not input.request.feature in tier.features
} else := {
	"allow": true,
	"code": "ok",
	"reason": "",
	"limit": null,
	"used": 0,
	"remaining": null,
	"tier": input.vendor.subscription.tier,
	"status": input.vendor.subscription.status,
	"upgrade_to": null,
}

has_feature(t) if input.request.feature in t.features

cms_decision := limit_denied(tier.cms_pages_limit, cms_count, reasons.cms_pages) if {
	not below(cms_count, tier.cms_pages_limit)
} else := limit_denied(tier.cms_custom_pages_limit, cms_custom_count, reasons.cms_custom_pages) if {
	not custom_page_ok(tier)
} else := allowed(tier.cms_pages_limit, cms_count)

# A page that is not custom never counts against the custom page limit.
custom_page_ok(_) if input.request.custom != true

custom_page_ok(t) if below(cms_custom_count, t.cms_custom_pages_limit)

history_decision := limit_denied(tier.order_history_months, months, reasons.order_history) if {
	not fits(months, tier.order_history_months)
} else := allowed(tier.order_history_months, months)

# --- the same rules over a tier's own limits (no custom overrides), for upgrade_to ---

# One else chain, so a call evaluates only the bodies up to its own action's.
tier_allows(t) if {
	input.request.action == "order.create"
	fits(orders_used + quantity, t.orders_per_month)
} else if {
	input.request.action == "feature.use"
	has_feature(t)
} else if {
	input.request.action == "product.add"
	below(product_count, t.products_limit)
} else if {
	input.request.action == "team_member.add"
	below(team_count, t.team_members)
} else if {
	input.request.action == "cms_page.create"
	below(cms_count, t.cms_pages_limit)
	custom_page_ok(t)
} else if {
	input.request.action == "order_history.view"
	fits(months, t.order_history_months)
}
