package engine

import (
	"fmt"
	"testing"
)

func TestScratch(t *testing.T) {
	ev := payramEvent(t, `{"status":"OVER_FILLED","amount":"44.990","filled_amount_in_usd":"52.50","big":12345678901234567890,"nine":9999999999999999999,"payment_info":[{"block_number":21438012}],"tags":["a","b"],"n":5}`)
	for _, w := range []string{
		`amount in [44.99]`, `amount in [44.990]`, `44.99 in [amount]`, `n in [5]`, `n in [5.0]`, `n in 1..10`, `amount not in [44.99]`,
		`max(amount, 5) == amount`, `min(amount, 50) == amount`, `sum([amount, amount]) == 89.98`, `mean([amount]) == amount`,
		`big + 1 > 0`, `big > 0`, `big == big`, `nine * 10 > 0`, `nine + 1 > 0`, `-nine - 2 < 0`,
		`amount < 12345678901234567890.5`, `amount < 1e19`, `amount < 1_000.5`, `amount * 1e-3 < 1`,
		`all(payment_info, .block_number > 21438011)`, `count(payment_info, .block_number == 21438012) == 1`,
		`amount ?? 0 > 5`, `(missing ?? 0) > 5`, `missing > 5 || amount > 5`, `amount > 5 || missing > 5`,
		`string(amount) == "44.990"`, `toJSON(amount) == "44.990"`, `amount == 44.99 ? true : false`,
		`int(nine) > 0`, `round(amount) == 45`, `abs(nil) == 1`, `decimal("1.5") == 1.5`, `decimal(n) == 5`,
		`-n == -5`, `n / 2 == 2.5`, `n ** 2 == 25`, `amount ** 2 > 0`, `n ^ 2 == 25`,
		`now() > meta.received_at`, `duration("1h") > duration("1m")`, `meta.received_at + duration("1h") > now()`,
		`len(tags) - 1 == 1`, `tags[len(tags) - 1] == "b"`, `tags[0:1] == ["a"]`, `1 + 2 == 3`, `1 + 2.5 == 3.5`,
		`"a" + "b" == "ab"`, `tags + ["c"] == ["a","b","c"]`,
	} {
		rs, probs := compileOne(w)
		fmt.Printf("%-50s ", w)
		for _, p := range probs {
			fmt.Printf("[%s] ", p)
		}
		if rs != nil {
			res := rs.Evaluate(ev, true)
			fmt.Printf("matched=%v err=%v", res[0].Matched, res[0].Err)
		}
		fmt.Println()
	}
}
