# The tollgate entitlement decision: every business rule of DESIGN.md §2 lives in this package.
# Go builds `input` from facts only (see policy/README.md) and puts the tier catalog in
# data.catalog; data.tollgate.decision is the answer the decision API returns.
#
# The rules are written as `else` chains so that one evaluation touches only the rules on its
# own path: the common allowed check never looks at other tiers (upgrade_to is computed only
# when a limit or feature denies).
package tollgate

# Actions the default policy answers; anything else is unknown_action.
known_actions := {
	"order.create",
	"product.add",
	"team_member.add",
	"feature.use",
	"cms_page.create",
	"order_history.view",
}

# Statuses that keep access. cancelled keeps access until its period ends (see has_access).
open_statuses := {"trial", "active", "past_due"}

req := input.request

sub := input.vendor.subscription

usage := input.vendor.usage

# Order of checks: vendor, action, status, tier, then the action's own rule.
decision := {
	"allow": false,
	"code": "unknown_vendor",
	"reason": "Unknown vendor",
	"limit": null,
	"used": 0,
	"remaining": null,
	"tier": "",
	"status": "",
	"upgrade_to": null,
} if {
	object.get(input, "vendor", null) == null
} else := refusal("unknown_action", "Unknown action") if {
	not known_actions[req.action]
} else := refusal("inactive", "Subscription is not active") if {
	not has_access
} else := refusal("inactive", "Subscription plan is not available") if {
	# The subscription names a tier the catalog no longer has (the catalog changed under it).
	# Fail closed with its own reason, so it is not mistaken for a lapsed subscription.
	not tier
} else := action_decision

refusal(code, reason) := {
	"allow": false,
	"code": code,
	"reason": reason,
	"limit": null,
	"used": 0,
	"remaining": null,
	"tier": sub.tier,
	"status": sub.status,
	"upgrade_to": null,
}

has_access if open_statuses[sub.status]

has_access if {
	sub.status == "cancelled"
	not period_over
}

period_over if {
	end := sub.period_end
	is_number(end)
	end <= input.now
}

# The platform the request is about: the request's, else the subscription's, else none.
platform := p if {
	p := req.platform
	is_string(p)
	p != ""
} else := p if {
	p := sub.platform
	is_string(p)
} else := ""

# The subscription's tier: (platform, code) first, then the global tier of that code.
tier := t if {
	platform != ""
	some t in data.catalog.tiers
	t.code == sub.tier
	t.platform == platform
} else := t if {
	some t in data.catalog.tiers
	t.code == sub.tier
	global(t)
}

global(t) if object.get(t, "platform", "") == ""

allowed(limit, used) := {
	"allow": true,
	"code": "ok",
	"reason": "",
	"limit": limit,
	"used": used,
	"remaining": remaining(limit, used),
	"tier": sub.tier,
	"status": sub.status,
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
	"tier": sub.tier,
	"status": sub.status,
	"upgrade_to": upgrade_to,
}

# null limit means unlimited, so nothing remains to count.
remaining(limit, used) := null if {
	limit == null
} else := limit - used if {
	limit > used
} else := 0
