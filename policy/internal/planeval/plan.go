// Package planeval executes OPA's plan of a policy (the intermediate representation OPA
// compiles to Wasm from, `opa build -t plan`) in Go. Its surface is the shape of OPA's
// rego.TargetPlugin: Target.PrepareForEval turns a plan into an Evaluator, which answers a query
// for an input and a data document. It is handed to whoever uses it, never registered globally.
package planeval

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/bundle"
	"github.com/open-policy-agent/opa/v1/compile"
	"github.com/open-policy-agent/opa/v1/ir"
	"github.com/open-policy-agent/opa/v1/topdown"
)

// A plan is the policy as compiled by OPA's own planner (the intermediate representation OPA
// compiles to Wasm from, `opa build -t plan`): every rule becomes a function of straight-line
// statements over numbered locals, with rule indexing, unification and variable bindings
// already resolved at compile time. Executing it (exec.go) does the same work as OPA's
// evaluator minus that per-request bookkeeping, which is most of an uncached decision's cost
// (policy/README.md, Performance). The Rego stays the only statement of the rules: the
// plan is generated from it whenever the modules change, and tests hold the two evaluators to identical
// answers.
//
// A policy the executor does not cover (a statement kind it does not implement, a built-in
// outside pureBuiltins, or a plan OPA cannot produce) is an error wrapping ErrNoPlan: the caller
// keeps OPA's evaluator.

// ErrNoPlan wraps the reason a policy is evaluated by OPA's evaluator instead of its plan.
var ErrNoPlan = errors.New("policy is evaluated without a plan")

// Plan compiles the modules (file name → Rego v1 text) into an IR plan with one entry point per
// query ("data.tollgate.decision" → "tollgate/decision").
func Plan(ctx context.Context, modules map[string]string, queries ...string) (*ir.Policy, error) {
	b := &bundle.Bundle{Data: map[string]any{}}
	for name, text := range modules {
		m, err := ast.ParseModuleWithOpts(name, text, ast.ParserOptions{RegoVersion: ast.RegoV1})
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", name, err)
		}
		b.Modules = append(b.Modules, bundle.ModuleFile{URL: name, Path: name, Raw: []byte(text), Parsed: m})
	}
	entrypoints := make([]string, len(queries))
	for i, q := range queries {
		entrypoints[i] = strings.ReplaceAll(strings.TrimPrefix(q, "data."), ".", "/")
	}
	c := compile.New().
		WithTarget(compile.TargetPlan).
		WithRegoVersion(ast.RegoV1).
		WithPruneUnused(true).
		WithEntrypoints(entrypoints...).
		WithBundle(b).
		WithOutput(&bytes.Buffer{})
	if err := c.Build(ctx); err != nil {
		return nil, fmt.Errorf("%w: plan: %w", ErrNoPlan, err)
	}
	mods := c.Bundle().PlanModules
	if len(mods) != 1 {
		return nil, fmt.Errorf("%w: plan: %d plan modules", ErrNoPlan, len(mods))
	}
	var p ir.Policy
	if err := json.Unmarshal(mods[0].Raw, &p); err != nil {
		return nil, fmt.Errorf("%w: decode plan: %w", ErrNoPlan, err)
	}
	return &p, nil
}

// pureBuiltins are the built-in functions a plan may call: deterministic, and needing nothing
// of the evaluation context (no clock, cache, network, tracer or print hook). A plan calling
// any other keeps OPA's evaluator, which supplies that context.
var pureBuiltins = map[string]bool{
	"equal": true, "neq": true, "lt": true, "lte": true, "gt": true, "gte": true,
	"plus": true, "minus": true, "mul": true, "div": true, "rem": true, "abs": true,
	"round": true, "ceil": true, "floor": true, "numbers.range": true, "to_number": true,
	"count": true, "sum": true, "product": true, "max": true, "min": true, "sort": true,
	"is_number": true, "is_string": true, "is_boolean": true, "is_array": true, "is_set": true,
	"is_object": true, "is_null": true, "type_name": true,
	"internal.member_2": true, "internal.member_3": true,
	"object.get": true, "object.keys": true, "object.union": true, "object.remove": true,
	"object.filter": true, "object.subset": true,
	"array.concat": true, "array.slice": true, "array.reverse": true,
	"and": true, "or": true, "intersection": true, "union": true,
	"concat": true, "contains": true, "startswith": true, "endswith": true, "lower": true,
	"upper": true, "split": true, "replace": true, "trim": true, "trim_space": true,
	"trim_prefix": true, "trim_suffix": true, "trim_left": true, "trim_right": true,
	"substring": true, "indexof": true, "sprintf": true, "format_int": true,
	"strings.replace_n": true, "strings.count": true, "strings.any_prefix_match": true,
	"strings.any_suffix_match": true,
}

// program is a plan converted for execution: operands resolved to locals or constant terms,
// calls resolved to functions or built-ins, each function's frame size known.
type program struct {
	// consts are the composite values built once at conversion (literals whose elements are
	// all constants), shared by every evaluation: a statement that would modify one modifies
	// a copy (see run.owned).
	consts  map[*ast.Term]bool
	funcs   []*planFunc
	entries map[string]*planFunc // query ("data.tollgate.decision") → its rule's function
}

type planFunc struct {
	name   string
	params []int
	ret    int
	locals int // frame size
	blocks []*planBlock
	memo   int // index into a run's memo for rules without arguments (input, data); -1 otherwise
}

type planBlock struct {
	stmts []stmt
}

type stmtKind uint8

const (
	sAssign stmtKind = iota
	sAssignOnce
	sReset
	sDot
	sEqual
	sNotEqual
	sIsDefined
	sIsUndefined
	sIsArray
	sIsObject
	sIsSet
	sCall
	sCallBuiltin
	sBlock
	sBreak
	sNot
	sScan
	sReturn
	sLen
	sMakeObject
	sMakeArray
	sMakeSet
	sObjectInsert
	sObjectInsertOnce
	sArrayAppend
	sSetAdd
	sNop
	sLiteral // a new object, array or set with the elements in args (one statement for a run)
)

// operand is a local (term == nil) or a constant term.
type operand struct {
	local int
	term  *ast.Term
}

// stmt is one cache line (64 bytes on amd64): a decision runs 70-360 of the plan's ~1,400
// statements, and at 184 bytes each the statements of one denial alone filled the L1 cache.
// What only calls, literals, blocks and scans need is behind stmtExt.
type stmt struct {
	kind     stmtKind
	onKeys   keyedBuiltin // a built-in answered directly when its first argument is fields
	a, b     operand      // sources: value/key, or the two sides of a comparison
	target   int          // the local written (or the collection appended to)
	index    int          // break index; capacity of a new collection
	*stmtExt              // nil unless the kind needs it
}

// stmtExt holds the fields of the statements that need them: calls (fn, builtin, name, args),
// literals (args, keys), blocks, nots and scans (blocks; key and value locals for scans).
type stmtExt struct {
	fn      *planFunc
	builtin topdown.BuiltinFunc
	name    string // built-in name, for errors
	args    []operand
	keys    []*ast.Term // sLiteral of an object whose keys are all constant strings: the keys
	blocks  []*planBlock
	key     int // scan: key and value locals
	value   int
}

// Target prepares plans for evaluation (the shape of OPA's rego.TargetPlugin).
type Target struct {
	// Keys are key terms the caller's documents use (input keys, answer keys): a plan's
	// constant strings with their names are replaced by them, so Fields.Get usually finds a key
	// by pointer.
	Keys []*ast.Term
}

// Evaluator answers the queries a plan was prepared for (the shape of rego.TargetPluginEval).
type Evaluator interface {
	// Eval answers the query's rule for input and data (nil: undefined). An object answer may
	// be *Fields (Materialize gives the ast.Object).
	Eval(ctx context.Context, query string, input, data *ast.Term) (*ast.Term, error)
}

// PrepareForEval converts a plan; queries are the entry points it was built for. A plan the
// executor does not cover is an error wrapping ErrNoPlan.
func (t Target) PrepareForEval(_ context.Context, p *ir.Policy, queries ...string) (Evaluator, error) {
	canonical := make(map[string]*ast.Term, len(t.Keys))
	for _, k := range t.Keys {
		if s, ok := k.Value.(ast.String); ok {
			canonical[string(s)] = k
		}
	}
	prog, err := newProgram(p, canonical, queries...)
	if err != nil {
		return nil, err // not a nil *program in a non-nil Evaluator
	}
	return prog, nil
}

// newProgram converts a plan; canonical are key terms by name (see Target.Keys).
func newProgram(p *ir.Policy, canonical map[string]*ast.Term, queries ...string) (*program, error) {
	if p.Static == nil || p.Funcs == nil || p.Plans == nil {
		return nil, fmt.Errorf("%w: empty plan", ErrNoPlan)
	}
	c := &converter{p: p, prog: &program{entries: map[string]*planFunc{}, consts: map[*ast.Term]bool{}},
		byName: map[string]*planFunc{}}
	c.strings = make([]*ast.Term, len(p.Static.Strings))
	for i, s := range p.Static.Strings {
		if t, ok := canonical[s.Value]; ok {
			c.strings[i] = t
		} else {
			c.strings[i] = ast.StringTerm(s.Value)
		}
	}
	memo := 0
	for _, f := range p.Funcs.Funcs {
		pf := &planFunc{name: f.Name, ret: int(f.Return), memo: -1}
		for _, l := range f.Params {
			pf.params = append(pf.params, int(l))
		}
		if len(f.Params) == 2 {
			pf.memo = memo
			memo++
		}
		c.byName[f.Name] = pf
		c.prog.funcs = append(c.prog.funcs, pf)
	}
	for i, f := range p.Funcs.Funcs {
		pf := c.prog.funcs[i]
		c.maxLocal = max(pf.ret, 1)
		for _, l := range pf.params {
			c.maxLocal = max(c.maxLocal, l)
		}
		for _, b := range f.Blocks {
			cb, err := c.block(b)
			if err != nil {
				return nil, fmt.Errorf("%w: %s: %w", ErrNoPlan, f.Name, err)
			}
			pf.blocks = append(pf.blocks, cb)
		}
		pf.locals = c.maxLocal + 1
	}
	for _, q := range queries {
		fn, err := c.entry(q)
		if err != nil {
			return nil, err
		}
		c.prog.entries[q] = fn
	}
	return c.prog, nil
}

type converter struct {
	p        *ir.Policy
	prog     *program
	byName   map[string]*planFunc
	strings  []*ast.Term
	maxLocal int
}

// entry finds the function a query's plan calls: the planner plans an entry point as one call
// of its rule's function with (input, data), whose answer it wraps into a result set; calling
// the function directly skips that wrapping.
func (c *converter) entry(query string) (*planFunc, error) {
	name := strings.ReplaceAll(strings.TrimPrefix(query, "data."), ".", "/")
	for _, pl := range c.p.Plans.Plans {
		if pl.Name != name {
			continue
		}
		for _, b := range pl.Blocks {
			for _, s := range b.Stmts {
				call, ok := s.(*ir.CallStmt)
				if !ok || len(call.Args) != 2 {
					continue
				}
				fn := c.byName[call.Func]
				if fn != nil && fn.memo >= 0 && isLocal(call.Args[0], ir.Input) && isLocal(call.Args[1], ir.Data) {
					return fn, nil
				}
			}
		}
		return nil, fmt.Errorf("%w: plan %s does not call one rule", ErrNoPlan, name)
	}
	return nil, fmt.Errorf("%w: no plan for %s", ErrNoPlan, name)
}

func isLocal(o ir.Operand, l ir.Local) bool {
	v, ok := valOf(o.Value).(ir.Local)
	return ok && v == l
}

// valOf dereferences an operand's value: a decoded plan holds pointers (*ir.Local), a plan built
// in memory values.
func valOf(v ir.Val) ir.Val {
	switch p := v.(type) {
	case *ir.Local:
		return *p
	case *ir.Bool:
		return *p
	case *ir.StringIndex:
		return *p
	}
	return v
}

func (c *converter) local(l ir.Local) int {
	c.maxLocal = max(c.maxLocal, int(l))
	return int(l)
}

func (c *converter) operand(o ir.Operand) (operand, error) {
	switch v := valOf(o.Value).(type) {
	case ir.Local:
		return operand{local: c.local(v)}, nil
	case ir.Bool:
		return operand{term: ast.InternedTerm(bool(v))}, nil
	case ir.StringIndex:
		if int(v) < 0 || int(v) >= len(c.strings) {
			return operand{}, fmt.Errorf("string index %d out of range", v)
		}
		return operand{term: c.strings[v]}, nil
	}
	return operand{}, fmt.Errorf("operand %v not supported", o.Value)
}

func (c *converter) block(b *ir.Block) (*planBlock, error) {
	out := &planBlock{stmts: make([]stmt, 0, len(b.Stmts))}
	for _, s := range b.Stmts {
		cs, err := c.stmt(s)
		if err != nil {
			return nil, err
		}
		out.stmts = append(out.stmts, cs)
	}
	out.stmts = c.literals(out.stmts)
	return out, nil
}

// literals replaces each run of "make a collection, then add elements to it" (how the planner
// spells an object, array or set literal such as {"trial": true, "active": true}) with one
// statement that builds the collection whole, or, when every element is a constant, with the
// value built once here.
func (c *converter) literals(stmts []stmt) []stmt {
	out := stmts[:0:0]
	for i := 0; i < len(stmts); i++ {
		s := stmts[i]
		var add stmtKind
		switch s.kind {
		case sMakeObject:
			add = sObjectInsert
		case sMakeArray:
			add = sArrayAppend
		case sMakeSet:
			add = sSetAdd
		default:
			out = append(out, s)
			continue
		}
		lit := stmt{kind: sLiteral, target: s.target, index: int(s.kind), stmtExt: &stmtExt{}}
		// The planner puts constant assignments of the values between the adds
		// (MakeNullStmt, MakeNumberRefStmt): those stay statements, moved ahead of the
		// literal, and the literal reads their constants directly.
		var moved []stmt
		consts := map[int]*ast.Term{}
		read := map[int]bool{}
		resolve := func(o operand) operand {
			if t, ok := consts[o.local]; ok && o.term == nil {
				return operand{term: t}
			}
			if o.term == nil {
				read[o.local] = true
			}
			return o
		}
		j := i + 1
		for ; j < len(stmts); j++ {
			e := stmts[j]
			if e.kind == sAssign && e.a.term != nil && e.target != s.target && !read[e.target] {
				consts[e.target] = e.a.term
				moved = append(moved, e)
				continue
			}
			if e.kind != add || e.target != s.target {
				break
			}
			if add == sObjectInsert {
				// Only distinct constant keys: a repeated key (the later insert wins) or a key
				// known only at run time stays a statement of its own.
				k := resolve(e.a)
				if k.term == nil || hasKey(lit.args, k.term) {
					break
				}
				lit.args = append(lit.args, k, resolve(e.b))
				continue
			}
			lit.args = append(lit.args, resolve(e.a))
		}
		// Constant assignments after the last add are not part of the run.
		for j > i+1 && len(moved) > 0 && stmts[j-1].kind == sAssign {
			j--
			moved = moved[:len(moved)-1]
		}
		if len(lit.args) == 0 {
			out = append(out, s)
			continue
		}
		i = j - 1
		out = append(out, moved...)
		if t := constLiteral(&lit); t != nil {
			c.prog.consts[t] = true
			out = append(out, stmt{kind: sAssign, a: operand{term: t}, target: s.target})
			continue
		}
		if add == sObjectInsert {
			lit.keys = stringKeys(lit.args)
		}
		out = append(out, lit)
	}
	return out
}

// stringKeys are an object literal's keys when all are strings (args alternate key, value);
// nil otherwise.
func stringKeys(args []operand) []*ast.Term {
	keys := make([]*ast.Term, 0, len(args)/2)
	for i := 0; i < len(args); i += 2 {
		if _, ok := args[i].term.Value.(ast.String); !ok {
			return nil
		}
		keys = append(keys, args[i].term)
	}
	return keys
}

func hasKey(args []operand, k *ast.Term) bool {
	for i := 0; i < len(args); i += 2 {
		if args[i].term != nil && args[i].term.Equal(k) {
			return true
		}
	}
	return false
}

// constLiteral builds a literal whose elements are all constants; nil otherwise.
func constLiteral(lit *stmt) *ast.Term {
	terms := make([]*ast.Term, len(lit.args))
	for i, a := range lit.args {
		if a.term == nil {
			return nil
		}
		terms[i] = a.term
	}
	return buildLiteral(stmtKind(lit.index), terms)
}

// buildLiteral makes the collection of kind (sMakeObject: key, value pairs) from elems.
func buildLiteral(kind stmtKind, elems []*ast.Term) *ast.Term {
	switch kind {
	case sMakeObject:
		items := make([][2]*ast.Term, len(elems)/2)
		for i := range items {
			items[i] = [2]*ast.Term{elems[2*i], elems[2*i+1]}
		}
		return ast.NewTerm(ast.NewObject(items...))
	case sMakeArray:
		return ast.NewTerm(ast.NewArray(slices.Clone(elems)...))
	default:
		return ast.NewTerm(ast.NewSet(elems...))
	}
}

func (c *converter) blocks(bs []*ir.Block) ([]*planBlock, error) {
	out := make([]*planBlock, len(bs))
	for i, b := range bs {
		cb, err := c.block(b)
		if err != nil {
			return nil, err
		}
		out[i] = cb
	}
	return out, nil
}

// two converts a statement's two operands.
func (c *converter) two(kind stmtKind, x, y ir.Operand) (stmt, error) {
	a, err := c.operand(x)
	if err != nil {
		return stmt{}, err
	}
	b, err := c.operand(y)
	if err != nil {
		return stmt{}, err
	}
	return stmt{kind: kind, a: a, b: b}, nil
}

func (c *converter) one(kind stmtKind, x ir.Operand, target int) (stmt, error) {
	a, err := c.operand(x)
	return stmt{kind: kind, a: a, target: target}, err
}

func (c *converter) stmt(s ir.Stmt) (stmt, error) {
	switch s := s.(type) {
	case *ir.AssignVarStmt:
		return c.one(sAssign, s.Source, c.local(s.Target))
	case *ir.AssignVarOnceStmt:
		return c.one(sAssignOnce, s.Source, c.local(s.Target))
	case *ir.AssignIntStmt:
		return stmt{kind: sAssign, a: operand{term: ast.InternedTerm(int(s.Value))}, target: c.local(s.Target)}, nil
	case *ir.ResetLocalStmt:
		return stmt{kind: sReset, target: c.local(s.Target)}, nil
	case *ir.MakeNullStmt:
		return stmt{kind: sAssign, a: operand{term: ast.InternedNullTerm}, target: c.local(s.Target)}, nil
	case *ir.MakeNumberIntStmt:
		return stmt{kind: sAssign, a: operand{term: ast.InternedTerm(int(s.Value))}, target: c.local(s.Target)}, nil
	case *ir.MakeNumberRefStmt:
		if s.Index < 0 || s.Index >= len(c.strings) {
			return stmt{}, fmt.Errorf("number index %d out of range", s.Index)
		}
		return stmt{kind: sAssign, a: operand{term: ast.NumberTerm(json.Number(c.p.Static.Strings[s.Index].Value))},
			target: c.local(s.Target)}, nil
	case *ir.DotStmt:
		st, err := c.two(sDot, s.Source, s.Key)
		st.target = c.local(s.Target)
		return st, err
	case *ir.EqualStmt:
		return c.two(sEqual, s.A, s.B)
	case *ir.NotEqualStmt:
		return c.two(sNotEqual, s.A, s.B)
	case *ir.IsDefinedStmt:
		return stmt{kind: sIsDefined, a: operand{local: c.local(s.Source)}}, nil
	case *ir.IsUndefinedStmt:
		return stmt{kind: sIsUndefined, a: operand{local: c.local(s.Source)}}, nil
	case *ir.IsArrayStmt:
		return c.one(sIsArray, s.Source, 0)
	case *ir.IsObjectStmt:
		return c.one(sIsObject, s.Source, 0)
	case *ir.IsSetStmt:
		return c.one(sIsSet, s.Source, 0)
	case *ir.LenStmt:
		return c.one(sLen, s.Source, c.local(s.Target))
	case *ir.CallStmt:
		return c.call(s)
	case *ir.BlockStmt:
		bs, err := c.blocks(s.Blocks)
		return stmt{kind: sBlock, stmtExt: &stmtExt{blocks: bs}}, err
	case *ir.BreakStmt:
		return stmt{kind: sBreak, index: int(s.Index)}, nil
	case *ir.NotStmt:
		b, err := c.block(s.Block)
		return stmt{kind: sNot, stmtExt: &stmtExt{blocks: []*planBlock{b}}}, err
	case *ir.ScanStmt:
		b, err := c.block(s.Block)
		return stmt{kind: sScan, a: operand{local: c.local(s.Source)},
			stmtExt: &stmtExt{key: c.local(s.Key), value: c.local(s.Value), blocks: []*planBlock{b}}}, err
	case *ir.ReturnLocalStmt:
		return stmt{kind: sReturn, a: operand{local: c.local(s.Source)}}, nil
	case *ir.MakeObjectStmt:
		return stmt{kind: sMakeObject, target: c.local(s.Target)}, nil
	case *ir.MakeArrayStmt:
		return stmt{kind: sMakeArray, target: c.local(s.Target), index: int(s.Capacity)}, nil
	case *ir.MakeSetStmt:
		return stmt{kind: sMakeSet, target: c.local(s.Target)}, nil
	case *ir.ObjectInsertStmt:
		st, err := c.two(sObjectInsert, s.Key, s.Value)
		st.target = c.local(s.Object)
		return st, err
	case *ir.ObjectInsertOnceStmt:
		st, err := c.two(sObjectInsertOnce, s.Key, s.Value)
		st.target = c.local(s.Object)
		return st, err
	case *ir.ArrayAppendStmt:
		return c.one(sArrayAppend, s.Value, c.local(s.Array))
	case *ir.SetAddStmt:
		return c.one(sSetAdd, s.Value, c.local(s.Set))
	case *ir.NopStmt:
		return stmt{kind: sNop}, nil
	}
	// WithStmt, CallDynamicStmt, ObjectMergeStmt, ResultSetAddStmt inside a function: not
	// planned for the default policy; such a policy keeps OPA's evaluator.
	return stmt{}, fmt.Errorf("statement %T not supported", s)
}

func (c *converter) call(s *ir.CallStmt) (stmt, error) {
	st := stmt{target: c.local(s.Result), stmtExt: &stmtExt{name: s.Func}}
	for _, a := range s.Args {
		o, err := c.operand(a)
		if err != nil {
			return stmt{}, err
		}
		st.args = append(st.args, o)
	}
	if fn, ok := c.byName[s.Func]; ok {
		st.kind, st.fn = sCall, fn
		return st, nil
	}
	if !pureBuiltins[s.Func] {
		return stmt{}, fmt.Errorf("built-in %s not supported", s.Func)
	}
	bf := topdown.GetBuiltin(s.Func)
	if bf == nil {
		return stmt{}, fmt.Errorf("built-in %s unknown", s.Func)
	}
	st.kind, st.builtin, st.onKeys = sCallBuiltin, bf, keyedBuiltins[s.Func]
	return st, nil
}
