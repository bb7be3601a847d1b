package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/payramd/payramd/config"
	"github.com/payramd/payramd/engine"
)

// testNow is the fixed clock of the tests, so that timestamp tolerances are
// exact to the second.
var testNow = time.Unix(1700000000, 0)

// newSourceWith builds a config.Source from a YAML mapping the way the
// config loader does: the common keys are read (and so declared) here, the
// provider's own keys are left for its factory. Problems go to probs.
func newSourceWith(t testing.TB, name, src string, probs *config.Problems) *config.Source {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
		t.Fatalf("test YAML: %v", err)
	}
	var node *yaml.Node
	if len(doc.Content) > 0 {
		node = doc.Content[0]
	}
	f := config.NewFields("rules.yaml", node, probs)
	s := &config.Source{
		Name:     name,
		Pos:      f.Pos(),
		Provider: f.String("provider"),
		Path:     f.String("path"),
		Secrets:  f.Secrets("secret", "secrets"),
		AllowIPs: f.Prefixes("allow_ips"),
		MaxBody:  f.Size("max_body", 0),
		Fields:   f,
	}
	if s.Path == "" {
		s.Path = "/webhooks/" + name
	}
	if rl := f.Map("rate_limit"); rl != nil {
		s.RateLimit = &config.RateLimit{PerSecond: rl.Float("per_second", 0), Burst: rl.Int("burst", 0)}
		rl.Done()
	}
	return s
}

// compileWith builds a Table from sources given as name → YAML and returns
// the problems found.
func compileWith(t testing.TB, sources ...[2]string) (*Table, *config.Problems) {
	t.Helper()
	return compileServerWith(t, nil, sources...)
}

// serverOption sets a server: setting of the config a test Table is
// compiled from, the way the listener gets it from rules.yaml.
type serverOption func(*config.Server)

func withMaxBody(n int64) serverOption { return func(s *config.Server) { s.MaxBody = n } }
func withTrusted(p ...string) serverOption {
	return func(s *config.Server) {
		for _, v := range p {
			s.TrustedProxies = append(s.TrustedProxies, netip.MustParsePrefix(v))
		}
	}
}

// compileServer is compile with server settings.
func compileServer(t testing.TB, server []serverOption, sources ...[2]string) *Table {
	t.Helper()
	tab, probs := compileServerWith(t, server, sources...)
	if err := probs.Err(); err != nil {
		t.Fatalf("config errors:\n%v", err)
	}
	return tab
}

func compileServerWith(t testing.TB, server []serverOption, sources ...[2]string) (*Table, *config.Problems) {
	t.Helper()
	probs := &config.Problems{}
	cfg := &config.Config{}
	for _, f := range server {
		f(&cfg.Server)
	}
	for _, s := range sources {
		cfg.Sources = append(cfg.Sources, newSourceWith(t, s[0], s[1], probs))
	}
	return Compile(cfg), probs
}

// compile builds a Table from sources given as name → YAML, failing the
// test on any config error.
func compile(t testing.TB, sources ...[2]string) *Table {
	t.Helper()
	tab, probs := compileWith(t, sources...)
	if err := probs.Err(); err != nil {
		t.Fatalf("config errors:\n%v", err)
	}
	return tab
}

// journal is an in-memory Accepter that remembers ids, like the real one.
type journal struct {
	mu     sync.Mutex
	events []*engine.Event
	seen   map[string]bool
	err    error
}

func (j *journal) accept(_ context.Context, ev *engine.Event) (bool, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.err != nil {
		return false, j.err
	}
	if j.seen == nil {
		j.seen = map[string]bool{}
	}
	if j.seen[ev.ID] {
		return true, nil
	}
	j.seen[ev.ID] = true
	j.events = append(j.events, ev)
	return false, nil
}

func (j *journal) last() *engine.Event {
	j.mu.Lock()
	defer j.mu.Unlock()
	if len(j.events) == 0 {
		return nil
	}
	return j.events[len(j.events)-1]
}

// syncBuffer is a log sink that tolerates concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// env is a running listener on a loopback port with its journal, log and
// metrics.
type env struct {
	t        testing.TB
	srv      *httptest.Server
	handler  *Handler
	journal  *journal
	logs     *syncBuffer
	mu       sync.Mutex
	outcomes []string
	now      time.Time // guarded by mu: the handler reads it on its goroutines
}

func (e *env) setNow(t time.Time) {
	e.mu.Lock()
	e.now = t
	e.mu.Unlock()
}

func (e *env) clock() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.now
}

type envOption func(*Options)

func newEnv(t testing.TB, tab *Table, opts ...envOption) *env {
	t.Helper()
	e := &env{t: t, journal: &journal{}, logs: &syncBuffer{}, now: testNow}
	o := Options{
		Table:  func() *Table { return tab },
		Accept: e.journal.accept,
		Logger: slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:    e.clock,
		Observe: func(source, outcome string) {
			e.mu.Lock()
			e.outcomes = append(e.outcomes, source+":"+outcome)
			e.mu.Unlock()
		},
	}
	for _, f := range opts {
		f(&o)
	}
	e.handler = NewHandler(o)
	e.srv = httptest.NewServer(e.handler)
	t.Cleanup(e.srv.Close)
	return e
}

func (e *env) lastOutcome() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.outcomes) == 0 {
		return ""
	}
	return e.outcomes[len(e.outcomes)-1]
}

type response struct {
	status int
	header http.Header
	body   map[string]string
	raw    string
}

// do sends one request and decodes the JSON answer.
func (e *env) do(method, path string, h http.Header, body []byte) response {
	e.t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, bytes.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	res, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	r := response{status: res.StatusCode, header: res.Header, raw: string(raw)}
	_ = json.Unmarshal(raw, &r.body)
	return r
}

func (e *env) post(path string, h http.Header, body []byte) response {
	e.t.Helper()
	return e.do(http.MethodPost, path, h, body)
}

// Signers written independently of the providers, from the published
// descriptions, so that a provider cannot agree with itself by mistake.

func hmacSHA256(key, msg []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(msg)
	return m.Sum(nil)
}

func payramHeader(secret string, body []byte) http.Header {
	return http.Header{"X-Payram-Signature": {"sha256=" + hex.EncodeToString(hmacSHA256([]byte(secret), body))}}
}

func swSecretKey(secret string) []byte {
	k, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		panic(err)
	}
	return k
}

func swSign(secret, id string, ts int64, body []byte) string {
	msg := id + "." + strconv.FormatInt(ts, 10) + "." + string(body)
	return "v1," + base64.StdEncoding.EncodeToString(hmacSHA256(swSecretKey(secret), []byte(msg)))
}

func swHeader(secret, id string, ts int64, body []byte) http.Header {
	return http.Header{
		"Webhook-Id":        {id},
		"Webhook-Timestamp": {strconv.FormatInt(ts, 10)},
		"Webhook-Signature": {swSign(secret, id, ts, body)},
	}
}

func stripeSig(secret string, ts int64, body []byte) string {
	return hex.EncodeToString(hmacSHA256([]byte(secret), []byte(strconv.FormatInt(ts, 10)+"."+string(body))))
}

func stripeHeader(secret string, ts int64, body []byte) http.Header {
	return http.Header{"Stripe-Signature": {"t=" + strconv.FormatInt(ts, 10) + ",v1=" + stripeSig(secret, ts, body)}}
}

func merge(hs ...http.Header) http.Header {
	out := http.Header{}
	for _, h := range hs {
		for k, v := range h {
			out[k] = append(out[k], v...)
		}
	}
	return out
}
