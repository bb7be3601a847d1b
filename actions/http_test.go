package actions

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// sink is an HTTP receiver that records what it got and answers as told.
type sink struct {
	*httptest.Server
	mu     sync.Mutex
	reqs   []*http.Request
	bodies [][]byte
}

func newSink(t *testing.T, answer http.HandlerFunc) *sink {
	t.Helper()
	s := &sink{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.reqs = append(s.reqs, r)
		s.bodies = append(s.bodies, b)
		s.mu.Unlock()
		answer(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *sink) last(t *testing.T) (*http.Request, []byte) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.reqs) == 0 {
		t.Fatal("the sink received nothing")
	}
	return s.reqs[len(s.reqs)-1], s.bodies[len(s.bodies)-1]
}

func answer(status int, body string, header ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		w.WriteHeader(status)
		io.WriteString(w, body)
	}
}

// The standard-webhooks secret of the specification's test vector.
const swSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

func TestHTTPSendsSignedTemplatedRequest(t *testing.T) {
	s := newSink(t, answer(200, `{"received":true}`))
	act := mustCompile(t, "notify", `
type: http
url: `+s.URL+`/hooks/{{ reference_id }}
headers:
  X-Ref: "{{ reference_id }}"
  Authorization: Bearer tok_live_SECRET
body: '{"over": {{ money(filled_amount_in_usd - amount) }}}'
sign:
  secret: `+swSecret+`
`)
	j := testJob(t, "notify")
	res := act.Run(context.Background(), j)
	if res.Err != nil {
		t.Fatalf("Run: %v", res.Err)
	}
	r, body := s.last(t)
	if r.Method != "POST" || r.URL.Path != "/hooks/ref-42" {
		t.Errorf("request %s %s, want POST /hooks/ref-42", r.Method, r.URL.Path)
	}
	if got, want := string(body), `{"over": 5.05}`; got != want {
		t.Errorf("body %s, want %s", got, want)
	}
	for name, want := range map[string]string{
		"Idempotency-Key": j.ID,
		"User-Agent":      "payramd",
		"Content-Type":    "application/json",
		"X-Ref":           "ref-42",
		"Webhook-Id":      j.ID,
	} {
		if got := r.Header.Get(name); got != want {
			t.Errorf("%s: %q, want %q", name, got, want)
		}
	}
	// Verify as a Standard Webhooks receiver would.
	key, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(swSecret, "whsec_"))
	ts := r.Header.Get("Webhook-Timestamp")
	if n, err := strconv.ParseInt(ts, 10, 64); err != nil || time.Since(time.Unix(n, 0)).Abs() > time.Minute {
		t.Errorf("webhook-timestamp %q is not now", ts)
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(j.ID + "." + ts + "." + string(body)))
	if want := "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil)); r.Header.Get("Webhook-Signature") != want {
		t.Errorf("webhook-signature %q, want %q", r.Header.Get("Webhook-Signature"), want)
	}
	if !strings.HasPrefix(res.Output, "HTTP/1.1 200 OK\n") || !strings.Contains(res.Output, `{"received":true}`) {
		t.Errorf("output %q", res.Output)
	}

	rd, err := act.Render(j)
	if err != nil {
		t.Fatal(err)
	}
	assertNoSecrets(t, []string{"tok_live_SECRET", strings.TrimPrefix(swSecret, "whsec_"), r.Header.Get("Webhook-Signature")}, res, rd)
	if !hasField(rd, "body", `{"over": 5.05}`) || !hasField(rd, "header", "Authorization: <redacted>") {
		t.Errorf("render: %+v", rd.Fields)
	}
}

func hasField(r *Rendered, name, value string) bool {
	for _, kv := range r.Fields {
		if kv.Name == name && kv.Value == value {
			return true
		}
	}
	return false
}

func TestHTTPHMACSignatureAndDefaultBody(t *testing.T) {
	s := newSink(t, answer(204, ""))
	act := mustCompile(t, "fwd", `
type: http
url: `+s.URL+`/in
method: put
sign: {scheme: hmac, secret: "shh-hmac-key", header: X-Sig, prefix: "sha256="}
`)
	j := testJob(t, "fwd")
	if res := act.Run(context.Background(), j); res.Err != nil {
		t.Fatalf("Run: %v", res.Err)
	}
	r, body := s.last(t)
	if r.Method != "PUT" {
		t.Errorf("method %s", r.Method)
	}
	if string(body) != testPayload {
		t.Errorf("default body %s, want the raw payload", body)
	}
	m := hmac.New(sha256.New, []byte("shh-hmac-key"))
	m.Write(body)
	if want := "sha256=" + hex.EncodeToString(m.Sum(nil)); r.Header.Get("X-Sig") != want {
		t.Errorf("X-Sig %q, want %q", r.Header.Get("X-Sig"), want)
	}

	// Without Raw (a GET delivery with query parameters), the payload is
	// encoded as JSON with its decimals intact.
	j.Event.Raw = nil
	if res := act.Run(context.Background(), j); res.Err != nil {
		t.Fatalf("Run: %v", res.Err)
	}
	if _, body := s.last(t); !strings.Contains(string(body), `"amount":44.99`) {
		t.Errorf("encoded payload %s", body)
	}
}

func TestHTTPClassifiesAnswers(t *testing.T) {
	date := time.Now().Add(90 * time.Second).UTC().Format(http.TimeFormat)
	tests := []struct {
		name      string
		extra     string
		handler   http.HandlerFunc
		ok        bool
		retryable bool
		after     time.Duration
		errHas    string
	}{
		{name: "200", handler: answer(200, "ok"), ok: true},
		{name: "503", handler: answer(503, "down"), retryable: true, errHas: "503 Service Unavailable"},
		{name: "500", handler: answer(500, ""), retryable: true},
		{name: "400", handler: answer(400, `{"error":"bad"}`), errHas: "400 Bad Request"},
		{name: "404", handler: answer(404, "")},
		{name: "408", handler: answer(408, ""), retryable: true},
		{name: "429 seconds", handler: answer(429, "slow down", "Retry-After", "7"), retryable: true, after: 7 * time.Second},
		{name: "429 date", handler: answer(429, "", "Retry-After", date), retryable: true, after: 90 * time.Second},
		{name: "302 not followed", handler: answer(302, "", "Location", "/elsewhere/secret-path"), errHas: "follow_redirects"},
		// following a 302 would turn the POST into a GET without the body,
		// so the hint must not offer follow_redirects as the fix
		{name: "302 on POST", handler: answer(302, "", "Location", "/elsewhere/secret-path"), errHas: "follow_redirects does not follow a 302 answering a POST"},
		{name: "307 on POST", handler: answer(307, "", "Location", "/elsewhere/secret-path"), errHas: "fix the url or set follow_redirects: true"},
		{name: "expect 202 got 200", extra: "expect: [202]", handler: answer(200, ""), errHas: "expected [202]"},
		{name: "expect 409", extra: "expect: [200, 409]", handler: answer(409, "duplicate"), ok: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSink(t, tt.handler)
			act := mustCompile(t, "a", "type: http\nurl: "+s.URL+"/x\n"+tt.extra)
			res := act.Run(context.Background(), testJob(t, "a"))
			if (res.Err == nil) != tt.ok {
				t.Fatalf("err %v, want ok=%v", res.Err, tt.ok)
			}
			if res.Retryable != tt.retryable {
				t.Errorf("retryable %v, want %v (%v)", res.Retryable, tt.retryable, res.Err)
			}
			if d := res.RetryAfter - tt.after; d < -2*time.Second || d > 2*time.Second {
				t.Errorf("RetryAfter %v, want %v", res.RetryAfter, tt.after)
			}
			if tt.errHas != "" && !strings.Contains(res.Err.Error(), tt.errHas) {
				t.Errorf("error %q does not mention %q", res.Err, tt.errHas)
			}
			assertNoSecrets(t, []string{"/x", "secret-path"}, res.Err)
		})
	}
}

func TestHTTPFollowsRedirectsWhenAsked(t *testing.T) {
	s := newSink(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/old" {
			http.Redirect(w, r, "/new", http.StatusTemporaryRedirect)
			return
		}
		w.WriteHeader(200)
	})
	act := mustCompile(t, "a", "type: http\nfollow_redirects: true\nurl: "+s.URL+"/old\n")
	if res := act.Run(context.Background(), testJob(t, "a")); res.Err != nil {
		t.Fatalf("Run: %v", res.Err)
	}
	if r, body := s.last(t); r.URL.Path != "/new" || string(body) != testPayload {
		t.Errorf("redirected to %s with body %q", r.URL.Path, body)
	}
}

// TestHTTPRedirectKeepsTheMethod: with follow_redirects, a 301, 302 or 303
// answering a POST is not followed, since Go would send a GET without the
// body and the job would succeed with the receiver getting nothing (found
// by a QA pass); the job fails for good, saying why. A 303 answering a GET
// is followed.
func TestHTTPRedirectKeepsTheMethod(t *testing.T) {
	var gets atomic.Int32
	s := newSink(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/moved":
			http.Redirect(w, r, "/new", http.StatusFound)
		case "/see":
			http.Redirect(w, r, "/new", http.StatusSeeOther)
		default:
			if r.Method == http.MethodGet {
				gets.Add(1)
			}
		}
	})
	for _, path := range []string{"/moved", "/see"} {
		res := mustCompile(t, "a", "type: http\nfollow_redirects: true\nurl: "+s.URL+path+"\n").Run(context.Background(), testJob(t, "a"))
		if res.Err == nil || res.Retryable || !strings.Contains(res.Err.Error(), "would send a GET without the body instead of the POST") {
			t.Errorf("POST answered by a redirect from %s: %v retryable=%v; want a permanent failure saying why", path, res.Err, res.Retryable)
		}
	}
	if n := gets.Load(); n != 0 {
		t.Fatalf("the receiver got %d bodiless GET(s)", n)
	}
	res := mustCompile(t, "a", "type: http\nmethod: GET\nfollow_redirects: true\nurl: "+s.URL+"/see\n").Run(context.Background(), testJob(t, "a"))
	if res.Err != nil || gets.Load() != 1 {
		t.Errorf("GET answered by a 303: %v, %d GET(s) at the target; want it followed", res.Err, gets.Load())
	}
}

// TestHTTPRedirectsStayOnTheOrigin: with follow_redirects, a redirect to
// another host, or from https to http, is refused, so the body, signature
// and custom headers never reach it; a redirect on the same origin is
// followed without a Referer (which held the original URL's query token).
// Found by a security review.
func TestHTTPRedirectsStayOnTheOrigin(t *testing.T) {
	var stolen atomic.Int32
	other := newSink(t, func(w http.ResponseWriter, r *http.Request) { stolen.Add(1) })
	var referer atomic.Value
	s := newSink(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/away":
			http.Redirect(w, r, other.URL+"/steal", http.StatusTemporaryRedirect)
		case "/old":
			http.Redirect(w, r, "/new", http.StatusTemporaryRedirect)
		default:
			referer.Store(r.Header.Get("Referer"))
		}
	})
	src := "type: http\nfollow_redirects: true\nheaders: {X-Api-Key: erp-key}\nsign: {scheme: hmac, secret: s3cret, header: X-Sig}\nurl: "
	res := mustCompile(t, "a", src+s.URL+"/away?api_token=tok\n").Run(context.Background(), testJob(t, "a"))
	if res.Err == nil || res.Retryable || !strings.Contains(res.Err.Error(), "not following a redirect") {
		t.Errorf("redirect to another host: %v retryable=%v; want a permanent refusal", res.Err, res.Retryable)
	}
	if n := stolen.Load(); n != 0 {
		t.Fatalf("the other host received %d request(s)", n)
	}
	assertNoSecrets(t, []string{"tok"}, res)
	res = mustCompile(t, "a", src+s.URL+"/old?api_token=tok\n").Run(context.Background(), testJob(t, "a"))
	if res.Err != nil {
		t.Fatalf("same-origin redirect: %v", res.Err)
	}
	if r, _ := referer.Load().(string); r != "" {
		t.Errorf("Referer %q sent on a followed redirect", r)
	}
}

func TestHTTPTimeoutAndConnectionErrorsRetry(t *testing.T) {
	release := make(chan struct{})
	hang := newSink(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	defer close(release)
	act := mustCompile(t, "a", "type: http\nurl: "+hang.URL+"/services/T0/B0/hangsecret\n")
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	res := act.Run(ctx, testJob(t, "a"))
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("Run took %v with a 300ms deadline", took)
	}
	if res.Err == nil || !res.Retryable || !errors.Is(res.Err, context.DeadlineExceeded) {
		t.Errorf("hanging receiver: %v retryable=%v, want a retryable deadline error", res.Err, res.Retryable)
	}
	assertNoSecrets(t, []string{"hangsecret"}, res)

	// A port nobody listens on.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	act = mustCompile(t, "b", "type: http\nurl: http://"+addr+"/path-secret\n")
	res = act.Run(context.Background(), testJob(t, "b"))
	if res.Err == nil || !res.Retryable {
		t.Errorf("refused connection: %v retryable=%v, want retryable", res.Err, res.Retryable)
	}
	assertNoSecrets(t, []string{"path-secret"}, res)
}

func TestHTTPRenderErrorIsPermanent(t *testing.T) {
	act := mustCompile(t, "a", "type: http\nurl: 'https://example.com/{{ missing.field }}'\n")
	res := act.Run(context.Background(), testJob(t, "a"))
	if res.Err == nil || res.Retryable || !strings.HasPrefix(res.Err.Error(), "rendering url: ") {
		t.Errorf("got %v retryable=%v, want a permanent rendering error", res.Err, res.Retryable)
	}
	act = mustCompile(t, "b", "type: http\nurl: '{{ note }}'\n")
	if res := act.Run(context.Background(), testJob(t, "b")); res.Err == nil || res.Retryable {
		t.Errorf("rendered URL %q accepted: %v", "hello", res.Err)
	}
}

func TestOutputIsBounded(t *testing.T) {
	big := strings.Repeat("x", 100<<10)
	s := newSink(t, answer(500, big))
	act := mustCompile(t, "a", "type: http\nurl: "+s.URL+"\n")
	res := act.Run(context.Background(), testJob(t, "a"))
	if len(res.Output) > MaxOutput || !strings.HasPrefix(res.Output, "HTTP/1.1 500") {
		t.Errorf("output of %d bytes starting %q", len(res.Output), res.Output[:20])
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Duration{
		"7": 7 * time.Second, "": 0, "-3": 0, "soon": 0,
		"Mon, 23 Nov 2026 10:01:00 GMT": time.Minute,
		"Mon, 23 Nov 2026 09:00:00 GMT": 0,
		// Far-future asks are capped, or the job would never run nor die.
		"315360000":                     24 * time.Hour,
		"Wed, 01 Jan 2036 00:00:00 GMT": 24 * time.Hour,
		"Fri, 31 Dec 9999 23:59:59 GMT": 24 * time.Hour,
	} {
		if got := retryAfter(in, now); got != want {
			t.Errorf("retryAfter(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestRedactURLs(t *testing.T) {
	in := `Post "https://hooks.slack.com/services/T0/B0/XyZsecret?x=1": dial tcp: refused, Attempt 1`
	got := redactURLs(in)
	if strings.Contains(got, "XyZsecret") || !strings.Contains(got, "https://hooks.slack.com/…") {
		t.Errorf("redactURLs: %s", got)
	}
}

// TestRedirectOrigin: the same origin however it is written (case, default
// port, trailing dot); any other scheme, host or port is another origin.
func TestRedirectOrigin(t *testing.T) {
	same := [][2]string{
		{"https://erp.example/a", "https://ERP.example:443/b"},
		{"http://erp.example:80/a", "http://erp.example./b?x#y"},
		{"https://user@erp.example/a", "https://erp.example/b"},
	}
	other := [][2]string{
		{"https://erp.example/a", "http://erp.example/a"},
		{"https://erp.example/a", "https://erp.example:8443/a"},
		{"https://erp.example/a", "https://erp.example.evil.example/a"},
		{"https://erp.example/a", "https://evil.example#@erp.example/a"},
	}
	for _, tt := range append(same, other...) {
		a, _ := url.Parse(tt[0])
		b, _ := url.Parse(tt[1])
		want := len(same) > 0 && slices.Contains(same, tt)
		if got := origin(a) == origin(b); got != want {
			t.Errorf("origin(%s) == origin(%s): %v, want %v", tt[0], tt[1], got, want)
		}
	}
}
