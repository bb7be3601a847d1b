package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/payramd/payramd/config"
	"github.com/payramd/payramd/engine"
	"github.com/payramd/payramd/journal"
	"github.com/payramd/payramd/webhook"
)

type backtestRule struct {
	Rule    string `json:"rule"`
	Matched int    `json:"matched"`
	// Suppressed counts matches once_per would have stopped: the key had
	// already fired earlier in the window.
	Suppressed int `json:"suppressed_by_once_per"`
	// RanElsewhere counts matches held back because the rule had already
	// run for the same provider event id on another source.
	RanElsewhere int            `json:"already_ran_on_another_source"`
	Errors       int            `json:"errors"`
	Actions      map[string]int `json:"actions"`
	Examples     []string       `json:"examples,omitempty"`
	FirstErr     string         `json:"first_error,omitempty"`
}

// backtest evaluates a (candidate) config against the journaled events of a
// window and reports what it would have done. It opens the journal read
// only, so it is safe beside a running daemon, and runs nothing. A source
// other than "" limits the counts to that source's events (the others are
// still evaluated: what ran for them decides what once_per and a shared
// event id hold back).
//
// It verifies no signature and runs no action, so it needs none of the
// service's secrets: the config is loaded with config.Options.StandIn, and
// an unset ${VAR} in a value the backtest does not use (a secret, an
// action's url) stands in for the service's value and is listed in the
// output. In a value it uses (a rule, an action's enabled:) it is still an
// error.
func backtest(c *common, since time.Duration, dataDir, source string, stdout, stderr io.Writer) int {
	lo := loadOptions(c.config)
	lo.Config.StandIn = true
	snap, opts := loadValidWith(lo, stderr)
	if snap == nil {
		return 1
	}
	if dataDir == "" {
		for _, u := range snap.Config.Unset {
			// PAYRAMD_DATA_DIR, when set, replaces the stand-in.
			if u.Field == "server.data_dir" && !u.Defaulted && strings.Contains(snap.Config.Server.DataDir, config.StandInValue(u.Name)) {
				fmt.Fprintf(stderr, "payramd replay --dry-run: %s: server.data_dir uses environment variable %s, which is not set: set it in this shell, or give the journal's directory with --data-dir\n", u.Pos, u.Name)
				return 1
			}
		}
		dataDir = snap.Config.Server.DataDir
	}
	store, err := journal.OpenReadOnly(dataDir)
	if err != nil {
		fmt.Fprintf(stderr, "payramd replay --dry-run: opening the journal in %s: %v\n", dataDir, err)
		return 1
	}
	defer store.Close()
	stats := make([]*backtestRule, len(snap.Rules.Rules))
	for i, r := range snap.Rules.Rules {
		stats[i] = &backtestRule{Rule: r.Name, Actions: map[string]int{}}
	}
	events, skipped := 0, 0
	fired := map[string]bool{} // rule + "\x00" + once_per key, within the window
	// rule, provider and event id of the rules that ran for events whose id
	// is the provider's: the daemon runs each rule once per such id across
	// sources. (Ids payramd derives hash the source name, so they never
	// meet on two sources and need no entry.)
	ranFor := map[string]bool{}
	err = store.EventsSince(context.Background(), time.Now().Add(-since), func(je journal.Event) error {
		counted := source == "" || je.Source == source
		payload, err := engine.DecodeObject(je.Payload)
		if err != nil {
			if counted {
				skipped++
			}
			return nil
		}
		ev := &engine.Event{ID: je.ID, Source: je.Source, Provider: je.Provider, Type: je.Type, ReceivedAt: je.ReceivedAt, Headers: je.Headers, Payload: payload, Raw: je.Body}
		if counted {
			events++
		}
		providerID := webhook.DefaultID(je.Source, je.Body) != je.ID
		for _, res := range snap.Rules.Evaluate(ev, false) {
			st := stats[res.Rule.Index]
			if !counted {
				st = &backtestRule{Actions: map[string]int{}} // bookkeeping only
			}
			if res.Err != nil {
				st.Errors++
				if st.FirstErr == "" {
					st.FirstErr = fmt.Sprintf("%s: %v", ev.ID, res.Err)
				}
				continue
			}
			st.Matched++
			// As the journal does: a rule that ran for the id (on another
			// source: a source never sees an id twice) holds the match back
			// first; then once_per; only a match that runs counts as run.
			idKey := ""
			if providerID {
				idKey = res.Rule.Name + "\x00" + ev.Provider + "\x00" + ev.ID
				if ranFor[idKey] {
					st.RanElsewhere++
					continue
				}
			}
			if res.HasOnce {
				k := res.Rule.Name + "\x00" + res.OnceKey
				if fired[k] {
					st.Suppressed++
					continue
				}
				fired[k] = true
			}
			if idKey != "" {
				ranFor[idKey] = true
			}
			if len(st.Examples) < 3 {
				st.Examples = append(st.Examples, ev.ID)
			}
			for _, a := range snap.EnabledActions(res.Rule.Actions) {
				st.Actions[a]++
			}
		}
		return nil
	})
	if err != nil {
		fmt.Fprintln(stderr, "payramd replay --dry-run:", err)
		return 1
	}
	if source != "" && events+skipped == 0 && snap.Config.Source(source) == nil {
		// Neither a source of the config nor one with events in the window
		// (a source removed from the config is still in the journal): a
		// typo, which a report of zero events would pass off as rules that
		// do not fire there.
		var names []string
		for _, s := range snap.Config.Sources {
			names = append(names, s.Name)
		}
		fmt.Fprintf(stderr, "payramd replay --dry-run: unknown source %q%s: the config has no such source and the journal no event of it in the last %s\n",
			source, config.DidYouMean(source, names), since)
		return 2
	}
	unset := groupUnset(snap.Config.Unset)
	if c.jsonOut {
		writeJSONOut(stdout, map[string]any{"config": opts.Path, "since": since.String(), "events": events, "skipped": skipped, "rules": stats, "unset_variables": unset})
		return 0
	}
	fmt.Fprintf(stdout, "backtest of %s over %d event(s) from the last %s (nothing was run; once_per counts only keys fired within the window)\n", opts.Path, events, since)
	for _, u := range unset {
		if u.Defaulted {
			fmt.Fprintf(stdout, "environment variable %s is not set here: %s read as written for it unset; if the service sets it, the daemon does otherwise\n", u.Name, strings.Join(u.Fields, ", "))
		} else {
			fmt.Fprintf(stdout, "environment variable %s is not set here: stood in for in %s, which a backtest does not use\n", u.Name, strings.Join(u.Fields, ", "))
		}
	}
	tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RULE\tMATCHED\tSUPPRESSED\tERRORS\tWOULD RUN")
	for _, st := range stats {
		var acts []string
		for a, n := range st.Actions {
			acts = append(acts, fmt.Sprintf("%s×%d", a, n))
		}
		slices.Sort(acts)
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\n", st.Rule, st.Matched, st.Suppressed+st.RanElsewhere, st.Errors, strings.Join(acts, ", "))
	}
	tw.Flush()
	for _, st := range stats {
		if st.FirstErr != "" {
			fmt.Fprintf(stdout, "rule %s failed on %d event(s), first: %s\n", st.Rule, st.Errors, st.FirstErr)
		}
	}
	if skipped > 0 {
		fmt.Fprintf(stdout, "%d event(s) skipped: their payload could not be decoded\n", skipped)
	}
	return 0
}

// backtestUnset is one environment variable that was not set, with every
// field it stood in for (or, Defaulted, took its ${VAR:-x} or ${VAR:+x}
// value in).
type backtestUnset struct {
	Name      string   `json:"name"`
	Fields    []string `json:"fields"`
	Defaulted bool     `json:"defaulted,omitempty"`
}

// groupUnset groups the config's unset references by variable, in file order.
func groupUnset(refs []config.Unset) []backtestUnset {
	out := []backtestUnset{}
	for _, r := range refs {
		i := slices.IndexFunc(out, func(u backtestUnset) bool { return u.Name == r.Name && u.Defaulted == r.Defaulted })
		if i < 0 {
			out = append(out, backtestUnset{Name: r.Name, Defaulted: r.Defaulted})
			i = len(out) - 1
		}
		if !slices.Contains(out[i].Fields, r.Field) {
			out[i].Fields = append(out[i].Fields, r.Field)
		}
	}
	return out
}
