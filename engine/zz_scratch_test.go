package engine

import (
	"fmt"
	"testing"

	"github.com/payramd/payramd/config"
	"gopkg.in/yaml.v3"
)

var paySchema = Schema{"amount": KindDecimal, "filled_amount_in_usd": KindDecimal, "status": KindString, "reference_id": KindString, "customer_id": KindString}

func TestScratch(t *testing.T) {
	payload, _ := DecodeObject([]byte(`{"status":"OVER_FILLED","amount":"49.99","filled_amount_in_usd":"54.99","n":3,"big":"9999999999999999999","zero":0,"s":"abc"}`))
	for _, k := range []string{"amount", "filled_amount_in_usd", "big"} {
		payload[k] = MustDecimal(payload[k].(string))
	}
	ev := &Event{ID: "e1", Source: "payram", Provider: "payram", Type: "payment.over_filled", Payload: payload}
	for _, w := range []string{
		`49.99 - 44.99 == 5`, `0.1 + 0.2 == 0.3`, `filled_amount_in_usd - amount > 5`, `filled_amount_in_usd - amount == 5`,
		`1/3*3 == 1`, `1/3*3`, `amount / 0 > 5`, `amount / zero > 5`, `missing - 5 > 0`, `nil - 5 > 0`, `7 % 3 == 1`, `amount % 10 == 9.99`, `-amount < -49`, `-5 + 2 == -3`,
		`big * 10 > 0`, `big + big > 0`, `99999999999999999999 > 1`, `n / 2 == 1.5`, `n * 2 == 6`, `len(s) - 1 == 2`,
		`money(5) == "5.00"`, `money(5.049) == "5.05"`, `money(5.045) == "5.04"`, `money(5.055) == "5.06"`, `money(amount)`,
		`status = "FILLED"`, `amount > "5"`, `amount`, `status`, `fillled_amount_in_usd > 5`, `amount > 5.5 && status == "OVER_FILLED"`,
		`1e400 > 1`, `0.1 + 0.2`, `round(amount, 1) == 50`, `abs(-amount) == amount`, `amount in [49.99, 1]`, `49.990 == amount`,
		`float(amount) > 1`, `int(amount) == 49`, `s + "x" == "abcx"`, `n == 3`, `n == 3.0`, `meta.type == "payment.over_filled"`,
	} {
		probs := &config.Problems{}
		rs := Compile([]*config.Rule{{Name: "r", Enabled: true, When: &config.Scalar{Value: w, Pos: config.Pos{File: "r.yaml", Line: 3, Col: 11}}}},
			CompileOptions{Schemas: map[string]Schema{"payram": paySchema}, Sources: []string{"payram"}}, probs)
		fmt.Printf("%-45s ", w)
		for _, p := range probs.List {
			fmt.Printf("[%s] ", p)
		}
		if rs != nil {
			res := rs.Evaluate(ev, true)
			fmt.Printf("matched=%v err=%v", res[0].Matched, res[0].Err)
			v, err := rs.Rules[0].when.Node().Type(), error(nil)
			_ = v
			_ = err
		}
		fmt.Println()
	}
	_ = yaml.LiteralStyle
}
