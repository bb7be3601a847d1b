package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/payramd/payramd/actions"
	"github.com/payramd/payramd/config"
	"github.com/payramd/payramd/daemon"
	"github.com/payramd/payramd/engine"
	"github.com/payramd/payramd/webhook"
)

func cmdCheck(args []string, stdout, stderr io.Writer) int {
	c := newFlags("check", stderr)
	if _, err := c.parse(args); err != nil {
		return 2
	}
	opts := loadOptions(c.config)
	snap, probs := daemon.Load(opts)
	errs, warns := 0, 0
	for _, p := range probs.List {
		fmt.Fprintln(stdout, p.String())
		if p.Warning {
			warns++
		} else {
			errs++
		}
	}
	if snap == nil {
		fmt.Fprintf(stderr, "%s: invalid: %d error(s), %d warning(s)\n", opts.Path, errs, warns)
		return 1
	}
	cfg := snap.Config
	fmt.Fprintf(stderr, "%s: OK: %d source(s), %d rule(s), %d action(s), %d test(s), %d warning(s)\n",
		opts.Path, len(cfg.Sources), len(snap.Rules.Rules), len(cfg.Actions), len(cfg.Tests), warns)
	return 0
}

// dryEvent builds the event a source would produce from a payload file,
// without verifying a signature.
func dryEvent(snap *daemon.Snapshot, source, file string) (*engine.Event, error) {
	body, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	src, err := pickSource(snap.Config, source)
	if err != nil {
		return nil, err
	}
	p := snap.Table.Provider(src.Name)
	now := time.Now()
	n, err := p.Normalize(&webhook.Request{Source: src.Name, Method: "POST", Header: map[string][]string{}, Body: body, Now: now})
	if err != nil {
		return nil, fmt.Errorf("%s: %v", file, err)
	}
	id := n.ID
	if id == "" {
		id = webhook.DefaultID(src.Name, body)
	}
	return &engine.Event{ID: id, Source: src.Name, Provider: src.Provider, Type: n.Type, ReceivedAt: now, Headers: map[string]string{}, Payload: n.Payload, Raw: body}, nil
}

func pickSource(cfg *config.Config, name string) (*config.Source, error) {
	if name != "" {
		s := cfg.Source(name)
		if s == nil {
			var names []string
			for _, s := range cfg.Sources {
				names = append(names, s.Name)
			}
			return nil, fmt.Errorf("unknown source %q%s", name, config.DidYouMean(name, names))
		}
		return s, nil
	}
	if len(cfg.Sources) == 1 {
		return cfg.Sources[0], nil
	}
	var names []string
	for _, s := range cfg.Sources {
		names = append(names, s.Name)
	}
	return nil, fmt.Errorf("the config has %d sources (%s): say which with --source", len(cfg.Sources), strings.Join(names, ", "))
}

type dryAction struct {
	Name    string       `json:"name"`
	Type    string       `json:"type"`
	Enabled bool         `json:"enabled"`
	Fields  []actions.KV `json:"fields,omitempty"`
	Error   string       `json:"error,omitempty"`
}

type dryRule struct {
	Rule    string      `json:"rule"`
	Matched bool        `json:"matched"`
	Error   string      `json:"error,omitempty"`
	OnceKey string      `json:"once_per_key,omitempty"`
	Actions []dryAction `json:"actions,omitempty"`
}

type dryResult struct {
	File   string    `json:"file"`
	Source string    `json:"source"`
	Type   string    `json:"type"`
	ID     string    `json:"id"`
	Rules  []dryRule `json:"rules"`
}

func dryRun(snap *daemon.Snapshot, ev *engine.Event, file string) dryResult {
	out := dryResult{File: file, Source: ev.Source, Type: ev.Type, ID: ev.ID}
	for _, r := range snap.Rules.Evaluate(ev, true) {
		dr := dryRule{Rule: r.Rule.Name, Matched: r.Matched, OnceKey: r.OnceKey}
		if r.Err != nil {
			dr.Error = r.Err.Error()
		}
		if r.Matched {
			for _, name := range r.Rule.Actions {
				ca := snap.Config.Action(name)
				da := dryAction{Name: name, Type: ca.Type, Enabled: ca.Enabled}
				if a := snap.Actions[name]; a != nil && ca.Enabled {
					rend, err := a.Render(&actions.Job{ID: "dry-run", Event: ev, Rule: r.Rule.Name, Action: name, Attempt: 1})
					if err != nil {
						da.Error = err.Error()
					} else {
						da.Fields = rend.Fields
					}
				}
				dr.Actions = append(dr.Actions, da)
			}
		}
		out.Rules = append(out.Rules, dr)
	}
	return out
}

func printDry(w io.Writer, r dryResult) {
	fmt.Fprintf(w, "%s  (source %s, type %s, id %s)\n", r.File, r.Source, r.Type, short(r.ID))
	width := 4
	for _, rr := range r.Rules {
		width = max(width, len(rr.Rule))
	}
	for _, rr := range r.Rules {
		switch {
		case rr.Error != "":
			fmt.Fprintf(w, "  ERROR  %-*s  %s\n", width, rr.Rule, rr.Error)
		case rr.Matched:
			extra := ""
			if rr.OnceKey != "" {
				extra = "  (once per " + rr.OnceKey + ")"
			}
			fmt.Fprintf(w, "  MATCH  %-*s%s\n", width, rr.Rule, extra)
			for _, a := range rr.Actions {
				switch {
				case !a.Enabled:
					fmt.Fprintf(w, "         → %s (%s): disabled, skipped\n", a.Name, a.Type)
				case a.Error != "":
					fmt.Fprintf(w, "         → %s (%s): cannot render: %s\n", a.Name, a.Type, a.Error)
				default:
					fmt.Fprintf(w, "         → %s (%s)\n", a.Name, a.Type)
					for _, f := range a.Fields {
						v := strings.ReplaceAll(f.Value, "\n", "\n             ")
						fmt.Fprintf(w, "             %s: %s\n", f.Name, v)
					}
				}
			}
		default:
			fmt.Fprintf(w, "  -      %s\n", rr.Rule)
		}
	}
}

func short(id string) string {
	if len(id) > 16 {
		return id[:16] + "…"
	}
	return id
}

func cmdTest(args []string, stdout, stderr io.Writer) int {
	c := newFlags("test", stderr)
	var source string
	c.fs.StringVar(&source, "source", "", "source the event files come from")
	files, err := c.parse(args)
	if err != nil {
		return 2
	}
	snap, _ := loadValid(c.config, stderr)
	if snap == nil {
		return 1
	}
	if len(files) > 0 {
		// Which source the files come from is asked once, before any file:
		// a missing or unknown --source is a usage error (exit 2).
		if _, err := pickSource(snap.Config, source); err != nil {
			fmt.Fprintf(stderr, "payramd test: %v\n", err)
			return 2
		}
		var results []dryResult
		status := 0
		for _, f := range files {
			ev, err := dryEvent(snap, source, f)
			if err != nil {
				fmt.Fprintf(stderr, "payramd test: %v\n", err)
				status = 1
				continue
			}
			r := dryRun(snap, ev, f)
			if c.jsonOut {
				results = append(results, r)
			} else {
				printDry(stdout, r)
			}
		}
		if c.jsonOut {
			writeJSONOut(stdout, results)
		}
		return status
	}
	return runConfigTests(snap, c.jsonOut, stdout, stderr)
}

type testOutcome struct {
	Pos      string    `json:"pos"`
	Event    string    `json:"event"`
	Pass     bool      `json:"pass"`
	Expected []string  `json:"expected"`
	Matched  []string  `json:"matched"`
	Error    string    `json:"error,omitempty"`
	Result   dryResult `json:"result"`
}

func runConfigTests(snap *daemon.Snapshot, jsonOut bool, stdout, stderr io.Writer) int {
	tests := snap.Config.Tests
	if len(tests) == 0 {
		fmt.Fprintln(stderr, "payramd test: the config has no tests: section; pass event files to try them (payramd test EVENT.json)")
		return 0
	}
	var outcomes []testOutcome
	passed, failed := 0, 0
	for _, t := range tests {
		o := testOutcome{Pos: t.Pos.String(), Event: t.Event, Expected: t.Expect}
		ev, err := dryEvent(snap, t.Source, t.Event)
		if err != nil {
			o.Error = err.Error()
		} else {
			o.Result = dryRun(snap, ev, t.Event)
			for _, r := range o.Result.Rules {
				if r.Matched {
					o.Matched = append(o.Matched, r.Rule)
				}
			}
			want := slices.Clone(t.Expect)
			got := slices.Clone(o.Matched)
			slices.Sort(want)
			slices.Sort(got)
			o.Pass = !t.ExpectSet || slices.Equal(want, got)
		}
		if o.Pass {
			passed++
		} else {
			failed++
		}
		outcomes = append(outcomes, o)
	}
	if jsonOut {
		writeJSONOut(stdout, outcomes)
	} else {
		for _, o := range outcomes {
			switch {
			case o.Error != "":
				fmt.Fprintf(stdout, "FAIL %s: %s\n", o.Pos, o.Error)
			case o.Pass:
				fmt.Fprintf(stdout, "ok   %s: %s matched [%s]\n", o.Pos, o.Event, strings.Join(o.Matched, ", "))
			default:
				fmt.Fprintf(stdout, "FAIL %s: %s: expected [%s], matched [%s]\n", o.Pos, o.Event, strings.Join(o.Expected, ", "), strings.Join(o.Matched, ", "))
				for _, r := range o.Result.Rules {
					if r.Error != "" {
						fmt.Fprintf(stdout, "       rule %s failed: %s\n", r.Rule, r.Error)
					}
				}
			}
		}
		fmt.Fprintf(stdout, "%d passed, %d failed\n", passed, failed)
	}
	if failed > 0 {
		return 1
	}
	return 0
}

func writeJSONOut(w io.Writer, v any) {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
