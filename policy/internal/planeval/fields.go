package planeval

import (
	"sync"

	"github.com/open-policy-agent/opa/v1/ast"
)

// Fields is an object of known keys the plan executor reads by key without building an
// ast.Object: the input document and its request are built on every uncached decision, and so
// are object literals with constant keys such as the decision itself; as ast.Objects (a hash
// map each, every key hashed) they were half of a decision's allocations. The executor looks keys up directly (dot); anything else that receives one (a
// built-in, a comparison, an answer, a scan) gets the equal ast.Object, built once on first
// need (object). It is an ast.Value so it can sit in a term; its methods answer as that object.
type Fields struct {
	Keys []*ast.Term // shared, never modified
	Vals []*ast.Term
	once sync.Once
	obj  ast.Object
}

// Get is the value of key, nil when absent.
func (o *Fields) Get(key *ast.Term) *ast.Term {
	for i, kt := range o.Keys {
		if kt == key {
			return o.Vals[i]
		}
	}
	k, ok := key.Value.(ast.String)
	if !ok {
		return nil
	}
	for i, kt := range o.Keys {
		if kt.Value.(ast.String) == k {
			return o.Vals[i]
		}
	}
	return nil
}

// object is the equal ast.Object (nested fields converted too).
func (o *Fields) object() ast.Object {
	o.once.Do(func() {
		items := make([][2]*ast.Term, len(o.Keys))
		for i, k := range o.Keys {
			items[i] = [2]*ast.Term{k, Materialize(o.Vals[i])}
		}
		o.obj = ast.NewObject(items...)
	})
	return o.obj
}

// Materialize returns t, or a term of the equal ast value when t holds fields (also inside
// an array, such as input.vendor.subscription.add_ons).
func Materialize(t *ast.Term) *ast.Term {
	if t == nil {
		return nil
	}
	switch v := t.Value.(type) {
	case *Fields:
		return ast.NewTerm(v.object())
	case *ast.Array:
		var out []*ast.Term
		for i := range v.Len() {
			e := v.Elem(i)
			m := Materialize(e)
			if m != e && out == nil {
				out = make([]*ast.Term, i, v.Len())
				for j := range i {
					out[j] = v.Elem(j)
				}
			}
			if out != nil {
				out = append(out, m)
			}
		}
		if out != nil {
			return ast.ArrayTerm(out...)
		}
	}
	return t
}

func (o *Fields) Compare(other ast.Value) int {
	if x, ok := other.(*Fields); ok {
		other = x.object()
	}
	return o.object().Compare(other)
}

func (o *Fields) Find(path ast.Ref) (ast.Value, error) { return o.object().Find(path) }
func (o *Fields) Hash() int                            { return o.object().Hash() }
func (o *Fields) IsGround() bool                       { return true }
func (o *Fields) String() string                       { return o.object().String() }
func (o *Fields) StringLength() int                    { return o.object().StringLength() }

// keyedBuiltin names a built-in the executor answers itself when its first argument is Fields,
// without building the object: the policy asks is_object(input.vendor) and
// object.get(input.request, "platform", "") on every decision that leaves the fast paths, and
// building the vendor's objects for that was a fifth of such a decision's allocations. The
// answers are what the built-ins give for the equal object (TestPlanInputActsAsTheInputObject).
type keyedBuiltin uint8

const (
	notKeyed  keyedBuiltin = iota
	isObject               // is_object(x): true
	isOther                // is_string, is_number, ... (x): false
	typeName               // type_name(x): "object"
	objectGet              // object.get(x, key, default) with a string key
)

var keyedBuiltins = map[string]keyedBuiltin{
	"is_object": isObject, "is_string": isOther, "is_number": isOther, "is_boolean": isOther,
	"is_array": isOther, "is_set": isOther, "is_null": isOther, "type_name": typeName,
	"object.get": objectGet,
}

var objectTypeName = ast.StringTerm("object")

// answer is the built-in's result for o and the other arguments; false when it needs the
// object after all (object.get with a path or a non-string key).
func (b keyedBuiltin) answer(o *Fields, rest []operand, get func(operand) *ast.Term) (*ast.Term, bool) {
	switch b {
	case isObject:
		return ast.InternedTerm(true), true
	case isOther:
		return ast.InternedTerm(false), true
	case typeName:
		return objectTypeName, true
	case objectGet:
		if len(rest) != 2 {
			return nil, false
		}
		key, def := get(rest[0]), get(rest[1])
		if key == nil || def == nil {
			return nil, false
		}
		if _, ok := key.Value.(ast.String); !ok {
			return nil, false
		}
		if v := o.Get(key); v != nil {
			return v, true
		}
		return def, true
	}
	return nil, false
}
