# Capacity and plan-change questions about one vendor, asked off the decision path: the store
# asks capacity_facts when a vendor changes (to keep the capacity figures), and the plan-change
# dry run asks plan_findings under a candidate catalog. Both reuse the decision's rules, so a
# limit or an access rule is written once.
package tollgate

# Effective limits: the custom override when set, else the tier's; null = unlimited (also when
# the tier is missing: such a subscription has no access, so its limits count nowhere).
effective_orders_limit := n if {
	n := orders_limit
} else := null

effective_products_limit := n if {
	n := products_limit
} else := null

effective_team_limit := n if {
	n := team_limit
} else := null

effective_limits := {
	"orders": effective_orders_limit,
	"products": effective_products_limit,
	"team_members": effective_team_limit,
}

# A subscription grants access when the decision does not refuse it as inactive (status,
# period end, tier missing): the same rule every decision applies.
grants_access if {
	is_object(input.vendor)
	decision.code != "inactive"
}

capacity_facts := object.union(effective_limits, {"access": true, "near_orders": near_orders}) if {
	grants_access
} else := object.union(effective_limits, {"access": false, "near_orders": []})

# Near the order limit (the capacity figures' near_order_limit, at_least_80 and at_least_100):
# a vendor with access is near its order limit from 80% of it and at it from 100%.
near_order_limit_percents := [80, 100]

# near_orders: the order counts from which the vendor is near (80%) and at (100%) its effective
# order limit; none when it has no limit.
near_orders := [ceil((effective_orders_limit * pct) / 100) | some pct in near_order_limit_percents] if {
	is_number(effective_orders_limit)
} else := []

# plan_findings: why this vendor would suffer under the catalog in data.catalog (the dry run
# puts a candidate there). Only subscriptions with access count; "over" means strictly above
# the limit (a vendor exactly at it keeps what it has, it just cannot add more).
plan_findings contains "orders_limit" if {
	grants_access
	is_number(orders_limit)
	orders_used > orders_limit
}

plan_findings contains "products_limit" if {
	grants_access
	is_number(products_limit)
	product_count > products_limit
}

plan_findings contains "team_limit" if {
	grants_access
	is_number(team_limit)
	team_count > team_limit
}

# A feature the vendor used (allowed feature.use checks, input.vendor.usage.features_used) that
# its tier would no longer include.
plan_findings contains sprintf("feature:%s", [f]) if {
	grants_access
	some f in object.get(input.vendor.usage, "features_used", [])
	not f in tier.features
}

# The vendor's tier would disappear from the catalog: the decision's own refusal of a
# subscription whose status has access (not lapsed) but whose tier is missing.
plan_findings contains "tier_missing" if {
	is_object(input.vendor)
	not lapsed
	not tier
}
