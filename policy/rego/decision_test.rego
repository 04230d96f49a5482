# Table tests of the checks every action shares: vendor, action, status, tier lookup.
package tollgate_test

import data.tollgate

refused(code, reason, tier, status) := {
	"allow": false, "code": code, "reason": reason, "limit": null, "used": 0,
	"remaining": null, "tier": tier, "status": status, "upgrade_to": null,
}

common_cases := [
	{
		"name": "unknown vendor",
		"input": {"request": base_request, "vendor": null, "now": now},
		"want": refused("unknown_vendor", "Unknown vendor", "", ""),
	},
	{
		"name": "unknown vendor wins over unknown action",
		"input": {"request": object.union(base_request, {"action": "invoice.send"}), "vendor": null, "now": now},
		"want": refused("unknown_vendor", "Unknown vendor", "", ""),
	},
	{
		"name": "unknown action",
		"req": {"action": "invoice.send"},
		"want": refused("unknown_action", "Unknown action", "essential", "active"),
	},
	{
		"name": "unknown action wins over inactive status",
		"req": {"action": "invoice.send"}, "sub": {"status": "expired"},
		"want": refused("unknown_action", "Unknown action", "essential", "expired"),
	},
	{
		"name": "expired is inactive",
		"sub": {"status": "expired"},
		"want": refused("inactive", "Subscription is not active", "essential", "expired"),
	},
	{
		"name": "a status the policy does not know is inactive",
		"sub": {"status": "paused"},
		"want": refused("inactive", "Subscription is not active", "essential", "paused"),
	},
	{
		"name": "cancelled before period end keeps access",
		"sub": {"status": "cancelled"},
		"want": {"allow": true, "code": "ok", "status": "cancelled"},
	},
	{
		"name": "cancelled at period end is inactive",
		"sub": {"status": "cancelled", "period_end": now},
		"want": refused("inactive", "Subscription is not active", "essential", "cancelled"),
	},
	{
		"name": "cancelled after period end is inactive",
		"sub": {"status": "cancelled", "period_end": now - 1},
		"want": refused("inactive", "Subscription is not active", "essential", "cancelled"),
	},
	{
		"name": "cancelled without a period end keeps access",
		"sub": {"status": "cancelled", "period_end": null},
		"want": {"allow": true, "code": "ok"},
	},
	{
		"name": "trial has access",
		"sub": {"status": "trial"},
		"want": {"allow": true, "code": "ok", "status": "trial"},
	},
	{
		"name": "past_due has access (grace period)",
		"sub": {"status": "past_due", "period_end": now - 100},
		"want": {"allow": true, "code": "ok", "status": "past_due"},
	},
	{
		"name": "tier missing from the catalog",
		"sub": {"tier": "gold"},
		"want": refused("inactive", "Subscription plan is not available", "gold", "active"),
	},
	{
		"name": "inactive wins over missing tier",
		"sub": {"tier": "gold", "status": "expired"},
		"want": refused("inactive", "Subscription is not active", "gold", "expired"),
	},
	{
		"name": "request platform selects the platform tier",
		"req": {"platform": "oms"}, "usage": {"orders": 50},
		"want": limited("essential", 50, 50, 0, "Monthly order limit reached (50 orders). Upgrade to continue.", "starter"),
	},
	{
		"name": "subscription platform selects the platform tier",
		"sub": {"platform": "oms"}, "usage": {"orders": 10},
		"want": ok("essential", 50, 10, 40),
	},
	{
		"name": "request platform wins over the subscription's",
		"req": {"platform": "pos"}, "sub": {"platform": "oms"}, "usage": {"orders": 60},
		"want": ok("essential", 100, 60, 40),
	},
	{
		"name": "platform without its own tier falls back to the global tier",
		"req": {"platform": "pos"}, "usage": {"orders": 60},
		"want": ok("essential", 100, 60, 40),
	},
	{
		"name": "platform-only tier",
		"sub": {"tier": "starter", "platform": "oms"}, "usage": {"orders": 299},
		"want": ok("starter", 300, 299, 1),
	},
	{
		"name": "platform-only tier is not found without the platform",
		"sub": {"tier": "starter"},
		"want": refused("inactive", "Subscription plan is not available", "starter", "active"),
	},
]

test_common_cases if {
	fails := failures_of(common_cases)
	print(fails)
	count(fails) == 0
}

test_decision_always_has_every_field if {
	every c in common_cases {
		d := decide(c)
		object.keys(d) == {"allow", "code", "reason", "limit", "used", "remaining", "tier", "status", "upgrade_to"}
	}
}

test_missing_optional_fields_take_defaults if {
	# An input written by hand (opa eval) may leave optional fields out entirely.
	d := tollgate.decision with input as {
		"request": {"action": "order.create"},
		"vendor": {"subscription": {"tier": "essential", "status": "active"}, "usage": {}},
		"now": now,
	}
		with data.catalog as catalog
	d == ok("essential", 100, 0, 100)
}
