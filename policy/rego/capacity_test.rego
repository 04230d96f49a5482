# Tests of capacity_facts, plan_findings and stale_decision.
package tollgate_test

facts_of(c) := f if {
	f := data.tollgate.capacity_facts with input as input_of(c) with data.catalog as catalog
}

findings_of(c) := f if {
	cat := object.get(c, "catalog", catalog)
	f := data.tollgate.plan_findings with input as input_of(c) with data.catalog as cat
}

test_capacity_facts_tier_limits if {
	facts_of({}) == {"orders": 100, "products": 200, "team_members": 1, "access": true, "near_orders": [80, 100]}
}

test_capacity_facts_near_orders if {
	# 80% and 100% of the effective order limit, rounded up to whole orders.
	facts_of({"sub": {"custom_orders_limit": 7}}).near_orders == [6, 7]
	facts_of({"sub": {"custom_orders_limit": 0}}).near_orders == [0, 0]
	facts_of({"sub": {"tier": "enterprise"}}).near_orders == []
	facts_of({"sub": {"status": "expired"}}).near_orders == []
}

test_capacity_facts_overrides_win if {
	facts_of({"sub": {"custom_orders_limit": 750, "custom_team_limit": 5}}) == {"orders": 750, "products": 200, "team_members": 5, "access": true, "near_orders": [600, 750]}
}

test_capacity_facts_unlimited_is_null if {
	facts_of({"sub": {"tier": "enterprise"}}) == {"orders": null, "products": null, "team_members": null, "access": true, "near_orders": []}
}

test_capacity_facts_no_access if {
	facts_of({"sub": {"status": "expired"}}).access == false
	facts_of({"sub": {"status": "cancelled", "period_end": now - 1}}).access == false
	facts_of({"sub": {"status": "cancelled"}}).access == true
	facts_of({"sub": {"status": "past_due"}}).access == true
	facts_of({"sub": {"tier": "platinum"}}) == {"orders": null, "products": null, "team_members": null, "access": false, "near_orders": []}
}

halved := [object.union(t, {"orders_per_month": 50}) | some t in tiers; t.code == "essential"]

halved_catalog := catalog_of(array.concat(halved, [t | some t in tiers; t.code != "essential"]))

test_plan_findings if {
	findings_of({"usage": {"orders": 60}, "catalog": halved_catalog}) == {"orders_limit"}
	findings_of({"usage": {"orders": 50}, "catalog": halved_catalog}) == set()
	findings_of({"usage": {"orders": 60}}) == set()
	findings_of({"usage": {"orders": 60}, "sub": {"status": "expired"}, "catalog": halved_catalog}) == set()
	findings_of({"usage": {"products": 201, "team_members": 2}}) == {"products_limit", "team_limit"}
	findings_of({"usage": {"features_used": ["api_access", "invoice_lu"]}}) == {"feature:api_access"}
	findings_of({"sub": {"tier": "platinum"}}) == {"tier_missing"}
	findings_of({"sub": {"tier": "platinum", "status": "expired"}}) == set()
}

stale_of(c, mode) := d if {
	doc := object.union(input_of(c), {"stale": true, "stale_mode": mode})
	d := data.tollgate.stale_decision with input as doc with data.catalog as catalog
}

test_stale_modes if {
	at_limit := {"usage": {"orders": 100}}
	stale_of(at_limit, "evaluate").code == "limit_reached"
	stale_of(at_limit, "evaluate").stale_mode == "evaluate"
	stale_of(at_limit, "allow").allow == true
	stale_of(at_limit, "allow").code == "ok"
	stale_of(at_limit, "allow").stale_mode == "allow"
	stale_of(at_limit, "deny").code == "limit_reached"
	stale_of({}, "deny").code == "stale"
	stale_of({}, "deny").reason == "Subscription status could not be verified recently. Try again later."
	stale_of({}, "deny").allow == false
	stale_of({}, "deny").stale_mode == "deny"
	stale_of({"req": {"action": "made.up"}}, "allow").code == "unknown_action"
}
