package engine

import (
	"errors"
	"fmt"
	"reflect"
	"slices"

	"github.com/expr-lang/expr/builtin"
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

// numbersOf flattens numbers and lists of numbers (nested, as expr's own
// aggregates accept) into Decimals. Numeric strings count, as in decimal().
// A nil is an error naming the function: a missing amount must not quietly
// drop out of a total.
func numbersOf(name string, args []any) ([]Decimal, error) {
	var out []Decimal
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
		case string, Decimal:
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
		d, err := AsDecimal(v)
		if err != nil {
			return fmt.Errorf("%s: %v", name, err)
		}
		out = append(out, d)
		return nil
	}
	for _, a := range args {
		if err := walk(a, 0); err != nil {
			return nil, err
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

// half returns (a + b) / 2.
func half(a, b Decimal) (Decimal, error) {
	s, err := a.Add(b)
	if err != nil {
		return s, err
	}
	return s.Quo(DecimalFromInt(2))
}

// pow returns x ** y: exact for a whole exponent whose result fits,
// rounded to 19 digits otherwise (2 ** 0.5, 3 ** -1).
func pow(x, y Decimal) (Decimal, error) {
	if x.IsZero() && y.Cmp(Decimal{}) < 0 {
		return Decimal{}, ErrDivisionByZero
	}
	if x.Cmp(Decimal{}) < 0 {
		if _, whole := y.Int64(); !whole {
			return Decimal{}, fmt.Errorf("%s ** %s has no real value (a negative number to a fractional power)", x, y)
		}
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
	extreme := func(name string, keep func(c int) bool) *builtin.Function {
		return &builtin.Function{Name: name, Validate: decimalResult(name), Func: func(args ...any) (any, error) {
			xs, err := nonEmpty(name, args)
			if err != nil {
				return nil, err
			}
			m := xs[0]
			for _, x := range xs[1:] {
				if keep(x.Cmp(m)) {
					m = x
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
			t, err := total(xs)
			if err != nil {
				return nil, fmt.Errorf("mean: %v", err)
			}
			return t.Quo(DecimalFromInt(int64(len(xs))))
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
			return half(xs[n/2-1], xs[n/2])
		}},
		{Name: "_dec_sum", Validate: decimalResult("sum"), Func: func(args ...any) (any, error) {
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
