package main

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/payramd/payramd/journal"
)

// TestSameIDOnTwoSources: two Stripe-style sources fed by one provider
// account receive the same event id (evt_…). Dedup is per source, so each
// copy is an event of its own: a rule limited to one of the sources runs
// for that source's copy, while a rule covering both runs once, for the
// first copy (no order is fulfilled twice during an endpoint migration).
// Only a redelivery on the same source is a duplicate. Looking the event up
// by id alone names both sources, and --source picks one, in the API and
// in the CLI.
func TestSameIDOnTwoSources(t *testing.T) {
	dir := t.TempDir()
	s := newSink(t, nil)
	cfg := writeFile(t, dir, "rules.yaml", fmt.Sprintf(`server:
  data_dir: %s
sources:
  stripe-payments:
    provider: stripe
    secret: whsec_payments_endpoint
  stripe-billing:
    provider: stripe
    secret: whsec_billing_endpoint
actions:
  fulfil:
    type: http
    url: %s/fulfil/{{ urlpath(meta.source) }}
  record:
    type: http
    url: %s/record/{{ urlpath(meta.source) }}
rules:
  - name: fulfil-order
    when: "true"
    do: [fulfil]
  - name: record-payment
    source: stripe-payments
    when: "true"
    do: [record]
  - name: record-invoice
    source: stripe-billing
    when: "true"
    do: [record]
`, filepath.Join(dir, "data"), s.URL, s.URL))
	event := writeFile(t, dir, "charge.json", `{"id":"evt_1QxSameOnBoth","object":"event","type":"charge.succeeded","data":{"object":{"amount":2500}}}`)
	p := startDaemon(t, cfg)
	send := func(source, want string) {
		t.Helper()
		code, out, errOut := runCLI(t, nil, "send", "-c", cfg, "--source", source, "--url", p.Public+"/webhooks/"+source, event)
		if code != 0 || !strings.Contains(out, `"status":"`+want+`"`) {
			t.Fatalf("send to %s: %d %s %s; want %s", source, code, out, errOut, want)
		}
	}
	paths := func() []string {
		var out []string
		for _, r := range s.requests() {
			out = append(out, r.Path)
		}
		slices.Sort(out)
		return out
	}

	send("stripe-payments", "accepted")
	send("stripe-billing", "accepted")
	send("stripe-billing", "duplicate")
	s.waitCount(t, 3, 10*time.Second)
	// (The API check below proves stripe-billing's copy made one job only.)
	if got, want := paths(), []string{"/fulfil/stripe-payments", "/record/stripe-billing", "/record/stripe-payments"}; !slices.Equal(got, want) {
		t.Errorf("actions ran for %v; want %v", got, want)
	}

	// The backtest counts as the daemon ran: fulfil-order matched both
	// copies and ran once.
	backtest := func(args ...string) []reportRule {
		t.Helper()
		bt := backtestJSON(t, nil, append([]string{"-c", cfg}, args...)...)
		if len(bt.Rules) != 3 {
			t.Fatalf("backtest %v: %+v; want 3 rules", args, bt)
		}
		return bt.Rules
	}
	all := backtest()
	if r := all[0]; r.Matched != 2 || r.RanElsewhere != 1 || r.OncePer != 0 || r.Actions["fulfil"] != 1 {
		t.Errorf("backtest of fulfil-order: %+v; want 2 matches, 1 held back as run elsewhere, 1 run", r)
	}
	if r := all[2]; r.Matched != 1 || r.RanElsewhere != 0 || r.Actions["record"] != 1 {
		t.Errorf("backtest of record-invoice: %+v; want it to run once", r)
	}
	// Limited to stripe-billing, whose copy came second: fulfil-order is
	// held back there, as the daemon did.
	billing := backtest("--source", "stripe-billing")
	if r := billing[0]; r.Matched != 1 || r.RanElsewhere != 1 || len(r.Actions) != 0 {
		t.Errorf("backtest of fulfil-order on stripe-billing: %+v; want its one match held back", r)
	}
	if r := billing[1]; r.Matched != 0 {
		t.Errorf("backtest on stripe-billing counted record-payment: %+v", r)
	}

	// The API: by id alone, 409 naming the sources; with ?source=, that
	// source's event, its one job and why fulfil-order did not run.
	var clash struct {
		Error   string   `json:"error"`
		Sources []string `json:"sources"`
	}
	if code := p.getJSON("/api/events/evt_1QxSameOnBoth", &clash); code != 409 ||
		!slices.Equal(clash.Sources, []string{"stripe-billing", "stripe-payments"}) {
		t.Errorf("GET by id alone = %d %+v; want 409 naming both sources", code, clash)
	}
	var detail struct {
		Event struct {
			Source string `json:"source"`
		} `json:"event"`
		Rules []struct {
			Rule         string `json:"rule"`
			Matched      bool   `json:"matched"`
			OncePer      bool   `json:"suppressed_by_once_per"`
			RanElsewhere bool   `json:"already_ran_on_another_source"`
		} `json:"rules"`
		Jobs []struct {
			Source string `json:"source"`
			Action string `json:"action"`
		} `json:"jobs"`
	}
	if code := p.getJSON("/api/events/evt_1QxSameOnBoth?source=stripe-billing", &detail); code != 200 ||
		detail.Event.Source != "stripe-billing" || len(detail.Jobs) != 1 || detail.Jobs[0].Action != "record" ||
		len(detail.Rules) != 2 || !detail.Rules[0].Matched || !detail.Rules[0].RanElsewhere || detail.Rules[0].OncePer ||
		detail.Rules[1].Rule != "record-invoice" || detail.Rules[1].RanElsewhere {
		t.Errorf("GET with source = %d %+v; want stripe-billing's event, fulfil-order already run elsewhere, one record job", code, detail)
	}

	// The CLI says what to add, and --source works for events, replay and jobs.
	code, out, errOut := runCLI(t, nil, "events", "evt_1QxSameOnBoth", "-c", cfg, "--admin", p.Admin)
	if code != 1 || !strings.Contains(errOut, "several sources (stripe-billing, stripe-payments)") || !strings.Contains(errOut, "--source") {
		t.Errorf("events by id alone: %d %q %q; want the sources and a --source hint", code, out, errOut)
	}
	code, out, errOut = runCLI(t, nil, "events", "evt_1QxSameOnBoth", "--source", "stripe-billing", "-c", cfg, "--admin", p.Admin)
	if code != 0 || !strings.Contains(out, "source stripe-billing") ||
		!strings.Contains(out, "MATCH fulfil-order (already ran for this event id on another source: nothing run)") {
		t.Errorf("events --source: %d %q %q", code, out, errOut)
	}
	// A replay is an explicit request to run the event's rules again.
	code, out, errOut = runCLI(t, nil, "replay", "evt_1QxSameOnBoth", "--source", "stripe-billing", "-c", cfg, "--admin", p.Admin)
	if code != 0 || !strings.Contains(out, "2 new job(s)") {
		t.Fatalf("replay --source: %d %q %q", code, out, errOut)
	}
	s.waitCount(t, 5, 10*time.Second)
	if got := paths(); !slices.Equal(got[:2], []string{"/fulfil/stripe-billing", "/fulfil/stripe-payments"}) {
		t.Errorf("after the replay, actions ran for %v", got)
	}
	code, out, _ = runCLI(t, nil, "jobs", "--event", "evt_1QxSameOnBoth", "--source", "stripe-billing", "-c", cfg, "--admin", p.Admin, "--json")
	if code != 0 || strings.Count(out, `"source": "stripe-billing"`) != 3 || strings.Contains(out, "stripe-payments") {
		t.Errorf("jobs --event --source: %d %s; want stripe-billing's three jobs only", code, out)
	}
	code, out, _ = runCLI(t, nil, "jobs", "--event", "evt_1QxSameOnBoth", "--source", "stripe-billing", "--action", "record", "-c", cfg, "--admin", p.Admin, "--json")
	if code != 0 || strings.Count(out, `"action": "record"`) != 2 || strings.Contains(out, `"action": "fulfil"`) {
		t.Errorf("jobs --action record: %d %s; want stripe-billing's two record jobs only", code, out)
	}
}

// TestBacktestSourceMustExist: `replay --dry-run --source` with a name
// that is neither a source of the config nor in the journal's window is a
// typo, not a source without events: it is refused with a suggestion
// instead of a report of zero events and nothing matched, which reads as
// "the candidate rules would not fire there". A source removed from the
// config whose events are still journaled can still be backtested.
func TestBacktestSourceMustExist(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	s, err := journal.Open(data, journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, src := range []string{"stripe-billing", "stripe-retired"} {
		ev := &journal.Event{ID: "evt_1", Source: src, Provider: "stripe", Type: "charge.succeeded", ReceivedAt: time.Now(),
			Body: []byte(`{"id":"evt_1","type":"charge.succeeded"}`), Payload: []byte(`{"id":"evt_1","type":"charge.succeeded"}`), ProviderID: true}
		if _, err := s.Ingest(context.Background(), ev, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	cfg := writeFile(t, dir, "rules.yaml", fmt.Sprintf(`server:
  data_dir: %s
sources:
  stripe-billing:
    provider: stripe
    secret: whsec_billing_endpoint
actions:
  note:
    type: log
    message: "{{ meta.id }}"
rules:
  - name: any-charge
    when: "true"
    do: [note]
`, data))

	code, out, errOut := runCLI(t, nil, "replay", "--dry-run", "--since", "1h", "-c", cfg, "--source", "stripe-biling")
	if code == 0 || !strings.Contains(errOut, `"stripe-biling"`) || !strings.Contains(errOut, "stripe-billing") {
		t.Errorf("backtest of a misspelled source: %d %q %q; want an error naming it and suggesting stripe-billing", code, out, errOut)
	}
	for _, src := range []string{"stripe-billing", "stripe-retired"} {
		if bt := backtestJSON(t, nil, "-c", cfg, "--source", src); bt.Events != 1 {
			t.Errorf("backtest of %s: %+v; want its one event", src, bt)
		}
	}
}
