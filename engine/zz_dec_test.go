package engine

import (
	"fmt"
	"testing"
)

func TestDec(t *testing.T) {
	for _, s := range []string{"0.1000000000000000000001", "12345678901234567890.5", "1234567890123456789.5", "9999999999999999999", "99999999999999999999", "1e-30", "1.5e3", "0.00000000000000000001", "1_000.5"} {
		d, err := ParseDecimal(s)
		fmt.Println(s, d, err)
	}
	for _, f := range []float64{0.1000000000000000000001, 12345678901234567890.5, 1e20, 1e-30} {
		d, err := DecimalFromFloat(f)
		fmt.Println(f, d, err)
	}
	x := MustDecimal("5.049")
	fmt.Println(x.Money(), MustDecimal("5.045").Money(), MustDecimal("5.055").Money(), MustDecimal("-5.045").Money(), MustDecimal("5").Money(), MustDecimal("1234567890123456789").Money())
}
