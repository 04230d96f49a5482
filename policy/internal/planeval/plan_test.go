package planeval

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/topdown"
)

// Rego constructs the default policy does not use, so the executor is held to OPA's answers
// beyond it: each query is evaluated by both on several inputs.
func TestPlanControlFlowMatchesOPA(t *testing.T) {
	tests := []struct {
		name   string
		module string
		inputs []string
	}{
		{"else chain", `
q := "a" if { input.x == 1 } else := "b" if { input.x == 2 } else := "c"`,
			[]string{`{"x": 1}`, `{"x": 2}`, `{"x": 3}`, `{}`}},
		{"not and some", `
q if { not input.x; some y in input.ys; y > 2 }`,
			[]string{`{"ys": [1, 3]}`, `{"ys": [1, 2]}`, `{"x": true, "ys": [5]}`, `{"ys": {"a": 4}}`, `{"ys": "s"}`}},
		{"every", `
q if { every y in input.ys { y > 0 } }`,
			[]string{`{"ys": [1, 2]}`, `{"ys": [1, -2, 3]}`, `{"ys": []}`}},
		{"comprehensions", `
q := {"arr": [z | some y in input.ys; y != 2; z := y * 2], "set": {y | some y in input.ys}, "obj": {sprintf("k%d", [y]): y | some y in input.ys}, "n": count([1 | some _ in input.ys])}`,
			[]string{`{"ys": [1, 2, 3, 3]}`, `{"ys": []}`}},
		{"functions with several bodies", `
f(x) := "small" if x < 10
f(x) := "big" if x > 100
q := [f(y) | some y in input.ys]`,
			[]string{`{"ys": [1, 50, 500]}`}},
		{"a conflicting function is an error", `
f(x) := 1 if x > 0
f(x) := 2 if x > 1
q := f(input.x)`,
			[]string{`{"x": 0}`, `{"x": 1}`, `{"x": 2}`}},
		{"a conflicting complete rule is an error", `
r := 1 if input.a
r := 2 if input.b
q := r`,
			[]string{`{"a": true}`, `{"a": true, "b": true}`, `{}`}},
		{"a failing built-in is undefined", `
q := input.x / input.y`,
			[]string{`{"x": 1, "y": 2}`, `{"x": 1, "y": 0}`, `{"x": "a", "y": 1}`}},
		{"constant literals are not shared by mutation", `
base := {"a": 1, "b": [1, 2]}
q := object.union(base, {"c": input.c}) if input.c
q := base if not input.c`,
			[]string{`{"c": 3}`, `{}`}},
		{"dots into arrays, sets and scalars", `
q := [input.arr[1], input.s[2], object.get(input, ["o", "k"], "none")] if true
q2 := input.n.x`,
			[]string{`{"arr": [1, 2], "s": [2], "o": {"k": "v"}, "n": 1}`, `{"arr": [1], "s": [2], "o": {}}`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := map[string]string{"t.rego": "package t\n" + tt.module}
			p, err := Plan(context.Background(), src, "data.t.q")
			if err != nil {
				t.Fatalf("plan: %v", err)
			}
			prog, err := newProgram(p, nil, "data.t.q")
			if err != nil {
				t.Fatalf("convert: %v", err)
			}
			pq, err := rego.New(rego.Query("data.t.q"), rego.Module("t.rego", "package t\n"+tt.module)).
				PrepareForEval(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			for _, in := range tt.inputs {
				input := ast.MustParseTerm(in)
				got, gotErr := prog.Eval(context.Background(), "data.t.q", input, ast.ObjectTerm())
				v, err := ast.JSON(input.Value)
				if err != nil {
					t.Fatal(err)
				}
				rs, wantErr := pq.Eval(context.Background(), rego.EvalInput(v))
				if (gotErr != nil) != (wantErr != nil) {
					t.Fatalf("input %s: plan error %v, OPA error %v", in, gotErr, wantErr)
				}
				if wantErr != nil {
					continue
				}
				// Both compared as JSON, which is what the API answers (sets become arrays).
				want := "undefined"
				if len(rs) == 1 {
					want = mustJSON(t, rs[0].Expressions[0].Value)
				}
				gotS := "undefined"
				if got != nil {
					doc, err := ast.JSON(Materialize(got).Value)
					if err != nil {
						t.Fatal(err)
					}
					gotS = mustJSON(t, doc)
				}
				if gotS != want {
					t.Errorf("input %s: plan %s, OPA %s", in, gotS, want)
				}
			}
		})
	}
}

// A plan the executor cannot carry out fails the evaluation with an error; it never panics the
// process or yields an answer.
func TestPlanExecutorFailsClosed(t *testing.T) {
	block := func(stmts ...stmt) *planFunc {
		return &planFunc{name: "f", params: []int{0, 1}, ret: 2, locals: 4, memo: 0,
			blocks: []*planBlock{{stmts: append(stmts, stmt{kind: sAssign, a: operand{term: ast.BooleanTerm(true)}, target: 2})}}}
	}
	k, v := operand{term: ast.StringTerm("k")}, operand{term: ast.NullTerm()}
	tests := []struct {
		name    string
		fn      *planFunc
		wantErr string // "" = undefined without error
	}{
		{"insert into an undefined local", block(stmt{kind: sObjectInsert, a: k, b: v, target: 3}), "object insert into an undefined local"},
		{"append to a number", block(stmt{kind: sAssign, a: operand{term: ast.IntNumberTerm(1)}, target: 3},
			stmt{kind: sArrayAppend, a: v, target: 3}), "array append to number"},
		{"add to an undefined local", block(stmt{kind: sSetAdd, a: v, target: 3}), "set add to an undefined local"},
		{"a built-in given an undefined argument", block(stmt{kind: sCallBuiltin, target: 3, stmtExt: &stmtExt{name: "count",
			builtin: topdown.GetBuiltin("count"), args: []operand{{local: 3}}}}), ""},
		{"a built-in that panics", block(stmt{kind: sCallBuiltin, target: 3, stmtExt: &stmtExt{name: "boom", args: []operand{k},
			builtin: func(topdown.BuiltinContext, []*ast.Term, func(*ast.Term) error) error { panic("boom") }}}), "plan executor: boom"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &program{funcs: []*planFunc{tt.fn}, entries: map[string]*planFunc{"q": tt.fn}, consts: map[*ast.Term]bool{}}
			got, err := p.Eval(context.Background(), "q", ast.ObjectTerm(), ast.ObjectTerm())
			if tt.wantErr == "" {
				if err != nil || got != nil {
					t.Fatalf("eval = %v, %v; want undefined", got, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || got != nil {
				t.Fatalf("eval = %v, %v; want an error containing %q", got, err, tt.wantErr)
			}
		})
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
