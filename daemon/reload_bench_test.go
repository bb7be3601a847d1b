package daemon_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/payramd/payramd/config"
	"github.com/payramd/payramd/daemon"
)

// writeRules1000 writes a merchant's rules.yaml with 1,000 rules on one
// PayRam source: log actions with templates, mostly status and amount
// conditions, some per customer, some with once_per and inline actions.
func writeRules1000(tb testing.TB) string {
	tb.Helper()
	statuses := []string{"OPEN", "FILLED", "PARTIALLY_FILLED", "OVER_FILLED", "CANCELLED", "VERIFYING"}
	var b strings.Builder
	b.WriteString(`server:
  data_dir: ./data
sources:
  payram:
    provider: payram
    secret: bench-secret
actions:
`)
	for i := range 10 {
		fmt.Fprintf(&b, "  log-%d:\n    type: log\n    message: \"{{ meta.type }} {{ reference_id }} paid {{ money(filled_amount_in_usd ?? 0) }} of {{ money(amount) }} ({{ customer_email }})\"\n", i)
	}
	b.WriteString("rules:\n")
	for i := range 1000 {
		fmt.Fprintf(&b, "  - name: rule-%d\n", i)
		switch {
		case i%100 == 99:
			b.WriteString("    when: amount > 1000\n")
		case i%10 == 1:
			fmt.Fprintf(&b, "    when: customer_id == \"cust_%d\" && amount > 20\n", i)
		default:
			fmt.Fprintf(&b, "    when: status == %q && filled_amount_in_usd - amount > %d.%02d\n", statuses[i%len(statuses)], i%50, i%100)
		}
		if i%3 == 0 {
			b.WriteString("    once_per: reference_id\n")
		}
		if i%25 == 0 {
			fmt.Fprintf(&b, "    do:\n      - log-%d\n      - type: log\n        message: \"rule %d matched {{ reference_id }}\"\n", i%10, i)
		} else {
			fmt.Fprintf(&b, "    do: [log-%d]\n", i%10)
		}
	}
	path := filepath.Join(tb.TempDir(), "rules.yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		tb.Fatal(err)
	}
	return path
}

// BenchmarkReload1000Rules times daemon.Load (parse, expand, validate and
// compile everything) on a 1,000-rule config: the work of one hot reload.
func BenchmarkReload1000Rules(b *testing.B) {
	path := writeRules1000(b)
	opt := daemon.LoadOptions{Path: path, Config: config.Options{Getenv: func(string) (string, bool) { return "", false }}}
	snap, probs := daemon.Load(opt)
	if snap == nil {
		b.Fatalf("load: %v", probs.List)
	}
	if n := len(snap.Rules.Rules); n != 1000 {
		b.Fatalf("%d rules", n)
	}
	b.ReportAllocs()
	for b.Loop() {
		if snap, _ := daemon.Load(opt); snap == nil {
			b.Fatal("load failed")
		}
	}
}
