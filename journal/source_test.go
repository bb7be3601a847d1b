package journal

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestDedupPerSource: two sources fed by one provider account (two Stripe
// endpoints, say) receive the same delivery id. Each source's copy is its
// own event with its own jobs; only a repeat on the same source is a
// duplicate. Lookups by id alone report the clash instead of picking one.
func TestDedupPerSource(t *testing.T) {
	s, _ := openTest(t, Options{})
	ctx := context.Background()
	evA, evB := testEvent("evt_1"), testEvent("evt_1")
	evA.Source, evB.Source = "stripe-payments", "stripe-billing"

	a := mustIngest(t, s, evA, evalFor("paid", "slack"))
	b := mustIngest(t, s, evB, evalFor("invoice", "erp"))
	if a.Duplicate || b.Duplicate || len(a.Jobs) != 1 || len(b.Jobs) != 1 {
		t.Fatalf("same id on two sources: %+v, %+v; want two events with a job each", a, b)
	}
	if b.Jobs[0].Source != "stripe-billing" || b.Jobs[0].Action != "erp" {
		t.Errorf("second source's job: %+v", b.Jobs[0])
	}
	if again := mustIngest(t, s, testEvent("evt_1"), evalFor("paid", "slack")); again.Duplicate {
		t.Error(`a third source ("payram") with the same id was answered duplicate`)
	}
	dup := testEvent("evt_1")
	dup.Source = "stripe-billing"
	if res := mustIngest(t, s, dup, evalFor("invoice", "erp")); !res.Duplicate || len(res.Jobs) != 0 {
		t.Errorf("redelivery on the same source: %+v; want duplicate", res)
	}

	// By id alone: ambiguous, naming the sources in order.
	_, err := s.Event(ctx, "", "evt_1")
	var amb *AmbiguousError
	if !errors.As(err, &amb) || !errors.Is(err, ErrAmbiguous) ||
		!slices.Equal(amb.Sources, []string{"payram", "stripe-billing", "stripe-payments"}) {
		t.Fatalf("Event by id alone = %v; want an AmbiguousError naming the three sources", err)
	}
	if !strings.Contains(err.Error(), "payram, stripe-billing, stripe-payments") {
		t.Errorf("error does not list the sources: %v", err)
	}

	// With the source: that event, with only its jobs.
	d, err := s.Event(ctx, "stripe-billing", "evt_1")
	if err != nil {
		t.Fatal(err)
	}
	if d.Event.Source != "stripe-billing" || len(d.Jobs) != 1 || d.Jobs[0].Action != "erp" || d.Results[0].Rule != "invoice" {
		t.Errorf("event of stripe-billing: %+v", d)
	}
	if _, err := s.Event(ctx, "shop", "evt_1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Event in a source without that id = %v; want ErrNotFound", err)
	}
	if d, err := s.Event(ctx, "", "evt_only_once"); d != nil || !errors.Is(err, ErrNotFound) {
		t.Errorf("missing id = %v, %v", d, err)
	}
	mustIngest(t, s, testEvent("evt_2"), nil)
	if d, err := s.Event(ctx, "", "evt_2"); err != nil || d.Event.Source != "payram" {
		t.Errorf("an id in one source only needs no source: %+v, %v", d, err)
	}

	// Replay follows the same rules and touches only the named event.
	if _, err := s.Replay(ctx, "", "evt_1", evalFor("paid", "slack")); !errors.As(err, &amb) {
		t.Errorf("Replay by id alone = %v; want ambiguous", err)
	}
	res, err := s.Replay(ctx, "stripe-payments", "evt_1", evalFor("paid", "slack", "email"))
	if err != nil || len(res.Jobs) != 2 || res.Jobs[0].Source != "stripe-payments" {
		t.Fatalf("Replay in stripe-payments = %+v, %v", res, err)
	}
	if d, _ := s.Event(ctx, "stripe-billing", "evt_1"); len(d.Jobs) != 1 {
		t.Errorf("replaying stripe-payments' event added jobs to stripe-billing's: %+v", d.Jobs)
	}
	if _, err := s.Replay(ctx, "shop", "evt_1", nil); !errors.Is(err, ErrNotFound) {
		t.Errorf("Replay in a source without that id = %v; want ErrNotFound", err)
	}

	// Job listings: by event id, every source's jobs; with a source, its own.
	all, err := s.Jobs(ctx, JobFilter{EventID: "evt_1"})
	if err != nil || len(all) != 5 { // payments 1+2, billing 1, payram 1
		t.Errorf("jobs of evt_1 = %d, %v; want 5", len(all), err)
	}
	billing, err := s.Jobs(ctx, JobFilter{EventID: "evt_1", Source: "stripe-billing"})
	if err != nil || len(billing) != 1 || billing[0].Action != "erp" {
		t.Errorf("jobs of stripe-billing's evt_1 = %+v, %v", billing, err)
	}
}

// TestMigrateV2ToV3 opens a journal written with schema version 2, where
// events.id was unique across sources, and checks that rebuilding events
// kept every row and every link (results, jobs and attempts refer to
// events.seq), that nothing cascaded away while the old table was dropped,
// and that dedup is per source afterwards.
func TestMigrateV2ToV3(t *testing.T) {
	v2 := []string{
		migrations[0],
		migrations[1],
		fmt.Sprintf(`PRAGMA application_id = %d; PRAGMA user_version = 2`, applicationID),
		`INSERT INTO events (seq, id, source, provider, type, received_at, headers, body, payload) VALUES
			(3, 'evt_1', 'stripe-payments', 'stripe', 'charge.succeeded', 1700000000000000000, '{"stripe-signature":"[redacted]"}', x'7b7d', '{"id":"evt_1"}'),
			(8, 'ev-b', 'shop', 'hmac', '', 1700000001000000000, '{}', NULL, NULL)`,
		`INSERT INTO rule_results (event_seq, n, rule, matched, error, suppressed) VALUES
			(3, 0, 'paid', 1, '', 0), (3, 1, 'big', 0, 'division by zero', 0), (8, 0, 'paid', 1, '', 1)`,
		`INSERT INTO jobs (id, event_seq, event_id, source, rule, action, state, attempts, run_at, created_at, updated_at, last_error) VALUES
			(41, 3, 'evt_1', 'stripe-payments', 'paid', 'slack', 'succeeded', 1, 1, 1, 1, ''),
			(42, 3, 'evt_1', 'stripe-payments', 'paid', 'erp', 'pending', 2, 5, 1, 4, 'HTTP 503')`,
		`INSERT INTO attempts (job_id, n, started_at, duration_ns, outcome, error) VALUES
			(41, 1, 10, 1000, 'succeeded', ''), (42, 1, 11, 1000, 'retry', 'HTTP 503'), (42, 2, 12, 1000, 'retry', 'HTTP 503')`,
		`INSERT INTO once_keys (rule, key, event_id, created_at) VALUES ('paid', 'order-7', 'evt_1', 1)`,
		// An operator's own view over events, as the README invites: the
		// rebuild must neither fail on it nor drop it.
		`CREATE VIEW my_charges AS SELECT id, source FROM events WHERE type = 'charge.succeeded'`,
	}
	s := openOldJournal(t, v2)
	ctx := context.Background()

	for table, want := range map[string]int{"events": 2, "rule_results": 3, "jobs": 2, "attempts": 3, "once_keys": 1, "events_v": 2, "my_charges": 1} {
		if got := count(t, s, `SELECT count(*) FROM `+table); got != want {
			t.Errorf("%s has %d rows after the migration, want %d", table, got, want)
		}
	}
	d, err := s.Event(ctx, "", "evt_1")
	if err != nil {
		t.Fatal(err)
	}
	if d.Event.Source != "stripe-payments" || string(d.Event.Payload) != `{"id":"evt_1"}` || len(d.Results) != 2 ||
		len(d.Jobs) != 2 || d.Jobs[1].ID != 42 || d.Jobs[1].State != Pending || len(d.Jobs[1].Attempts) != 2 {
		t.Errorf("evt_1 after the migration: %+v", d)
	}

	// The pending job still runs, and dedup is now per source.
	if due, err := s.ClaimDue(ctx, time.Unix(0, 10), 10); err != nil || len(due) != 1 || due[0].ID != 42 {
		t.Errorf("ClaimDue = %+v, %v; want job 42", due, err)
	}
	dup := testEvent("evt_1")
	dup.Source = "stripe-payments"
	if res := mustIngest(t, s, dup, evalFor("paid", "slack")); !res.Duplicate {
		t.Error("a redelivery of a pre-migration event on its source is not a duplicate")
	}
	other := sharedEvent("evt_1", "stripe-billing")
	res := mustIngest(t, s, other, evalFor("invoice", "erp"))
	if res.Duplicate || len(res.Jobs) != 1 || res.Jobs[0].ID <= 42 {
		t.Errorf("the same id on another source: %+v; want a new event whose job id follows 42", res)
	}
	if got := count(t, s, `SELECT count(*) FROM events WHERE seq > 8`); got != 1 {
		t.Errorf("new event's seq does not follow the migrated ones (%d rows above 8)", got)
	}

	// A rule that ran for evt_1 before the upgrade does not run again for
	// a copy on another source after it (its result says it ran); one that
	// did not match still can.
	copy2 := sharedEvent("evt_1", "stripe-refunds")
	both := &Evaluation{
		Results: []RuleResult{{Rule: "paid", Matched: true}, {Rule: "big", Matched: true}},
		Matches: []Match{{Rule: "paid", Actions: []string{"slack"}}, {Rule: "big", Actions: []string{"email"}}},
	}
	if r := mustIngest(t, s, copy2, both); !slices.Equal(r.RanElsewhere, []string{"paid"}) || len(r.Jobs) != 1 || r.Jobs[0].Rule != "big" {
		t.Errorf("copy after the upgrade: %+v; want paid held back (it ran before the upgrade) and big run", r)
	}

	// Foreign keys still cascade from the rebuilt table: pruning ev-b (no
	// unfinished jobs) removes its result.
	if n, err := s.Prune(ctx, time.Unix(1800000000, 0)); err != nil || n < 1 {
		t.Errorf("Prune = %d, %v", n, err)
	}
	if got := count(t, s, `SELECT count(*) FROM rule_results WHERE event_seq NOT IN (SELECT seq FROM events)`); got != 0 {
		t.Errorf("%d orphaned results after prune", got)
	}
	if got := count(t, s, `SELECT count(*) FROM rule_results WHERE event_seq = 8`); got != 0 {
		t.Errorf("ev-b's result survived its event's pruning")
	}

	// A lookup by id alone uses the (id, source) index, not a scan.
	plan := queryPlan(t, s, `SELECT seq FROM events WHERE id = ?`, "x")
	if !strings.Contains(plan, "USING COVERING INDEX") && !strings.Contains(plan, "USING INDEX") {
		t.Errorf("lookup by id does not use an index:\n%s", plan)
	}
}

// sharedEvent is an event whose id is the provider's, received on source.
func sharedEvent(id, source string) *Event {
	ev := testEvent(id)
	ev.Source, ev.Provider, ev.ProviderID = source, "stripe", true
	return ev
}

// TestRuleRunsOncePerProviderID: with dedup per source, the same provider
// event arriving on two sources is two events. A rule that would match both
// (an endpoint migration: old and new endpoint, same rules) runs for the
// first only, so an order is not fulfilled twice; rules limited to one
// source (two endpoints for different purposes) each run.
func TestRuleRunsOncePerProviderID(t *testing.T) {
	s, _ := openTest(t, Options{})
	ctx := context.Background()

	first := mustIngest(t, s, sharedEvent("evt_m", "stripe-old"), evalFor("fulfil", "erp"))
	second := mustIngest(t, s, sharedEvent("evt_m", "stripe-new"), evalFor("fulfil", "erp"))
	if len(first.Jobs) != 1 || second.Duplicate || len(second.Jobs) != 0 ||
		!slices.Equal(second.RanElsewhere, []string{"fulfil"}) || len(second.Suppressed) != 0 {
		t.Fatalf("migration: first %+v, second %+v; want the rule to run once", first, second)
	}
	d, err := s.Event(ctx, "stripe-new", "evt_m")
	if err != nil {
		t.Fatal(err)
	}
	if r := d.Results[0]; !r.Matched || !r.Suppressed || !r.RanElsewhere || d.Results[1].Suppressed {
		t.Errorf("second copy's results: %+v; want fulfil suppressed as already run elsewhere", d.Results)
	}
	if d, _ := s.Event(ctx, "stripe-old", "evt_m"); d.Results[0].Suppressed || d.Results[0].RanElsewhere {
		t.Errorf("first copy's result: %+v", d.Results[0])
	}

	// Two purposes: each source's own rule runs.
	pay := mustIngest(t, s, sharedEvent("evt_s", "stripe-payments"), evalFor("paid", "slack"))
	bill := mustIngest(t, s, sharedEvent("evt_s", "stripe-billing"), evalFor("invoice", "erp"))
	if len(pay.Jobs) != 1 || len(bill.Jobs) != 1 || len(bill.RanElsewhere) != 0 {
		t.Errorf("split: %+v, %+v; want each source's rule to run", pay, bill)
	}

	// A match suppressed as already run elsewhere does not use up its
	// once_per key: a later event with that key still runs.
	mustIngest(t, s, sharedEvent("evt_o", "stripe-old"), onceEval("notify", "order-a", "slack"))
	if r := mustIngest(t, s, sharedEvent("evt_o", "stripe-new"), onceEval("notify", "order-b", "slack")); len(r.Jobs) != 0 {
		t.Fatalf("second copy ran: %+v", r)
	}
	if r := mustIngest(t, s, sharedEvent("evt_p", "stripe-new"), onceEval("notify", "order-b", "slack")); len(r.Jobs) != 1 {
		t.Errorf("once_per key order-b was used up by a suppressed match: %+v", r)
	}

	// A match once_per holds back did not run, so it does not claim the
	// id: another source's copy with a key of its own still runs.
	mustIngest(t, s, sharedEvent("evt_q0", "stripe-old"), onceEval("per-source", "old", "slack"))
	if r := mustIngest(t, s, sharedEvent("evt_q", "stripe-old"), onceEval("per-source", "old", "slack")); len(r.Jobs) != 0 || len(r.Suppressed) != 1 {
		t.Fatalf("once_per did not hold back the repeat: %+v", r)
	}
	if r := mustIngest(t, s, sharedEvent("evt_q", "stripe-new"), onceEval("per-source", "new", "slack")); len(r.Jobs) != 1 || len(r.RanElsewhere) != 0 {
		t.Errorf("copy on another source held back though the rule never ran for the id: %+v", r)
	}

	// Nothing is stored to tell that a rule ran for an id: the results are
	// read instead, so no event writes more than before.
	before := count(t, s, `SELECT count(*) FROM once_keys`)
	mustIngest(t, s, testEvent("hash-1"), evalFor("fulfil", "erp"))
	mustIngest(t, s, sharedEvent("evt_w", "stripe-old"), evalFor("fulfil", "erp"))
	if after := count(t, s, `SELECT count(*) FROM once_keys`); after != before {
		t.Errorf("ingesting wrote %d once key(s) without a once_per", after-before)
	}

	// A replay is an operator asking to run the event again: it runs.
	res, err := s.Replay(ctx, "stripe-new", "evt_m", evalFor("fulfil", "erp"))
	if err != nil || len(res.Jobs) != 1 || len(res.RanElsewhere) != 0 {
		t.Errorf("replay of the suppressed copy = %+v, %v; want its job", res, err)
	}
	// A rule run by a replay has run for the id: a copy arriving later on
	// a third source does not run it again.
	if res, err := s.Replay(ctx, "stripe-old", "evt_m", evalFor("added", "erp")); err != nil || len(res.Jobs) != 1 {
		t.Fatalf("replay with a new rule = %+v, %v", res, err)
	}
	if r := mustIngest(t, s, sharedEvent("evt_m", "stripe-third"), evalFor("added", "erp")); len(r.Jobs) != 0 || !slices.Equal(r.RanElsewhere, []string{"added"}) {
		t.Errorf("third copy after a replay ran the rule: %+v", r)
	}

	// A replay that no longer matches a rule does not erase that the rule
	// ran: its jobs for the first copy are still there (found by a review).
	mustIngest(t, s, sharedEvent("evt_r", "stripe-old"), evalFor("fulfil", "erp"))
	if _, err := s.Replay(ctx, "stripe-old", "evt_r", evalFor("other", "slack")); err != nil {
		t.Fatal(err)
	}
	if r := mustIngest(t, s, sharedEvent("evt_r", "stripe-new"), evalFor("fulfil", "erp")); len(r.Jobs) != 0 || !slices.Equal(r.RanElsewhere, []string{"fulfil"}) {
		t.Errorf("a copy after a replay that dropped the rule ran it again: %+v", r)
	}

	// Ids are unique within one provider only: the same id from a
	// Standard Webhooks sender is another event.
	sw := sharedEvent("evt_m", "svix")
	sw.Provider = "standard-webhooks"
	if r := mustIngest(t, s, sw, evalFor("fulfil", "erp")); len(r.Jobs) != 1 {
		t.Errorf("the same id from another provider was held back: %+v", r)
	}
}

// TestRuleRunsOncePerProviderIDConcurrently: both copies arrive at once
// (one provider delivering to two endpoints): exactly one runs the rule,
// whichever commits first, however the batch is cut.
func TestRuleRunsOncePerProviderIDConcurrently(t *testing.T) {
	s, _ := openTest(t, Options{})
	for round := range 50 {
		id := idOf("evt_c", round)
		results := make(chan IngestResult, 2)
		errs := make(chan error, 2)
		for _, src := range []string{"stripe-old", "stripe-new"} {
			go func() {
				r, err := s.Ingest(context.Background(), sharedEvent(id, src), evalFor("fulfil", "erp"))
				results <- r
				errs <- err
			}()
		}
		jobs, elsewhere := 0, 0
		for range 2 {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
			r := <-results
			jobs += len(r.Jobs)
			elsewhere += len(r.RanElsewhere)
		}
		if jobs != 1 || elsewhere != 1 {
			t.Fatalf("round %d: %d job(s), %d suppressed; want exactly one run", round, jobs, elsewhere)
		}
	}
}
