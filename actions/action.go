// Package actions runs what a matched rule asks for: HTTP calls, Slack
// messages, emails, commands and log lines.
//
// Each action type is one file that registers a Factory from its init. The
// factory reads and validates the type's fields once, at load time, so that a
// broken action is a `payramd check` error with its file:line:col rather than
// a surprise at 3 a.m. At run time an Action performs one attempt and says
// whether another attempt could help (Result.Retryable); when and how often
// to try again is the job runner's business, not the action's. This split
// follows Alertmanager's notifiers: the integration knows its protocol's
// failure modes, the pipeline owns the retry schedule.
package actions

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/payramd/payramd/config"
	"github.com/payramd/payramd/engine"
)

// Action is one configured action, ready to run. Implementations are safe
// for concurrent use: one Action serves every job that names it.
type Action interface {
	// Render returns what the action would do for this job, secrets
	// masked. `payramd test` prints it, so it must never perform anything.
	Render(j *Job) (*Rendered, error)
	// Run performs the action once. ctx carries the action's timeout
	// deadline; Run returns soon after it expires.
	Run(ctx context.Context, j *Job) Result
}

// Job is one (event, rule, action) to execute, as an action sees it.
type Job struct {
	// ID is stable across attempts, so receivers can use it to drop
	// duplicates (it is sent as Idempotency-Key, webhook-id, Message-ID).
	ID      string
	Event   *engine.Event
	Rule    string
	Action  string // the action's name
	Attempt int    // 1-based
}

// Rendered is what an action would do, as ordered name/value lines such as
// url, method, header, body, to, subject, argv or env.
type Rendered struct {
	Type   string
	Fields []KV
}

// KV is one line of a Rendered action; `payramd test --json` prints it as
// {"name": …, "value": …}, in the snake_case of the rest of its output.
type KV struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Result is the outcome of one attempt.
type Result struct {
	// Err is nil on success.
	Err error
	// Retryable is true when another attempt may succeed (a timeout, a
	// 503); false means the job should fail at once (a 400, a bad
	// template), because repeating the same request cannot help.
	Retryable bool
	// RetryAfter, when positive, is the earliest the next attempt should
	// run, as the receiver asked (HTTP 429 or 503 with Retry-After).
	RetryAfter time.Duration
	// Output is what the attempt produced, for the job's attempt record:
	// a response's status line and first bytes, or a command's output. At
	// most MaxOutput bytes, and never a secret of ours.
	Output string
}

// MaxOutput bounds Result.Output: the attempt record is for a human reading
// why something failed, not an archive of responses.
const MaxOutput = 4 << 10

// Factory builds an action from its config at load time. It reports every
// problem through c.Fields (Errorf, Warnf) so that each carries its
// position, compiles templates with engine.CompileTemplate, and returns an
// error when the action cannot be built. A disabled action (c.Enabled false)
// may leave required fields empty; its factory should skip those checks but
// still read every key, so that unknown keys are reported.
type Factory func(c *config.Action) (Action, error)

var registry = struct {
	sync.RWMutex
	m map[string]Factory
}{m: map[string]Factory{}}

// Register makes an action type available under typ. It is called from the
// init function of the type's file and panics on a duplicate name, which is
// a programming error.
func Register(typ string, f Factory) {
	registry.Lock()
	defer registry.Unlock()
	if _, dup := registry.m[typ]; dup {
		panic("actions: type " + typ + " registered twice")
	}
	registry.m[typ] = f
}

// Types returns the registered type names, sorted, for messages and docs.
func Types() []string {
	registry.RLock()
	defer registry.RUnlock()
	out := make([]string, 0, len(registry.m))
	for t := range registry.m {
		out = append(out, t)
	}
	slices.Sort(out)
	return out
}

func factory(typ string) Factory {
	registry.RLock()
	defer registry.RUnlock()
	return registry.m[typ]
}

// Compile builds every action of cfg and returns them by name. Problems go to
// each action's Fields (so, to the config's Problems) with their positions:
// an unknown type with a suggestion, every invalid field, and every key the
// type does not know. Actions that fail to build are left out of the map;
// the caller must check the Problems before using the result.
func Compile(cfg *config.Config) map[string]Action {
	out := make(map[string]Action, len(cfg.Actions))
	for _, a := range cfg.Actions {
		if act := compileOne(a); act != nil {
			out[a.Name] = act
		}
	}
	return out
}

func compileOne(a *config.Action) Action {
	types := Types()
	f := factory(a.Type)
	if f == nil {
		// Done is skipped on purpose: with the type unknown, every other
		// key would be reported too, burying the one line that matters.
		if a.Type == "" {
			if a.Fields.Problems().HasErrorAt(a.Fields.KeyPos("type")) {
				return nil // the config loader reported the missing type
			}
			a.Fields.Errorf("type", "action %q has no type: write type: and one of %s", a.Name, strings.Join(types, ", "))
		} else {
			a.Fields.Errorf("type", "unknown action type %q%s (known types: %s)", a.Type, config.DidYouMean(a.Type, types), strings.Join(types, ", "))
		}
		return nil
	}
	probs := a.Fields.Problems()
	before := errorCount(probs)
	act, err := f(a)
	a.Fields.Done()
	switch {
	case err != nil && errorCount(probs) == before:
		// The factory failed without saying where: pin it on the action.
		probs.Errorf(a.Pos, "action %q: %v", a.Name, err)
		return nil
	case err != nil, errorCount(probs) != before:
		return nil // an unknown key, reported by Done, fails the action too
	}
	return act
}

func errorCount(ps *config.Problems) int {
	n := 0
	for _, p := range ps.List {
		if !p.Warning {
			n++
		}
	}
	return n
}

// errInvalid is what a factory returns after reporting its problems through
// Fields; Compile then adds nothing of its own.
var errInvalid = errors.New("invalid action")
