package policy

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/metrics"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/topdown"
)

// directQuery is a decision query evaluated straight through OPA's evaluator (topdown), without
// the rego package's per-call set-up: an evaluation context, a metrics object, a cancellation
// goroutine and channel, a result set with expression values, and a second conversion of the
// answer. Those cost about as much as a small policy itself. The query is compiled once per
// policy and catalog; the evaluation is the same topdown evaluation rego.PreparedEvalQuery runs.
//
// The evaluation asks for <ref>.allow and takes the answer from the evaluation's own memo of
// rule values (the virtual cache), where OPA records the whole value of <ref> as it computes
// it: asking for the whole object instead makes OPA copy it once more to bind the query's
// variable. Should the memo not hold it (a replacement policy shaped otherwise), the query for
// the whole value is evaluated instead.
type directQuery struct {
	name    string
	ref     ast.Ref  // the rule, e.g. data.tollgate.decision
	byAllow ast.Body // result = <ref>.allow
	whole   ast.Body // result = <ref>
	qc      ast.QueryCompiler
	store   storage.Store
}

// resultVar names the answer in the compiled query body `result = <ref>`.
const resultVar = ast.Var("result")

func prepareDirect(compiler *ast.Compiler, store storage.Store, ref string) (*directQuery, error) {
	r, err := ast.ParseRef(ref)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", ref, err)
	}
	qc := compiler.QueryCompiler()
	compile := func(q string) (ast.Body, error) {
		body, err := ast.ParseBodyWithOpts(string(resultVar)+" = "+q, ast.ParserOptions{RegoVersion: ast.RegoV1})
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", q, err)
		}
		compiled, err := qc.Compile(body)
		if err != nil {
			return nil, fmt.Errorf("compile %s: %w", q, err)
		}
		return compiled, nil
	}
	whole, err := compile(ref)
	if err != nil {
		return nil, err
	}
	byAllow, err := compile(ref + ".allow")
	if err != nil {
		return nil, err
	}
	return &directQuery{name: ref, ref: r, byAllow: byAllow, whole: whole, qc: qc, store: store}, nil
}

// neverCancelled is handed to evaluations whose context cannot be cancelled: nothing ever calls
// Cancel on it, so sharing it is safe.
var neverCancelled = topdown.NewCancel()

// eval evaluates the query on input (read only) and returns the answer term (nil: undefined).
func (q *directQuery) eval(ctx context.Context, st *compiled, input *ast.Term) (*ast.Term, error) {
	vc := virtualCachePool.Get().(*flatVirtualCache)
	defer vc.release()
	if _, err := q.run(ctx, st, q.byAllow, input, vc); err != nil {
		return nil, err
	}
	if t, _ := vc.Get(q.ref); t != nil && t.IsGround() {
		directMemoHits.Add(1)
		return t, nil
	}
	vc.reset()
	return q.run(ctx, st, q.whole, input, vc)
}

// directMemoHits counts answers read from the evaluation's memo (tests check the fast read is
// the one taken).
var directMemoHits atomic.Uint64

func (q *directQuery) run(ctx context.Context, st *compiled, body ast.Body, input *ast.Term, vc *flatVirtualCache) (*ast.Term, error) {
	tq := topdown.NewQuery(body).
		WithQueryCompiler(q.qc).
		WithCompiler(st.compiler).
		WithStore(q.store).
		WithTransaction(st.txn).
		WithInput(input).
		WithMetrics(metrics.NoOp()).
		WithVirtualCache(vc).
		WithBaseCache(st.baseCache)
	if ctx.Done() == nil {
		tq = tq.WithCancel(neverCancelled)
	} else {
		// A cancellable context: cancel the evaluation when it ends, without the goroutine
		// and channel per evaluation rego would start for it.
		c := topdown.NewCancel()
		stop := context.AfterFunc(ctx, c.Cancel)
		defer stop()
		tq = tq.WithCancel(c)
	}
	var out *ast.Term
	err := tq.Iter(ctx, func(qr topdown.QueryResult) error {
		out = qr[resultVar]
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// catalogBaseCache serves reads of data.catalog from the compiled state's own copy of the
// catalog document, the very value the (never written) store holds: the evaluator then skips
// the store read and the per-evaluation base-document cache. It is read only (Put does
// nothing), so every evaluation can share it.
type catalogBaseCache struct {
	catalog ast.Value // data.catalog; nil: none
}

var catalogKey = ast.StringTerm("catalog")

func (c *catalogBaseCache) Get(ref ast.Ref) ast.Value {
	if c.catalog == nil || len(ref) < 2 || !ref[0].Equal(ast.DefaultRootDocument) || !ref[1].Equal(catalogKey) {
		return nil
	}
	v, err := c.catalog.Find(ref[2:])
	if err != nil {
		return nil
	}
	return v
}

func (*catalogBaseCache) Put(ast.Ref, ast.Value) {}

// newCatalogBaseCache reads data.catalog from the store once.
func newCatalogBaseCache(ctx context.Context, store storage.Store, txn storage.Transaction) *catalogBaseCache {
	v, err := store.Read(ctx, txn, storage.Path{"catalog"})
	if err != nil {
		return &catalogBaseCache{}
	}
	av, ok := v.(ast.Value)
	if !ok {
		if av, err = ast.InterfaceToValue(v); err != nil {
			return &catalogBaseCache{}
		}
	}
	return &catalogBaseCache{catalog: av}
}

// flatVirtualCache is topdown.VirtualCache (the per-evaluation memo of rule values) as a flat
// list: an evaluation caches a handful of rule values, which a linear scan finds faster than
// the default's tree of hash maps, and the list is pooled, so a decision allocates nothing for
// it. Entries never outlive the evaluation (release clears them).
type flatVirtualCache struct {
	terms   []*ast.Term // the refs' terms, back to back
	entries []vcEntry
	frames  []int // start of each pushed frame in entries
}

type vcEntry struct {
	start, end int // ref = terms[start:end]
	value      *ast.Term
}

var virtualCachePool = sync.Pool{New: func() any { return &flatVirtualCache{} }}

func (c *flatVirtualCache) reset() {
	clear(c.terms)
	clear(c.entries)
	c.terms, c.entries, c.frames = c.terms[:0], c.entries[:0], c.frames[:0]
}

func (c *flatVirtualCache) release() {
	c.reset()
	virtualCachePool.Put(c)
}

func (c *flatVirtualCache) frameStart() int {
	if n := len(c.frames); n > 0 {
		return c.frames[n-1]
	}
	return 0
}

func (c *flatVirtualCache) Push() { c.frames = append(c.frames, len(c.entries)) }

func (c *flatVirtualCache) Pop() {
	n := len(c.frames)
	if n == 0 {
		return
	}
	start := c.frames[n-1]
	c.frames = c.frames[:n-1]
	if start < len(c.entries) {
		tstart := c.entries[start].start
		clear(c.terms[tstart:])
		c.terms = c.terms[:tstart]
		clear(c.entries[start:])
		c.entries = c.entries[:start]
	}
}

func (c *flatVirtualCache) find(ref ast.Ref) int {
	for i := len(c.entries) - 1; i >= c.frameStart(); i-- {
		e := &c.entries[i]
		if e.end-e.start != len(ref) {
			continue
		}
		key := c.terms[e.start:e.end]
		same := true
		for j := len(ref) - 1; j >= 0; j-- {
			if !ref[j].Equal(key[j]) {
				same = false
				break
			}
		}
		if same {
			return i
		}
	}
	return -1
}

// Get: (value, false) when cached, (nil, true) when cached as undefined, (nil, false) when not
// cached.
func (c *flatVirtualCache) Get(ref ast.Ref) (*ast.Term, bool) {
	i := c.find(ref)
	if i < 0 {
		return nil, false
	}
	v := c.entries[i].value
	return v, v == nil
}

func (c *flatVirtualCache) Put(ref ast.Ref, value *ast.Term) {
	if i := c.find(ref); i >= 0 {
		c.entries[i].value = value
		return
	}
	start := len(c.terms)
	c.terms = append(c.terms, ref...)
	c.entries = append(c.entries, vcEntry{start: start, end: len(c.terms), value: value})
}

func (c *flatVirtualCache) Keys() []ast.Ref {
	var keys []ast.Ref
	for _, e := range c.entries[c.frameStart():] {
		if e.value != nil {
			keys = append(keys, ast.Ref(c.terms[e.start:e.end:e.end]).Copy())
		}
	}
	return keys
}
