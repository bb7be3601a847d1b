package actions

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/payramd/payramd/config"
	"github.com/payramd/payramd/engine"
	"gopkg.in/yaml.v3"
)

// masked replaces a secret in Render output, matching config.Secret.
const masked = "<redacted>"

// spec reads one action's fields. It exists so that every type handles
// templates, required fields and disabled actions the same way.
type spec struct {
	f       *config.Fields
	enabled bool
	before  int      // errors already reported when reading started
	known   []string // the events' payload fields (config.Action.EventFields)
}

func newSpec(c *config.Action) *spec {
	return &spec{f: c.Fields, enabled: c.Enabled, before: errorCount(c.Fields.Problems()), known: c.EventFields}
}

// ok reports whether reading found no error, in this spec or any other:
// counting the shared Problems catches errors reported by config's own
// accessors (a list where a value belongs, an empty secret) too.
func (s *spec) ok() bool { return errorCount(s.f.Problems()) == s.before }

// sub reads a nested mapping (sign:, smtp:) with the same enabled state. The
// caller must call done on it.
func (s *spec) sub(key string) *spec {
	m := s.f.Map(key)
	if m == nil {
		return nil
	}
	return &spec{f: m, enabled: s.enabled, before: s.before, known: s.known}
}

func (s *spec) done() { s.f.Done() }

func (s *spec) errorf(key, format string, args ...any) {
	s.f.Errorf(key, format, args...)
}

func (s *spec) errorAt(pos config.Pos, format string, args ...any) {
	s.f.Problems().Errorf(pos, format, args...)
}

func (s *spec) warnf(key, format string, args ...any) { s.f.Warnf(key, format, args...) }

// missing reports an absent required field. Disabled actions may leave
// required fields empty: `enabled: ${SLACK_WEBHOOK_URL:+true}` switches an
// action off exactly when its URL is unset.
func (s *spec) missing(key, hint string) {
	if !s.enabled {
		return
	}
	if s.f.Has(key) {
		s.errorf(key, "%s must not be empty%s", key, hint)
	} else {
		s.errorf(key, "missing required field %q%s", key, hint)
	}
}

// template compiles key's value; nil when absent or when it does not
// compile (which is reported).
func (s *spec) template(key string) *engine.Template {
	sc := s.f.Scalar(key)
	if sc == nil {
		return nil
	}
	sc.Sensitive = sensitive(key)
	return s.compile(sc)
}

// sensitive marks values warnings must not quote: a URL (a webhook URL, a
// query token or a password in it is a secret) and a credential header or
// variable.
func sensitive(key string) bool { return key == "url" || credentialName(key) }

// requiredTemplate is template for a field that must be present and non-empty.
func (s *spec) requiredTemplate(key, hint string) *engine.Template {
	if n := s.f.Node(key); n != nil && n.Kind != yaml.ScalarNode {
		s.f.Scalar(key) // reports the wrong kind with its position
		return nil
	}
	sc := s.f.Scalar(key)
	if sc == nil || strings.TrimSpace(sc.Value) == "" {
		s.missing(key, hint)
		return nil
	}
	sc.Sensitive = sensitive(key)
	return s.compile(sc)
}

func (s *spec) compile(sc *config.Scalar) *engine.Template {
	t := engine.CompileTemplate(sc, s.f.Problems())
	t.WarnUnknownFields(s.known, s.f.Problems())
	return t
}

// templates compiles every item of a list (a single value is a list of one).
func (s *spec) templates(key string) ([]*engine.Template, []*config.Scalar) {
	scs := s.f.ScalarList(key)
	out := make([]*engine.Template, 0, len(scs))
	for _, sc := range scs {
		out = append(out, s.compile(sc))
	}
	return out, scs
}

// namedTemplate is one entry of a map of templates (headers:, env:).
type namedTemplate struct {
	name  string
	value *engine.Template
	pos   config.Pos
	sc    *config.Scalar // the value as written
}

func (s *spec) templateMap(key string) []namedTemplate {
	var out []namedTemplate
	for _, kv := range s.f.StringMap(key) {
		kv.Value.Sensitive = sensitive(kv.Key)
		out = append(out, namedTemplate{name: kv.Key, value: s.compile(kv.Value), pos: kv.Value.Pos, sc: kv.Value})
	}
	return out
}

// constant returns a template's text when it has no placeholder, so that a
// load-time check can validate it; ok is false for nil or dynamic templates.
func constant(t *engine.Template) (string, bool) {
	if t == nil || !t.IsConstant() {
		return "", false
	}
	v, err := t.Render(nil)
	return v, err == nil
}

// fromConfig reports whether a template renders nothing from the event:
// its placeholders, if any, read only constants, meta.source and
// meta.provider (engine.Placeholder.ConfigOnly).
func fromConfig(t *engine.Template) bool {
	for _, p := range t.Placeholders() {
		if !p.ConfigOnly {
			return false
		}
	}
	return true
}

// renderError is a template that failed against this event. It is never
// retryable: the same event renders the same way on every attempt.
type renderError struct {
	field string
	err   error
}

func (e *renderError) Error() string { return "rendering " + e.field + ": " + e.err.Error() }
func (e *renderError) Unwrap() error { return e.err }

// render evaluates t against env and names the field in any error.
func render(field string, t *engine.Template, env map[string]any) (string, error) {
	return renderEscaped(field, t, env, nil)
}

// renderEscaped is render with escape applied to the placeholders' values.
func renderEscaped(field string, t *engine.Template, env map[string]any, escape func(i int, s string) string) (string, error) {
	if t == nil {
		return "", nil
	}
	v, err := t.RenderEscaped(env, escape)
	if err != nil {
		return "", &renderError{field: field, err: err}
	}
	return v, nil
}

// renderAll renders a list of templates, naming the failing item.
func renderAll(field string, ts []*engine.Template, env map[string]any) ([]string, error) {
	out := make([]string, 0, len(ts))
	for i, t := range ts {
		v, err := render(fmt.Sprintf("%s[%d]", field, i), t, env)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// Results. The constructors keep the Output bound in one place.

func success(output string) Result { return Result{Output: bound(output)} }

func permanent(err error, output string) Result {
	return Result{Err: err, Output: bound(output)}
}

func retryable(err error, output string) Result {
	return Result{Err: err, Retryable: true, Output: bound(output)}
}

// bound cuts s to MaxOutput bytes, keeping the head, on a UTF-8 boundary.
func bound(s string) string {
	if len(s) <= MaxOutput {
		return s
	}
	const mark = "\n[… output truncated]"
	cut := MaxOutput - len(mark)
	for cut > 0 && !utf8Start(s[cut]) {
		cut--
	}
	return s[:cut] + mark
}

func utf8Start(b byte) bool { return b&0xC0 != 0x80 }

// redactURL keeps only scheme and host, for logs and errors: a Slack webhook
// URL carries its secret in the path, and other URLs often carry tokens in
// the path or query.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return masked
	}
	return u.Scheme + "://" + u.Host + "/…"
}

// sensitiveName reports whether a header, query parameter or variable name
// suggests a credential, so Render masks its value.
func sensitiveName(name string) bool {
	n := strings.ToLower(name)
	for _, w := range []string{"auth", "token", "secret", "password", "passwd", "signature", "cookie", "key", "credential", "session"} {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}

// maskURL shows a URL for Render: the password of user:password@ and the
// values of credential-looking query parameters are masked.
func maskURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	if u.User != nil {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), "REDACTED")
		}
	}
	if u.RawQuery != "" {
		q := u.Query()
		changed := false
		for k := range q {
			if sensitiveName(k) {
				q.Set(k, "REDACTED")
				changed = true
			}
		}
		if changed {
			u.RawQuery = q.Encode()
		}
	}
	return u.String()
}

// timeoutError is what an attempt that ran out of time reports. It wraps
// the context error so callers can test errors.Is(err, context.DeadlineExceeded).
type timeoutError struct {
	what string
	err  error
}

func (e *timeoutError) Error() string { return e.what + ": " + e.err.Error() }
func (e *timeoutError) Unwrap() error { return e.err }

func formatDuration(d time.Duration) string {
	return d.Round(time.Millisecond).String()
}
