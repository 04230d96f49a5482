package policy

import (
	"time"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/tollgate-pdp/tollgate"
	"github.com/tollgate-pdp/tollgate/policy/internal/planeval"
)

// Key terms of the input document, built once: the input is assembled as an ast.Object on every
// uncached decision, and re-creating (and re-hashing) these strings per call would be waste.
// They are never modified.
var (
	kRequest           = ast.StringTerm("request")
	kVendor            = ast.StringTerm("vendor")
	kNow               = ast.StringTerm("now")
	kVendorID          = ast.StringTerm("vendor_id")
	kAction            = ast.StringTerm("action")
	kPlatform          = ast.StringTerm("platform")
	kCount             = ast.StringTerm("count")
	kCustomCount       = ast.StringTerm("custom_count")
	kQuantity          = ast.StringTerm("quantity")
	kFeature           = ast.StringTerm("feature")
	kMonths            = ast.StringTerm("months")
	kCustom            = ast.StringTerm("custom")
	kSubscription      = ast.StringTerm("subscription")
	kUsage             = ast.StringTerm("usage")
	kRevision          = ast.StringTerm("revision")
	kTier              = ast.StringTerm("tier")
	kStatus            = ast.StringTerm("status")
	kPeriodStart       = ast.StringTerm("period_start")
	kPeriodEnd         = ast.StringTerm("period_end")
	kTrialEndsAt       = ast.StringTerm("trial_ends_at")
	kScheduledTier     = ast.StringTerm("scheduled_tier_change")
	kScheduledChangeAt = ast.StringTerm("scheduled_change_at")
	kIsAnnual          = ast.StringTerm("is_annual")
	kCustomOrders      = ast.StringTerm("custom_orders_limit")
	kCustomProducts    = ast.StringTerm("custom_products_limit")
	kCustomTeam        = ast.StringTerm("custom_team_limit")
	kAddOns            = ast.StringTerm("add_ons")
	kCode              = ast.StringTerm("code")
	kOrders            = ast.StringTerm("orders")
	kPeriod            = ast.StringTerm("period")
	kProducts          = ast.StringTerm("products")
	kTeamMembers       = ast.StringTerm("team_members")
	kCMSPages          = ast.StringTerm("cms_pages")
	kCMSCustomPages    = ast.StringTerm("cms_custom_pages")
	kStale             = ast.StringTerm("stale")
	kStaleMode         = ast.StringTerm("stale_mode")
	kFeaturesUsed      = ast.StringTerm("features_used")

	nullTerm        = ast.NullTerm()
	emptyStringTerm = ast.StringTerm("")
	emptyArrayTerm  = ast.ArrayTerm()
)

// buildInput builds the input document (see README.md) straight as an AST value: converting a Go
// map or a JSON text would cost several times the evaluation itself. It is planInput's
// document as ast.Objects, for OPA's evaluator and explanations.
// terms, when not nil, supplies the shared terms (input.vendor objects built earlier for the
// same snapshot, the request's words).
func buildInput(f *tollgate.Facts, now time.Time, period string, terms *inputTerms) ast.Object {
	return planeval.Materialize(planInput(f, now, period, terms).term()).Value.(ast.Object)
}

func str(s string) *ast.Term { return ast.InternedTerm(s) }

func optInt(p *int64) *ast.Term {
	if p == nil {
		return nullTerm
	}
	return ast.InternedTerm(*p)
}

// optTime carries a timestamp as Unix seconds (the policy compares numbers), null when unset.
func optTime(t *time.Time) *ast.Term {
	if t == nil {
		return nullTerm
	}
	return ast.InternedTerm(t.Unix())
}
