package config

import (
	"net/netip"
	"time"
)

// Config is a loaded rules.yaml with its includes.
type Config struct {
	// Path is the main file; Files every file read (main first), for the watcher.
	Path  string
	Files []string
	// IncludePatterns are the include globs, made absolute, so that the
	// watcher notices a new file matching one.
	IncludePatterns []string
	// Embedded is true when no file was found and the built-in example runs.
	Embedded bool

	Server  Server
	Sources []*Source
	Actions []*Action // named and inline, in file order
	Rules   []*Rule
	Tests   []*Test

	// Unset lists, when loaded with Options.StandIn, the ${VAR}
	// references of unset variables that were stood in for, and those
	// with a default (${VAR:-x}, ${VAR:+x}) that took it in a value the
	// backtest uses; in file order.
	Unset []Unset
}

// Unset is one reference to an environment variable that was not set.
type Unset struct {
	Name  string
	Field string // where, such as sources.payram.secret or rules[2].enabled
	Pos   Pos
	// Defaulted is true for ${VAR:-x} or ${VAR:+x} in a value the backtest
	// uses: loaded as written for an unset VAR, which the service's
	// environment may set. False: an unset ${VAR} read as StandInValue in
	// a value the backtest does not use.
	Defaulted bool
}

// Server holds the server: section. Listen, AdminListen and DataDir take
// effect at start only.
type Server struct {
	Listen          string
	AdminListen     string
	AdminToken      Secret
	DataDir         string
	MaxBody         int64
	Retention       time.Duration
	ShutdownTimeout time.Duration
	TrustedProxies  []netip.Prefix
	TLSCert         string
	TLSKey          string
	// Workers bounds how many jobs run at once.
	Workers int
	Pos     Pos
}

// RateLimit is a token bucket: PerSecond tokens a second, Burst at most.
type RateLimit struct {
	PerSecond float64
	Burst     int
}

// Source is one webhook endpoint.
type Source struct {
	Name     string
	Pos      Pos
	Provider string
	Path     string // served path, /webhooks/<name> by default
	// Secrets are all valid at once (rotation); the last is the newest and
	// is the one `payramd send` signs with.
	Secrets   []Secret
	AllowIPs  []netip.Prefix
	MaxBody   int64 // 0: server.max_body
	RateLimit *RateLimit
	// Fields holds the source's mapping; the common keys above are already
	// declared. The provider reads its own keys from it, then Done reports
	// the rest.
	Fields *Fields
}

// Retry is an action's retry policy: Attempts in all (the first included),
// exponential from Initial, capped at Max, with jitter.
type Retry struct {
	Attempts int
	Initial  time.Duration
	Max      time.Duration
}

// DefaultRetry is used where an action sets no retry:.
var DefaultRetry = Retry{Attempts: 10, Initial: time.Second, Max: 10 * time.Minute}

// Action is one configured action, named in actions: or inline in a rule's
// do: (named "<rule>/do[<index>]:<type>").
type Action struct {
	Name    string
	Pos     Pos
	Type    string
	Timeout time.Duration
	Retry   Retry
	// Enabled is false when the action says enabled: false (or an empty
	// value, such as an unset ${SLACK_WEBHOOK_URL:+true}); a disabled action
	// is skipped and its required fields may be empty.
	Enabled bool
	Inline  bool
	// Fields holds the type-specific keys (type, timeout, retry, enabled
	// are declared already).
	Fields *Fields
	// EventFields, set before the actions are compiled, are the payload
	// fields of every event that can reach the action through its rules;
	// nil when that is not known (a source whose provider has no fixed
	// fields, or no rule). A template reading another name gets a warning.
	EventFields []string
}

// Rule is one when/do pair.
type Rule struct {
	Name    string
	Pos     Pos
	Sources []string // empty: every source
	When    *Scalar
	OncePer *Scalar // nil: no once_per
	Do      []string
	DoPos   []Pos
	Enabled bool
}

// Test is one entry of tests:, run by `payramd test`.
type Test struct {
	Pos    Pos
	Event  string // path, resolved against the file's directory
	Source string
	Expect []string
	// ExpectSet distinguishes `expect: []` (no rule may match) from no expect.
	ExpectSet bool
}

// Source returns the named source, or nil.
func (c *Config) Source(name string) *Source {
	for _, s := range c.Sources {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// Action returns the named action, or nil.
func (c *Config) Action(name string) *Action {
	for _, a := range c.Actions {
		if a.Name == name {
			return a
		}
	}
	return nil
}
