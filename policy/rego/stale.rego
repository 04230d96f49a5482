# What a stale sidecar answers. When no Stripe state was applied for longer than --stale-after,
# Go sets input.stale = true and input.stale_mode to the action's --when-stale mode, and asks
# data.tollgate.stale_decision instead of data.tollgate.decision (so fresh decisions pay nothing
# for this). Failing open or closed is an operator's choice, but what it means is policy:
#
#   allow:    allowed (code ok), except an unknown action, which is a caller's bug
#   deny:     a decision that denies anyway keeps its own reason; otherwise code "stale"
#   evaluate: the usual decision
#
# Every answer names the mode in stale_mode.
package tollgate

stale_decision := object.union(decision, {
	"allow": true,
	"code": "ok",
	"reason": "",
	"upgrade_to": null,
	"stale_mode": "allow",
}) if {
	input.stale_mode == "allow"
	decision.code != "unknown_action"
} else := object.union(decision, {"stale_mode": "deny"}) if {
	input.stale_mode == "deny"
	decision.allow == false
} else := {
	"allow": false,
	"code": "stale",
	"reason": reasons.stale,
	"limit": null,
	"used": 0,
	"remaining": null,
	"tier": object.get(input, ["vendor", "subscription", "tier"], ""),
	"status": object.get(input, ["vendor", "subscription", "status"], ""),
	"upgrade_to": null,
	"stale_mode": "deny",
} if {
	input.stale_mode == "deny"
} else := object.union(decision, {"stale_mode": "evaluate"})
