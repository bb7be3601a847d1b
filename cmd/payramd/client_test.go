package main

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

// TestEventDetailShowsAttemptOutput: `payramd events ID` shows what a
// failed script printed under its attempt, not only "command exited with
// status 3", and keeps a long output to its last lines.
func TestEventDetailShowsAttemptOutput(t *testing.T) {
	var long []string
	for i := 1; i <= outputLines+5; i++ {
		long = append(long, fmt.Sprintf("line %d", i))
	}
	raw := `{"event":{"id":"e1","source":"payram","type":"payment.cancelled","received_at":"2026-11-23T13:40:41Z","payload":{}},
	"rules":[{"rule":"cancelled","matched":true}],
	"jobs":[{"id":7,"rule":"cancelled","action":"script","state":"dead","attempts":2,"history":[
		{"n":1,"started_at":"2026-11-23T13:40:42Z","duration":"8ms","outcome":"retry","error":"command exited with status 3","output":"oops: database locked\n"},
		{"n":2,"started_at":"2026-11-23T13:40:43Z","duration":"5ms","outcome":"dead","error":"command exited with status 3","output":"` + strings.Join(long, `\n`) + `"},
		{"n":3,"started_at":"2026-11-23T13:40:44Z","duration":"5ms","outcome":"dead","error":"command exited with status 3"}]}]}`
	var out bytes.Buffer
	printEventDetail(&out, []byte(raw))
	got := out.String()
	for _, want := range []string{
		"1. ", "retry 8ms: command exited with status 3\n         | oops: database locked\n",
		"| (5 earlier line(s); --json shows them)\n         | line 6\n",
		"| line 15\n      3. ",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in:\n%s", want, got)
		}
	}
	if strings.Contains(got, "| line 5\n") {
		t.Errorf("more than the last %d lines shown:\n%s", outputLines, got)
	}
}

// TestVisibleControls: on a terminal, `events ID --raw` shows a body's
// control characters and stray bytes as \xNN instead of sending them to
// the terminal; text, newlines and tabs pass.
func TestVisibleControls(t *testing.T) {
	in := []byte("{\"name\": \"zoë\x1b]0;pwned\x07\",\n\t\"x\": \"\xff\"}")
	want := "{\"name\": \"zoë\\x1b]0;pwned\\x07\",\n\t\"x\": \"\\xff\"}"
	if got := string(visibleControls(in)); got != want {
		t.Errorf("visibleControls = %q, want %q", got, want)
	}
}
