package policy

import (
	"context"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/tollgate-pdp/tollgate"
)

// With OPA's evaluator, the decision is read from the evaluation's memo, not re-copied through
// the query's binding.
func TestDecideReadsTheRuleValueFromTheMemo(t *testing.T) {
	e := newEngine(t, Options{Evaluator: EvaluatorTopdown})
	before := directMemoHits.Load()
	d, err := e.Decide(context.Background(), facts(vendor("essential", tollgate.StatusActive, 10),
		tollgate.CheckRequest{Action: tollgate.ActionOrderCreate}))
	if err != nil {
		t.Fatal(err)
	}
	if !d.Allow || d.Code != "ok" {
		t.Fatalf("decision = %+v", d)
	}
	if directMemoHits.Load() == before {
		t.Fatal("the decision was not read from the evaluation's memo")
	}
}

func TestFlatVirtualCacheFrames(t *testing.T) {
	c := &flatVirtualCache{}
	a, b := ast.MustParseRef("data.x.a"), ast.MustParseRef("data.x.b")
	c.Put(a, ast.IntNumberTerm(1))
	c.Put(b, nil)
	if v, undef := c.Get(a); v == nil || undef {
		t.Fatalf("Get(a) = %v, %v", v, undef)
	}
	if v, undef := c.Get(b); v != nil || !undef {
		t.Fatalf("Get(b) = %v, %v; want undefined", v, undef)
	}
	c.Push()
	if v, undef := c.Get(a); v != nil || undef {
		t.Fatal("a new frame starts empty")
	}
	c.Put(a, ast.IntNumberTerm(2))
	if v, _ := c.Get(a); !v.Equal(ast.IntNumberTerm(2)) {
		t.Fatalf("Get(a) in frame = %v", v)
	}
	if len(c.Keys()) != 1 {
		t.Fatalf("Keys() = %v", c.Keys())
	}
	c.Pop()
	if v, _ := c.Get(a); !v.Equal(ast.IntNumberTerm(1)) {
		t.Fatalf("Get(a) after Pop = %v", v)
	}
	if c.find(ast.MustParseRef("data.x")) >= 0 {
		t.Fatal("a prefix is not an entry")
	}
}
