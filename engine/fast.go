package engine

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/vm"
)

// A fast condition evaluates the shapes merchants' rules are almost always
// made of (field comparisons, exact arithmetic on amounts, && || not, in
// a list of literals) directly in Go, on typed values, without expr's VM.
// With a hundred rules the VM's per-run setup, its boxing of every Decimal
// result and its argument slices were most of a webhook's rule time.
//
// It is an accelerator, never a second semantics: it is built from the
// program the VM would run (after the decimal patcher and expr's
// optimizer), it handles only nil, bools, strings and Decimals, and
// whenever it meets anything else (a list, a map, an int the payload
// carries, an arithmetic overflow, an operand of the wrong type) it gives
// up and the VM runs the condition from the start, so errors and their
// wording are the VM's own. A rule with any other construct (function
// calls, closures, let, ?., ??, ternaries, matches…) has no fast form and
// always runs on the VM. FuzzFastCondition checks the two agree.
type fastExpr func(ev *Event, m *fmemo) (fval, bool)

// fmemo holds, for one event, the values of subexpressions that several
// rules of a set share (amount, filled_amount_in_usd - amount): each is
// computed once per event, not once per rule. Slot i is valid when bit i
// of done is set; bit i of ok says whether it could be decided.
type fmemo struct {
	done, ok uint32
	vals     [maxMemo]fval
}

const maxMemo = 32

// fastCompiler compiles the fast forms of one rule set. A first pass
// counts the shareable subexpressions (payload fields and arithmetic) of
// every condition; the second gives those met more than once a memo slot.
type fastCompiler struct {
	counting bool
	counts   map[string]int
	slots    map[string]int
}

func newFastCompiler() *fastCompiler {
	return &fastCompiler{counting: true, counts: map[string]int{}, slots: map[string]int{}}
}

// memoKey names a node whose value depends only on the event, so that two
// rules writing the same subexpression share its value; ok is false for
// nodes not worth sharing.
func memoKey(n ast.Node) (string, bool) {
	switch x := n.(type) {
	case *ast.IdentifierNode:
		return "f:" + strconv.Quote(x.Value), true
	case *ast.MemberNode:
		if b, ok := x.Node.(*ast.IdentifierNode); ok && b.Value == "payload" {
			if p, ok := x.Property.(*ast.StringNode); ok {
				// Quoted: payload["a)(f:b"] must not read as two keys.
				return "f:" + strconv.Quote(p.Value), true
			}
		}
	case *ast.CallNode:
		callee, ok := x.Callee.(*ast.IdentifierNode)
		if !ok {
			return "", false
		}
		switch callee.Value {
		case "_dec_add", "_dec_sub", "_dec_mul", "_dec_neg":
		default:
			return "", false
		}
		var b strings.Builder
		b.WriteString(callee.Value)
		for _, a := range x.Arguments {
			k, ok := memoKey(a)
			if !ok {
				v, lit := literal(a)
				if !lit {
					return "", false
				}
				k = fmt.Sprintf("l:%d:%v:%q:%s", v.kind, v.b, v.s, v.d.String())
			}
			b.WriteString("(" + k + ")")
		}
		return b.String(), true
	}
	return "", false
}

// memoize wraps f, the compiled form of n, with a memo slot when n is
// shared by several conditions of the set.
func (fc *fastCompiler) memoize(n ast.Node, f fastFunc) fastFunc {
	k, ok := memoKey(n)
	if !ok || f == nil {
		return f
	}
	if fc.counting {
		fc.counts[k]++
		return f
	}
	if fc.counts[k] < 2 {
		return f
	}
	slot, ok := fc.slots[k]
	if !ok {
		if len(fc.slots) >= maxMemo {
			return f
		}
		slot = len(fc.slots)
		fc.slots[k] = slot
	}
	bit := uint32(1) << slot
	return func(ev *Event, m *fmemo) (fval, bool) {
		if m.done&bit != 0 {
			return m.vals[slot], m.ok&bit != 0
		}
		v, ok := f(ev, m)
		m.done |= bit
		if ok {
			m.ok |= bit
		}
		m.vals[slot] = v
		return v, ok
	}
}

type fkind uint8

const (
	fNil fkind = iota
	fBool
	fString
	fDecimal
)

// fval is a value a fast condition computes: one of nil, a bool, a
// string or a Decimal, unboxed.
type fval struct {
	kind fkind
	b    bool
	s    string
	d    Decimal
}

var fTrue = fval{kind: fBool, b: true}

// toFval converts a payload value; ok is false for any other type.
func toFval(v any) (fval, bool) {
	switch x := v.(type) {
	case nil:
		return fval{}, true
	case bool:
		return fval{kind: fBool, b: x}, true
	case string:
		return fval{kind: fString, s: x}, true
	case Decimal:
		return fval{kind: fDecimal, d: x}, true
	}
	return fval{}, false
}

// constFval converts a literal of the compiled program.
func constFval(v any) (fval, bool) {
	if n, ok := v.(int); ok {
		return fval{kind: fDecimal, d: DecimalFromInt(int64(n))}, true
	}
	return toFval(v)
}

// fastEqual is equality as the VM decides it for these kinds (expr's own
// == and the patcher's _dec_eq): values of different kinds are unequal,
// numbers compare by value (20.00 == 20).
func fastEqual(a, b fval) bool {
	if a.kind != b.kind {
		return false
	}
	switch a.kind {
	case fNil:
		return true
	case fBool:
		return a.b == b.b
	case fString:
		return a.s == b.s
	}
	return a.d.Cmp(b.d) == 0
}

// compile returns the fast form of a compiled condition, or nil when it
// has none. When drop is set, the top-level conjunct field == "value" it
// names is left out: the rule index only offers the rule to events that
// satisfy it.
func (fc *fastCompiler) compile(prog *vm.Program, drop *requirement) fastExpr {
	if prog == nil {
		return nil
	}
	root := prog.Node()
	if drop != nil && len(drop.values) == 1 {
		root = withoutConjunct(root, drop.field, drop.values[0])
	}
	f := fc.node(root)
	if f == nil {
		return nil
	}
	return func(ev *Event, m *fmemo) (fval, bool) {
		v, ok := f(ev, m)
		return v, ok && v.kind == fBool
	}
}

// withoutConjunct replaces the top-level && operand field == "value" (or
// "value" == field) with true.
func withoutConjunct(n ast.Node, field, value string) ast.Node {
	b, ok := n.(*ast.BinaryNode)
	if !ok {
		return n
	}
	switch b.Operator {
	case "&&", "and":
		l := withoutConjunct(b.Left, field, value)
		r := withoutConjunct(b.Right, field, value)
		if l == b.Left && r == b.Right {
			return n
		}
		nb := &ast.BinaryNode{Operator: b.Operator, Left: l, Right: r}
		nb.SetType(b.Type())
		return nb
	case "==":
		if f, v, ok := fieldEquality(b); ok && f == field && v == value {
			return &ast.BoolNode{Value: true}
		}
	}
	return n
}

type fastFunc = func(ev *Event, m *fmemo) (fval, bool)

// literal returns the value of a literal node.
func literal(n ast.Node) (fval, bool) {
	switch x := n.(type) {
	case *ast.NilNode:
		return fval{}, true
	case *ast.BoolNode:
		return fval{kind: fBool, b: x.Value}, true
	case *ast.StringNode:
		return fval{kind: fString, s: x.Value}, true
	case *ast.IntegerNode:
		return fval{kind: fDecimal, d: DecimalFromInt(int64(x.Value))}, true
	case *ast.ConstantNode:
		return constFval(x.Value)
	}
	return fval{}, false
}

// node compiles one node, or returns nil; build does the work.
func (fc *fastCompiler) node(n ast.Node) fastFunc {
	return fc.memoize(n, fc.build(n))
}

func (fc *fastCompiler) build(n ast.Node) fastFunc {
	if v, ok := literal(n); ok {
		return func(*Event, *fmemo) (fval, bool) { return v, true }
	}
	switch x := n.(type) {
	case *ast.IdentifierNode:
		if x.Value == "payload" || x.Value == "meta" || strings.HasPrefix(x.Value, "$") {
			return nil
		}
		name := x.Value
		return func(ev *Event, m *fmemo) (fval, bool) { return toFval(ev.Payload[name]) }
	case *ast.MemberNode:
		return fastMember(x)
	case *ast.UnaryNode:
		if x.Operator != "not" && x.Operator != "!" {
			return nil
		}
		f := fc.node(x.Node)
		if f == nil {
			return nil
		}
		return func(ev *Event, m *fmemo) (fval, bool) {
			v, ok := f(ev, m)
			if !ok || v.kind != fBool {
				return fval{}, false
			}
			return fval{kind: fBool, b: !v.b}, true
		}
	case *ast.BinaryNode:
		return fc.binary(x)
	case *ast.CallNode:
		return fc.call(x)
	}
	return nil
}

// fastMember handles payload.field and meta.type/source/provider/id.
func fastMember(x *ast.MemberNode) fastFunc {
	base, ok := x.Node.(*ast.IdentifierNode)
	prop, ok2 := x.Property.(*ast.StringNode)
	if !ok || !ok2 || x.Optional || x.Method {
		return nil
	}
	name := prop.Value
	switch base.Value {
	case "payload":
		return func(ev *Event, m *fmemo) (fval, bool) { return toFval(ev.Payload[name]) }
	case "meta":
		var get func(ev *Event) string
		switch name {
		case "id":
			get = func(ev *Event) string { return ev.ID }
		case "source":
			get = func(ev *Event) string { return ev.Source }
		case "provider":
			get = func(ev *Event) string { return ev.Provider }
		case "type":
			get = func(ev *Event) string { return ev.Type }
		default:
			return nil
		}
		return func(ev *Event, m *fmemo) (fval, bool) { return fval{kind: fString, s: get(ev)}, true }
	}
	return nil
}

func (fc *fastCompiler) binary(x *ast.BinaryNode) fastFunc {
	l, r := fc.node(x.Left), fc.node(x.Right)
	if l == nil {
		return nil
	}
	if x.Operator == "in" {
		// expr's optimizer turns x in ["a", "b"] into a set lookup when x
		// is a typed string.
		set, ok := x.Right.(*ast.ConstantNode)
		if !ok {
			return nil
		}
		members, ok := set.Value.(map[string]struct{})
		if !ok {
			return nil
		}
		return func(ev *Event, m *fmemo) (fval, bool) {
			v, ok := l(ev, m)
			if !ok || v.kind != fString {
				return fval{}, false
			}
			_, in := members[v.s]
			return fval{kind: fBool, b: in}, true
		}
	}
	if r == nil {
		return nil
	}
	switch x.Operator {
	case "&&", "and", "||", "or":
		or := x.Operator == "||" || x.Operator == "or"
		if b, ok := x.Left.(*ast.BoolNode); ok && b.Value && !or {
			// true && r, as withoutConjunct leaves an indexed rule
			return func(ev *Event, m *fmemo) (fval, bool) {
				v, ok := r(ev, m)
				return v, ok && v.kind == fBool
			}
		}
		return func(ev *Event, m *fmemo) (fval, bool) {
			v, ok := l(ev, m)
			if !ok || v.kind != fBool {
				return fval{}, false
			}
			if v.b == or {
				return v, true
			}
			v, ok = r(ev, m)
			if !ok || v.kind != fBool {
				return fval{}, false
			}
			return v, true
		}
	case "==", "!=":
		return fastEquality(l, r, x.Operator == "!=")
	case "<", "<=", ">", ">=":
		// Unpatched, these compare strings (numbers were patched to calls).
		return fastOrder(l, r, x.Operator, false)
	}
	return nil
}

// fastEquality is == (or, with ne, !=): expr's own and the patcher's
// _dec_eq decide alike for the kinds fast forms handle.
func fastEquality(l, r fastFunc, ne bool) fastFunc {
	return func(ev *Event, m *fmemo) (fval, bool) {
		a, ok := l(ev, m)
		if !ok {
			return fval{}, false
		}
		b, ok := r(ev, m)
		if !ok {
			return fval{}, false
		}
		return fval{kind: fBool, b: fastEqual(a, b) != ne}, true
	}
}

// fastOrder compares two strings, or (numbers set) two numbers or two
// strings, as the patcher's _dec_lt and friends do.
func fastOrder(l, r fastFunc, op string, numbers bool) fastFunc {
	var want func(c int) bool
	switch op {
	case "<":
		want = func(c int) bool { return c < 0 }
	case "<=":
		want = func(c int) bool { return c <= 0 }
	case ">":
		want = func(c int) bool { return c > 0 }
	case ">=":
		want = func(c int) bool { return c >= 0 }
	}
	// The operands are evaluated inline, as in fastEquality: a helper
	// returning both measured 10 % slower (two fvals returned in memory).
	return func(ev *Event, m *fmemo) (fval, bool) {
		a, ok := l(ev, m)
		if !ok {
			return fval{}, false
		}
		b, ok := r(ev, m)
		if !ok {
			return fval{}, false
		}
		switch {
		case a.kind == fString && b.kind == fString:
			return fval{kind: fBool, b: want(strings.Compare(a.s, b.s))}, true
		case numbers && a.kind == fDecimal && b.kind == fDecimal:
			return fval{kind: fBool, b: want(a.d.Cmp(b.d))}, true
		}
		return fval{}, false
	}
}

// fastCall handles the decimal patcher's operator calls.
func (fc *fastCompiler) call(x *ast.CallNode) fastFunc {
	callee, ok := x.Callee.(*ast.IdentifierNode)
	if !ok {
		return nil
	}
	args := make([]fastFunc, len(x.Arguments))
	for i, a := range x.Arguments {
		if callee.Value == "_dec_in" && i == 1 {
			continue
		}
		if args[i] = fc.node(a); args[i] == nil {
			return nil
		}
	}
	switch callee.Value {
	case "_dec_add", "_dec_sub", "_dec_mul":
		if len(args) != 2 {
			return nil
		}
		op := map[string]func(x, y Decimal) (Decimal, error){"_dec_add": Decimal.Add, "_dec_sub": Decimal.Sub, "_dec_mul": Decimal.Mul}[callee.Value]
		l, r := args[0], args[1]
		return func(ev *Event, m *fmemo) (fval, bool) {
			a, ok := l(ev, m)
			if !ok || a.kind != fDecimal {
				return fval{}, false
			}
			b, ok := r(ev, m)
			if !ok || b.kind != fDecimal {
				return fval{}, false
			}
			d, err := op(a.d, b.d)
			if err != nil {
				return fval{}, false
			}
			return fval{kind: fDecimal, d: d}, true
		}
	case "_dec_lt", "_dec_le", "_dec_gt", "_dec_ge":
		if len(args) != 2 {
			return nil
		}
		op := map[string]string{"_dec_lt": "<", "_dec_le": "<=", "_dec_gt": ">", "_dec_ge": ">="}[callee.Value]
		return fastOrder(args[0], args[1], op, true)
	case "_dec_eq", "_dec_ne":
		if len(args) != 2 {
			return nil
		}
		return fastEquality(args[0], args[1], callee.Value == "_dec_ne")
	case "_dec_neg":
		if len(args) != 1 {
			return nil
		}
		f := args[0]
		return func(ev *Event, m *fmemo) (fval, bool) {
			a, ok := f(ev, m)
			if !ok || a.kind != fDecimal {
				return fval{}, false
			}
			return fval{kind: fDecimal, d: a.d.Neg()}, true
		}
	case "_dec_in":
		if len(args) != 2 {
			return nil
		}
		// The list is literals: folded into a constant by expr's
		// optimizer, or an array of literals when some were patched.
		var vals []fval
		switch list := x.Arguments[1].(type) {
		case *ast.ConstantNode:
			elems, ok := list.Value.([]any)
			if !ok {
				return nil
			}
			for _, e := range elems {
				v, ok := constFval(e)
				if !ok {
					return nil
				}
				vals = append(vals, v)
			}
		case *ast.ArrayNode:
			for _, e := range list.Nodes {
				v, ok := literal(e)
				if !ok {
					return nil
				}
				vals = append(vals, v)
			}
		default:
			return nil
		}
		f := args[0]
		return func(ev *Event, m *fmemo) (fval, bool) {
			a, ok := f(ev, m)
			if !ok {
				return fval{}, false
			}
			for _, v := range vals {
				if fastEqual(a, v) {
					return fTrue, true
				}
			}
			return fval{kind: fBool}, true
		}
	}
	return nil
}
