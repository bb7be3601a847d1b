package main

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestUsageListsTheREADMEFlags: every flag the README's command table gives
// a command is in `payramd -h` for that command, so the help an operator
// sees at 3 a.m. is not missing what the README promises.
func TestUsageListsTheREADMEFlags(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	// The usage text's entries, by command: "  payramd NAME …" and the
	// lines indented under it.
	help := map[string]string{}
	var cur string
	for _, line := range strings.Split(usage, "\n") {
		if rest, ok := strings.CutPrefix(line, "  payramd "); ok {
			cur = strings.Trim(strings.Fields(rest)[0], "[]")
		} else if !strings.HasPrefix(line, "    ") {
			cur = ""
		}
		if cur != "" {
			help[cur] += line + "\n"
		}
	}
	row := regexp.MustCompile("(?m)^\\| `payramd ([a-z]+)([^`]*)`")
	flagRE := regexp.MustCompile(`--[a-z][a-z-]*`)
	rows := row.FindAllStringSubmatch(string(readme), -1)
	if len(rows) < 10 {
		t.Fatalf("found %d command rows in the README's table", len(rows))
	}
	for _, m := range rows {
		name, args := m[1], m[2]
		if help[name] == "" {
			t.Errorf("payramd -h has no entry for %q", name)
			continue
		}
		for _, f := range flagRE.FindAllString(args, -1) {
			if !strings.Contains(help[name], f) {
				t.Errorf("README gives `payramd %s%s`, but payramd -h does not list %s for it:\n%s", name, args, f, help[name])
			}
		}
	}
}

// TestBadFlagValueIsAUsageError: a --since or --state the daemon would
// refuse is a usage error (exit 2, as the README says of every command),
// found before the daemon is asked, and says what to write instead.
func TestBadFlagValueIsAUsageError(t *testing.T) {
	t.Parallel()
	const nowhere = "http://127.0.0.1:9" // never contacted
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"events", "--since", "2d"}, "such as 30m or 24h"},
		{[]string{"jobs", "--state", "failed"}, "pending, running, succeeded or dead"},
	} {
		code, _, errOut := runCLI(t, nil, append(tt.args, "--admin", nowhere)...)
		if code != 2 || !strings.Contains(errOut, tt.want) {
			t.Errorf("payramd %v: exit %d, want 2 and %q: %s", tt.args, code, tt.want, errOut)
		}
	}
	for _, args := range [][]string{{"events", "--since", "24h"}, {"jobs", "--state", "dead"}} {
		if code, _, errOut := runCLI(t, nil, append(args, "--admin", nowhere)...); code != 1 || !strings.Contains(errOut, "is the daemon running") {
			t.Errorf("payramd %v with no daemon: exit %d, want 1: %s", args, code, errOut)
		}
	}
}
