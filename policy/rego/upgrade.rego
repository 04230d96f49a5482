# upgrade_to: the tier to suggest when a limit or feature denies. Only evaluated on a denial.
package tollgate

# The first tier of upgrade_order on the request's platform that is not the current tier and
# whose own limits and features would allow the same request. null when none would.
upgrade_to := allowing[0] if {
	order := upgrade_tiers
	allowing := [t.code |
		some t in object.get(order, platform, order[""])
		t.code != input.vendor.subscription.tier
		tier_allows(t)
	]
} else := null

# upgrade_order, as the engine serves it: it depends on the catalog only, so the engine
# evaluates it once per policy and catalog and puts the answer at data.catalog.upgrade_order
# (policy/README.md, Data document). A catalog document without it (one written by hand for
# `opa eval`) is answered by the rule itself.
upgrade_tiers := data.catalog.upgrade_order if {
	is_object(data.catalog.upgrade_order)
} else := upgrade_order

# upgrade_order: for "" and each platform of the catalog, the tiers an upgrade may be offered
# there, cheapest first: active, public, the platform's own tiers plus the global tiers none of
# them shadows by code; by monthly price (a tier without one last), then display_order, then
# code. A platform without tiers of its own sees the global list, upgrade_order[""].
upgrade_order := {p: [data.catalog.tiers[e[3]] |
	some e in sort([[price_rank(t), t.display_order, t.code, i] |
		some i, t in data.catalog.tiers
		t.is_active == true
		t.is_public == true
		visible(t, p)
	])
] |
	some p in catalog_platforms
}

catalog_platforms := {object.get(t, "platform", "") | some t in data.catalog.tiers} | {""}

price_rank(t) := [0, p] if {
	p := t.price_monthly_cents
	is_number(p)
} else := [1, 0]

# Visible on platform p: its own tiers, plus global tiers that no tier of p shadows by code.
visible(t, p) if {
	p != ""
	object.get(t, "platform", "") == p
}

visible(t, p) if {
	global(t)
	not shadowed(t.code, p)
}

global(t) if object.get(t, "platform", "") == ""

shadowed(code, p) if {
	p != ""
	some s in data.catalog.tiers
	s.code == code
	object.get(s, "platform", "") == p
}
