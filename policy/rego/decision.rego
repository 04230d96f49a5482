# The tollgate entitlement decision: every business rule (README.md, Decisions) lives in this package.
# Go builds `input` from facts only (see policy/README.md) and puts the tier catalog in
# data.catalog; data.tollgate.decision is the answer the decision API returns.
#
# Performance note: this policy is evaluated per request, and every rule reference is a
# separate evaluation step in OPA. So the checks are one `else` chain (an evaluation touches
# only the rules on its own path) that opens with one-body fast paths for the commonest answers,
# the hot paths read input.* directly, and upgrade_to (which looks at other tiers) is computed
# only on a denial. See policy/README.md, Performance.
package tollgate

# Every reason a decision gives, by what it is about; limit reasons are formats of the limit.
reasons := {
	"unknown_vendor": "Unknown vendor",
	"unknown_action": "Unknown action",
	"inactive": "Subscription is not active",
	"tier_missing": "Subscription plan is not available",
	"feature_missing": "Feature not available on your plan",
	"orders": "Monthly order limit reached (%d orders). Upgrade to continue.",
	"products": "Product limit reached (%d products). Upgrade to add more.",
	"team_members": "Team member limit reached (%d members). Upgrade to add more.",
	"cms_pages": "CMS page limit reached (%d pages). Upgrade to add more.",
	"cms_custom_pages": "Custom CMS page limit reached (%d pages). Upgrade to add more.",
	"order_history": "Order history limited to %d months on your plan. Upgrade to see more.",
	"stale": "Subscription status could not be verified recently. Try again later.",
}

actions := {
	"order.create",
	"product.add",
	"team_member.add",
	"feature.use",
	"cms_page.create",
	"order_history.view",
}

# Access: trial, active and past_due (the payment grace period) have it; cancelled keeps it
# until period_end (without a period_end it keeps it). Anything else (expired, or a status this
# policy does not know) has none.
open_statuses := {"trial", "active", "past_due"}

access_statuses := open_statuses | {"cancelled"}

# lapsed: the subscription's status gives no access now.
lapsed if not input.vendor.subscription.status in access_statuses

lapsed if {
	input.vendor.subscription.status == "cancelled"
	is_number(input.vendor.subscription.period_end)
	input.vendor.subscription.period_end <= input.now
}

# Order of checks: vendor, action, status, tier, then the action's own rule.
#
# The chain opens with fast paths: the commonest answers (order.create with and without a
# quantity, feature.use, product.add, on a subscription's own tier
# with an open status) as one body each, which state every check positively, so a body that
# holds gives the answer the full chain below would (no earlier refusal applies to it). Their
# first expressions compare input.request.action to a constant, which OPA's rule index uses: a
# request evaluates only its own action's fast paths. Everything else (other denials, refusals,
# cancelled subscriptions, a request platform, custom limits) falls through to the full chain.
decision := {
	"allow": true,
	"code": "ok",
	"reason": "",
	"limit": limit,
	"used": used,
	"remaining": limit - used,
	"tier": sub.tier,
	"status": sub.status,
	"upgrade_to": null,
} if {
	# order.create, one order, the tier's own (finite) order limit.
	input.request.action == "order.create"
	input.request.platform == ""
	input.request.quantity == null
	sub := input.vendor.subscription
	sub.custom_orders_limit == null
	open_statuses[sub.status]
	limit := data.catalog.tiers_by_platform[sub.platform][sub.tier].orders_per_month
	is_number(limit)
	used := input.vendor.usage.orders
	used + 1 <= limit
} else := {
	"allow": true,
	"code": "ok",
	"reason": "",
	"limit": limit,
	"used": used,
	"remaining": limit - used,
	"tier": sub.tier,
	"status": sub.status,
	"upgrade_to": null,
} if {
	# order.create, a given quantity of orders, the tier's own (finite) order limit.
	input.request.action == "order.create"
	input.request.platform == ""
	quantity := input.request.quantity
	is_number(quantity)
	sub := input.vendor.subscription
	sub.custom_orders_limit == null
	open_statuses[sub.status]
	limit := data.catalog.tiers_by_platform[sub.platform][sub.tier].orders_per_month
	is_number(limit)
	used := input.vendor.usage.orders
	used + quantity <= limit
} else := {
	"allow": true,
	"code": "ok",
	"reason": "",
	"limit": null,
	"used": used,
	"remaining": null,
	"tier": sub.tier,
	"status": sub.status,
	"upgrade_to": null,
} if {
	# order.create on a tier without an order limit.
	input.request.action == "order.create"
	input.request.platform == ""
	sub := input.vendor.subscription
	sub.custom_orders_limit == null
	open_statuses[sub.status]
	data.catalog.tiers_by_platform[sub.platform][sub.tier].orders_per_month == null
	used := input.vendor.usage.orders
	is_number(used)
} else := {
	"allow": true,
	"code": "ok",
	"reason": "",
	"limit": null,
	"used": 0,
	"remaining": null,
	"tier": sub.tier,
	"status": sub.status,
	"upgrade_to": null,
} if {
	# feature.use of a feature the tier has.
	input.request.action == "feature.use"
	input.request.platform == ""
	sub := input.vendor.subscription
	open_statuses[sub.status]
	input.request.feature in data.catalog.tiers_by_platform[sub.platform][sub.tier].features
} else := {
	"allow": false,
	"code": "feature_missing",
	"reason": reasons.feature_missing,
	"limit": null,
	"used": 0,
	"remaining": null,
	"tier": sub.tier,
	"status": sub.status,
	"upgrade_to": upgrade_to,
} if {
	# feature.use of a feature the tier lacks.
	input.request.action == "feature.use"
	input.request.platform == ""
	sub := input.vendor.subscription
	open_statuses[sub.status]
	features := data.catalog.tiers_by_platform[sub.platform][sub.tier].features
	not input.request.feature in features
} else := {
	"allow": true,
	"code": "ok",
	"reason": "",
	"limit": limit,
	"used": used,
	"remaining": limit - used,
	"tier": sub.tier,
	"status": sub.status,
	"upgrade_to": null,
} if {
	# product.add under the tier's own (finite) product limit, the count from the request or usage.
	input.request.action == "product.add"
	input.request.platform == ""
	sub := input.vendor.subscription
	sub.custom_products_limit == null
	open_statuses[sub.status]
	limit := data.catalog.tiers_by_platform[sub.platform][sub.tier].products_limit
	is_number(limit)
	used := product_count
	used < limit
} else := {
	"allow": false,
	"code": "limit_reached",
	"reason": sprintf(reasons.orders, [limit]),
	"limit": limit,
	"used": used,
	"remaining": 0,
	"tier": sub.tier,
	"status": sub.status,
	"upgrade_to": upgrade_to,
} if {
	# order.create, one order, at or over the tier's own order limit.
	input.request.action == "order.create"
	input.request.platform == ""
	input.request.quantity == null
	sub := input.vendor.subscription
	sub.custom_orders_limit == null
	open_statuses[sub.status]
	limit := data.catalog.tiers_by_platform[sub.platform][sub.tier].orders_per_month
	is_number(limit)
	used := input.vendor.usage.orders
	used >= limit
} else := {
	"allow": false,
	"code": "unknown_vendor",
	"reason": reasons.unknown_vendor,
	"limit": null,
	"used": 0,
	"remaining": null,
	"tier": "",
	"status": "",
	"upgrade_to": null,
} if {
	# null or absent (an OPA Data API call without input) alike.
	not is_object(input.vendor)
} else := refusal("unknown_action", reasons.unknown_action) if {
	not input.request.action in actions
} else := refusal("inactive", reasons.inactive) if {
	lapsed
} else := refusal("inactive", reasons.tier_missing) if {
	# The subscription names a tier the catalog does not have (the catalog changed under it).
	# Fail closed with its own reason, so it is not mistaken for a lapsed subscription.
	not tier
} else := order_decision if {
	input.request.action == "order.create"
} else := feature_decision if {
	input.request.action == "feature.use"
} else := limit_decision(products_limit, product_count, reasons.products) if {
	input.request.action == "product.add"
} else := limit_decision(team_limit, team_count, reasons.team_members) if {
	input.request.action == "team_member.add"
} else := cms_decision if {
	input.request.action == "cms_page.create"
} else := history_decision if {
	input.request.action == "order_history.view"
}

refusal(code, reason) := {
	"allow": false,
	"code": code,
	"reason": reason,
	"limit": null,
	"used": 0,
	"remaining": null,
	"tier": input.vendor.subscription.tier,
	"status": input.vendor.subscription.status,
	"upgrade_to": null,
}

# The platform the request is about: the request's, else the subscription's, else none.
platform := p if {
	p := input.request.platform
	is_string(p)
	p != ""
} else := p if {
	p := input.vendor.subscription.platform
	is_string(p)
} else := ""

# The subscription's tier: (platform, code) first, then the global tier of that code; the
# platform is the request's, else the subscription's (as `platform` above, spelled out here so
# the hot path does not evaluate a second rule). data.catalog.tiers_by_platform indexes
# data.catalog.tiers by platform ("" = global) and code: two key reads instead of a scan.
tier := t if {
	p := input.request.platform
	p != ""
	t := data.catalog.tiers_by_platform[p][input.vendor.subscription.tier]
} else := t if {
	object.get(input.request, "platform", "") == ""
	t := data.catalog.tiers_by_platform[input.vendor.subscription.platform][input.vendor.subscription.tier]
} else := data.catalog.tiers_by_platform[""][input.vendor.subscription.tier]

allowed(limit, used) := {
	"allow": true,
	"code": "ok",
	"reason": "",
	"limit": limit,
	"used": used,
	"remaining": remaining(limit, used),
	"tier": input.vendor.subscription.tier,
	"status": input.vendor.subscription.status,
	"upgrade_to": null,
}

# A limit denial names the limit in the reason and the cheapest tier that would allow it.
limit_denied(limit, used, reason_format) := {
	"allow": false,
	"code": "limit_reached",
	"reason": sprintf(reason_format, [limit]),
	"limit": limit,
	"used": used,
	"remaining": remaining(limit, used),
	"tier": input.vendor.subscription.tier,
	"status": input.vendor.subscription.status,
	"upgrade_to": upgrade_to,
}

# What is left under a limit, never below 0; null (unlimited) when the limit is.
remaining(limit, used) := null if {
	limit == null
} else := limit - used if {
	limit > used
} else := 0
