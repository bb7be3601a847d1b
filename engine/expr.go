package engine

import (
	"errors"
	"fmt"
	"math"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/builtin"
	"github.com/expr-lang/expr/checker"
	"github.com/expr-lang/expr/checker/nature"
	"github.com/expr-lang/expr/compiler"
	"github.com/expr-lang/expr/conf"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/optimizer"
	"github.com/expr-lang/expr/vm"
	"github.com/expr-lang/expr/vm/runtime"
	"github.com/payramd/payramd/config"
)

// How numbers behave in rules. expr itself computes in float64 (0.1 + 0.2 !=
// 0.3, a/0 == +Inf); payramd rewrites the tree after type checking so that
// every arithmetic or comparison that may involve a Decimal calls one of the
// functions below instead, and every float literal becomes a Decimal
// constant. Integer-only arithmetic (len(x) - 1) stays native so it can
// index lists.

var (
	decimalType = reflect.TypeOf(Decimal{})
	anyType     = reflect.TypeOf((*any)(nil)).Elem()
	boolType    = reflect.TypeOf(true)
	stringType  = reflect.TypeOf("")
)

// maxNodes bounds an expression's size; a rule is a line, not a program.
const maxNodes = 1000

// opFuncs maps an operator to the internal function that implements it.
var opFuncs = map[string]string{
	"+": "_dec_add", "-": "_dec_sub", "*": "_dec_mul", "/": "_dec_div", "%": "_dec_mod",
	"<": "_dec_lt", "<=": "_dec_le", ">": "_dec_gt", ">=": "_dec_ge", "==": "_dec_eq", "!=": "_dec_ne",
	"**": "_dec_pow", "^": "_dec_pow",
}

func isDecimal(t reflect.Type) bool { return t == decimalType }

func isAny(t reflect.Type) bool { return t == nil || t.Kind() == reflect.Interface }

func isNativeNumber(t reflect.Type) bool {
	if t == nil {
		return false
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return true
	}
	return false
}

func isIntType(t reflect.Type) bool {
	if t == nil {
		return false
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return true
	}
	return false
}

// decimalPatcher rewrites numeric operations to exact decimal calls.
type decimalPatcher struct {
	applied bool
	// src is the expression, so that a float literal is read from its text
	// (0.1000000000000000001 is not a float64); err is a literal a Decimal
	// cannot hold exactly, reported as a compile error rather than rounded.
	src []rune
	err *file.Error
}

// literal returns the Decimal a float literal stands for.
func (p *decimalPatcher) literal(n *ast.FloatNode) (Decimal, error) {
	loc := n.Location()
	if loc.From >= 0 && loc.To <= len(p.src) && loc.From < loc.To {
		text := strings.ReplaceAll(string(p.src[loc.From:loc.To]), "_", "")
		d, err := ParseDecimal(text)
		if err == nil {
			return d, nil
		}
		var de *DigitsError
		if errors.As(err, &de) {
			if p.err == nil {
				p.err = &file.Error{Location: loc, Message: literalError(de)}
			}
			return Decimal{}, err
		}
	}
	return DecimalFromFloat(n.Value)
}

// callChecks are the Validate hooks of the functions merchants call, by
// name. expr's checker runs them, but an error it finds inside a call the
// patcher has rewritten (abs() in abs() > 1, now inside _dec_gt) is lost, so
// the patcher runs them itself and reports the first failure.
var callChecks = map[string]func([]reflect.Type) (reflect.Type, error){}

// checkCall validates a call of one of payramd's functions.
func (p *decimalPatcher) checkCall(n *ast.CallNode) {
	id, ok := n.Callee.(*ast.IdentifierNode)
	if !ok || p.err != nil {
		return
	}
	validate, ours := callChecks[id.Value]
	if !ours {
		if _, isBuiltin := builtin.Index[id.Value]; !isBuiltin && !strings.HasPrefix(id.Value, "_dec_") {
			// No payload field is a function, so this is a typo: without
			// this check it fails at run time as "cannot call nil".
			p.err = &file.Error{Location: n.Location(), Message: fmt.Sprintf("unknown function %s%s", id.Value, config.DidYouMean(id.Value, functionNames()))}
		}
		return
	}
	if validate == nil {
		return
	}
	args := make([]reflect.Type, len(n.Arguments))
	for i, a := range n.Arguments {
		if args[i] = staticType(a); args[i] == nil {
			args[i] = anyType
		}
	}
	if _, err := validate(args); err != nil {
		p.err = &file.Error{Location: n.Location(), Message: err.Error()}
	}
}

// functionNames lists every function a rule may call, for suggestions.
func functionNames() []string {
	names := make([]string, 0, len(builtin.Builtins)+len(callChecks))
	for _, f := range builtin.Builtins {
		names = append(names, f.Name)
	}
	for name := range callChecks {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// literalError refuses a rule literal that would be rounded.
func literalError(e *DigitsError) string {
	return fmt.Sprintf("%s and would be rounded (a decimal holds 19 digits): compare the field as text instead, such as %s",
		e.Error(), textSuggestion(e.Text))
}

func (p *decimalPatcher) Reset()             { p.applied = false }
func (p *decimalPatcher) ShouldRepeat() bool { return p.applied }

func (p *decimalPatcher) Visit(node *ast.Node) {
	switch n := (*node).(type) {
	case *ast.CallNode:
		p.checkCall(n)
	case *ast.FloatNode:
		d, err := p.literal(n)
		if err != nil {
			return
		}
		c := &ast.ConstantNode{Value: d}
		c.SetType(decimalType)
		ast.Patch(node, c)
		p.applied = true
	case *ast.UnaryNode:
		if n.Operator != "-" {
			return
		}
		t := n.Node.Type()
		if isDecimal(t) || (isAny(t) && !isNilNode(n.Node)) {
			call := &ast.CallNode{Callee: &ast.IdentifierNode{Value: "_dec_neg"}, Arguments: []ast.Node{n.Node}}
			ast.Patch(node, call)
			p.applied = true
		}
	case *ast.BuiltinNode:
		// sum(list) and sum(list, .amount) add with expr's native +, which
		// knows no Decimal: call _dec_sum over the list, or over map(list, f).
		if n.Name != "sum" || len(n.Arguments) == 0 || isIntType(n.Type()) {
			return
		}
		list := n.Arguments[0]
		if len(n.Arguments) == 2 {
			list = &ast.BuiltinNode{Name: "map", Arguments: n.Arguments}
		}
		ast.Patch(node, &ast.CallNode{Callee: &ast.IdentifierNode{Value: "_dec_sum"}, Arguments: []ast.Node{list}})
		p.applied = true
	case *ast.BinaryNode:
		if n.Operator == "in" {
			// amount in [10, 19.99] compares numbers by value, as == does
			// (expr's own in would find 20.00 unequal to 20).
			lt, rt := staticType(n.Left), n.Right.Type()
			if (isDecimal(lt) || isAny(lt) || isNativeNumber(lt)) && (isAny(rt) || rt.Kind() == reflect.Slice || rt.Kind() == reflect.Array) {
				ast.Patch(node, &ast.CallNode{Callee: &ast.IdentifierNode{Value: "_dec_in"}, Arguments: []ast.Node{n.Left, n.Right}})
				p.applied = true
			}
			return
		}
		fn, ok := opFuncs[n.Operator]
		if !ok {
			return
		}
		lt, rt := staticType(n.Left), staticType(n.Right)
		numeric := func(t reflect.Type) bool { return isDecimal(t) || isAny(t) || isNativeNumber(t) }
		if !numeric(lt) || !numeric(rt) {
			return // strings, times, durations, lists: expr's own rules
		}
		if n.Operator == "==" || n.Operator == "!=" {
			// Equality involving nil or two unknowns of possibly any type is
			// handled by _dec_eq, which falls back to expr's own equality.
			if isNativeNumber(lt) && isNativeNumber(rt) {
				return
			}
		} else if isIntType(lt) && isIntType(rt) && n.Operator != "/" && n.Operator != "**" && n.Operator != "^" {
			return // integer arithmetic and comparisons stay native (expr's / and ** give floats)
		}
		call := &ast.CallNode{Callee: &ast.IdentifierNode{Value: fn}, Arguments: []ast.Node{n.Left, n.Right}}
		ast.Patch(node, call)
		p.applied = true
	}
}

// staticType is the node's type, using what the syntax alone tells where
// the checker left no type (it does not descend into every position, such
// as slice bounds over an unknown value).
func staticType(n ast.Node) reflect.Type {
	switch x := n.(type) {
	case *ast.IntegerNode:
		return reflect.TypeOf(0)
	case *ast.BuiltinNode:
		if x.Name == "len" || x.Name == "count" {
			return reflect.TypeOf(0)
		}
	case *ast.BinaryNode:
		switch x.Operator {
		case "+", "-", "*", "%":
			if l, r := staticType(x.Left), staticType(x.Right); isIntType(l) && isIntType(r) {
				return l
			}
		}
	case *ast.UnaryNode:
		if t := staticType(x.Node); isIntType(t) {
			return t
		}
	}
	return n.Type()
}

func isNilNode(n ast.Node) bool {
	_, ok := n.(*ast.NilNode)
	return ok
}

// toDecimal converts a runtime operand; ok is false for non-numbers.
func toDecimal(v any) (Decimal, bool, error) {
	switch x := v.(type) {
	case Decimal:
		return x, true, nil
	case BigNumber:
		return Decimal{}, false, x.tooLong("compute with")
	case int:
		return DecimalFromInt(int64(x)), true, nil
	case int64:
		return DecimalFromInt(x), true, nil
	case int32:
		return DecimalFromInt(int64(x)), true, nil
	case uint8:
		return DecimalFromInt(int64(x)), true, nil
	case uint64:
		if x > math.MaxInt64 {
			return Decimal{}, false, fmt.Errorf("%d is too large", x)
		}
		return DecimalFromInt(int64(x)), true, nil
	case uint:
		return DecimalFromInt(int64(x)), true, nil
	case float64:
		d, err := DecimalFromFloat(x)
		return d, err == nil, err
	case float32:
		d, err := DecimalFromFloat(float64(x))
		return d, err == nil, err
	}
	return Decimal{}, false, nil
}

func describe(v any) string {
	switch x := v.(type) {
	case nil:
		return "nil (the field is missing or null)"
	case string:
		return fmt.Sprintf("the string %q", x)
	}
	return typeName(v)
}

func operands(op string, a, b any) (Decimal, Decimal, error) {
	x, okx, err := toDecimal(a)
	if err != nil {
		return x, x, err
	}
	y, oky, err := toDecimal(b)
	if err != nil {
		return x, y, err
	}
	if !okx || !oky {
		bad := a
		if okx {
			bad = b
		}
		return x, y, fmt.Errorf("invalid operation %s: %s is not a number", op, describe(bad))
	}
	return x, y, nil
}

func arith(op string, f func(x, y Decimal) (Decimal, error)) func(args ...any) (any, error) {
	return func(args ...any) (any, error) {
		a, b := args[0], args[1]
		if op == "+" {
			// expr's + also joins strings and lists; keep that for unknowns.
			if _, ok := a.(string); ok {
				return runtime.Add(a, b), nil
			}
			if _, ok := a.([]any); ok {
				return runtime.Add(a, b), nil
			}
		}
		x, y, err := operands(op, a, b)
		if err != nil {
			return nil, err
		}
		return f(x, y)
	}
}

func compare(op string, ok func(c int) bool) func(args ...any) (any, error) {
	return func(args ...any) (any, error) {
		a, b := args[0], args[1]
		if sa, isStr := a.(string); isStr {
			if sb, isStr := b.(string); isStr {
				return ok(strings.Compare(sa, sb)), nil
			}
		}
		if isBig(a) || isBig(b) {
			// By exact value: the text, not a rounding of it.
			c, isNum := cmpExact(a, b)
			if !isNum {
				bad := a
				if _, isNum := numberParts(a); isNum {
					bad = b
				}
				return nil, fmt.Errorf("invalid operation %s: %s is not a number", op, describe(bad))
			}
			return ok(c), nil
		}
		x, y, err := operands(op, a, b)
		if err != nil {
			return nil, err
		}
		return ok(x.Cmp(y)), nil
	}
}

func equal(a, b any) bool {
	if isBig(a) || isBig(b) {
		c, ok := cmpExact(a, b)
		return ok && c == 0
	}
	x, okx, _ := toDecimal(a)
	y, oky, _ := toDecimal(b)
	if okx && oky {
		return x.Cmp(y) == 0
	}
	if okx || oky {
		return false
	}
	return runtime.Equal(a, b)
}

// numberOps are the internal functions the patcher calls. Their Validate
// hooks give the checker the result type, so a Decimal result keeps being
// type-checked downstream (amount - 5 > "x" is still a compile error).
func numberOps() []expr.Option {
	arithType := func(args []reflect.Type) (reflect.Type, error) {
		for _, a := range args {
			if isDecimal(a) || isNativeNumber(a) {
				return decimalType, nil
			}
		}
		return anyType, nil
	}
	boolResult := func(args []reflect.Type) (reflect.Type, error) { return boolType, nil }
	fns := []*builtin.Function{
		{Name: "_dec_add", Validate: arithType, Func: arith("+", Decimal.Add)},
		{Name: "_dec_sub", Validate: arithType, Func: arith("-", Decimal.Sub)},
		{Name: "_dec_mul", Validate: arithType, Func: arith("*", Decimal.Mul)},
		{Name: "_dec_div", Validate: arithType, Func: arith("/", Decimal.Quo)},
		{Name: "_dec_mod", Validate: arithType, Func: arith("%", Decimal.Rem)},
		{Name: "_dec_pow", Validate: arithType, Func: arith("**", pow)},
		{Name: "_dec_lt", Validate: boolResult, Func: compare("<", func(c int) bool { return c < 0 })},
		{Name: "_dec_le", Validate: boolResult, Func: compare("<=", func(c int) bool { return c <= 0 })},
		{Name: "_dec_gt", Validate: boolResult, Func: compare(">", func(c int) bool { return c > 0 })},
		{Name: "_dec_ge", Validate: boolResult, Func: compare(">=", func(c int) bool { return c >= 0 })},
		{Name: "_dec_eq", Validate: boolResult, Func: func(args ...any) (any, error) { return equal(args[0], args[1]), nil }},
		{Name: "_dec_ne", Validate: boolResult, Func: func(args ...any) (any, error) { return !equal(args[0], args[1]), nil }},
		{Name: "_dec_in", Validate: boolResult, Func: func(args ...any) (any, error) {
			if list, ok := args[1].([]any); ok {
				for _, e := range list {
					if equal(args[0], e) {
						return true, nil
					}
				}
				return false, nil
			}
			if v := reflect.ValueOf(args[1]); v.Kind() == reflect.Slice || v.Kind() == reflect.Array {
				for i := range v.Len() {
					if equal(args[0], v.Index(i).Interface()) {
						return true, nil
					}
				}
				return false, nil
			}
			return runtime.In(args[0], args[1]), nil
		}},
		{Name: "_dec_neg", Validate: func(args []reflect.Type) (reflect.Type, error) {
			return arithType(args)
		}, Func: func(args ...any) (any, error) {
			x, ok, err := toDecimal(args[0])
			if err != nil {
				return nil, err
			}
			if !ok {
				return nil, fmt.Errorf("invalid operation -: %s is not a number", describe(args[0]))
			}
			return x.Neg(), nil
		}},
	}
	// Functions merchants call. They accept Decimals, native numbers and
	// numeric strings, so amounts work whatever the provider sent.
	oneNumber := func(name string, f func(Decimal, []any) (any, error), result reflect.Type) *builtin.Function {
		return &builtin.Function{
			Name: name,
			Validate: func(args []reflect.Type) (reflect.Type, error) {
				switch {
				case len(args) == 0:
					return nil, fmt.Errorf("%s needs a number", name)
				case len(args) > 2 || (len(args) == 2 && name != "round"):
					return nil, fmt.Errorf("%s takes one number, not %d values", name, len(args))
				}
				return result, nil
			},
			Func: func(args ...any) (any, error) {
				if len(args) == 0 {
					return nil, fmt.Errorf("%s needs a number", name)
				}
				if args[0] == nil {
					return nil, fmt.Errorf("%s: the value is nil (missing or null)", name)
				}
				x, err := AsDecimal(args[0])
				if err != nil {
					return nil, fmt.Errorf("%s: %v", name, err)
				}
				return f(x, args[1:])
			},
		}
	}
	places := func(rest []any) (int, error) {
		if len(rest) == 0 {
			return 0, nil
		}
		d, err := AsDecimal(rest[0])
		if err != nil {
			return 0, err
		}
		n, ok := d.Int64()
		if !ok || n < 0 || n > 18 {
			return 0, errors.New("decimal places must be a whole number from 0 to 18")
		}
		return int(n), nil
	}
	fns = append(fns,
		&builtin.Function{
			Name: "money",
			Validate: func(args []reflect.Type) (reflect.Type, error) {
				if len(args) != 1 {
					return nil, errors.New("money takes one number")
				}
				return stringType, nil
			},
			Func: func(args ...any) (any, error) {
				if len(args) != 1 {
					return nil, errors.New("money takes one number")
				}
				if args[0] == nil {
					return "", nil
				}
				x, err := AsDecimal(args[0])
				if err != nil {
					return nil, fmt.Errorf("money: %v", err)
				}
				return x.Money(), nil
			},
		},
		urlEscaper("urlpath", escapePathSegment),
		urlEscaper("urlquery", func(s string) (string, error) { return url.QueryEscape(s), nil }),
		oneNumber("decimal", func(x Decimal, _ []any) (any, error) { return x, nil }, decimalType),
		oneNumber("abs", func(x Decimal, _ []any) (any, error) { return x.Abs(), nil }, decimalType),
		oneNumber("round", func(x Decimal, rest []any) (any, error) {
			n, err := places(rest)
			return x.Round(n), err
		}, decimalType),
		oneNumber("ceil", func(x Decimal, _ []any) (any, error) { return Decimal{x.d.Ceil(0)}, nil }, decimalType),
		oneNumber("floor", func(x Decimal, _ []any) (any, error) { return Decimal{x.d.Floor(0)}, nil }, decimalType),
		oneNumber("float", func(x Decimal, _ []any) (any, error) { return x.Float64(), nil }, reflect.TypeOf(0.0)),
		oneNumber("int", func(x Decimal, _ []any) (any, error) {
			// An int, the type Validate declares: the checker compiles
			// int(x) == 49 to an int comparison.
			n, ok := Decimal{x.d.Trunc(0)}.Int64()
			if !ok || n != int64(int(n)) {
				return nil, fmt.Errorf("int: %s is too large", x)
			}
			return int(n), nil
		}, reflect.TypeOf(0)),
	)
	opts := make([]expr.Option, 0, len(fns)+5)
	fns = append(fns, aggregateFuncs()...)
	for _, name := range []string{"abs", "round", "ceil", "floor", "float", "int", "min", "max", "mean", "median"} {
		opts = append(opts, expr.DisableBuiltin(name))
	}
	for _, f := range fns {
		f := f
		if !strings.HasPrefix(f.Name, "_") {
			callChecks[f.Name] = f.Validate
		}
		opts = append(opts, func(c *conf.Config) { c.Functions[f.Name] = f })
	}
	return opts
}

// urlEscaper is a function that renders its argument as a template would
// and escapes it for one part of a URL: urlpath for a path segment (a "/"
// becomes %2F), urlquery for a query value ("&" and "=" escaped, a space as
// "+"). Without one, {{ order_id }} in a url inserts "../refund?x=" as it is.
func urlEscaper(name string, escape func(string) (string, error)) *builtin.Function {
	return &builtin.Function{
		Name: name,
		Validate: func(args []reflect.Type) (reflect.Type, error) {
			if len(args) != 1 {
				return nil, fmt.Errorf("%s takes one value", name)
			}
			return stringType, nil
		},
		Func: func(args ...any) (any, error) {
			if len(args) != 1 {
				return nil, fmt.Errorf("%s takes one value", name)
			}
			s, err := FormatValue(args[0])
			if err != nil {
				return nil, fmt.Errorf("%s: %v", name, err)
			}
			e, err := escape(s)
			if err != nil {
				return nil, fmt.Errorf("%s: %v", name, err)
			}
			return e, nil
		},
	}
}

// escapePathSegment is url.PathEscape made safe for one segment. "." and
// ".." are errors: no escape keeps them apart, since %2E is the same URI
// character as "." (RFC 3986, 6.2.2.2) and proxies decode it before
// resolving /orders/../cancel to /cancel. An empty value is an error too,
// because /orders//paid is cleaned to /orders/paid, another address, and
// so is a value with a "." or ".." between slashes.
func escapePathSegment(s string) (string, error) {
	switch s {
	case "":
		return "", errors.New("the value is empty (or nil), and an empty path segment changes the address called")
	case ".", "..":
		return "", fmt.Errorf("the value is %q, a path segment that moves up or stays (/orders/../cancel is /cancel)", s)
	}
	// "/" becomes %2F, but a proxy that decodes %2F before resolving dot
	// segments would still read 42%2F..%2Frefund as 42/../refund.
	for _, seg := range strings.FieldsFunc(s, func(r rune) bool { return r == '/' || r == '\\' }) {
		if seg == "." || seg == ".." {
			return "", fmt.Errorf("the value %q holds a %q segment, which a proxy that decodes %%2F reads as moving up or staying", s, seg)
		}
	}
	return url.PathEscape(s), nil
}

// AsDecimal converts a number or a numeric string to a Decimal. A number
// a Decimal cannot hold exactly (a BigNumber, or such a number as text) is
// an error rather than a rounded result.
func AsDecimal(v any) (Decimal, error) {
	switch x := v.(type) {
	case string:
		d, err := ParseDecimal(strings.TrimSpace(x))
		var de *DigitsError
		if errors.As(err, &de) {
			return d, fmt.Errorf("%v, too many to convert exactly: compare it as text, such as %s", err, textSuggestion(de.Text))
		}
		return d, err
	case BigNumber:
		return Decimal{}, x.tooLong("convert")
	}
	d, ok, err := toDecimal(v)
	if err != nil {
		return d, err
	}
	if !ok {
		return d, fmt.Errorf("%s is not a number", describe(v))
	}
	return d, nil
}

var decimalOptions = numberOps()

// compileMode selects the number semantics; floatMode exists only so the
// benchmarks can compare against expr's native float64 arithmetic.
type compileMode int

const (
	decimalMode compileMode = iota
	floatMode
)

// genericEnv is the environment for sources whose fields are unknown.
func genericEnv() map[string]any {
	return map[string]any{"payload": map[string]any{}, "meta": Meta{}}
}

// compileExpr compiles code against env; asBool requires a boolean result.
func compileExpr(code string, env map[string]any, mode compileMode, asBool bool) (*vm.Program, error) {
	if env == nil {
		env = genericEnv()
	}
	opts := []expr.Option{expr.Env(env), expr.AllowUndefinedVariables(), expr.MaxNodes(maxNodes)}
	if asBool {
		opts = append(opts, expr.AsBool())
	}
	var patcher *decimalPatcher
	if mode == decimalMode {
		patcher = &decimalPatcher{src: []rune(code)}
		opts = append(opts, decimalOptions...)
		opts = append(opts, expr.Patch(patcher))
	}
	prog, err := compileChecked(code, opts)
	if patcher != nil && patcher.err != nil {
		return nil, patcher.err.Bind(file.NewSource(code))
	}
	return prog, err
}

// compileChecked is expr.Compile with one more type check: of the tree as
// the patchers left it, with every node's type cleared first. expr's checker
// trusts the type an earlier pass gave a call, so an error inside a call
// the decimal patcher wrapped (upper(1) > 1, status + 1 > 2, both inside
// _dec_gt) went unreported, and the rule failed at run time instead.
func compileChecked(code string, opts []expr.Option) (*vm.Program, error) {
	cfg := conf.CreateNew()
	for _, op := range opts {
		op(cfg)
	}
	for name := range cfg.Disabled {
		delete(cfg.Builtins, name)
	}
	cfg.Check()
	tree, err := checker.ParseCheck(code, cfg)
	if err != nil {
		return nil, err
	}
	if len(cfg.Visitors) > 0 {
		ast.Walk(&tree.Node, forgetTypes{})
		visitors := cfg.Visitors
		cfg.Visitors = nil
		_, err := checker.Check(tree, cfg)
		cfg.Visitors = visitors
		if err != nil {
			return nil, err
		}
	}
	if cfg.Optimize {
		if err := optimizer.Optimize(&tree.Node, cfg); err != nil {
			var fe *file.Error
			if errors.As(err, &fe) {
				return nil, fe.Bind(tree.Source)
			}
			return nil, err
		}
	}
	return compiler.Compile(tree, cfg)
}

// forgetTypes clears the type the checker gave each node.
type forgetTypes struct{}

func (forgetTypes) Visit(node *ast.Node) { (*node).SetNature(nature.Nature{}) }

// compileValue compiles an expression whose result is any value.
func compileValue(code string, env map[string]any) (*vm.Program, error) {
	return compileExpr(code, env, decimalMode, false)
}

// reportExprError maps an expr error (with its own line:col inside the
// expression) to the file, offset by where the expression starts.
func reportExprError(probs *config.Problems, s *config.Scalar, line, col int, err error) {
	var fe *file.Error
	msg := friendlyMessage(err.Error())
	l, c := line, col
	if errors.As(err, &fe) {
		msg = friendlyMessage(fe.Message)
		if fe.Line <= 1 {
			c = col + fe.Column
		} else {
			l, c = line+fe.Line-1, fe.Column+1
		}
	}
	if s.Comment != "" && s.Style == 0 {
		msg += fmt.Sprintf("; note: YAML read everything from ` %s` on as a comment, so it is not part of the expression — put the whole value in quotes", strings.TrimSpace(s.Comment))
	}
	probs.Errorf(s.At(l, c), "%s", msg)
}

// friendlyMessage rewrites expr's terse messages for merchants.
func friendlyMessage(m string) string {
	m = strings.TrimSpace(m) // expr ends some messages with a space
	m = strings.ReplaceAll(m, "github.com/payramd/payramd/engine.Decimal", "number")
	m = strings.ReplaceAll(m, "engine.Decimal", "number")
	m = strings.ReplaceAll(m, "github.com/payramd/payramd/engine.BigNumber", "number")
	m = strings.ReplaceAll(m, "engine.BigNumber", "number")
	switch {
	case strings.HasPrefix(m, "expected bool, but got"):
		what := strings.TrimPrefix(m, "expected bool, but got ")
		switch what {
		case "number", "int", "float64":
			what = "a number"
		case "string":
			what = "text"
		default:
			what = "a value of type " + what
		}
		return "the condition must be true or false, but it gives " + what + ": compare it with something, such as status == \"FILLED\""
	case strings.HasPrefix(m, "invalid integer literal") && strings.Contains(m, "out of range"):
		if i := strings.Index(m, "parsing "); i >= 0 {
			if j := strings.Index(m[i:], ": value out of range"); j >= 0 {
				text := strings.Trim(m[i+len("parsing "):i+j], `"`)
				if p, ok := splitNumber(strings.ReplaceAll(text, "_", "")); ok && p.excess() != "" {
					return literalError(&DigitsError{Text: text, reason: p.excess()})
				}
				// Beyond an int64 yet within 19 digits: a decimal literal holds it.
				return "the number " + text + " is too large for a whole-number literal: write it as " + text + ".0"
			}
		}
	case strings.HasPrefix(m, "invalid float literal") && strings.Contains(m, "value out of range"):
		if i := strings.Index(m, "parsing "); i >= 0 {
			if j := strings.Index(m[i:], ": value out of range"); j >= 0 {
				text := strings.Trim(m[i+len("parsing "):i+j], `"`)
				if p, ok := splitNumber(strings.ReplaceAll(text, "_", "")); ok {
					return literalError(&DigitsError{Text: text, reason: p.excess()})
				}
			}
		}
	case strings.Contains(m, "unexpected token Operator(\"=\")"):
		return m + " (to compare, write == instead of =)"
	case strings.HasPrefix(m, "invalid operation") && strings.Contains(m, "mismatched types number and string"),
		strings.HasPrefix(m, "invalid operation") && strings.Contains(m, "mismatched types string and number"):
		for _, op := range []string{"+", "-", "*", "/", "%", "**", "^"} {
			if strings.HasPrefix(m, "invalid operation: "+op+" ") {
				return m + ": arithmetic needs numbers on both sides; for an amount sent as text, write decimal(x)"
			}
		}
		return m + ": a number cannot be compared with text; remove the quotes around the number"
	}
	return m
}

// cleanRunError keeps the first line of a runtime error (expr appends a
// multi-line snippet) and rewrites internal names.
func cleanRunError(err error) string {
	msg := err.Error()
	var fe *file.Error
	if errors.As(err, &fe) {
		msg = fe.Message
		if fe.Line > 0 {
			msg += " (" + strconv.Itoa(fe.Line) + ":" + strconv.Itoa(fe.Column+1) + ")"
		}
	}
	if i := strings.IndexByte(msg, '\n'); i >= 0 {
		msg = msg[:i]
	}
	return friendlyMessage(msg)
}
