package policy

import (
	"sync"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/tollgate-pdp/tollgate"
)

// fields is an object of known keys the plan executor reads by key without building an
// ast.Object: the input document and its request are built on every uncached decision, and so
// are object literals with constant keys such as the decision itself; as ast.Objects (a hash
// map each, every key hashed) they were half of a decision's allocations. The executor looks keys up directly (dot); anything else that receives one (a
// built-in, a comparison, an answer, a scan) gets the equal ast.Object, built once on first
// need (object). It is an ast.Value so it can sit in a term; its methods answer as that object.
type fields struct {
	keys []*ast.Term // shared, never modified
	vals []*ast.Term
	once sync.Once
	obj  ast.Object
}

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
	doc.req = fields{keys: requestKeys, vals: doc.reqVals[:]}
	doc.reqTerm.Value = &doc.req
	doc.inVals = [...]*ast.Term{&doc.reqTerm, vendor, terms.nowTerm(now), nil, nil}
	doc.in = fields{keys: inputKeys, vals: doc.inVals[:len(inputKeys)]}
	if f.Stale {
		doc.inVals[3], doc.inVals[4] = ast.InternedTerm(true), str(f.StaleMode)
		doc.in.keys, doc.in.vals = staleKeys, doc.inVals[:]
	}
	doc.inTerm.Value = &doc.in
	return doc
}

// term is the input document.
func (doc *inputDoc) term() *ast.Term { return &doc.inTerm }

// inputDoc is planInput's document in one piece.
type inputDoc struct {
	inTerm, reqTerm ast.Term
	in, req         fields
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
	vendor, sub, usage             fields
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
			elems[i] = ast.NewTerm(&fields{keys: addOnKeys, vals: []*ast.Term{
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
	d.sub = fields{keys: subscriptionKeys, vals: d.subVals[:]}
	d.usage = fields{keys: usageKeys, vals: d.usageVals[:]}
	d.subTerm.Value, d.usageTerm.Value = &d.sub, &d.usage
	d.vendorVals = [...]*ast.Term{&d.subTerm, &d.usageTerm, ast.InternedTerm(v.Revision)}
	d.vendor = fields{keys: vendorKeys, vals: d.vendorVals[:]}
	d.vendorTerm.Value = &d.vendor
}

// canonicalKeys are the key terms of input and of the decision, by name: a plan's constant
// strings with these names are replaced by them (plan.go), so Get usually finds a key by
// pointer.
func canonicalKeys() map[string]*ast.Term {
	out := map[string]*ast.Term{}
	for _, keys := range [][]*ast.Term{staleKeys, requestKeys, vendorKeys, subscriptionKeys, usageKeys, addOnKeys,
		{kAllow, kCode, kReason, kLimit, kUsed, kRemaining, kTier, kStatus, kUpgradeTo, kStaleMode}} {
		for _, k := range keys {
			out[string(k.Value.(ast.String))] = k
		}
	}
	return out
}

// Get is the value of key, nil when absent.
func (o *fields) Get(key *ast.Term) *ast.Term {
	for i, kt := range o.keys {
		if kt == key {
			return o.vals[i]
		}
	}
	k, ok := key.Value.(ast.String)
	if !ok {
		return nil
	}
	for i, kt := range o.keys {
		if kt.Value.(ast.String) == k {
			return o.vals[i]
		}
	}
	return nil
}

// object is the equal ast.Object (nested fields converted too).
func (o *fields) object() ast.Object {
	o.once.Do(func() {
		items := make([][2]*ast.Term, len(o.keys))
		for i, k := range o.keys {
			items[i] = [2]*ast.Term{k, materialize(o.vals[i])}
		}
		o.obj = ast.NewObject(items...)
	})
	return o.obj
}

// materialize returns t, or a term of the equal ast value when t holds fields (also inside
// an array, such as input.vendor.subscription.add_ons).
func materialize(t *ast.Term) *ast.Term {
	if t == nil {
		return nil
	}
	switch v := t.Value.(type) {
	case *fields:
		return ast.NewTerm(v.object())
	case *ast.Array:
		var out []*ast.Term
		for i := range v.Len() {
			e := v.Elem(i)
			m := materialize(e)
			if m != e && out == nil {
				out = make([]*ast.Term, i, v.Len())
				for j := range i {
					out[j] = v.Elem(j)
				}
			}
			if out != nil {
				out = append(out, m)
			}
		}
		if out != nil {
			return ast.ArrayTerm(out...)
		}
	}
	return t
}

func (o *fields) Compare(other ast.Value) int {
	if x, ok := other.(*fields); ok {
		other = x.object()
	}
	return o.object().Compare(other)
}

func (o *fields) Find(path ast.Ref) (ast.Value, error) { return o.object().Find(path) }
func (o *fields) Hash() int                            { return o.object().Hash() }
func (o *fields) IsGround() bool                       { return true }
func (o *fields) String() string                       { return o.object().String() }
func (o *fields) StringLength() int                    { return o.object().StringLength() }

// keyedBuiltin names a built-in the executor answers itself when its first argument is fields,
// without building the object: the policy asks is_object(input.vendor) and
// object.get(input.request, "platform", "") on every decision that leaves the fast paths, and
// building the vendor's objects for that was a fifth of such a decision's allocations. The
// answers are what the built-ins give for the equal object (TestPlanInputActsAsTheInputObject).
type keyedBuiltin uint8

const (
	notKeyed  keyedBuiltin = iota
	isObject               // is_object(x): true
	isOther                // is_string, is_number, ... (x): false
	typeName               // type_name(x): "object"
	objectGet              // object.get(x, key, default) with a string key
)

var keyedBuiltins = map[string]keyedBuiltin{
	"is_object": isObject, "is_string": isOther, "is_number": isOther, "is_boolean": isOther,
	"is_array": isOther, "is_set": isOther, "is_null": isOther, "type_name": typeName,
	"object.get": objectGet,
}

var objectTypeName = ast.StringTerm("object")

// answer is the built-in's result for o and the other arguments; false when it needs the
// object after all (object.get with a path or a non-string key).
func (b keyedBuiltin) answer(o *fields, rest []operand, get func(operand) *ast.Term) (*ast.Term, bool) {
	switch b {
	case isObject:
		return ast.InternedTerm(true), true
	case isOther:
		return ast.InternedTerm(false), true
	case typeName:
		return objectTypeName, true
	case objectGet:
		if len(rest) != 2 {
			return nil, false
		}
		key, def := get(rest[0]), get(rest[1])
		if key == nil || def == nil {
			return nil, false
		}
		if _, ok := key.Value.(ast.String); !ok {
			return nil, false
		}
		if v := o.Get(key); v != nil {
			return v, true
		}
		return def, true
	}
	return nil, false
}
