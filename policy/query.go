package policy

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"

	"github.com/tollgate-pdp/tollgate"
)

// maxPreparedQueries bounds the Data API's prepared-query cache per compiled policy; clients
// ask for a handful of paths, and an unbounded map would let them grow memory at will.
const maxPreparedQueries = 256

// queryCache keeps prepared Data API queries by path for one compiled policy, so a repeated
// POST /v1/data/... does not recompile its query.
type queryCache struct {
	mu sync.RWMutex
	m  map[string]rego.PreparedEvalQuery
}

// Query serves the OPA Data API: it evaluates data.<path> (path is slash separated,
// "tollgate/decision"; empty means all of data) with input, a JSON-decoded Go value (nil: no
// input). defined is false when the document is undefined, as OPA answers {} then.
func (e *Engine) Query(ctx context.Context, path string, input any) (any, bool, error) {
	ref, err := dataRef(path)
	if err != nil {
		return nil, false, err
	}
	st := e.state.Load()
	pq, err := st.prepared(ctx, ref)
	if err != nil {
		return nil, false, err
	}
	var opts []rego.EvalOption
	if input != nil {
		v, err := ast.InterfaceToValue(input)
		if err != nil {
			return nil, false, &tollgate.Error{Code: tollgate.EInvalid, Field: "input",
				Message: "input: not a JSON value", Err: err}
		}
		opts = append(opts, rego.EvalParsedInput(v))
	}
	rs, err := pq.Eval(ctx, opts...)
	if err != nil {
		return nil, false, &tollgate.Error{Code: tollgate.EInternal, Message: "policy evaluation failed",
			Err: fmt.Errorf("eval %s (%s): %w", ref, st.revision, err)}
	}
	if len(rs) == 0 || len(rs[0].Expressions) == 0 {
		return nil, false, nil
	}
	return rs[0].Expressions[0].Value, true, nil
}

// dataRef turns "a/b/c" into data.a.b.c. Segments are taken as strings (as OPA's server does)
// and must be plain names: no empty segments and no "." or ".." games.
func dataRef(path string) (ast.Ref, error) {
	path = strings.TrimPrefix(path, "/")
	ref := ast.Ref{ast.DefaultRootDocument}
	if path == "" {
		return ref, nil
	}
	if len(path) > 512 {
		return nil, tollgate.FieldErrorf("path", "must be at most 512 bytes")
	}
	for seg := range strings.SplitSeq(path, "/") {
		if seg == "" {
			return nil, tollgate.FieldErrorf("path", "must not contain empty segments")
		}
		if seg == "." || seg == ".." {
			return nil, tollgate.FieldErrorf("path", "must not contain %q segments", seg)
		}
		for _, r := range seg {
			if !(r == '_' || r == '-' || r == '.' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
				return nil, tollgate.FieldErrorf("path", "segment %q may only contain letters, digits, '_', '-' and '.'", seg)
			}
		}
		ref = append(ref, ast.StringTerm(seg))
	}
	return ref, nil
}

func (st *compiled) prepared(ctx context.Context, ref ast.Ref) (rego.PreparedEvalQuery, error) {
	key := ref.String()
	st.queries.mu.RLock()
	pq, ok := st.queries.m[key]
	st.queries.mu.RUnlock()
	if ok {
		return pq, nil
	}
	st.queries.mu.Lock()
	defer st.queries.mu.Unlock()
	if pq, ok := st.queries.m[key]; ok {
		return pq, nil
	}
	pq, err := rego.New(
		rego.ParsedQuery(ast.NewBody(ast.NewExpr(ast.NewTerm(ref)))),
		rego.Compiler(st.compiler),
		rego.Store(st.store),
	).PrepareForEval(ctx)
	if err != nil {
		return rego.PreparedEvalQuery{}, fmt.Errorf("prepare query %s: %w", key, err)
	}
	if st.queries.m == nil || len(st.queries.m) >= maxPreparedQueries {
		st.queries.m = make(map[string]rego.PreparedEvalQuery)
	}
	st.queries.m[key] = pq
	return pq, nil
}
