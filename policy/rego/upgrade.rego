# upgrade_to: the tier to suggest when a limit or feature denies. Only evaluated on a denial.
package tollgate

# The cheapest (monthly price; a tier without a price sorts last; ties by display_order, then
# code) active, public tier visible on the request's platform, other than the current one, whose
# own limits and features would allow the same request. null when none would.
#
# data.catalog.upgrade_order (policy/data.go) lists, per platform, the active public tiers
# visible there, cheapest first: the first of them that is not the current tier and whose own
# limits allow the request is the answer. A catalog document without that list (one written by
# hand for `opa eval`) gets the same answer from the tiers themselves.
upgrade_to := allowing[0] if {
	order := data.catalog.upgrade_order
	allowing := [t.code |
		some t in object.get(order, platform, order[""])
		t.code != input.vendor.subscription.tier
		tier_allows(t)
	]
} else := null if {
	is_object(data.catalog.upgrade_order)
} else := best if {
	candidates := [[price_rank(t), t.display_order, t.code] |
		some t in data.catalog.tiers
		t.code != input.vendor.subscription.tier
		t.is_active == true
		t.is_public == true
		visible(t)
		tier_allows(t)
	]
	count(candidates) > 0
	best := sort(candidates)[0][2]
} else := null

price_rank(t) := [0, p] if {
	p := t.price_monthly_cents
	is_number(p)
} else := [1, 0]

# Visible on the platform: its own platform tiers, plus global tiers that no platform tier of
# the same code shadows.
visible(t) if {
	platform != ""
	t.platform == platform
}

visible(t) if {
	global(t)
	not shadowed(t.code)
}

shadowed(code) if {
	platform != ""
	some s in data.catalog.tiers
	s.code == code
	s.platform == platform
}
