package policy

import (
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/topdown"

	"github.com/tollgate-pdp/tollgate"
)

// The plan executor and OPA's evaluator give the same decision, fresh and stale, on random
// facts covering every outcome (the same generator as the property test).
func TestPlanMatchesTopdown(t *testing.T) {
	cat := propertyCatalog()
	planned := newEngine(t, Options{Catalog: cat})
	topdown := newEngine(t, Options{Catalog: cat, Evaluator: EvaluatorTopdown})
	if planned.Evaluator() != EvaluatorPlan || topdown.Evaluator() != EvaluatorTopdown {
		t.Fatalf("evaluators = %s, %s; want plan, topdown (plan: %v)", planned.Evaluator(), topdown.Evaluator(),
			planned.state.Load().planErr)
	}
	r := rand.New(rand.NewPCG(7, 11))
	const cases = 5_000
	for i := range cases {
		f := randomFacts(r)
		if i%4 == 0 {
			f.Stale, f.StaleMode = true, pick(r, "allow", "deny", "evaluate")
		}
		got, err := planned.Decide(context.Background(), f)
		if err != nil {
			t.Fatalf("case %d: plan: %v", i, err)
		}
		want, err := topdown.Decide(context.Background(), f)
		if err != nil {
			t.Fatalf("case %d: topdown: %v", i, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("case %d: facts %s stale=%v/%s\n plan    %s\n topdown %s", i, describe(f), f.Stale, f.StaleMode,
				show(got), show(want))
		}
	}
}

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
			src := sources{"t.rego": "package t\n" + tt.module}
			p, err := buildPlan(context.Background(), src, "data.t.q")
			if err != nil {
				t.Fatalf("plan: %v", err)
			}
			prog, err := newProgram(p, "data.t.q")
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
				got, gotErr := prog.eval(context.Background(), "data.t.q", input, ast.ObjectTerm())
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
					doc, err := ast.JSON(materialize(got).Value)
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

// A policy the executor does not cover keeps OPA's evaluator, says so, and still decides.
func TestPlanFallsBackToTopdown(t *testing.T) {
	tests := []struct {
		name, rule, reason string
	}{
		{"with", `decision := d if { d := data.tollgate.base with input.request.action as "feature.use" }`, "WithStmt"},
		{"clock", `decision := d if { time.now_ns() > 0; d := data.tollgate.base }`, "time.now_ns"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			// Rename the default decision, and wrap it in a rule the executor does not cover.
			b, err := defaultRego.ReadFile("rego/decision.rego")
			if err != nil {
				t.Fatal(err)
			}
			src := strings.Replace(string(b), "\ndecision := {", "\nbase := {", 1)
			src += "\n" + tt.rule + "\n"
			if err := os.WriteFile(filepath.Join(dir, "decision.rego"), []byte(src), 0o600); err != nil {
				t.Fatal(err)
			}
			e := newEngine(t, Options{PolicyDir: dir})
			if e.Evaluator() != EvaluatorTopdown {
				t.Fatalf("evaluator = %s, want topdown", e.Evaluator())
			}
			if err := e.state.Load().planErr; !errors.Is(err, errNoPlan) || !strings.Contains(err.Error(), tt.reason) {
				t.Fatalf("reason = %v, want one naming %s", err, tt.reason)
			}
			d, err := e.Decide(context.Background(), facts(vendor("business", tollgate.StatusActive, 0),
				tollgate.CheckRequest{Action: tollgate.ActionFeatureUse, Feature: "api_access"}))
			if err != nil || !d.Allow {
				t.Fatalf("decision = %+v, %v", d, err)
			}
		})
	}
}

func TestEvaluatorOption(t *testing.T) {
	_, err := New(context.Background(), Options{Evaluator: "wasm"})
	var fe *tollgate.Error
	if !errors.As(err, &fe) || fe.Field != "evaluator" {
		t.Fatalf("New(evaluator wasm) = %v, want a field error naming evaluator", err)
	}
	if e := newEngine(t, Options{Evaluator: EvaluatorTopdown}); e.Evaluator() != EvaluatorTopdown {
		t.Fatalf("evaluator = %s", e.Evaluator())
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

// The plan executor's input (planInput) answers every use of input as the object buildInput
// builds for OPA: reads, comparisons, built-ins, iteration, answers that contain it.
func TestPlanInputActsAsTheInputObject(t *testing.T) {
	module := `package t
q := {
	"request": input.request,
	"equal": input.request == {"vendor_id": "42", "action": "order.create", "platform": "", "count": null, "custom_count": null, "quantity": 2, "feature": "", "months": null, "custom": false},
	"count": count(input.request),
	"keys": [k | some k, _ in input.request],
	"object": is_object(input.request),
	"get": object.get(input, ["request", "quantity"], 0),
	"in": input.request in [input.request],
	"set": {input.request},
	"stale": object.get(input, "stale", false),
	"now": input.now,
	"unified": [1 | input.request = {"vendor_id": "42", "action": "order.create", "platform": "", "count": null, "custom_count": null, "quantity": 2, "feature": "", "months": null, "custom": false}],
	"same": [1 | x := input.request; x = input.request],
	"input": input,
	"add_on_codes": [a.code | some a in input.vendor.subscription.add_ons],
	"first_add_on": input.vendor.subscription.add_ons[0],
	"vendor_is_object": is_object(input.vendor),
	"request_is_string": is_string(input.request),
	"request_is_null": is_null(input.request),
	"type": type_name(input.request),
	"platform_or": object.get(input.request, "platform", "none"),
	"missing_or": object.get(input.request, "missing", "default"),
	"number_key": object.get(input.request, 1, "default"),
	"usage_get": object.get(input.vendor.usage, "orders", 0),
	"add_ons_equal": input.vendor.subscription.add_ons == [{"code": "extra_orders", "quantity": 2, "status": "active"}, {"code": "sms", "quantity": 1, "status": "cancelled"}],
}`
	p, err := buildPlan(context.Background(), sources{"t.rego": module}, "data.t.q")
	if err != nil {
		t.Fatal(err)
	}
	prog, err := newProgram(p, "data.t.q")
	if err != nil {
		t.Fatal(err)
	}
	pq, err := rego.New(rego.Query("data.t.q"), rego.Module("t.rego", module)).PrepareForEval(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, stale := range []bool{false, true} {
		v := vendor("essential", tollgate.StatusActive, 10)
		v.Subscription.AddOns = []tollgate.SubscriptionAddOn{{Code: "extra_orders", Quantity: 2, Status: "active"}, {Code: "sms", Quantity: 1, Status: "cancelled"}}
		f := facts(v, tollgate.CheckRequest{Action: tollgate.ActionOrderCreate, Quantity: i64(2)})
		f.Stale, f.StaleMode = stale, "deny"
		got, err := prog.eval(context.Background(), "data.t.q", planInput(f, testNow, f.Period, nil).term(), ast.ObjectTerm())
		if err != nil || got == nil {
			t.Fatalf("plan: %v, %v", got, err)
		}
		doc, err := ast.JSON(materialize(got).Value)
		if err != nil {
			t.Fatal(err)
		}
		in, err := ast.JSON(buildInput(f, testNow, f.Period, nil))
		if err != nil {
			t.Fatal(err)
		}
		rs, err := pq.Eval(context.Background(), rego.EvalInput(in))
		if err != nil || len(rs) != 1 {
			t.Fatalf("OPA: %v, %v", rs, err)
		}
		if g, w := mustJSON(t, doc), mustJSON(t, rs[0].Expressions[0].Value); g != w {
			t.Errorf("stale=%v:\n plan %s\n OPA  %s", stale, g, w)
		}
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
			got, err := p.eval(context.Background(), "q", ast.ObjectTerm(), ast.ObjectTerm())
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
