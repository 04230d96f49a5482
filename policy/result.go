package policy

import (
	"fmt"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/tollgate-pdp/tollgate"
	"github.com/tollgate-pdp/tollgate/policy/internal/planeval"
)

// Keys of the decision object (api/openapi.yaml, Decision), read straight from the AST result.
var (
	kAllow     = ast.StringTerm("allow")
	kReason    = ast.StringTerm("reason")
	kLimit     = ast.StringTerm("limit")
	kUsed      = ast.StringTerm("used")
	kRemaining = ast.StringTerm("remaining")
	kUpgradeTo = ast.StringTerm("upgrade_to")
)

// keyed is an object read by key: an ast.Object, or the plan executor's planeval.Fields.
type keyed interface {
	Get(key *ast.Term) *ast.Term
}

// toDecision reads the policy's decision object. A policy that returns something else is a
// broken policy, reported as an error rather than a silent deny.
func toDecision(v ast.Value) (tollgate.Decision, error) {
	var obj keyed
	switch o := v.(type) {
	case ast.Object:
		obj = o
	case *planeval.Fields:
		obj = o
	default:
		return tollgate.Decision{}, fmt.Errorf("data.tollgate.decision is %s, not an object", ast.ValueName(v))
	}
	var d tollgate.Decision
	var err error
	if d.Allow, err = boolField(obj, kAllow); err != nil {
		return d, err
	}
	if d.Code, err = stringField(obj, kCode, false); err != nil {
		return d, err
	}
	if d.Reason, err = stringField(obj, kReason, true); err != nil {
		return d, err
	}
	if d.Limit, err = intField(obj, kLimit); err != nil {
		return d, err
	}
	used, err := intField(obj, kUsed)
	if err != nil {
		return d, err
	}
	if used != nil {
		d.Used = *used
	}
	if d.Remaining, err = intField(obj, kRemaining); err != nil {
		return d, err
	}
	if d.Tier, err = stringField(obj, kTier, true); err != nil {
		return d, err
	}
	if d.Status, err = stringField(obj, kStatus, true); err != nil {
		return d, err
	}
	if t := obj.Get(kUpgradeTo); t != nil {
		switch x := t.Value.(type) {
		case ast.Null:
		case ast.String:
			s := string(x)
			d.UpgradeTo = &s
		default:
			return d, fmt.Errorf("decision.upgrade_to is %s, want string or null", ast.ValueName(t.Value))
		}
	}
	if d.StaleMode, err = stringField(obj, kStaleMode, true); err != nil {
		return d, err
	}
	return d, nil
}

func boolField(obj keyed, k *ast.Term) (bool, error) {
	t := obj.Get(k)
	if t == nil {
		return false, fmt.Errorf("decision.%s is missing", k.Value.(ast.String))
	}
	b, ok := t.Value.(ast.Boolean)
	if !ok {
		return false, fmt.Errorf("decision.%s is %s, want boolean", k.Value.(ast.String), ast.ValueName(t.Value))
	}
	return bool(b), nil
}

func stringField(obj keyed, k *ast.Term, optional bool) (string, error) {
	t := obj.Get(k)
	if t == nil {
		if optional {
			return "", nil
		}
		return "", fmt.Errorf("decision.%s is missing", k.Value.(ast.String))
	}
	switch x := t.Value.(type) {
	case ast.String:
		return string(x), nil
	case ast.Null:
		if optional {
			return "", nil
		}
	}
	return "", fmt.Errorf("decision.%s is %s, want string", k.Value.(ast.String), ast.ValueName(t.Value))
}

// intField reads an optional integer: missing or null is nil.
func intField(obj keyed, k *ast.Term) (*int64, error) {
	t := obj.Get(k)
	if t == nil {
		return nil, nil
	}
	switch x := t.Value.(type) {
	case ast.Null:
		return nil, nil
	case ast.Number:
		n, ok := x.Int64()
		if !ok {
			return nil, fmt.Errorf("decision.%s is %s, want an integer", k.Value.(ast.String), x)
		}
		return &n, nil
	}
	return nil, fmt.Errorf("decision.%s is %s, want number or null", k.Value.(ast.String), ast.ValueName(t.Value))
}
