// Package daemon wires payramd together: it loads a config into an
// immutable Snapshot (sources, compiled rules, actions), serves the webhook
// listener and the admin API, journals accepted events with their jobs,
// runs jobs on a bounded worker pool, and swaps snapshots on reload.
package daemon

import (
	"fmt"
	"slices"
	"time"

	"github.com/payramd/payramd/actions"
	"github.com/payramd/payramd/config"
	"github.com/payramd/payramd/engine"
	"github.com/payramd/payramd/webhook"
)

// Snapshot is one fully compiled config. It never changes once built; a
// reload builds a new one and swaps it in, so each event sees one
// consistent set of sources, rules and actions.
type Snapshot struct {
	Config  *config.Config
	Rules   *engine.RuleSet
	Table   *webhook.Table
	Actions map[string]actions.Action
	Loaded  time.Time
}

// LoadOptions say where the config comes from.
type LoadOptions struct {
	Path string
	// Embedded, when non-nil, is loaded instead of Path (the built-in example).
	Embedded []byte
	Config   config.Options
}

// Load parses, validates and compiles a config. Every problem is returned
// (warnings too); the snapshot is nil when there is an error.
func Load(o LoadOptions) (*Snapshot, *config.Problems) {
	var cfg *config.Config
	var probs *config.Problems
	if o.Embedded != nil {
		cfg, probs = config.LoadBytes(o.Path, o.Embedded, o.Config)
		if cfg != nil {
			cfg.Embedded = true
		}
	} else {
		cfg, probs = config.Load(o.Path, o.Config)
	}
	if cfg == nil {
		return nil, probs
	}
	table := webhook.Compile(cfg)
	opt := engine.CompileOptions{Schemas: map[string]engine.Schema{}}
	for _, s := range cfg.Sources {
		opt.Sources = append(opt.Sources, s.Name)
		if table == nil {
			continue
		}
		if p := table.Provider(s.Name); p != nil {
			if sc, ok := p.(webhook.Schema); ok {
				opt.Schemas[s.Name] = schemaOf(sc)
			}
		}
	}
	setEventFields(cfg, opt)
	acts := actions.Compile(cfg)
	rules := engine.Compile(cfg.Rules, opt, probs)
	probs.Sort()
	if probs.HasErrors() || rules == nil || table == nil {
		return nil, probs
	}
	return &Snapshot{Config: cfg, Rules: rules, Table: table, Actions: acts, Loaded: time.Now()}, probs
}

// setEventFields gives each action the payload fields of the events its
// rules can send it, so that a template reading a misspelt field is
// warned about as a rule's when: is. An action some of whose events have
// no known fields (an hmac source), or that no rule uses, gets none.
func setEventFields(cfg *config.Config, opt engine.CompileOptions) {
	fields := map[string][]string{}
	unknown := map[string]bool{}
	for _, r := range cfg.Rules {
		if !r.Enabled {
			continue
		}
		known := engine.KnownFields(r.Sources, opt)
		for _, name := range r.Do {
			if known == nil {
				unknown[name] = true
				continue
			}
			for _, f := range known {
				if !slices.Contains(fields[name], f) {
					fields[name] = append(fields[name], f)
				}
			}
		}
	}
	for _, a := range cfg.Actions {
		if !unknown[a.Name] {
			a.EventFields = fields[a.Name]
		}
	}
}

func schemaOf(sc webhook.Schema) engine.Schema {
	out := engine.Schema{}
	for name, t := range sc.Fields() {
		k := engine.KindAny
		switch t {
		case webhook.String:
			k = engine.KindString
		case webhook.Decimal, webhook.Int:
			k = engine.KindDecimal
		case webhook.Bool:
			k = engine.KindBool
		case webhook.Object:
			k = engine.KindObject
		case webhook.List:
			k = engine.KindList
		}
		out[name] = k
	}
	return out
}

// EnabledActions returns the names of a rule's actions that will run.
func (s *Snapshot) EnabledActions(names []string) []string {
	out := make([]string, 0, len(names))
	for _, n := range names {
		if a := s.Config.Action(n); a != nil && a.Enabled {
			out = append(out, n)
		}
	}
	return out
}

// Summary describes the snapshot for logs and the admin API, with no secret.
func (s *Snapshot) Summary() map[string]any {
	var sources []map[string]any
	for _, src := range s.Config.Sources {
		sources = append(sources, map[string]any{
			"name": src.Name, "provider": src.Provider, "path": src.Path,
			"secrets": len(src.Secrets), "allow_ips": fmt.Sprint(src.AllowIPs),
		})
	}
	var rules []map[string]any
	for _, r := range s.Config.Rules {
		rules = append(rules, map[string]any{"name": r.Name, "enabled": r.Enabled, "sources": r.Sources, "do": r.Do, "file": r.Pos.String()})
	}
	var acts []map[string]any
	for _, a := range s.Config.Actions {
		acts = append(acts, map[string]any{"name": a.Name, "type": a.Type, "enabled": a.Enabled, "timeout": a.Timeout.String(), "retry_attempts": a.Retry.Attempts})
	}
	files := slices.Clone(s.Config.Files)
	return map[string]any{"files": files, "embedded": s.Config.Embedded, "sources": sources, "rules": rules, "actions": acts, "loaded_at": s.Loaded.UTC().Format(time.RFC3339)}
}
