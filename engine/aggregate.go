package engine

import (
	"cmp"
	"errors"
	"fmt"
	"math/big"
	"reflect"
	"slices"
	"strconv"

	"github.com/expr-lang/expr/builtin"
	"github.com/govalues/decimal"
)

// Aggregates over amounts. expr's own min, max, mean, median, sum and **
// compute in float64 and refuse anything else, so on payramd's Decimals they
// failed at run time with "invalid argument for max (type number)": a rule
// such as max(amount, filled_amount_in_usd) > 100 never matched. These
// versions are exact: min, max and sum return one of the numbers or their
// exact total; mean, median (of an even count) and fractional powers divide
// or root, rounding to 19 significant digits as / does.

// maxListDepth bounds how deeply aggregates descend into nested lists.
const maxListDepth = 16

// numberLeaves flattens numbers and lists of numbers (nested, as expr's own
// aggregates accept) into their leaves, unconverted. A nil is an error naming
// the function: a missing amount must not quietly drop out of a total.
func numberLeaves(name string, args []any) ([]any, error) {
	var out []any
	var walk func(v any, depth int) error
	walk = func(v any, depth int) error {
		if depth > maxListDepth {
			return fmt.Errorf("%s: lists nested more than %d deep", name, maxListDepth)
		}
		switch x := v.(type) {
		case nil:
			return fmt.Errorf("%s: a value is nil (a missing or null field); write (x ?? 0) to count it as zero", name)
		case []any:
			for _, e := range x {
				if err := walk(e, depth+1); err != nil {
					return err
				}
			}
			return nil
		case string, Decimal, BigNumber:
		default:
			if rv := reflect.ValueOf(v); rv.Kind() == reflect.Slice || rv.Kind() == reflect.Array {
				for i := range rv.Len() {
					if err := walk(rv.Index(i).Interface(), depth+1); err != nil {
						return err
					}
				}
				return nil
			}
		}
		out = append(out, v)
		return nil
	}
	for _, a := range args {
		if err := walk(a, 0); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// numbersOf is numberLeaves converted to Decimals. Numeric strings count,
// as in decimal().
func numbersOf(name string, args []any) ([]Decimal, error) {
	leaves, err := numberLeaves(name, args)
	if err != nil {
		return nil, err
	}
	out := make([]Decimal, len(leaves))
	for i, v := range leaves {
		if out[i], err = AsDecimal(v); err != nil {
			return nil, fmt.Errorf("%s: %v", name, err)
		}
	}
	return out, nil
}

// nonEmpty is numbersOf for aggregates that have no value for no numbers.
func nonEmpty(name string, args []any) ([]Decimal, error) {
	xs, err := numbersOf(name, args)
	if err == nil && len(xs) == 0 {
		err = fmt.Errorf("%s of no numbers (an empty list)", name)
	}
	return xs, err
}

func total(xs []Decimal) (Decimal, error) {
	var t Decimal
	for _, x := range xs {
		var err error
		if t, err = t.Add(x); err != nil {
			return t, err
		}
	}
	return t, nil
}

// meanOf returns the exact mean of xs rounded once to 19 significant
// digits, as / rounds: the total may need more digits than a Decimal holds
// (mean([0.1234567890123456789, 1])), so it is added up in math/big.
func meanOf(xs []Decimal) (Decimal, error) {
	t := new(big.Rat)
	for _, x := range xs {
		t.Add(t, x.rat())
	}
	t.Quo(t, new(big.Rat).SetInt64(int64(len(xs))))
	return ratToDecimal(t)
}

// ratToDecimal rounds r to 19 significant digits (at most 19 decimal
// places), halves to even as Quo does.
func ratToDecimal(r *big.Rat) (Decimal, error) {
	whole := new(big.Int).Quo(r.Num(), r.Denom())
	intDigits := 0
	if whole.Sign() != 0 {
		intDigits = len(whole.Abs(whole).String())
	}
	if intDigits > 19 {
		return Decimal{}, wrapArith(errors.New("overflow"))
	}
	places := 19 - intDigits
	num := new(big.Int).Mul(r.Num(), new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(places)), nil))
	q, m := new(big.Int).QuoRem(num, r.Denom(), new(big.Int)) // q truncated toward zero
	m.Abs(m).Lsh(m, 1)
	if c := m.Cmp(r.Denom()); c > 0 || c == 0 && q.Bit(0) == 1 {
		q.Add(q, big.NewInt(int64(num.Sign())))
	}
	d, err := decimal.Parse(q.String() + "e-" + strconv.Itoa(places))
	if err != nil {
		return Decimal{}, wrapArith(err)
	}
	return Decimal{d.Trim(0)}, nil
}

// powWhole returns x ** n exactly by repeated squaring, or the error of the
// first product that a Decimal could only hold rounded.
func powWhole(x Decimal, n uint64) (Decimal, error) {
	r := DecimalFromInt(1)
	for n > 0 {
		var err error
		if n&1 == 1 {
			if r, err = r.Mul(x); err != nil {
				return r, err
			}
		}
		if n >>= 1; n > 0 {
			if x, err = x.Mul(x); err != nil {
				return x, err
			}
		}
	}
	return r, nil
}

// pow returns x ** y: exact for a whole exponent, or an error when the
// exact power needs more than 19 digits (1.1 ** 30); rounded to 19 digits
// for a fractional exponent (2 ** 0.5) and in the division that a negative
// one implies (3 ** -1).
func pow(x, y Decimal) (Decimal, error) {
	if x.IsZero() && y.Cmp(Decimal{}) < 0 {
		return Decimal{}, ErrDivisionByZero
	}
	if x.Cmp(Decimal{}) < 0 {
		if _, whole := y.Int64(); !whole {
			return Decimal{}, fmt.Errorf("%s ** %s has no real value (a negative number to a fractional power)", x, y)
		}
	}
	if n, whole := y.Int64(); whole {
		// A whole power is a product: exact, or an error as x * x is.
		if n >= 0 {
			return powWhole(x, uint64(n))
		}
		p, err := powWhole(x, uint64(-(n+1))+1)
		if err != nil {
			return p, err
		}
		return DecimalFromInt(1).Quo(p)
	}
	r, err := x.d.Pow(y.d)
	if err != nil {
		return Decimal{}, wrapArith(err)
	}
	return Decimal{r.Trim(0)}, nil
}

// aggregateFuncs are min, max, mean and median, replacing expr's, and the
// internal _dec_sum that the patcher calls for sum(list) and sum(list, f).
func aggregateFuncs() []*builtin.Function {
	decimalResult := func(name string) func([]reflect.Type) (reflect.Type, error) {
		return func(args []reflect.Type) (reflect.Type, error) {
			if len(args) == 0 {
				return nil, fmt.Errorf("%s needs numbers, or a list of numbers", name)
			}
			for _, a := range args {
				if a != nil && (a.Kind() == reflect.Bool || a.Kind() == reflect.Map) {
					return nil, fmt.Errorf("%s needs numbers, or a list of numbers, not %s", name, a)
				}
			}
			return decimalType, nil
		}
	}
	// min and max only compare, so they return one of their arguments
	// as it is: an int for whole-number arguments (list[max(n - 2, 0)]
	// indexes a list), a BigNumber compared by its exact value.
	extremeType := func(name string) func([]reflect.Type) (reflect.Type, error) {
		dec := decimalResult(name)
		return func(args []reflect.Type) (reflect.Type, error) {
			t, err := dec(args)
			if err != nil {
				return t, err
			}
			for _, a := range args {
				if a == nil || a.Kind() != reflect.Int {
					return t, nil
				}
			}
			return args[0], nil
		}
	}
	extreme := func(name string, keep func(c int) bool) *builtin.Function {
		return &builtin.Function{Name: name, Validate: extremeType(name), Func: func(args ...any) (any, error) {
			if m, ok := extremeInt(args, keep); ok {
				return m, nil
			}
			leaves, err := numberLeaves(name, args)
			if err != nil {
				return nil, err
			}
			if len(leaves) == 0 {
				return nil, fmt.Errorf("%s of no numbers (an empty list)", name)
			}
			var m any
			for _, v := range leaves {
				if !isBig(v) {
					d, err := AsDecimal(v)
					if err != nil {
						return nil, fmt.Errorf("%s: %v", name, err)
					}
					v = d
				}
				if m == nil {
					m = v
					continue
				}
				if keep(cmpNumbers(v, m)) {
					m = v
				}
			}
			return m, nil
		}}
	}
	return []*builtin.Function{
		extreme("max", func(c int) bool { return c > 0 }),
		extreme("min", func(c int) bool { return c < 0 }),
		{Name: "mean", Validate: decimalResult("mean"), Func: func(args ...any) (any, error) {
			xs, err := nonEmpty("mean", args)
			if err != nil {
				return nil, err
			}
			m, err := meanOf(xs)
			if err != nil {
				return nil, fmt.Errorf("mean: %v", err)
			}
			return m, nil
		}},
		{Name: "median", Validate: decimalResult("median"), Func: func(args ...any) (any, error) {
			xs, err := nonEmpty("median", args)
			if err != nil {
				return nil, err
			}
			slices.SortFunc(xs, Decimal.Cmp)
			n := len(xs)
			if n%2 == 1 {
				return xs[n/2], nil
			}
			m, err := meanOf(xs[n/2-1 : n/2+1])
			if err != nil {
				return nil, fmt.Errorf("median: %v", err)
			}
			return m, nil
		}},
		{Name: "_dec_sum", Validate: sumType, Func: func(args ...any) (any, error) {
			if len(args) != 1 {
				return nil, errors.New("sum takes a list")
			}
			switch args[0].(type) {
			case nil:
				return nil, errors.New("sum: the list is nil (a missing or null field)")
			case string, Decimal:
				return nil, fmt.Errorf("sum takes a list, not %s", describe(args[0]))
			}
			xs, err := numbersOf("sum", args)
			if err != nil {
				return nil, err
			}
			t, err := total(xs)
			if err != nil {
				return nil, fmt.Errorf("sum: %v", err)
			}
			return t, nil
		}},
	}
}

// sumType checks sum's one argument, which must be a list: sum(5) is a
// mistake, not 5.
func sumType(args []reflect.Type) (reflect.Type, error) {
	if len(args) != 1 {
		return nil, errors.New("sum takes a list")
	}
	if a := args[0]; a != nil {
		switch a.Kind() {
		case reflect.Slice, reflect.Array, reflect.Interface:
		default:
			return nil, fmt.Errorf("sum takes a list, not %s", a)
		}
	}
	return decimalType, nil
}

// extremeInt is min or max of arguments that are all ints, as an int.
func extremeInt(args []any, keep func(c int) bool) (int, bool) {
	if len(args) == 0 {
		return 0, false
	}
	m, ok := args[0].(int)
	for _, a := range args[1:] {
		n, isInt := a.(int)
		if !ok || !isInt {
			return 0, false
		}
		if keep(cmp.Compare(n, m)) {
			m = n
		}
	}
	return m, ok
}

// cmpNumbers compares two Decimals or BigNumbers by exact value.
func cmpNumbers(a, b any) int {
	x, xok := a.(Decimal)
	y, yok := b.(Decimal)
	if xok && yok {
		return x.Cmp(y)
	}
	c, _ := cmpExact(a, b)
	return c
}
