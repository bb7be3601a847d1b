package config

import (
	"strings"
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr string
	}{
		{in: "30s", want: 30 * time.Second},
		{in: " 720h ", want: 720 * time.Hour},
		{in: "1h30m", want: 90 * time.Minute},
		{in: "0s", want: 0},
		{in: "7d", wantErr: `"7d" is not a duration: write a number and a unit, such as 30s, 5m or 720h; days are written in hours (720h is 30 days)`},
		{in: "30", wantErr: `"30" is not a duration: write a number and a unit, such as 30s, 5m or 720h`},
		{in: "", wantErr: `"" is not a duration: write a number and a unit, such as 30s, 5m or 720h`},
		{in: "-1m", wantErr: `"-1m": a duration cannot be negative`},
	}
	for _, tt := range tests {
		got, err := ParseDuration(tt.in)
		if tt.wantErr != "" {
			if err == nil || err.Error() != tt.wantErr {
				t.Errorf("ParseDuration(%q) error = %v, want %s", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"1048576", 1 << 20, true},
		{"1MiB", 1 << 20, true},
		{"512 KiB", 512 << 10, true},
		{"1MB", 1000000, true},
		{"2GB", 2000000000, true},
		{"1GiB", 1 << 30, true},
		{"100B", 100, true},
		{"0", 0, true},
		{"1.5MiB", 0, false},
		{"1 megabyte", 0, false},
		{"-1KiB", 0, false},
		{"MiB", 0, false},
		{"2000000GiB", 0, false}, // more than 2^50 bytes: surely a mistake
		{"1mib", 0, false},       // units are case-sensitive: KB is 1000, Kb would be bits
	}
	for _, tt := range tests {
		got, err := ParseSize(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestParsePrefix(t *testing.T) {
	tests := []struct{ in, want, wantErr string }{
		{in: "203.0.113.0/24", want: "203.0.113.0/24"},
		{in: "203.0.113.7/24", want: "203.0.113.0/24"}, // masked
		{in: "10.1.2.3", want: "10.1.2.3/32"},
		{in: "::ffff:10.1.2.3", want: "10.1.2.3/32"}, // unmapped
		{in: "2001:db8::/32", want: "2001:db8::/32"},
		{in: "10.0.0.0/33", wantErr: `"10.0.0.0/33" is not a CIDR such as 203.0.113.0/24`},
		{in: "example.com", wantErr: `"example.com" is not an IP address or CIDR`},
	}
	for _, tt := range tests {
		got, err := ParsePrefix(tt.in)
		switch {
		case tt.wantErr != "" && (err == nil || err.Error() != tt.wantErr):
			t.Errorf("ParsePrefix(%q) error = %v, want %s", tt.in, err, tt.wantErr)
		case tt.wantErr == "" && (err != nil || got.String() != tt.want):
			t.Errorf("ParsePrefix(%q) = %v, %v; want %s", tt.in, got, err, tt.want)
		}
	}
}

func TestSuggest(t *testing.T) {
	known := []string{"rules", "actions", "sources", "server", "tests", "include"}
	tests := []struct{ word, want string }{
		{"rulse", "rules"},    // transposition is one typo
		{"Rules", "rules"},    // case is ignored
		{"acions", "actions"}, // deletion
		{"source", "sources"},
		{"servre", "server"},
		{"alerts", ""}, // nothing close
		{"x", ""},
	}
	for _, tt := range tests {
		if got := Suggest(tt.word, known); got != tt.want {
			t.Errorf("Suggest(%q) = %q, want %q", tt.word, got, tt.want)
		}
	}
	if got := DidYouMean("fillled_amount_in_usd", []string{"amount", "filled_amount_in_usd"}); got != ` (did you mean "filled_amount_in_usd"?)` {
		t.Errorf("DidYouMean = %q", got)
	}
}

// TestScalarAt checks that a column reported inside a value (by expr, 1-based
// line and column within the value) lands on the right character of the
// file, whatever the YAML style.
func TestScalarAt(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		// mark is the text of the value whose first character expr points at.
		mark string
		// wantLine and wantCol are where mark is in the file.
		wantLine, wantCol int
	}{
		{"plain", "rule:\n  when: status = \"FILLED\"\n", "= ", 2, 16},
		{"double quoted", "rule:\n  when: \"status = 'FILLED'\"\n", "= ", 2, 17},
		{"single quoted", "rule:\n  when: 'amount > \"5\"'\n", "> ", 2, 17},
		{"literal block, first line", "rule:\n  when: |\n    status = \"FILLED\"\n", "= ", 3, 12},
		{"literal block, second line", "rule:\n  when: |\n    status == \"FILLED\" &&\n      amount > \"5\"\n", "> ", 4, 14},
		{"literal block after a blank line", "rule:\n  when: |-\n\n    amount > \"5\"\n", "> ", 4, 12},
		{"folded block, first line", "rule:\n  when: >\n    status == \"FILLED\"\n    && amount > \"5\"\n", "&&", 4, 5},
		{"folded block, later in the first line", "rule:\n  when: >\n    status == \"FILLED\"\n    && amount > \"5\"\n", "> ", 4, 15},
		{"sequence item", "rule:\n  when:\n    - a = 1\n", "= ", 3, 9},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := &loader{probs: &Problems{}, cfg: &Config{}, lines: map[string][]string{}}
			root := l.parse("r.yaml", []byte(tt.yaml))
			if root == nil {
				t.Fatalf("parse: %v", l.probs.List)
			}
			rule := l.fields("r.yaml", root).Map("rule")
			s := rule.ScalarList("when")[0]
			off := strings.Index(s.Value, tt.mark)
			if off < 0 {
				t.Fatalf("%q not in %q", tt.mark, s.Value)
			}
			line, col := 1, 1
			for _, r := range s.Value[:off] {
				if r == '\n' {
					line, col = line+1, 1
				} else {
					col++
				}
			}
			got := s.At(line, col)
			if got.Line != tt.wantLine || got.Col != tt.wantCol {
				t.Errorf("At(%d, %d) = %d:%d, want %d:%d", line, col, got.Line, got.Col, tt.wantLine, tt.wantCol)
			}
			// The file really has mark there.
			fileLine := strings.Split(tt.yaml, "\n")[tt.wantLine-1]
			if !strings.HasPrefix(fileLine[tt.wantCol-1:], tt.mark) {
				t.Errorf("test is wrong: %q is not at column %d of %q", tt.mark, tt.wantCol, fileLine)
			}
		})
	}
}

func TestFieldsTypes(t *testing.T) {
	l := &loader{probs: &Problems{}, cfg: &Config{}, lines: map[string][]string{}}
	root := l.parse("r.yaml", []byte(`x:
  flag: yes
  off: ""
  bad_flag: maybe
  n: 12
  bad_n: twelve
  f: 2.5
  bad_f: 2,5
  list: [a, b]
  one: a
  nested: [[a]]
  kind: slak
  env: {A: "1", B: [x]}
  seq: a
`))
	f := l.fields("r.yaml", root).Map("x")
	if !f.Bool("flag", false) || f.Bool("off", true) || !f.Bool("bad_flag", true) || !f.Bool("absent", true) {
		t.Error("Bool")
	}
	if f.Int("n", 0) != 12 || f.Int("bad_n", 7) != 7 || f.Float("f", 0) != 2.5 || f.Float("bad_f", 1) != 1 {
		t.Error("Int/Float")
	}
	if got := f.Strings("list"); strings.Join(got, ",") != "a,b" {
		t.Errorf("Strings(list) = %q", got)
	}
	if got := f.Strings("one"); strings.Join(got, ",") != "a" {
		t.Errorf("Strings(one) = %q", got)
	}
	f.Strings("nested")
	if got := f.OneOf("kind", "log", "slack", "http"); got != "log" {
		t.Errorf("OneOf = %q", got)
	}
	if kv := f.StringMap("env"); len(kv) != 1 || kv[0].Key != "A" || kv[0].Value.Value != "1" {
		t.Errorf("StringMap = %+v", kv)
	}
	if f.Map("seq") != nil {
		t.Error("Map of a scalar")
	}
	f.Done()
	var got []string
	for _, p := range l.probs.List {
		got = append(got, p.String())
	}
	want := []string{
		`r.yaml:4:13: bad_flag must be true or false, not "maybe"`,
		`r.yaml:6:10: bad_n must be a whole number, not "twelve"`,
		`r.yaml:8:10: bad_f must be a number, not "2,5"`,
		`r.yaml:11:12: each item of nested must be a single value, not a list`,
		`r.yaml:12:9: kind must be one of slack, http, not "slak" (did you mean "slack"?)`,
		`r.yaml:13:20: env.B must be a single value, not a list`,
		`r.yaml:14:8: seq must be a mapping (key: value lines indented under it), not a single value`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("problems:\n got: %s\nwant: %s", strings.Join(got, "\n      "), strings.Join(want, "\n      "))
	}
}

func TestProblemsSortAndErr(t *testing.T) {
	var ps Problems
	if ps.Err() != nil {
		t.Error("no problems must give a nil error")
	}
	ps.Warnf(Pos{File: "a.yaml", Line: 3, Col: 1}, "a warning")
	if ps.Err() != nil || ps.HasErrors() {
		t.Error("warnings alone must not make a config invalid")
	}
	ps.Errorf(Pos{File: "b.yaml", Line: 1, Col: 1}, "in b")
	ps.Errorf(Pos{File: "a.yaml", Line: 10, Col: 2}, "line 10")
	ps.Errorf(Pos{File: "a.yaml", Line: 3, Col: 5}, "col 5")
	ps.Errorf(Pos{File: "a.yaml"}, "whole file")
	err := ps.Err()
	want := "a.yaml: whole file\na.yaml:3:1: warning: a warning\na.yaml:3:5: col 5\na.yaml:10:2: line 10\nb.yaml:1:1: in b"
	if err == nil || err.Error() != want {
		t.Errorf("Err() =\n%v\nwant\n%s", err, want)
	}
}
