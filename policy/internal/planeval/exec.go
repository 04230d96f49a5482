package planeval

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"unsafe"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/topdown"
)

// Execution follows the control flow OPA's Wasm compiler gives the same plan
// (internal/compiler/wasm): a block is exited by the first statement that is undefined; a
// break statement exits Index+1 enclosing blocks; a function runs its blocks in order until
// one returns; a `not` holds when its block is exited early; a scan runs its block per element,
// where index 0 continues with the next element and index 1 ends the scan. Rules without
// arguments are memoised per evaluation, as OPA's evaluator and the Wasm runtime do.

// Block outcomes: done (ran to its end), a break of n more levels (n >= 0), or returned.
const (
	done     = -1
	returned = 1 << 30
)

// errConflict is a complete rule or object key given two values (OPA's eval_conflict_error).
var errConflict = errors.New("eval_conflict_error: complete rules must not produce multiple outputs")

// run is one evaluation's state, pooled: a value stack of frames, the memo, and scratch space
// for built-in arguments.
type run struct {
	ctx     context.Context
	prog    *program
	stack   []*ast.Term
	memo    []*ast.Term
	memoSet []bool
	args    []*ast.Term
	out     *ast.Term // a built-in's answer
	yield   func(*ast.Term) error
	ret     *ast.Term // a function's answer
	// dots remembers lookups with a constant key: the planner re-reads paths such as
	// input.request.action in every rule body, and input and data do not change during an
	// evaluation. Direct-mapped by source and key pointer; cleared when this evaluation
	// modifies a collection (which could be a cached source).
	dots [dotSlots]dotEntry
	// dotGen is the generation of dots' valid entries: forgetting them all is one increment,
	// not a clear of all 64 entries per evaluation and per collection change.
	dotGen uint64
}

const dotSlots = 64

type dotEntry struct {
	src, key, val *ast.Term
	gen           uint64
}

var runPool = sync.Pool{New: func() any {
	r := &run{}
	r.yield = func(t *ast.Term) error { r.out = t; return nil }
	return r
}}

// Eval implements Evaluator.
func (p *program) Eval(ctx context.Context, query string, input, data *ast.Term) (answer *ast.Term, err error) {
	fn := p.entries[query]
	if fn == nil {
		return nil, fmt.Errorf("no plan for %s", query)
	}
	r := runPool.Get().(*run)
	defer r.release()
	// A plan this executor misreads must fail the decision (closed), not the process.
	defer func() {
		if v := recover(); v != nil {
			answer, err = nil, fmt.Errorf("plan executor: %v", v)
		}
	}()
	r.ctx, r.prog = ctx, p
	if n := len(p.funcs); cap(r.memo) < n {
		r.memo, r.memoSet = make([]*ast.Term, n), make([]bool, n)
	} else {
		r.memo, r.memoSet = r.memo[:n], r.memoSet[:n]
	}
	return r.call(fn, []*ast.Term{input, data})
}

func (r *run) release() {
	clear(r.stack)
	clear(r.memo)
	clear(r.memoSet)
	clear(r.args)
	r.dotGen++
	r.stack, r.args, r.out, r.ret, r.ctx, r.prog = r.stack[:0], r.args[:0], nil, nil, nil, nil
	runPool.Put(r)
}

// call runs fn with args in a new frame on top of the stack.
func (r *run) call(fn *planFunc, args []*ast.Term) (*ast.Term, error) {
	if fn.memo >= 0 && r.memoSet[fn.memo] {
		return r.memo[fn.memo], nil
	}
	// Frames above the top are kept nil (popping clears them), so pushing is re-slicing.
	base := len(r.stack)
	r.stack = slices.Grow(r.stack, fn.locals)[:base+fn.locals]
	for i, l := range fn.params {
		r.stack[base+l] = args[i]
	}
	var answer *ast.Term
	for _, b := range fn.blocks {
		out, err := r.block(base, b)
		if err != nil {
			return nil, err
		}
		if out != done && out != 0 {
			// Returned, or broke out of the function's own level (which also ends it).
			if out == returned {
				answer = r.ret
			} else {
				answer = r.stack[base+fn.ret]
			}
			break
		}
	}
	if answer == nil {
		answer = r.stack[base+fn.ret]
	}
	clear(r.stack[base:])
	r.stack = r.stack[:base]
	if fn.memo >= 0 {
		r.memo[fn.memo], r.memoSet[fn.memo] = answer, true
	}
	return answer, nil
}

func (r *run) get(base int, o operand) *ast.Term {
	if o.term != nil {
		return o.term
	}
	return r.stack[base+o.local]
}

// block executes b and returns done, returned or how many more levels to break.
func (r *run) block(base int, b *planBlock) (int, error) {
	for i := range b.stmts {
		s := &b.stmts[i]
		switch s.kind {
		case sAssign:
			r.stack[base+s.target] = r.get(base, s.a)
		case sAssignOnce:
			v := r.get(base, s.a)
			if cur := r.stack[base+s.target]; cur != nil && !equal(cur, v) {
				return 0, errConflict
			}
			r.stack[base+s.target] = v
		case sReset:
			r.stack[base+s.target] = nil
		case sDot:
			src := r.get(base, s.a)
			if s.b.term == nil || src == nil {
				v := dot(src, r.get(base, s.b))
				if v == nil {
					return 0, nil
				}
				r.stack[base+s.target] = v
				break
			}
			e := &r.dots[(uintptr(unsafe.Pointer(src))>>4^uintptr(unsafe.Pointer(s.b.term))>>4)%dotSlots]
			if e.gen != r.dotGen || e.src != src || e.key != s.b.term {
				v := dot(src, s.b.term)
				if v == nil {
					return 0, nil
				}
				*e = dotEntry{src: src, key: s.b.term, val: v, gen: r.dotGen}
			}
			r.stack[base+s.target] = e.val
		case sEqual, sNotEqual:
			x, y := r.get(base, s.a), r.get(base, s.b)
			if x == nil || y == nil || equal(x, y) != (s.kind == sEqual) {
				return 0, nil
			}
		case sIsDefined:
			if r.stack[base+s.a.local] == nil {
				return 0, nil
			}
		case sIsUndefined:
			if r.stack[base+s.a.local] != nil {
				return 0, nil
			}
		case sIsArray, sIsObject, sIsSet:
			if !isKind(Materialize(r.get(base, s.a)), s.kind) {
				return 0, nil
			}
		case sLen:
			n, ok := length(Materialize(r.get(base, s.a)))
			if !ok {
				return 0, nil
			}
			r.stack[base+s.target] = ast.InternedTerm(n)
		case sCall, sCallBuiltin:
			call := r.callStmt
			if s.kind == sCallBuiltin {
				call = r.builtin
			}
			v, err := call(base, s)
			if err != nil {
				return 0, err
			}
			if v == nil {
				return 0, nil
			}
			r.stack[base+s.target] = v
		case sBlock:
			for _, nb := range s.blocks {
				out, err := r.block(base, nb)
				if err != nil || out == returned {
					return out, err
				}
				if out > 0 {
					return out - 1, nil
				}
			}
		case sBreak:
			return s.index, nil
		case sNot:
			out, err := r.block(base, s.blocks[0])
			if err != nil || out == returned {
				return out, err
			}
			switch {
			case out == done:
				return 0, nil // the negated block holds: the not is undefined
			case out > 0:
				return out - 1, nil
			}
		case sScan:
			out, err := r.scan(base, s)
			if err != nil || out != done {
				return out, err
			}
		case sReturn:
			r.ret = r.stack[base+s.a.local]
			return returned, nil
		case sMakeObject:
			r.stack[base+s.target] = ast.NewTerm(ast.NewObjectWithCapacity(s.index))
		case sMakeArray:
			r.stack[base+s.target] = ast.NewTerm(ast.NewArrayWithCapacity(s.index))
		case sMakeSet:
			r.stack[base+s.target] = ast.NewTerm(ast.NewSet())
		case sLiteral:
			start := len(r.args)
			for _, a := range s.args {
				r.args = append(r.args, Materialize(r.get(base, a)))
			}
			if s.keys != nil {
				// An object with constant keys: the values in key order (args alternate).
				t, vals := newFieldsTerm(s.keys)
				for i := range vals {
					vals[i] = r.args[start+2*i+1]
				}
				r.stack[base+s.target] = t
			} else {
				r.stack[base+s.target] = buildLiteral(stmtKind(s.index), r.args[start:])
			}
			clear(r.args[start:])
			r.args = r.args[:start]
		case sObjectInsert, sObjectInsertOnce:
			t := r.owned(base, s.target)
			obj, ok := collection[ast.Object](t)
			if !ok {
				return 0, fmt.Errorf("object insert into %s", valueName(t))
			}
			k, v := Materialize(r.get(base, s.a)), Materialize(r.get(base, s.b))
			if s.kind == sObjectInsertOnce {
				if cur := obj.Get(k); cur != nil && !cur.Equal(v) {
					return 0, errConflict
				}
			}
			obj.Insert(k, v)
		case sArrayAppend:
			// The array was made by this evaluation (sMakeArray), so its term is ours to update.
			t := r.owned(base, s.target)
			arr, ok := collection[*ast.Array](t)
			if !ok {
				return 0, fmt.Errorf("array append to %s", valueName(t))
			}
			t.Value = arr.Append(Materialize(r.get(base, s.a)))
		case sSetAdd:
			t := r.owned(base, s.target)
			set, ok := collection[ast.Set](t)
			if !ok {
				return 0, fmt.Errorf("set add to %s", valueName(t))
			}
			set.Add(Materialize(r.get(base, s.a)))
		case sNop:
		}
	}
	return done, nil
}

// inlineFields is how many values newFieldsTerm keeps in the same allocation as the term: the
// decision has 9 keys, a stale decision 10.
const inlineFields = 12

// fieldsTerm is an object literal's term, its fields and (up to inlineFields) its values in one
// allocation instead of three: the decision is built on every uncached evaluation.
type fieldsTerm struct {
	t    ast.Term
	f    Fields
	vals [inlineFields]*ast.Term
}

// newFieldsTerm returns a term holding fields with keys, and the values to fill in.
func newFieldsTerm(keys []*ast.Term) (*ast.Term, []*ast.Term) {
	ft := &fieldsTerm{}
	var vals []*ast.Term
	if len(keys) <= inlineFields {
		vals = ft.vals[:len(keys):len(keys)]
	} else {
		vals = make([]*ast.Term, len(keys))
	}
	ft.f = Fields{Keys: keys, Vals: vals}
	ft.t.Value = &ft.f
	return &ft.t, vals
}

// owned returns the collection in local l for modification: a constant shared by every
// evaluation is first replaced by a copy of its own.
func (r *run) owned(base, l int) *ast.Term {
	r.dotGen++
	t := r.stack[base+l]
	if t == nil {
		return nil
	}
	if o, ok := t.Value.(*Fields); ok {
		// A literal built as fields becomes an object of its own to be modified.
		t = ast.NewTerm(o.object().Copy())
		r.stack[base+l] = t
	} else if r.prog.consts[t] {
		t = t.Copy()
		r.stack[base+l] = t
	}
	return t
}

// collection is t's value as a C; false when t is undefined or holds something else.
func collection[C ast.Value](t *ast.Term) (C, bool) {
	var zero C
	if t == nil {
		return zero, false
	}
	c, ok := t.Value.(C)
	return c, ok
}

// valueOf is t's value, nil when t is undefined.
func valueOf(t *ast.Term) ast.Value {
	if t == nil {
		return nil
	}
	return t.Value
}

func valueName(t *ast.Term) string {
	if t == nil {
		return "an undefined local"
	}
	return ast.ValueName(t.Value)
}

func (r *run) callStmt(base int, s *stmt) (*ast.Term, error) {
	fn := s.fn
	if fn.memo >= 0 && r.memoSet[fn.memo] {
		return r.memo[fn.memo], nil
	}
	// Arguments are copied out of the caller's frame before the callee's frame is pushed
	// (which may move the stack).
	start := len(r.args)
	for _, a := range s.args {
		r.args = append(r.args, r.get(base, a))
	}
	v, err := r.call(fn, r.args[start:len(r.args):len(r.args)])
	clear(r.args[start:])
	r.args = r.args[:start]
	return v, err
}

func (r *run) builtin(base int, s *stmt) (*ast.Term, error) {
	if s.onKeys != notKeyed {
		if o, ok := valueOf(r.get(base, s.args[0])).(*Fields); ok {
			if v, ok := s.onKeys.answer(o, s.args[1:], func(a operand) *ast.Term { return r.get(base, a) }); ok {
				return v, nil
			}
		}
	}
	start := len(r.args)
	for _, a := range s.args {
		v := Materialize(r.get(base, a))
		if v == nil {
			// An undefined argument leaves the call undefined (OPA never calls a built-in so).
			clear(r.args[start:])
			r.args = r.args[:start]
			return nil, nil
		}
		r.args = append(r.args, v)
	}
	r.out = nil
	err := s.builtin(topdown.BuiltinContext{Context: r.ctx}, r.args[start:len(r.args):len(r.args)], r.yield)
	clear(r.args[start:])
	r.args = r.args[:start]
	if err != nil {
		// As OPA's evaluator does by default (no strict built-in errors): a built-in that fails
		// leaves the expression undefined, except a halt, which ends the evaluation.
		var halt topdown.Halt
		if errors.As(err, &halt) {
			return nil, fmt.Errorf("%s: %w", s.name, err)
		}
		return nil, nil
	}
	v := r.out
	r.out = nil
	return v, nil
}

// scan runs the block for each element of the collection. It returns done when the scan ends
// (all elements seen, or a break of index 1), else what the block returned minus the scan's two
// levels.
func (r *run) scan(base int, s *stmt) (int, error) {
	src := Materialize(r.stack[base+s.a.local])
	if src == nil {
		return done, nil
	}
	// each reports whether to stop, and what scan returns then.
	each := func(k, v *ast.Term) (bool, int, error) {
		r.stack[base+s.key], r.stack[base+s.value] = k, v
		out, err := r.block(base, s.blocks[0])
		switch {
		case err != nil || out == returned:
			return true, out, err
		case out == 1:
			return true, done, nil
		case out > 1:
			return true, out - 2, nil
		}
		return false, done, nil // next element
	}
	switch c := src.Value.(type) {
	case *ast.Array:
		for i := range c.Len() {
			if stop, out, err := each(ast.InternedTerm(i), c.Elem(i)); stop {
				return out, err
			}
		}
	case ast.Object:
		for _, k := range c.Keys() {
			if stop, out, err := each(k, c.Get(k)); stop {
				return out, err
			}
		}
	case ast.Set:
		sorted := c.Sorted()
		for i := range sorted.Len() {
			e := sorted.Elem(i)
			if stop, out, err := each(e, e); stop {
				return out, err
			}
		}
	}
	return done, nil
}

// dot is source[key]: an object's value, an array's element, a set's member; nil when there
// is none (scalars included).
func dot(src, key *ast.Term) *ast.Term {
	if src == nil || key == nil {
		return nil
	}
	switch c := src.Value.(type) {
	case *Fields:
		return c.Get(key)
	case ast.Object:
		return c.Get(Materialize(key))
	case *ast.Array:
		n, ok := key.Value.(ast.Number)
		if !ok {
			return nil
		}
		i, ok := n.Int()
		if !ok || i < 0 || i >= c.Len() {
			return nil
		}
		return c.Elem(i)
	case ast.Set:
		if key = Materialize(key); c.Contains(key) {
			return key
		}
	}
	return nil
}

// equal compares as OPA does, input fields as the objects they stand for.
func equal(x, y *ast.Term) bool {
	return Materialize(x).Value.Compare(Materialize(y).Value) == 0
}

func isKind(t *ast.Term, kind stmtKind) bool {
	if t == nil {
		return false
	}
	switch t.Value.(type) {
	case *ast.Array:
		return kind == sIsArray
	case ast.Object:
		return kind == sIsObject
	case ast.Set:
		return kind == sIsSet
	}
	return false
}

func length(t *ast.Term) (int, bool) {
	if t == nil {
		return 0, false
	}
	switch c := t.Value.(type) {
	case *ast.Array:
		return c.Len(), true
	case ast.Object:
		return c.Len(), true
	case ast.Set:
		return c.Len(), true
	case ast.String:
		return len([]rune(string(c))), true
	}
	return 0, false
}
