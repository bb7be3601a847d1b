package engine

import (
	"fmt"
	"testing"

	"github.com/payramd/payramd/config"
)

func TestPos(t *testing.T) {
	y := "sources:\n  payram:\n    provider: payram\n    secret: k\nactions:\n  a:\n    type: log\nrules:\n" +
		"  - name: plain\n    when: status = \"FILLED\"\n    do: [a]\n" +
		"  - name: dq\n    when: \"status = 'FILLED'\"\n    do: [a]\n" +
		"  - name: sq\n    when: 'amount > \"5\"'\n    do: [a]\n" +
		"  - name: block\n    when: |\n      status == \"FILLED\" &&\n        amount > \"5\"\n    do: [a]\n" +
		"  - name: comment\n    when: status == \"PAID\" #and amount > 5\n    do: [a]\n" +
		"  - name: comment2\n    when: status == \"PAID\" && #amount > 5\n    do: [a]\n" +
		"  - name: typo\n    when: fillled_amount_in_usd - amount > 5\n    do: [a]\n" +
		"  - name: fold\n    when: >\n      status == \"FILLED\"\n      && amount > \"5\"\n    do: [a]\n" +
		"  - name: nonbool\n    when: amount + 1\n    do: [a]\n"
	cfg, probs := config.LoadBytes("r.yaml", []byte(y), config.Options{Getenv: func(string) (string, bool) { return "", false }})
	for i, l := range []byte(y) { _ = i; _ = l }
	Compile(cfg.Rules, CompileOptions{Schemas: map[string]Schema{"payram": paySchema}, Sources: []string{"payram"}}, probs)
	probs.Sort()
	for _, p := range probs.List {
		fmt.Println(p)
	}
	for _, r := range cfg.Rules {
		fmt.Printf("%s %v %q style=%v comment=%q\n", r.Name, r.When.Pos, r.When.Value, r.When.Style, r.When.Comment)
	}
}
