package profile

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/metrics"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/topdown"

	"github.com/tollgate-pdp/tollgate"
	"github.com/tollgate-pdp/tollgate/bench/internal/gen"
)

// This file measures OPA evaluation options the policy engine does not use yet, on a prepared
// query built like policy.Engine builds its own: the same policy files (policy/rego, no
// tests), data.catalog as the engine stores it (AST values on read), the input document of the
// benchmark mix as an ast.Value.

type rawEval struct {
	pq     rego.PreparedEvalQuery
	store  storage.Store
	inputs []ast.Value
}

func newRawEval(b *testing.B) *rawEval {
	b.Helper()
	ctx := context.Background()
	files, err := filepath.Glob(filepath.Join("..", "..", "policy", "rego", "*.rego"))
	if err != nil {
		b.Fatal(err)
	}
	modules := map[string]*ast.Module{}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.rego") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			b.Fatal(err)
		}
		m, err := ast.ParseModuleWithOpts(f, string(src), ast.ParserOptions{RegoVersion: ast.RegoV1})
		if err != nil {
			b.Fatal(err)
		}
		modules[f] = m
	}
	c := ast.NewCompiler().WithDefaultRegoVersion(ast.RegoV1)
	if c.Compile(modules); c.Failed() {
		b.Fatal(c.Errors)
	}
	cat, err := gen.CatalogDoc(tollgate.DefaultCatalog())
	if err != nil {
		b.Fatal(err)
	}
	store := inmem.NewFromObjectWithOpts(map[string]any{"catalog": cat},
		inmem.OptRoundTripOnWrite(true), inmem.OptReturnASTValuesOnRead(true))
	pq, err := rego.New(rego.Query("data.tollgate.decision"), rego.Compiler(c), rego.Store(store),
		rego.GenerateJSON(func(t *ast.Term, _ *rego.EvalContext) (any, error) { return t, nil }),
	).PrepareForEval(ctx)
	if err != nil {
		b.Fatal(err)
	}
	e := newEnvT(b, 0)
	now := time.Now()
	r := &rawEval{pq: pq, store: store}
	for i, q := range e.reqs[:5000] {
		req := map[string]any{"vendor_id": q.VendorID, "action": q.Action, "platform": "",
			"count": nil, "custom_count": nil, "quantity": nil, "feature": q.Feature, "months": nil, "custom": false}
		if q.Count != nil {
			req["count"] = *q.Count
		}
		if q.Quantity != nil {
			req["quantity"] = *q.Quantity
		}
		var vendor any
		if v, ok := e.store.Vendor(q.VendorID); ok {
			vendor = gen.VendorDoc(v, now)
		}
		in, err := ast.InterfaceToValue(map[string]any{"request": req, "vendor": vendor, "now": now.Unix()})
		if err != nil {
			b.Fatalf("input %d: %v", i, err)
		}
		r.inputs = append(r.inputs, in)
	}
	return r
}

type noCancel struct{}

func (noCancel) Cancel()         {}
func (noCancel) Cancelled() bool { return false }

var _ topdown.Cancel = noCancel{}

func (r *rawEval) run(b *testing.B, extra func() []rego.EvalOption) {
	ctx := context.Background()
	opts := extra()
	b.ReportAllocs()
	b.ResetTimer()
	clk := startCPU()
	defer clk.report(b)
	for i := 0; b.Loop(); i++ {
		o := append([]rego.EvalOption{rego.EvalParsedInput(r.inputs[i%len(r.inputs)]), rego.EvalMetrics(metrics.NoOp())}, opts...)
		rs, err := r.pq.Eval(ctx, o...)
		if err != nil || len(rs) != 1 {
			b.Fatalf("eval: %v %v", rs, err)
		}
	}
}

// BenchmarkEvalOptions: the engine's evaluation as it is (AsIs), with a shared never-cancelled
// topdown.Cancel (no goroutine + channel per evaluation: OPA starts one to watch ctx unless
// EvalExternalCancel is given), and additionally with one long-lived read transaction on the
// (immutable) catalog store instead of one per evaluation.
func BenchmarkEvalOptions(b *testing.B) {
	r := newRawEval(b)
	b.Run("AsIs", func(b *testing.B) { r.run(b, func() []rego.EvalOption { return nil }) })
	b.Run("ExternalCancel", func(b *testing.B) {
		r.run(b, func() []rego.EvalOption { return []rego.EvalOption{rego.EvalExternalCancel(noCancel{})} })
	})
	b.Run("ExternalCancel+SharedTxn", func(b *testing.B) {
		txn, err := r.store.NewTransaction(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		defer r.store.Abort(context.Background(), txn)
		r.run(b, func() []rego.EvalOption {
			return []rego.EvalOption{rego.EvalExternalCancel(noCancel{}), rego.EvalTransaction(txn)}
		})
	})
}
