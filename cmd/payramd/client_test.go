package main

import (
	"bytes"
	"encoding/json"
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

// TestEventDetailShowsNoControls: `payramd events ID` prints an attempt's
// output and error, which hold what a payload's customer-written fields
// made of a log message or a script's output (a name "\x1b]0;…\x07"), and
// the event's fields; their control characters are shown as \xNN, not
// sent to the operator's terminal, as `events ID --raw` does on one.
func TestEventDetailShowsNoControls(t *testing.T) {
	raw := `{"event":{"id":"e1\u001b[2J","source":"payram","type":"paid\u001b[1A","received_at":"2026-11-23T13:40:41Z","payload":{}},
	"rules":[{"rule":"paid","matched":true}],
	"jobs":[{"id":7,"rule":"paid","action":"note","state":"dead","attempts":1,"history":[
		{"n":1,"started_at":"2026-11-23T13:40:42Z","duration":"8ms","outcome":"dead","error":"POST https://erp.example: 500 \u001b]0;pwned\u0007","output":"paid by zoë\u001b]0;pwned\u0007\rfake\nline 2\u009b31m\n"}]}]}`
	var out bytes.Buffer
	printEventDetail(&out, []byte(raw))
	got := out.String()
	if strings.ContainsAny(got, "\x1b\x07\r\u009b") {
		t.Errorf("control characters reach the terminal:\n%q", got)
	}
	for _, want := range []string{`| paid by zoë\x1b]0;pwned\x07\x0dfake` + "\n", `| line 2\xc2\x9b31m` + "\n", `500 \x1b]0;pwned\x07` + "\n", `event e1\x1b[2J`, `type paid\x1b[1A`} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in:\n%s", want, got)
		}
	}
}

// TestListingsShowNoControls: the events and jobs listings print what a
// provider or a receiver sent (an event's type and id, a job's last error)
// on one line each, with control characters as \xNN.
func TestListingsShowNoControls(t *testing.T) {
	var out bytes.Buffer
	printEventList(&out, json.RawMessage(`{"events":[{"id":"evt_\u001b[2J","source":"shop","type":"pay\tment\nfilled","received_at":"2026-12-06T10:00:00Z"}]}`))
	printJobList(&out, json.RawMessage(`{"jobs":[{"id":7,"rule":"r","action":"a","state":"dead","attempts":1,"updated_at":"2026-12-06T10:00:00Z","last_error":"502: \u001b]0;owned\u0007 bad gateway"}]}`))
	got := out.String()
	for _, want := range []string{`evt_\x1b[2J`, "pay ment filled", `\x1b]0;owned\x07 bad gateway`} {
		if !strings.Contains(got, want) {
			t.Errorf("listing lacks %q:\n%s", want, got)
		}
	}
	if strings.ContainsAny(got, "\x1b\x07") || strings.Count(got, "\n") != 4 {
		t.Errorf("listing has control characters or broken lines:\n%q", got)
	}
}
