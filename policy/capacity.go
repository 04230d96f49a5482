package policy

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/metrics"
	"github.com/open-policy-agent/opa/v1/rego"

	"github.com/tollgate-pdp/tollgate"
)

// CapacityFactsQuery answers a vendor's effective limits and access (policy/rego/capacity.rego).
const CapacityFactsQuery = "data.tollgate.capacity_facts"

// PlanFindingsQuery answers what a catalog would take from a vendor (the dry run).
const PlanFindingsQuery = "data.tollgate.plan_findings"

var _ tollgate.LimitsResolver = (*Engine)(nil)

// probeInput is the input of the capacity questions: the vendor's facts with a zero-quantity
// order request, so the decision rules they reuse see a well-formed request that changes
// nothing. withFeatures adds usage.features_used (the dry run's question).
func probeInput(v *tollgate.VendorState, now time.Time, withFeatures bool) ast.Object {
	zero := int64(0)
	req := tollgate.CheckRequest{VendorID: tollgate.VendorID(v.Subscription.VendorID),
		Action: tollgate.ActionOrderCreate, Quantity: &zero}
	period := tollgate.PeriodKey(&v.Subscription, now)
	in := buildInput(&tollgate.Facts{Request: &req, Vendor: v, Period: period, Now: now}, now, period, nil)
	if withFeatures {
		features := make([]*ast.Term, len(v.Usage.FeaturesUsed))
		for i, f := range v.Usage.FeaturesUsed {
			features[i] = ast.StringTerm(f)
		}
		// buildInput without a vendor cache builds a fresh vendor object: safe to extend.
		if usage := in.Get(kVendor).Value.(ast.Object).Get(kUsage); usage != nil {
			usage.Value.(ast.Object).Insert(kFeaturesUsed, ast.ArrayTerm(features...))
		}
	}
	return in
}

// EffectiveLimits implements tollgate.LimitsResolver with data.tollgate.capacity_facts. It is
// meant for write time (the store calls it when a vendor's limit facts change), not for the
// decision path.
func (e *Engine) EffectiveLimits(ctx context.Context, v *tollgate.VendorState, now time.Time) (tollgate.EffectiveLimits, error) {
	st := e.state.Load()
	pq, err := st.capacityQuery(ctx)
	if err != nil {
		return tollgate.EffectiveLimits{}, err
	}
	val, err := evalTerm(ctx, pq, st, probeInput(v, now, false))
	if err != nil {
		return tollgate.EffectiveLimits{}, fmt.Errorf("%s for vendor %s: %w", CapacityFactsQuery, v.Subscription.VendorID, err)
	}
	obj, ok := val.(ast.Object)
	if !ok {
		return tollgate.EffectiveLimits{}, fmt.Errorf("%s is %s, not an object", CapacityFactsQuery, ast.ValueName(val))
	}
	var out tollgate.EffectiveLimits
	if out.Orders, err = intField(obj, kOrders); err != nil {
		return out, err
	}
	if out.Products, err = intField(obj, kProducts); err != nil {
		return out, err
	}
	if out.TeamMembers, err = intField(obj, kTeamMembers); err != nil {
		return out, err
	}
	if t := obj.Get(kAccess); t != nil {
		b, _ := t.Value.(ast.Boolean)
		out.Access = bool(b)
	}
	if out.NearOrders, err = nearOrders(obj.Get(kNearOrders)); err != nil {
		return out, fmt.Errorf("%s for vendor %s: %w", CapacityFactsQuery, v.Subscription.VendorID, err)
	}
	return out, nil
}

var kAccess, kNearOrders = ast.StringTerm("access"), ast.StringTerm("near_orders")

// nearOrders reads capacity_facts.near_orders: absent or empty, or two ascending integers.
func nearOrders(t *ast.Term) ([]int64, error) {
	if t == nil {
		return nil, nil
	}
	arr, ok := t.Value.(*ast.Array)
	if !ok || (arr.Len() != 0 && arr.Len() != 2) {
		return nil, fmt.Errorf("near_orders is %v, want [] or [near, at]", t)
	}
	out := make([]int64, arr.Len())
	for i := range out {
		n, ok := arr.Elem(i).Value.(ast.Number)
		if !ok {
			return nil, fmt.Errorf("near_orders[%d] is %v, want an integer", i, arr.Elem(i))
		}
		if out[i], ok = n.Int64(); !ok || (i > 0 && out[i] < out[i-1]) {
			return nil, fmt.Errorf("near_orders is %v, want two ascending integers", t)
		}
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// capacityQuery prepares data.tollgate.capacity_facts once per compiled state, like the
// decision query: results as AST terms, evaluated in the state's shared read transaction.
func (st *compiled) capacityQuery(ctx context.Context) (rego.PreparedEvalQuery, error) {
	st.capacityOnce.Do(func() {
		st.capacity, st.capacityErr = rego.New(rego.Query(CapacityFactsQuery), rego.Compiler(st.compiler),
			rego.Store(st.store), rego.GenerateJSON(identityJSON)).PrepareForEval(ctx)
	})
	return st.capacity, st.capacityErr
}

// evalTerm evaluates a query prepared with identityJSON in st's transaction.
func evalTerm(ctx context.Context, pq rego.PreparedEvalQuery, st *compiled, input ast.Value) (ast.Value, error) {
	rs, err := pq.Eval(ctx, rego.EvalParsedInput(input), rego.EvalMetrics(metrics.NoOp()), rego.EvalTransaction(st.txn))
	if err != nil {
		return nil, err
	}
	if len(rs) == 0 || len(rs[0].Expressions) == 0 {
		return nil, fmt.Errorf("undefined")
	}
	t, ok := rs[0].Expressions[0].Value.(*ast.Term)
	if !ok {
		return nil, fmt.Errorf("unexpected result type %T", rs[0].Expressions[0].Value)
	}
	return t.Value, nil
}

// eachString calls fn with each string of a set (or array) of findings.
func eachString(val ast.Value, fn func(string)) error {
	var foreach func(func(*ast.Term))
	switch x := val.(type) {
	case ast.Set:
		foreach = x.Foreach
	case *ast.Array:
		foreach = x.Foreach
	default:
		return fmt.Errorf("%s, not a set", ast.ValueName(val))
	}
	foreach(func(t *ast.Term) {
		if s, ok := t.Value.(ast.String); ok {
			fn(string(s))
		}
	})
	return nil
}

// DefaultDryRunLimit is how many vendor ids a dry-run rule lists when no limit is asked.
const DefaultDryRunLimit = 20

// DryRun answers, changing nothing, which vendors the candidate catalog would put over a limit
// or take a used feature from: it compiles the policy in service (same modules) with the
// candidate as data.catalog, without a decision cache, and asks data.tollgate.plan_findings
// of every vendor forEach yields. It walks all vendors: an operator's question, not a
// request-path one. limit bounds the vendor ids listed per rule (sorted, the first ones).
func (e *Engine) DryRun(ctx context.Context, candidate *tollgate.Catalog, forEach func(func(*tollgate.VendorState) bool), now time.Time, limit int) (*tollgate.DryRunResult, error) {
	if candidate == nil {
		return nil, tollgate.FieldErrorf("catalog", "is required")
	}
	if err := candidate.Validate(); err != nil {
		return nil, err
	}
	if limit <= 0 {
		limit = DefaultDryRunLimit
	}
	compiler, err := e.state.Load().sources.compile()
	if err != nil {
		return nil, fmt.Errorf("dry run: %w", err)
	}
	store, err := catalogStore(ctx, candidate.Clone(), compiler)
	if err != nil {
		return nil, fmt.Errorf("dry run: %w", err)
	}
	pq, err := rego.New(rego.Query(PlanFindingsQuery), rego.Compiler(compiler), rego.Store(store),
		rego.GenerateJSON(identityJSON)).PrepareForEval(ctx)
	if err != nil {
		return nil, fmt.Errorf("dry run: prepare %s: %w", PlanFindingsQuery, err)
	}
	txn, err := store.NewTransaction(ctx)
	if err != nil {
		return nil, fmt.Errorf("dry run: %w", err)
	}
	defer store.Abort(ctx, txn)
	st := &compiled{txn: txn}
	type acc struct {
		n      int64
		byTier map[string]int64
		ids    []string
	}
	type finding struct {
		rule, tier, id string
	}
	rules := map[string]*acc{}
	res := &tollgate.DryRunResult{CatalogRevision: candidate.Revision(), Rules: []tollgate.DryRunRule{}}

	// Evaluations run on every CPU (each vendor is independent); one goroutine gathers.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	work := make(chan *tollgate.VendorState, 256)
	found := make(chan finding, 256)
	errs := make(chan error, 1)
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for v := range work {
				val, err := evalTerm(ctx, pq, st, probeInput(v, now, true))
				if err == nil {
					err = eachString(val, func(s string) {
						found <- finding{s, v.Subscription.Tier, v.Subscription.VendorID}
					})
				}
				if err != nil {
					select {
					case errs <- fmt.Errorf("dry run: %s for vendor %s: %w", PlanFindingsQuery, v.Subscription.VendorID, err):
					default:
					}
					cancel()
				}
			}
		}()
	}
	gathered := make(chan struct{})
	go func() {
		defer close(gathered)
		for f := range found {
			a := rules[f.rule]
			if a == nil {
				a = &acc{byTier: map[string]int64{}}
				rules[f.rule] = a
			}
			a.n++
			a.byTier[f.tier]++
			a.ids = append(a.ids, f.id)
		}
	}()
	forEach(func(v *tollgate.VendorState) bool {
		if ctx.Err() != nil {
			return false
		}
		res.VendorsChecked++
		work <- v
		return true
	})
	close(work)
	wg.Wait()
	close(found)
	<-gathered
	select {
	case err := <-errs:
		return nil, err
	default:
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("dry run: %w", err)
	}
	for name, a := range rules {
		slices.Sort(a.ids)
		res.Rules = append(res.Rules, tollgate.DryRunRule{Rule: name, Vendors: a.n, ByTier: a.byTier,
			VendorIDs: a.ids[:min(limit, len(a.ids))]})
	}
	sort.Slice(res.Rules, func(i, j int) bool { return res.Rules[i].Rule < res.Rules[j].Rule })
	return res, nil
}
