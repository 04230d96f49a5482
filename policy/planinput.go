package policy

import (
	"time"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/tollgate-pdp/tollgate"
	"github.com/tollgate-pdp/tollgate/policy/internal/planeval"
)

var (
	requestKeys = []*ast.Term{kVendorID, kAction, kPlatform, kCount, kCustomCount, kQuantity, kFeature, kMonths, kCustom}
	inputKeys   = []*ast.Term{kRequest, kVendor, kNow}
	staleKeys   = []*ast.Term{kRequest, kVendor, kNow, kStale, kStaleMode}
)

// planInput builds the input document of buildInput (the same keys and values) for the plan
// executor; doc.term() is input. Give it back with terms.release once the evaluation's
// answer has been converted.
func planInput(f *tollgate.Facts, now time.Time, period string, terms *inputTerms) *inputDoc {
	// One piece holds the input document's terms, fields and values: it is built on every
	// uncached decision, from a pool.
	doc := terms.doc()
	r := f.Request
	vendor, id := nullTerm, (*ast.Term)(nil)
	if v := f.Vendor; v != nil {
		if terms != nil {
			vendor, id = terms.get(string(r.VendorID), v, period)
		} else {
			vendor = vendorFields(v, period, nil)
		}
	}
	if id == nil || string(r.VendorID) != f.Vendor.Subscription.VendorID {
		id = ast.StringTerm(string(r.VendorID))
	}
	doc.reqVals = [...]*ast.Term{
		id, terms.word(r.Action), terms.word(r.Platform), optInt(r.Count), optInt(r.CustomCount),
		optInt(r.Quantity), terms.word(r.Feature), optInt(r.Months), ast.InternedTerm(r.Custom),
	}
	doc.req = planeval.Fields{Keys: requestKeys, Vals: doc.reqVals[:]}
	doc.reqTerm.Value = &doc.req
	doc.inVals = [...]*ast.Term{&doc.reqTerm, vendor, terms.nowTerm(now), nil, nil}
	doc.in = planeval.Fields{Keys: inputKeys, Vals: doc.inVals[:len(inputKeys)]}
	if f.Stale {
		doc.inVals[3], doc.inVals[4] = ast.InternedTerm(true), str(f.StaleMode)
		doc.in.Keys, doc.in.Vals = staleKeys, doc.inVals[:]
	}
	doc.inTerm.Value = &doc.in
	return doc
}

// term is the input document.
func (doc *inputDoc) term() *ast.Term { return &doc.inTerm }

// inputDoc is planInput's document in one piece.
type inputDoc struct {
	inTerm, reqTerm ast.Term
	in, req         planeval.Fields
	inVals          [5]*ast.Term // request, vendor, now, stale, stale_mode
	reqVals         [9]*ast.Term
}

var (
	vendorKeys       = []*ast.Term{kSubscription, kUsage, kRevision}
	subscriptionKeys = []*ast.Term{kTier, kPlatform, kStatus, kPeriodStart, kPeriodEnd, kTrialEndsAt, kScheduledTier,
		kScheduledChangeAt, kIsAnnual, kCustomOrders, kCustomProducts, kCustomTeam, kAddOns}
	usageKeys = []*ast.Term{kPeriod, kOrders, kProducts, kTeamMembers, kCMSPages, kCMSCustomPages}
	addOnKeys = []*ast.Term{kCode, kQuantity, kStatus}
)

// vendorDoc is input.vendor in one piece: the three objects, their values and the terms that
// hold them. A decision reads it after the request's own work has pushed it out of the CPU's
// caches, so one allocation whose parts sit next to each other costs fewer cache misses than
// the twenty it replaced, spread over the heap.
type vendorDoc struct {
	vendorTerm, subTerm, usageTerm ast.Term
	vendor, sub, usage             planeval.Fields
	vendorVals                     [3]*ast.Term
	subVals                        [13]*ast.Term
	usageVals                      [6]*ast.Term
}

// vendorFields is input.vendor: the subscription and the usage of the period. The
// subscription's words (tier, platform, status, scheduled tier, add-on codes: a small
// vocabulary, unlike the period, which is the vendor's own start time) come from terms' shared
// vocabulary (terms may be nil).
func vendorFields(v *tollgate.VendorState, period string, terms *inputTerms) *ast.Term {
	d := &vendorDoc{}
	fillVendorDoc(d, v, period, terms)
	return &d.vendorTerm
}

// fillVendorDoc builds vendorFields' object in d.
func fillVendorDoc(d *vendorDoc, v *tollgate.VendorState, period string, terms *inputTerms) {
	s := &v.Subscription
	addOns := emptyArrayTerm
	if len(s.AddOns) > 0 {
		elems := make([]*ast.Term, len(s.AddOns))
		for i := range s.AddOns {
			a := &s.AddOns[i]
			elems[i] = ast.NewTerm(&planeval.Fields{Keys: addOnKeys, Vals: []*ast.Term{
				terms.word(a.Code), ast.InternedTerm(a.Quantity), terms.word(a.Status)}})
		}
		addOns = ast.ArrayTerm(elems...)
	}
	d.subVals = [...]*ast.Term{
		terms.word(s.Tier), terms.word(s.Platform), terms.word(string(s.Status)), optTime(s.PeriodStart),
		optTime(s.PeriodEnd), optTime(s.TrialEndsAt), terms.word(s.ScheduledTierChange), optTime(s.ScheduledChangeAt),
		ast.InternedTerm(s.IsAnnual), optInt(s.CustomOrdersLimit), optInt(s.CustomProductsLimit),
		optInt(s.CustomTeamLimit), addOns,
	}
	u := &v.Usage
	d.usageVals = [...]*ast.Term{
		str(period), ast.InternedTerm(u.OrdersIn(period)), optInt(u.Products), optInt(u.TeamMembers),
		optInt(u.CMSPages), optInt(u.CMSCustomPages),
	}
	d.sub = planeval.Fields{Keys: subscriptionKeys, Vals: d.subVals[:]}
	d.usage = planeval.Fields{Keys: usageKeys, Vals: d.usageVals[:]}
	d.subTerm.Value, d.usageTerm.Value = &d.sub, &d.usage
	d.vendorVals = [...]*ast.Term{&d.subTerm, &d.usageTerm, ast.InternedTerm(v.Revision)}
	d.vendor = planeval.Fields{Keys: vendorKeys, Vals: d.vendorVals[:]}
	d.vendorTerm.Value = &d.vendor
}

// canonicalKeys are the key terms of input and of the decision: the plan uses these very
// terms for its constant strings of the same names (planeval.Target.Keys).
func canonicalKeys() []*ast.Term {
	var out []*ast.Term
	for _, keys := range [][]*ast.Term{staleKeys, requestKeys, vendorKeys, subscriptionKeys, usageKeys, addOnKeys,
		{kAllow, kCode, kReason, kLimit, kUsed, kRemaining, kTier, kStatus, kUpgradeTo, kStaleMode}} {
		out = append(out, keys...)
	}
	return out
}
