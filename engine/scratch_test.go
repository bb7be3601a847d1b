package engine

import (
	"testing"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/vm"
)

func TestScratch(t *testing.T) {
	env := map[string]any{"status": "OVER_FILLED", "amount": MustDecimal("44.99"), "filled_amount_in_usd": MustDecimal("49.99"), "payload": map[string]any{}, "meta": Meta{}, "x": nil, "n": 0, "s": "abc"}
	for _, code := range []string{
		`status == "OVER_FILLED" && filled_amount_in_usd - amount > 5`,
		`filled_amount_in_usd - amount == 5`,
		`0.1 + 0.2 == 0.3`, `7 / 2`, `1 / 0`, `amount / 0`, `x - 5`, `-amount`, `amount * 2`, `money(amount - 44)`, `len(s) - 1`, `s[len(s)-1:]`, `amount > "5"`, `round(amount, 1)`, `x == nil`, `amount == nil`, `abs(-5.5)`, `data.object.amount > 5`, `s + "d"`, `amount in [44.99]`,
	} {
		prog, err := expr.Compile(code, exprOptions(map[string]any{"status": "", "amount": Decimal{}, "filled_amount_in_usd": Decimal{}, "payload": map[string]any{}, "meta": Meta{}}, decimalMode, false)...)
		if err != nil {
			t.Logf("%-60s compile error: %v", code, err)
			continue
		}
		var m vm.VM
		v, err := m.Run(prog, env)
		t.Logf("%-60s => %v (%T) err=%v", code, v, v, err)
	}
}
