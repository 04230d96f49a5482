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

	"github.com/tollgate-pdp/tollgate"
	"github.com/tollgate-pdp/tollgate/policy/internal/planeval"
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
			if err := e.state.Load().planErr; !errors.Is(err, planeval.ErrNoPlan) || !strings.Contains(err.Error(), tt.reason) {
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
	p, err := planeval.Plan(context.Background(), sources{"t.rego": module}, "data.t.q")
	if err != nil {
		t.Fatal(err)
	}
	prog, err := planeval.Target{Keys: canonicalKeys()}.PrepareForEval(context.Background(), p, "data.t.q")
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
		got, err := prog.Eval(context.Background(), "data.t.q", planInput(f, testNow, f.Period, nil).term(), ast.ObjectTerm())
		if err != nil || got == nil {
			t.Fatalf("plan: %v, %v", got, err)
		}
		doc, err := ast.JSON(planeval.Materialize(got).Value)
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
