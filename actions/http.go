package actions

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/payramd/payramd/config"
	"github.com/payramd/payramd/engine"
)

func init() { Register("http", newHTTP) }

var _ Action = (*HTTP)(nil)

// HTTP calls a URL: `url`, `method` (POST), `headers`, `body` (the payload
// as received), `expect` (status codes; any 2xx by default),
// `follow_redirects` (false) and an optional `sign:` block that signs what
// it sends. Every request carries Idempotency-Key: <job id> (unless
// headers: sets its own), so a receiver can drop the duplicates that
// at-least-once delivery produces, and User-Agent: payramd.
type HTTP struct {
	url     *engine.Template
	method  string
	headers []namedTemplate
	body    *engine.Template // nil: the received payload
	expect  []int
	follow  bool
	sign    *signer
}

var httpMethods = []string{"POST", "PUT", "PATCH", "GET", "DELETE", "HEAD", "OPTIONS"}

func newHTTP(c *config.Action) (Action, error) {
	s := newSpec(c)
	a := &HTTP{}
	a.url = s.requiredTemplate("url", " (the address to call, such as https://example.com/hooks/payram)")
	if u, ok := constant(a.url); ok {
		if err := checkHTTPURL(u); err != nil {
			s.errorf("url", "url: %v", err)
		}
	} else if a.url != nil {
		warnUnescapedURL(s, a.url)
	}
	warnLiteralURL(s, "url", a.url)
	a.method = strings.ToUpper(s.f.String("method"))
	if a.method == "" {
		a.method = http.MethodPost
	} else if !slices.Contains(httpMethods, a.method) {
		s.errorf("method", "method must be one of %s, not %q%s", strings.Join(httpMethods, ", "), s.f.String("method"), config.DidYouMean(a.method, httpMethods))
	}
	a.headers = s.templateMap("headers")
	warnLiteralCredentials(s, "headers", a.headers)
	for _, h := range a.headers {
		if !validHeaderName(h.name) {
			s.errorAt(h.pos, "headers: %q is not a valid header name", h.name)
		}
		if strings.EqualFold(h.name, "Content-Length") || strings.EqualFold(h.name, "Host") {
			s.errorAt(h.pos, "headers: %s is set by payramd and cannot be configured", h.name)
		}
	}
	if s.f.Has("body") {
		a.body = s.template("body")
		if a.body == nil {
			a.body = mustConstant("")
		}
	}
	for _, sc := range s.f.ScalarList("expect") {
		n, err := strconv.Atoi(strings.TrimSpace(sc.Value))
		if err != nil || n < 100 || n > 599 {
			s.errorAt(sc.Pos, "expect: %q is not an HTTP status code (100 to 599)", sc.Value)
			continue
		}
		a.expect = append(a.expect, n)
	}
	a.follow = s.f.Bool("follow_redirects", false)
	if sg := s.sub("sign"); sg != nil {
		env := "SIGNING_SECRET"
		if !c.Inline {
			env = config.EnvName(c.Name) + "_" + env
		}
		sg.f.SuggestEnv(env)
		a.sign = newSigner(sg)
		sg.done()
	}
	if !s.ok() {
		return nil, errInvalid
	}
	return a, nil
}

// mustConstant is an always-valid template for a literal value.
func mustConstant(v string) *engine.Template {
	var probs config.Problems
	return engine.CompileTemplate(&config.Scalar{Value: v}, &probs)
}

// warnUnescapedURL warns about a placeholder in a url's path or query that
// does not escape its value for where it sits: an order id of
// "42/refund?amount=1000" would change which endpoint is called and with
// what. The path wants urlpath, the query urlquery (urlpath leaves & and =
// as they are). A placeholder that is the whole address or host
// ({{ erp_base }}/orders, https://{{ host }}/) is the merchant's own choice
// of address, and one in the fragment is never sent; both are left alone,
// as are constants. First, though, it warns about an event value that can
// move the call to another server while the host is otherwise fixed text
// (https://{{ tenant }}.erp.example, a port, a scheme, a user name): see
// hostMover. Each unescaped placeholder gets its own warning, so fixing
// the first does not reveal the next one only on the following check.
func warnUnescapedURL(s *spec, t *engine.Template) {
	if p, ok := hostMover(t); ok {
		s.f.Problems().Warnf(s.f.Scalar("url").AtOffset(p.Offset), "url: {{ %s }} can change the server called: a value such as 'x@evil.example/#' sends the request, headers and all, to evil.example; keep the scheme, host and port fixed and pass the value in the path with urlpath, or in the query with urlquery", p.Code)
		return
	}
	sc := s.f.Scalar("url")
	for _, p := range urlPlaceholders(t) {
		want := map[urlPart]string{urlPath: "urlpath", urlQuery: "urlquery"}[p.part]
		if want == "" || p.Constant || p.Func == want {
			continue
		}
		switch p.Func {
		case "urlpath":
			s.f.Problems().Warnf(sc.AtOffset(p.Offset), "url: {{ %s }} is in the query, where urlpath leaves & and = unescaped (a value 'x&amount=1000' adds a parameter); use urlquery instead", p.Code)
		case "urlquery":
			s.f.Problems().Warnf(sc.AtOffset(p.Offset), "url: {{ %s }} is in the path, where urlquery's + for a space stays a plus; use urlpath instead", p.Code)
		default:
			s.f.Problems().Warnf(sc.AtOffset(p.Offset), "url: {{ %s }} is inserted as it is, so a value containing / ? # or & changes the address called; write {{ %s(%s) }}", p.Code, want, p.Code)
		}
	}
}

// urlPart is where in a URL a placeholder sits.
type urlPart int

const (
	urlAddress urlPart = iota // scheme, host, port, or a placeholder that gives the base URL
	urlPath
	urlQuery
	urlFragment
)

type urlPlaceholder struct {
	engine.Placeholder
	part urlPart
}

// urlPlaceholders places each placeholder of a templated URL by reading the
// literal text around the placeholders only (a "?" inside {{ a ?? b }} is
// code, not the start of a query): the address runs to the first "/", "?"
// or "#" after "scheme://", or after a leading placeholder that supplies
// the base URL; the path to "?"; the query to "#".
func urlPlaceholders(t *engine.Template) []urlPlaceholder {
	src := t.Source()
	var out []urlPlaceholder
	part, afterScheme, afterBase, pos := urlAddress, false, false, 0
	scan := func(lit string) {
		for i := 0; i < len(lit); i++ {
			c := lit[i]
			switch {
			case part == urlAddress && !afterScheme && strings.HasPrefix(lit[i:], "://"):
				afterScheme = true
				i += 2
			case part == urlAddress && c == '/':
				part = urlPath
			case (part == urlAddress || part == urlPath) && c == '?':
				part = urlQuery
			case part != urlFragment && c == '#':
				part = urlFragment
			}
		}
	}
	for _, p := range t.Placeholders() {
		lit := src[pos:p.Offset]
		if afterBase && strings.HasPrefix(lit, "://") {
			lit = lit[3:] // {{ scheme }}://host: the leading placeholder was only the scheme
		}
		scan(lit)
		out = append(out, urlPlaceholder{Placeholder: p, part: part})
		afterBase = part == urlAddress && strings.TrimSpace(src[:p.Offset]) == ""
		if afterBase {
			afterScheme = true // {{ erp_base }}/orders: the placeholder is the scheme and host
		}
		pos = p.End
	}
	return out
}

// hostMover finds a placeholder through which an event value can send the
// call to another server although the rest of the host is fixed: part of
// the host name or the port (https://{{ tenant }}.erp.example), the
// scheme ({{ scheme }}://erp.example, where 'https://evil.example/#'
// takes over), or a user name before "@". It renders the url with a
// stand-in for every placeholder, then with an attacker's value in each
// one in turn (escaped as urlpath or urlquery would), and reports the
// first that makes url.Parse see the attacker's host. A url whose host
// the stand-ins alone make up is left alone: the event chooses the whole
// address on purpose. Placeholders that read only the config
// (engine.Placeholder.ConfigOnly) or are constants count as fixed text.
func hostMover(t *engine.Template) (engine.Placeholder, bool) {
	ps, lits := t.Placeholders(), t.Literals()
	fixed := func(p engine.Placeholder) bool { return p.ConfigOnly } // constants included
	// Digits, so that a stand-in in the port still parses.
	stand := func(i int) string { return fmt.Sprintf("90817%03d", i%1000) }
	render := func(sub int, val string) string {
		var b strings.Builder
		for i, p := range ps {
			b.WriteString(lits[i])
			switch {
			case i == sub:
				b.WriteString(val)
			case fixed(p):
				b.WriteString("fixed")
			case i == 0 && strings.TrimSpace(lits[0]) == "" && strings.HasPrefix(lits[1], "://"):
				b.WriteString("https") // a scheme must start with a letter
			default:
				b.WriteString(stand(i))
			}
		}
		b.WriteString(lits[len(ps)])
		return strings.TrimSpace(b.String())
	}
	u, err := url.Parse(render(-1, ""))
	if err != nil || u.Host == "" {
		return engine.Placeholder{}, false
	}
	host := u.Hostname()
	for i := range ps {
		host = strings.ReplaceAll(host, stand(i), "")
	}
	if strings.Trim(host, "[].") == "" {
		return engine.Placeholder{}, false
	}
	for i, p := range ps {
		if fixed(p) {
			continue
		}
		for _, attack := range []string{"x@evil.example/#", "https://evil.example/#"} {
			switch p.Func {
			case "urlpath":
				attack = url.PathEscape(attack)
			case "urlquery":
				attack = url.QueryEscape(attack)
			}
			if au, err := url.Parse(render(i, attack)); err == nil && au.Hostname() == "evil.example" {
				return p, true
			}
		}
	}
	return engine.Placeholder{}, false
}

// checkHTTPURL accepts absolute http and https URLs with a host.
func checkHTTPURL(raw string) error {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		// url.Parse quotes the input; say it without the possibly secret URL.
		return errors.New("not a valid URL")
	}
	if u.Scheme == "" {
		return errors.New("must start with http:// or https://")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("must start with http:// or https://, not %q", u.Scheme+":")
	}
	if u.Host == "" {
		return errors.New("has no host name")
	}
	return nil
}

// validHeaderName accepts RFC 9110 tokens.
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
		if !ok {
			return false
		}
	}
	return true
}

// request is a rendered HTTP action: exactly what would be sent.
type request struct {
	url    string
	method string
	header http.Header
	body   []byte
}

func (a *HTTP) build(j *Job) (*request, error) {
	env := j.Event.Env()
	u, err := render("url", a.url, env)
	if err != nil {
		return nil, err
	}
	u = strings.TrimSpace(u)
	if err := checkHTTPURL(u); err != nil {
		return nil, fmt.Errorf("url %s", err)
	}
	r := &request{url: u, method: a.method, header: http.Header{}}
	switch {
	case a.body != nil:
		b, err := render("body", a.body, env)
		if err != nil {
			return nil, err
		}
		r.body = []byte(b)
	case a.method == http.MethodGet || a.method == http.MethodHead || a.method == http.MethodDelete || a.method == http.MethodOptions:
		// No default body: many servers refuse a GET with one.
	case len(j.Event.Raw) > 0:
		r.body = j.Event.Raw
	default:
		b, err := engine.EncodeJSON(j.Event.Payload)
		if err != nil {
			return nil, fmt.Errorf("encoding the payload: %v", err)
		}
		r.body = b
	}
	if r.body != nil {
		if json.Valid(r.body) {
			r.header.Set("Content-Type", "application/json")
		} else {
			r.header.Set("Content-Type", "text/plain; charset=utf-8")
		}
	}
	r.header.Set("User-Agent", userAgent)
	r.header.Set("Idempotency-Key", j.ID)
	for _, h := range a.headers {
		v, err := render("headers."+h.name, h.value, env)
		if err != nil {
			return nil, err
		}
		if strings.ContainsAny(v, "\r\n") {
			return nil, fmt.Errorf("header %s: the rendered value contains a line break", h.name)
		}
		r.header.Set(h.name, v)
	}
	if a.sign != nil {
		a.sign.sign(r, j.ID, time.Now())
	}
	return r, nil
}

// Render shows the request with credential-looking headers, the signature
// and URL passwords masked.
func (a *HTTP) Render(j *Job) (*Rendered, error) {
	r, err := a.build(j)
	if err != nil {
		return nil, err
	}
	out := &Rendered{Type: "http", Fields: []KV{{"url", maskURL(r.url)}, {"method", r.method}}}
	out.Fields = append(out.Fields, headerLines(r.header)...)
	if r.body != nil {
		out.Fields = append(out.Fields, KV{"body", string(r.body)})
	}
	if a.sign != nil {
		out.Fields = append(out.Fields, KV{"sign", a.sign.describe()})
	}
	if len(a.expect) > 0 {
		codes := make([]string, len(a.expect))
		for i, c := range a.expect {
			codes[i] = strconv.Itoa(c)
		}
		out.Fields = append(out.Fields, KV{"expect", strings.Join(codes, ", ")})
	}
	if a.follow {
		out.Fields = append(out.Fields, KV{"follow_redirects", "true"})
	}
	return out, nil
}

// headerLines lists headers sorted by name, masking credentials.
func headerLines(h http.Header) []KV {
	names := make([]string, 0, len(h))
	for n := range h {
		names = append(names, n)
	}
	slices.Sort(names)
	var out []KV
	for _, n := range names {
		for _, v := range h[n] {
			if sensitiveName(n) && !strings.EqualFold(n, "Idempotency-Key") {
				v = masked
			}
			out = append(out, KV{"header", n + ": " + v})
		}
	}
	return out
}

// Run sends the request once and classifies the answer.
func (a *HTTP) Run(ctx context.Context, j *Job) Result {
	r, err := a.build(j)
	if err != nil {
		return permanent(err, "")
	}
	return doHTTP(ctx, r, a.expect, a.follow, nil)
}

// doHTTP performs a rendered request and turns the outcome into a Result.
// describe, when set, adds the receiver's own words to an error (Slack's
// "invalid_payload" means more with an explanation).
func doHTTP(ctx context.Context, r *request, expect []int, follow bool, describe func(*response) string) Result {
	resp, err := send(ctx, r.method, r.url, r.header, r.body, follow)
	if err != nil {
		if retryableTransport(err) {
			return retryable(err, "")
		}
		return permanent(err, "")
	}
	ok, again, after := classifyStatus(resp, expect)
	if ok {
		return success(resp.output())
	}
	msg := fmt.Sprintf("%s %s: %s", r.method, redactURL(r.url), resp.statusText)
	switch {
	case describe != nil:
		if d := describe(resp); d != "" {
			msg += ": " + d
		}
	case resp.status >= 300 && resp.status < 400:
		msg += " (redirect to " + redactURL(resp.header.Get("Location")) + " not followed: " + redirectHint(r.method, resp.status) + ")"
	case len(expect) > 0:
		msg += fmt.Sprintf(" (expected %v)", expect)
	}
	return Result{Err: errors.New(msg), Retryable: again, RetryAfter: after, Output: bound(resp.output())}
}

// redirectHint says what to do about a redirect that was not followed. A
// 301, 302 or 303 answering anything but GET or HEAD is not followed even
// with follow_redirects (it would arrive as a GET without the body; see
// redirectPolicy), so that is no fix there.
func redirectHint(method string, status int) string {
	switch status {
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther:
		if method != http.MethodGet && method != http.MethodHead {
			return "fix the url: follow_redirects does not follow a " + strconv.Itoa(status) + " answering a " + method + ", since it would arrive as a GET without the body"
		}
	}
	return "fix the url or set follow_redirects: true"
}

// signer signs outgoing bodies so the receiver can verify they come from us.
type signer struct {
	scheme string // standard-webhooks or hmac
	key    []byte
	header string // hmac only
	prefix string // hmac only
}

func newSigner(s *spec) *signer {
	g := &signer{scheme: s.f.OneOf("scheme", "standard-webhooks", "standard-webhooks", "hmac")}
	var secret config.Secret
	if s.enabled {
		// Present but empty (secret: "${FORWARD_SECRET}" with the variable
		// set to nothing) is an error like absent: it would sign with no key.
		secret = s.f.NonEmptySecret("secret", "bodies would be signed with no key, a signature anyone can forge")
	} else {
		secret = s.f.Secret("secret")
	}
	header, prefix := s.f.String("header"), s.f.String("prefix")
	if secret == "" && !s.f.Has("secret") && !s.f.Has("secret_file") {
		s.missing("secret", " (the key the receiver verifies with; secret_file: PATH reads it from a file)")
	}
	switch g.scheme {
	case "standard-webhooks":
		if header != "" {
			s.errorf("header", "header is only used with scheme: hmac; standard-webhooks sends webhook-id, webhook-timestamp and webhook-signature")
		}
		if prefix != "" {
			s.errorf("prefix", "prefix is only used with scheme: hmac")
		}
		if secret != "" {
			key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret.Reveal(), "whsec_"))
			if err != nil || len(key) == 0 {
				s.errorf("secret", "a standard-webhooks secret is whsec_ followed by base64 (such as whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw); for a plain shared secret use scheme: hmac")
			}
			g.key = key
		}
	case "hmac":
		g.key = []byte(secret.Reveal())
		g.header, g.prefix = header, prefix
		if g.header == "" {
			g.header = "X-Payramd-Signature"
		} else if !validHeaderName(g.header) {
			s.errorf("header", "%q is not a valid header name", g.header)
		}
	}
	return g
}

// sign adds the signature headers for body. Standard Webhooks signs
// "id.timestamp.body" with the job id as webhook-id, so a receiver using a
// Standard Webhooks library also gets deduplication for free.
func (g *signer) sign(r *request, id string, now time.Time) {
	switch g.scheme {
	case "standard-webhooks":
		ts := strconv.FormatInt(now.Unix(), 10)
		m := hmac.New(sha256.New, g.key)
		m.Write([]byte(id + "." + ts + "."))
		m.Write(r.body)
		r.header.Set("webhook-id", id)
		r.header.Set("webhook-timestamp", ts)
		r.header.Set("webhook-signature", "v1,"+base64.StdEncoding.EncodeToString(m.Sum(nil)))
	case "hmac":
		m := hmac.New(sha256.New, g.key)
		m.Write(r.body)
		r.header.Set(g.header, g.prefix+hex.EncodeToString(m.Sum(nil)))
	}
}

func (g *signer) describe() string {
	if g.scheme == "hmac" {
		return "hmac-sha256 hex in " + g.header + ", secret " + masked
	}
	return "standard-webhooks (webhook-id, webhook-timestamp, webhook-signature), secret " + masked
}
