package policy

import (
	"time"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/tollgate-pdp/tollgate"
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

	nullTerm       = ast.NullTerm()
	emptyArrayTerm = ast.ArrayTerm()
)

// buildInput builds the input document (see README.md) straight as an AST value: converting a Go
// map or a JSON text would cost several times the evaluation itself.
// vendors, when not nil, supplies input.vendor objects built earlier for the same snapshot.
func buildInput(f *tollgate.Facts, now time.Time, period string, vendors *vendorInputs) ast.Object {
	r := f.Request
	req := ast.NewObject(
		[2]*ast.Term{kVendorID, str(string(r.VendorID))},
		[2]*ast.Term{kAction, str(r.Action)},
		[2]*ast.Term{kPlatform, str(r.Platform)},
		[2]*ast.Term{kCount, optInt(r.Count)},
		[2]*ast.Term{kCustomCount, optInt(r.CustomCount)},
		[2]*ast.Term{kQuantity, optInt(r.Quantity)},
		[2]*ast.Term{kFeature, str(r.Feature)},
		[2]*ast.Term{kMonths, optInt(r.Months)},
		[2]*ast.Term{kCustom, ast.InternedTerm(r.Custom)},
	)
	vendor := nullTerm
	if v := f.Vendor; v != nil {
		if vendors != nil {
			vendor = vendors.get(v, period)
		} else {
			vendor = ast.NewTerm(vendorObject(v, period))
		}
	}
	in := ast.NewObject(
		[2]*ast.Term{kRequest, ast.NewTerm(req)},
		[2]*ast.Term{kVendor, vendor},
		[2]*ast.Term{kNow, ast.InternedTerm(now.Unix())},
	)
	if f.Stale {
		// Only stale inputs carry these keys: fresh decisions build the same document as ever.
		in.Insert(kStale, ast.InternedTerm(true))
		in.Insert(kStaleMode, str(f.StaleMode))
	}
	return in
}

func vendorObject(v *tollgate.VendorState, period string) ast.Object {
	s := &v.Subscription
	addOns := emptyArrayTerm
	if len(s.AddOns) > 0 {
		terms := make([]*ast.Term, len(s.AddOns))
		for i := range s.AddOns {
			a := &s.AddOns[i]
			terms[i] = ast.ObjectTerm(
				[2]*ast.Term{kCode, str(a.Code)},
				[2]*ast.Term{kQuantity, ast.InternedTerm(a.Quantity)},
				[2]*ast.Term{kStatus, str(a.Status)},
			)
		}
		addOns = ast.ArrayTerm(terms...)
	}
	sub := ast.NewObject(
		[2]*ast.Term{kTier, str(s.Tier)},
		[2]*ast.Term{kPlatform, str(s.Platform)},
		[2]*ast.Term{kStatus, str(string(s.Status))},
		[2]*ast.Term{kPeriodStart, optTime(s.PeriodStart)},
		[2]*ast.Term{kPeriodEnd, optTime(s.PeriodEnd)},
		[2]*ast.Term{kTrialEndsAt, optTime(s.TrialEndsAt)},
		[2]*ast.Term{kScheduledTier, str(s.ScheduledTierChange)},
		[2]*ast.Term{kScheduledChangeAt, optTime(s.ScheduledChangeAt)},
		[2]*ast.Term{kIsAnnual, ast.InternedTerm(s.IsAnnual)},
		[2]*ast.Term{kCustomOrders, optInt(s.CustomOrdersLimit)},
		[2]*ast.Term{kCustomProducts, optInt(s.CustomProductsLimit)},
		[2]*ast.Term{kCustomTeam, optInt(s.CustomTeamLimit)},
		[2]*ast.Term{kAddOns, addOns},
	)
	u := &v.Usage
	usage := ast.NewObject(
		[2]*ast.Term{kPeriod, str(period)},
		[2]*ast.Term{kOrders, ast.InternedTerm(u.OrdersIn(period))},
		[2]*ast.Term{kProducts, optInt(u.Products)},
		[2]*ast.Term{kTeamMembers, optInt(u.TeamMembers)},
		[2]*ast.Term{kCMSPages, optInt(u.CMSPages)},
		[2]*ast.Term{kCMSCustomPages, optInt(u.CMSCustomPages)},
	)
	return ast.NewObject(
		[2]*ast.Term{kSubscription, ast.NewTerm(sub)},
		[2]*ast.Term{kUsage, ast.NewTerm(usage)},
		[2]*ast.Term{kRevision, ast.InternedTerm(v.Revision)},
	)
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
