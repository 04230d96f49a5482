// Package policy evaluates tollgate's decisions with OPA: the default Rego policy is embedded
// (policy/rego), a policy directory may add or replace files, the policy is compiled by OPA's
// planner and its plan executed in Go (internal/planeval; OPA's evaluator when a policy cannot be), and a
// decision cache serves repeated questions whose facts have not changed. Every business rule
// lives in the Rego; this package only builds the input document from facts and reads the
// answer back.
package policy

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage"

	"github.com/tollgate-pdp/tollgate"
	"github.com/tollgate-pdp/tollgate/policy/internal/planeval"
)

// DecisionQuery is the query every decision evaluates.
const DecisionQuery = "data.tollgate.decision"

// StaleDecisionQuery is evaluated instead of DecisionQuery when the facts are stale
// (policy/rego/stale.rego applies the --when-stale mode).
const StaleDecisionQuery = "data.tollgate.stale_decision"

// Evaluators (Options.Evaluator).
const (
	EvaluatorPlan    = "plan"
	EvaluatorTopdown = "topdown"
)

// DefaultCacheSize is the decision cache's capacity when Options.CacheSize is 0: a table of
// 8 MiB, allocated up front (policy/README.md#decision-cache).
const DefaultCacheSize = 1 << 15

// vendorInputsSize bounds the input.vendor objects kept between decisions (one per vendor).
const vendorInputsSize = 1 << 16

// Options configure an Engine.
type Options struct {
	// Catalog is put at data.catalog; nil means tollgate.DefaultCatalog().
	Catalog *tollgate.Catalog
	// PolicyDir holds .rego files that add to, or replace by file name, the embedded policy.
	// Empty: the embedded policy alone.
	PolicyDir string
	// CacheTTL bounds how long a cached decision may be served; 0 disables the cache.
	CacheTTL time.Duration
	// CacheSize bounds the number of cached decisions; 0 means DefaultCacheSize.
	CacheSize int
	// PollInterval is how often Watch re-reads PolicyDir besides reacting to file events
	// (a safety net for file systems that do not deliver events); 0 means 5s.
	PollInterval time.Duration
	// Observer is told about every policy compile attempt; nil means tollgate.NopObserver.
	Observer tollgate.Observer
	// Logger receives reload outcomes; nil means slog.Default().
	Logger *slog.Logger
	// Evaluator picks how decisions are evaluated: EvaluatorPlan (the default, "") executes
	// the policy's compiled plan when it has one and falls back to OPA's evaluator otherwise;
	// EvaluatorTopdown always uses OPA's evaluator.
	Evaluator string
	// OnChange, when set, is called after a new policy or catalog is swapped in (not at New),
	// with the new revision: the wiring refreshes what it derived from the old one (the
	// capacity aggregates' effective limits). It must not block.
	OnChange func(revision string)
}

// Engine implements tollgate.Evaluator with a compiled plan per policy revision (or a prepared
// OPA query). It also implements tollgate.ReadinessCheck ("policy").
type Engine struct {
	dir      string
	poll     time.Duration
	observer tollgate.Observer
	log      *slog.Logger
	cache    *decisionCache // nil: disabled
	onChange func(revision string)
	inputs   *inputTerms
	// evaluator is Options.Evaluator, validated.
	evaluator string

	// state is what requests read: swapped whole, never modified, so the hot path takes no lock.
	state atomic.Pointer[compiled]
	// mu serialises the writers (Reload, SetCatalog); requests never take it.
	mu          sync.Mutex
	gen         uint64
	lastAttempt string // hash of the last module set tried, so an unchanged broken file is not recompiled on every poll
	lastErr     atomic.Pointer[reloadError]
}

type reloadError struct {
	revision string
	err      error
}

// compiled is one (policy, catalog) pair ready to evaluate.
type compiled struct {
	gen             uint64
	revision        string // names policy and catalog together
	modulesHash     string
	catalogRevision string
	catalog         *tollgate.Catalog
	sources         sources
	compiler        *ast.Compiler
	store           storage.Store
	decision        *directQuery
	// plan executes the decision queries when the policy has one (planeval); nil: decision
	// and stale are evaluated by OPA's evaluator. planErr says why there is none.
	plan    planeval.Evaluator
	planErr error
	// data is the data document the plan reads (data.catalog).
	data  *ast.Term
	stale *directQuery
	// baseCache serves data.catalog reads to the decision queries (fasteval.go).
	baseCache *catalogBaseCache
	// txn is one read transaction shared by every evaluation of this state. Nothing ever
	// writes to the store (a new catalog is a new store), so concurrent reads through it are
	// safe, and evaluations skip opening a transaction each, which would touch a store-wide
	// lock and counter on every request.
	txn     storage.Transaction
	queries queryCache

	// capacity is data.tollgate.capacity_facts, prepared on first use (capacity.go).
	capacityOnce sync.Once
	capacity     rego.PreparedEvalQuery
	capacityErr  error
}

var _ tollgate.Evaluator = (*Engine)(nil)
var _ tollgate.ReadinessCheck = (*Engine)(nil)

// New compiles the policy (embedded plus opts.PolicyDir) with the catalog. A policy that does
// not compile at start is an error: there is no previous policy to keep serving.
func New(ctx context.Context, opts Options) (*Engine, error) {
	e := &Engine{dir: opts.PolicyDir, poll: opts.PollInterval, observer: opts.Observer, log: opts.Logger,
		onChange: opts.OnChange}
	if e.observer == nil {
		e.observer = tollgate.NopObserver{}
	}
	if e.log == nil {
		e.log = slog.Default()
	}
	if e.poll <= 0 {
		e.poll = 5 * time.Second
	}
	switch opts.Evaluator {
	case "", EvaluatorPlan:
		e.evaluator = EvaluatorPlan
	case EvaluatorTopdown:
		e.evaluator = EvaluatorTopdown
	default:
		return nil, tollgate.FieldErrorf("evaluator", "must be %q or %q, not %q", EvaluatorPlan, EvaluatorTopdown, opts.Evaluator)
	}
	size := opts.CacheSize
	if size <= 0 {
		size = DefaultCacheSize
	}
	e.cache = newDecisionCache(opts.CacheTTL, size)
	e.inputs = newInputTerms(vendorInputsSize)
	cat := opts.Catalog
	if cat == nil {
		cat = tollgate.DefaultCatalog()
	}
	if err := cat.Validate(); err != nil {
		return nil, fmt.Errorf("policy: catalog: %w", err)
	}
	src, err := loadSources(e.dir)
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	st, err := e.build(ctx, src, cat.Clone())
	e.lastAttempt = src.hash()
	e.observer.PolicyLoaded(revisionOf(src.hash(), cat.Revision()), err)
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	e.state.Store(st)
	e.log.Info("policy loaded", append([]any{"revision", st.revision, "files", len(src)}, st.evaluatorAttrs()...)...)
	return e, nil
}

func revisionOf(modulesHash, catalogRevision string) string {
	return "p-" + modulesHash + "-c-" + catalogRevision
}

// build compiles and prepares; the caller holds e.mu.
func (e *Engine) build(ctx context.Context, src sources, cat *tollgate.Catalog) (*compiled, error) {
	compiler, err := src.compile()
	if err != nil {
		return nil, err
	}
	store, err := catalogStore(ctx, cat, compiler)
	if err != nil {
		return nil, err
	}
	txn, err := store.NewTransaction(ctx)
	if err != nil {
		return nil, fmt.Errorf("open policy data transaction: %w", err)
	}
	dq, err := prepareDirect(compiler, store, DecisionQuery)
	if err != nil {
		store.Abort(ctx, txn)
		return nil, err
	}
	sq, err := prepareDirect(compiler, store, StaleDecisionQuery)
	if err != nil {
		store.Abort(ctx, txn)
		return nil, err
	}
	e.gen++
	mh, cr := src.hash(), cat.Revision()
	st := &compiled{gen: e.gen, revision: revisionOf(mh, cr), modulesHash: mh, catalogRevision: cr,
		catalog: cat, sources: src, compiler: compiler, store: store, decision: dq, stale: sq, txn: txn,
		baseCache: newCatalogBaseCache(ctx, store, txn)}
	if st.baseCache.catalog != nil {
		st.data = ast.ObjectTerm(ast.Item(catalogKey, ast.NewTerm(st.baseCache.catalog)))
	}
	switch {
	case e.evaluator == EvaluatorTopdown:
		st.planErr = fmt.Errorf("%w: --evaluator %s", planeval.ErrNoPlan, EvaluatorTopdown)
	case st.data == nil:
		st.planErr = fmt.Errorf("%w: no catalog document", planeval.ErrNoPlan)
	default:
		// The plan depends on the modules only: a catalog change (SetCatalog) keeps it, since
		// building one costs ~100 ms (OPA's compile package hands it over as JSON).
		if cur := e.state.Load(); cur != nil && cur.plan != nil && cur.modulesHash == mh {
			st.plan = cur.plan
		} else {
			st.plan, st.planErr = planFor(ctx, src)
		}
	}
	return st, nil
}

// Evaluator names what evaluates decisions of the policy in service: EvaluatorPlan or
// EvaluatorTopdown.
func (e *Engine) Evaluator() string { return e.state.Load().evaluator() }

func (st *compiled) evaluator() string {
	if st.plan != nil {
		return EvaluatorPlan
	}
	return EvaluatorTopdown
}

// evaluatorAttrs are log attributes saying which evaluator serves, and why not the plan.
func (st *compiled) evaluatorAttrs() []any {
	if st.plan != nil {
		return []any{"evaluator", EvaluatorPlan}
	}
	return []any{"evaluator", EvaluatorTopdown, "evaluator_reason", st.planErr.Error()}
}

// planFor builds the plan of the decision queries and prepares it for the executor.
func planFor(ctx context.Context, src sources) (planeval.Evaluator, error) {
	p, err := planeval.Plan(ctx, src, DecisionQuery, StaleDecisionQuery)
	if err != nil {
		return nil, err
	}
	return planeval.Target{Keys: canonicalKeys()}.PrepareForEval(ctx, p, DecisionQuery, StaleDecisionQuery)
}

func identityJSON(t *ast.Term, _ *rego.EvalContext) (any, error) { return t, nil }

// swap installs a new compiled state; cached decisions of the old one are dropped (their
// generation could never match again).
func (e *Engine) swap(st *compiled) {
	e.state.Store(st)
	if e.cache != nil {
		e.cache.purge()
	}
	if e.onChange != nil {
		e.onChange(st.revision)
	}
}

// Revision names the policy in service: a hash of the compiled module set and the catalog
// revision ("p-<modules>-c-<catalog>").
func (e *Engine) Revision() string { return e.state.Load().revision }

// CatalogRevision is the revision of the catalog the policy sees.
func (e *Engine) CatalogRevision() string { return e.state.Load().catalogRevision }

// Catalog returns the catalog in service. The caller must not modify it (Clone to edit).
func (e *Engine) Catalog() *tollgate.Catalog { return e.state.Load().catalog }

// CacheStats returns the decision cache's hit and miss counts (zero when disabled).
func (e *Engine) CacheStats() (hits, misses uint64) {
	if e.cache == nil {
		return 0, 0
	}
	return e.cache.stats()
}

// SetCatalog recompiles the policy against a new catalog (e.g. after Stripe product events)
// and swaps it in. An invalid catalog changes nothing.
func (e *Engine) SetCatalog(ctx context.Context, c *tollgate.Catalog) error {
	if c == nil {
		return tollgate.FieldErrorf("catalog", "is required")
	}
	if err := c.Validate(); err != nil {
		return fmt.Errorf("policy: set catalog: %w", err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	cur := e.state.Load()
	st, err := e.build(ctx, cur.sources, c.Clone())
	if err != nil {
		return fmt.Errorf("policy: set catalog: %w", err)
	}
	e.swap(st)
	e.observer.PolicyLoaded(st.revision, nil)
	e.log.Info("policy catalog updated", append([]any{"revision", st.revision, "catalog_revision", st.catalogRevision},
		st.evaluatorAttrs()...)...)
	return nil
}

// Decide evaluates data.tollgate.decision on the facts, or serves the cached decision computed
// from the same facts. Facts.Now zero means time.Now().
func (e *Engine) Decide(ctx context.Context, f *tollgate.Facts) (tollgate.Decision, error) {
	if f == nil || f.Request == nil {
		return tollgate.Decision{}, tollgate.FieldErrorf("request", "is required")
	}
	st := e.state.Load()
	now := f.Now
	if now.IsZero() {
		now = time.Now()
	}
	period := f.Period
	if period == "" && f.Vendor != nil {
		period = tollgate.PeriodKey(&f.Vendor.Subscription, now)
	}
	// Explain answers always come from a fresh evaluation, so the input they show is exactly
	// the one that produced the decision. Stale answers too: staleness is rare and its facts
	// (the mode) are not part of the cache key.
	useCache := e.cache != nil && !f.Request.Explain && !f.Stale && !f.Uncached
	var key cacheKey
	if useCache {
		key = makeKey(st.gen, f, period)
		if d, ok := e.cache.get(&key, now); ok {
			return d, nil
		}
	}
	query, name := st.decision, DecisionQuery
	if f.Stale {
		query, name = st.stale, StaleDecisionQuery
	}
	var input ast.Object // built for OPA's evaluator and for explanations only
	if st.plan == nil || f.Request.Explain {
		input = buildInput(f, now, period, e.inputs)
	}
	var d tollgate.Decision
	var err error
	if st.plan != nil {
		doc := planInput(f, now, period, e.inputs)
		d, err = st.evalPlan(ctx, name, doc.term())
		e.inputs.release(doc)
	} else {
		d, err = st.eval(ctx, query, name, input)
	}
	if err != nil {
		return tollgate.Decision{}, err
	}
	if useCache {
		e.cache.put(&key, d, now, f.Vendor)
	}
	if f.Request.Explain {
		x, err := explain(st, input, name)
		if err != nil {
			return tollgate.Decision{}, err
		}
		d.Explain = x
	}
	return d, nil
}

func (st *compiled) eval(ctx context.Context, query *directQuery, name string, input ast.Object) (tollgate.Decision, error) {
	t, err := query.eval(ctx, st, ast.NewTerm(input))
	return st.answer(name, t, err)
}

// evalPlan answers with the policy's plan; input is planInput's.
func (st *compiled) evalPlan(ctx context.Context, name string, input *ast.Term) (tollgate.Decision, error) {
	t, err := st.plan.Eval(ctx, name, input, st.data)
	return st.answer(name, t, err)
}

// answer converts an evaluation's answer.
func (st *compiled) answer(name string, t *ast.Term, err error) (tollgate.Decision, error) {
	if err != nil {
		return tollgate.Decision{}, &tollgate.Error{Code: tollgate.EInternal,
			Message: "policy evaluation failed", Err: fmt.Errorf("eval %s (%s): %w", name, st.revision, err)}
	}
	if t == nil {
		return tollgate.Decision{}, &tollgate.Error{Code: tollgate.EInternal, Message: "policy evaluation failed",
			Err: fmt.Errorf("%s is undefined under policy %s", name, st.revision)}
	}
	d, err := toDecision(t.Value)
	if err != nil {
		return tollgate.Decision{}, &tollgate.Error{Code: tollgate.EInternal, Message: "policy evaluation failed",
			Err: fmt.Errorf("policy %s: %w", st.revision, err)}
	}
	return d, nil
}

func explain(st *compiled, input ast.Object, query string) (*tollgate.Explanation, error) {
	doc, err := ast.JSON(input)
	if err != nil {
		return nil, fmt.Errorf("explain: convert input: %w", err)
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("explain: encode input: %w", err)
	}
	return &tollgate.Explanation{Input: b, PolicyRevision: st.revision,
		CatalogRevision: st.catalogRevision, Query: query}, nil
}

// Name implements tollgate.ReadinessCheck.
func (e *Engine) Name() string { return "policy" }

// Ready implements tollgate.ReadinessCheck: ready while a compiled policy serves (always, once
// New succeeded); the detail names the revision and the last failed reload, if any.
func (e *Engine) Ready() (bool, string) {
	st := e.state.Load()
	if st == nil {
		return false, "no policy compiled"
	}
	detail := "revision " + st.revision
	if le := e.lastErr.Load(); le != nil {
		detail += "; last reload of " + le.revision + " failed: " + le.err.Error()
	}
	return true, detail
}

// LastError returns the error of the last policy reload, nil when it succeeded.
func (e *Engine) LastError() error {
	if le := e.lastErr.Load(); le != nil {
		return le.err
	}
	return nil
}
