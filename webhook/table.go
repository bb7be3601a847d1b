package webhook

import (
	"math"
	"net/http"
	"net/netip"
	"slices"
	"strings"

	"golang.org/x/time/rate"

	"github.com/payramd/payramd/config"
)

// Table is the routing table of one config snapshot: which path belongs to
// which source, and how that source is verified and throttled. It is built
// once per (re)load and never changed afterwards, so requests read it without
// locks; a reload builds a new Table and swaps it in whole.
type Table struct {
	byPath   map[string]*route
	bySource map[string]*route
	// trusted are the peers whose X-Forwarded-For is believed
	// (server.trusted_proxies).
	trusted []netip.Prefix
}

// route is one source as the handler needs it.
type route struct {
	source       string
	providerName string
	provider     Provider
	path         string
	methods      []string
	allow        []netip.Prefix
	maxBody      int64            // the source's max_body, else the server's, else DefaultMaxBody
	rateLimit    config.RateLimit // zero: unlimited
	limiter      *rate.Limiter
	// redact holds lower-case header names this provider reads secrets
	// from, removed from meta.headers on top of RedactHeaders' rules.
	redact []string
}

// Compile builds the routing table for cfg. Every problem (unknown provider,
// bad provider settings, unknown keys, duplicate paths) is reported to the
// sources' Fields collectors with its file position, and the table is
// returned anyway so that `check` can report everything in one pass; the
// caller must not serve a table whose config has errors.
//
// The server-wide settings the listener applies per request (the default
// max_body, trusted_proxies) are compiled in too, so that they follow a
// reload like everything else in the table.
//
// Each source's Fields.Done is called here, after the provider has declared
// its keys, so the config loader must not call it for sources.
func Compile(cfg *config.Config) *Table {
	t := &Table{byPath: map[string]*route{}, bySource: map[string]*route{}}
	if cfg == nil {
		return t
	}
	t.trusted = cfg.Server.TrustedProxies
	serverMax := cfg.Server.MaxBody
	if serverMax <= 0 {
		serverMax = DefaultMaxBody
	}
	names := Providers()
	for _, src := range cfg.Sources {
		if src.Fields == nil {
			// A source built by hand (tests): give it a collector so that
			// providers can report, even if nobody reads it.
			src.Fields = config.NewFields(src.Pos.File, nil, &config.Problems{})
		}
		f := src.Fields
		probs := f.Problems()
		f.Declare("provider", "path")

		path := src.Path
		if path == "" {
			path = "/webhooks/" + src.Name
		}
		// The config loader checks paths too; report only what it has not,
		// so `check` does not say the same thing twice.
		if !probs.HasErrorAt(f.KeyPos("path")) {
			if !strings.HasPrefix(path, "/") {
				f.Errorf("path", "path must start with /, such as /webhooks/%s", src.Name)
			} else if other, dup := t.byPath[path]; dup {
				f.Errorf("path", "path %s is already used by source %q", path, other.source)
			}
		}

		var p Provider
		built := false
		switch factory := lookupFactory(src.Provider); {
		case src.Provider == "":
			if !probs.HasErrorAt(f.KeyPos("provider")) {
				f.Errorf("provider", "missing required field \"provider\" (one of %s)", strings.Join(names, ", "))
			}
		case factory == nil:
			hint := config.DidYouMean(src.Provider, names)
			if hint == "" {
				hint = " (known providers: " + strings.Join(names, ", ") + ")"
			}
			f.Errorf("provider", "unknown provider %q%s", src.Provider, hint)
		default:
			var err error
			built = true
			if p, err = factory(src); err != nil {
				probs.Errorf(src.Pos, "source %q: %v", src.Name, err)
				p = nil
			}
		}
		if built {
			// With no provider known there is no telling which keys are
			// its own; "unknown field" hints would only add noise to the
			// one error that matters.
			f.Done()
		}

		r := &route{source: src.Name, providerName: src.Provider, provider: p, path: path, allow: src.AllowIPs, maxBody: src.MaxBody}
		if r.maxBody <= 0 {
			r.maxBody = serverMax
		}
		r.methods = []string{http.MethodPost}
		if ml, ok := p.(MethodLister); ok {
			r.methods = ml.Methods()
		}
		if sh, ok := p.(sensitiveHeaders); ok {
			for _, h := range sh.sensitiveHeaders() {
				r.redact = append(r.redact, strings.ToLower(h))
			}
		}
		if rl := src.RateLimit; rl != nil && rl.PerSecond > 0 {
			r.rateLimit = *rl
			r.limiter = newLimiter(*rl)
		}
		if _, dup := t.byPath[path]; !dup {
			t.byPath[path] = r
		}
		t.bySource[src.Name] = r
	}
	return t
}

// newLimiter makes a token bucket; a burst of 0 (unset) becomes the rate
// rounded up, at least 1, because a bucket of 0 would refuse everything.
func newLimiter(rl config.RateLimit) *rate.Limiter {
	burst := rl.Burst
	if burst <= 0 {
		burst = max(1, int(math.Ceil(rl.PerSecond)))
	}
	return rate.NewLimiter(rate.Limit(rl.PerSecond), burst)
}

// InheritLimits carries rate-limiter state over from the table being
// replaced, for every source whose limit is unchanged: otherwise each reload
// would hand every source a full bucket, and editing rules.yaml in a loop
// would defeat the limit. Call it before the new table is published.
func (t *Table) InheritLimits(old *Table) {
	if t == nil || old == nil {
		return
	}
	for name, r := range t.bySource {
		if o, ok := old.bySource[name]; ok && o.limiter != nil && r.limiter != nil && o.rateLimit == r.rateLimit {
			r.limiter = o.limiter
		}
	}
}

// lookup finds the route for a request path. A single trailing slash is
// forgiven, because merchants paste URLs into provider dashboards by hand.
func (t *Table) lookup(path string) *route {
	if t == nil {
		return nil
	}
	if r, ok := t.byPath[path]; ok {
		return r
	}
	if len(path) > 1 && strings.HasSuffix(path, "/") {
		return t.byPath[strings.TrimSuffix(path, "/")]
	}
	return nil
}

// Provider returns the provider of the named source, or nil. `payramd send`
// signs with it and `payramd test` normalizes with it.
func (t *Table) Provider(source string) Provider {
	if t == nil {
		return nil
	}
	if r, ok := t.bySource[source]; ok {
		return r.provider
	}
	return nil
}

// Schema returns the known payload fields of the named source's provider,
// or nil when the provider passes arbitrary JSON.
func (t *Table) Schema(source string) Schema {
	s, _ := t.Provider(source).(Schema)
	return s
}

// Path returns the path the named source is served at, or "".
func (t *Table) Path(source string) string {
	if t == nil {
		return ""
	}
	if r, ok := t.bySource[source]; ok {
		return r.path
	}
	return ""
}

// Sources returns the source names, sorted.
func (t *Table) Sources() []string {
	if t == nil {
		return nil
	}
	out := make([]string, 0, len(t.bySource))
	for n := range t.bySource {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// trustedProxies returns the server's trusted_proxies, nil for no table.
func (t *Table) trustedProxies() []netip.Prefix {
	if t == nil {
		return nil
	}
	return t.trusted
}
