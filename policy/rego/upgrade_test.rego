# upgrade_to: cheapest active public tier visible on the platform whose own limits allow the
# request; null price sorts last, ties by display_order.
package tollgate_test

tier_of(code, price, order, orders) := {
	"code": code, "name": code, "price_monthly_cents": price, "price_annual_cents": null,
	"orders_per_month": orders, "products_limit": null, "team_members": null,
	"order_history_months": null, "cms_pages_limit": null, "cms_custom_pages_limit": null,
	"features": [], "display_order": order, "is_active": true, "is_public": true,
}

small := tier_of("small", 1000, 1, 10)

upgrade_of(ts, c) := decide(object.union(c, {"catalog": catalog_of(array.concat([small], ts))})).upgrade_to

full := {"usage": {"orders": 10}, "sub": {"tier": "small"}}

test_cheapest_wins if {
	upgrade_of([tier_of("big", 5000, 3, 100), tier_of("mid", 2000, 2, 100)], full) == "mid"
}

test_null_price_sorts_last if {
	upgrade_of([tier_of("custom", null, 0, 100), tier_of("pricey", 90000, 9, 100)], full) == "pricey"
}

test_null_price_when_alone if {
	upgrade_of([tier_of("custom", null, 0, 100)], full) == "custom"
}

test_price_tie_by_display_order if {
	upgrade_of([tier_of("b", 2000, 5, 100), tier_of("a", 2000, 4, 100)], full) == "a"
}

test_tier_that_would_still_refuse_is_skipped if {
	upgrade_of([tier_of("tiny", 1500, 2, 11), tier_of("mid", 2000, 3, 100)], object.union(full, {"req": {"quantity": 2}})) == "mid"
}

test_own_limits_not_custom_overrides if {
	# The vendor's custom limit (5) denies; a tier is judged by its own limits, not the override.
	upgrade_of([tier_of("mid", 2000, 2, 6)], {"usage": {"orders": 5}, "sub": {"tier": "small", "custom_orders_limit": 5}}) == "mid"
}

test_inactive_and_private_tiers_are_skipped if {
	inactive := object.union(tier_of("old", 1500, 2, 100), {"is_active": false})
	private := object.union(tier_of("deal", 1600, 3, 100), {"is_public": false})
	upgrade_of([inactive, private, tier_of("mid", 2000, 4, 100)], full) == "mid"
}

test_none_would_allow if {
	upgrade_of([tier_of("also_small", 500, 2, 10)], full) == null
}

test_current_tier_code_is_never_suggested if {
	# On oms the vendor's essential is the oms one; the global essential (more orders) is
	# shadowed by it and not offered as an "upgrade" to itself.
	d := decide({"req": {"platform": "oms"}, "usage": {"orders": 50}})
	d.upgrade_to == "starter"
}

test_platform_tiers_are_invisible_elsewhere if {
	# Without a platform, the oms-only starter is not offered.
	d := decide({"usage": {"orders": 100}})
	d.upgrade_to == "professional"
}

test_platform_tier_and_global_fallback_compete_on_price if {
	# 301 orders: starter (300) cannot, so the global professional (500) is next cheapest.
	d := decide({"req": {"platform": "oms"}, "usage": {"orders": 300}})
	d.upgrade_to == "professional"
}

test_shadowed_global_tier_not_offered if {
	cheap_global := object.union(tier_of("cheap", 100, 1, 1000), {})
	oms_cheap := object.union(tier_of("cheap", 3000, 1, 20), {"platform": "oms"})
	mid := tier_of("mid", 2000, 2, 1000)
	c := {"req": {"platform": "oms"}, "usage": {"orders": 10}, "sub": {"tier": "small"}}

	# cheap (global, 1000 orders) would win, but on oms its code is the oms cheap (20 orders):
	# that one allows 11 too but costs 3000, so mid (2000) wins.
	upgrade_of([cheap_global, oms_cheap, mid], c) == "mid"

	# Without the platform the global cheap is visible.
	upgrade_of([cheap_global, oms_cheap, mid], object.union(c, {"req": {"platform": ""}})) == "cheap"
}

test_no_upgrade_on_allowed_or_refused if {
	decide({"usage": {"orders": 1}}).upgrade_to == null
	decide({"sub": {"status": "expired"}, "usage": {"orders": 100}}).upgrade_to == null
}

test_upgrade_order_per_platform if {
	order := data.tollgate.upgrade_order with data.catalog as {"tiers": tiers}
	codes := {p: [t.name | some t in ts] | some p, ts in order}

	# enterprise is not public; on oms the oms essential shadows the global one.
	codes == {
		"": ["Essential", "Professional", "Business"],
		"oms": ["OMS Essential", "OMS Starter", "Professional", "Business"],
	}
}
