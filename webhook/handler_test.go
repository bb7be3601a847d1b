package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/payramd/payramd/engine"
)

const payramYAML = "provider: payram\nsecret: " + newSecret + "\n"

// TestSpecRows walks SPEC section 6 row by row over a real listener.
func TestSpecRows(t *testing.T) {
	tab := compile(t,
		[2]string{"payram", payramYAML},
		[2]string{"shop", "provider: hmac\nsecret: " + newSecret + "\nheader: X-ShadhinPay-Signature\nprefix: sha256=\npath: /webhooks/shadhinpay\n"},
		[2]string{"locked", payramYAML + "allow_ips: [203.0.113.0/24]\n"},
		[2]string{"limited", payramYAML + "rate_limit: {per_second: 0.5, burst: 2}\n"},
		[2]string{"stripe", "provider: stripe\nsecret: whsec_x\n"},
	)
	body := testBody(1)
	signed := payramHeader(newSecret, body)

	t.Run("verified and journaled: 200 accepted", func(t *testing.T) {
		e := newEnv(t, tab)
		res := e.post("/webhooks/payram", signed, body)
		id := DefaultID("payram", body)
		if res.status != 200 || res.raw != `{"status":"accepted","id":"`+id+`"}`+"\n" {
			t.Fatalf("%d %s", res.status, res.raw)
		}
		if ct := res.header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("content type %q", ct)
		}
		ev := e.journal.last()
		if ev.ID != id || ev.Source != "payram" || ev.Provider != "payram" || ev.Type != "payment.filled" ||
			!ev.ReceivedAt.Equal(testNow) || !bytes.Equal(ev.Raw, body) || ev.Payload["reference_id"] != "ref_1" {
			t.Fatalf("event %+v", ev)
		}
		if _, leaked := ev.Headers["x-payram-signature"]; leaked {
			t.Error("signature header kept in meta.headers")
		}
		if ev.Headers["user-agent"] == "" {
			t.Errorf("ordinary headers dropped: %v", ev.Headers)
		}
		if e.lastOutcome() != "payram:accepted" {
			t.Errorf("outcome %q", e.lastOutcome())
		}
	})
	t.Run("same id again: 200 duplicate", func(t *testing.T) {
		e := newEnv(t, tab)
		e.post("/webhooks/payram", signed, body)
		res := e.post("/webhooks/payram", signed, body)
		if res.status != 200 || res.raw != `{"status":"duplicate","id":"`+DefaultID("payram", body)+`"}`+"\n" {
			t.Fatalf("%d %s", res.status, res.raw)
		}
		if len(e.journal.events) != 1 || e.lastOutcome() != "payram:duplicate" {
			t.Fatalf("journal has %d events, outcome %q", len(e.journal.events), e.lastOutcome())
		}
	})
	t.Run("provider id is the event id", func(t *testing.T) {
		e := newEnv(t, tab)
		b := []byte(`{"id":"evt_123","type":"payment.succeeded"}`)
		res := e.post("/webhooks/stripe", stripeHeader("whsec_x", testNow.Unix(), b), b)
		if res.status != 200 || res.body["id"] != "evt_123" || e.journal.last().Type != "payment.succeeded" {
			t.Fatalf("%d %s", res.status, res.raw)
		}
	})
	t.Run("bad signature: 401", func(t *testing.T) {
		e := newEnv(t, tab)
		res := e.post("/webhooks/payram", payramHeader("wrong", body), body)
		if res.status != 401 || res.raw != `{"error":"invalid_signature"}`+"\n" {
			t.Fatalf("%d %s", res.status, res.raw)
		}
		if len(e.journal.events) != 0 {
			t.Fatal("refused event journaled")
		}
	})
	t.Run("unsigned dashboard test ping: 401, and the log says what it was", func(t *testing.T) {
		e := newEnv(t, tab)
		ping := []byte(`{"event_type":"payout.ping"}`)
		res := e.post("/webhooks/payram", http.Header{"X-Webhook-Test": {"true"}, "Api-Key": {""}}, ping)
		if res.status != 401 || len(e.journal.events) != 0 {
			t.Fatalf("%d %s, %d journaled", res.status, res.raw, len(e.journal.events))
		}
		if logs := e.logs.String(); !strings.Contains(logs, "connection test from the provider's dashboard") {
			t.Fatalf("the refusal's log does not say it was the dashboard's test:\n%s", logs)
		}
		e.post("/webhooks/payram", payramHeader("wrong", body), body)
		if n := strings.Count(e.logs.String(), "connection test"); n != 1 {
			t.Fatalf("an ordinary refused delivery is called a connection test too (%d mentions)", n)
		}
	})
	t.Run("stale timestamp: 401", func(t *testing.T) {
		e := newEnv(t, tab)
		b := []byte(`{"id":"evt_1"}`)
		res := e.post("/webhooks/stripe", stripeHeader("whsec_x", testNow.Add(-time.Hour).Unix(), b), b)
		if res.status != 401 {
			t.Fatalf("%d %s", res.status, res.raw)
		}
	})
	t.Run("client not in allow_ips: 403", func(t *testing.T) {
		e := newEnv(t, tab)
		res := e.post("/webhooks/locked", signed, body)
		if res.status != 403 || res.raw != `{"error":"forbidden"}`+"\n" || e.lastOutcome() != "locked:forbidden" {
			t.Fatalf("%d %s %s", res.status, res.raw, e.lastOutcome())
		}
	})
	t.Run("unknown path: 404", func(t *testing.T) {
		e := newEnv(t, tab)
		for _, p := range []string{"/", "/webhooks/nope", "/webhooks/payram/extra", "/webhooks/PAYRAM"} {
			if res := e.post(p, signed, body); res.status != 404 {
				t.Fatalf("%s: %d", p, res.status)
			}
		}
		if e.lastOutcome() != "" {
			t.Errorf("404 observed as %q", e.lastOutcome())
		}
	})
	t.Run("trailing slash forgiven", func(t *testing.T) {
		e := newEnv(t, tab)
		if res := e.post("/webhooks/payram/", signed, body); res.status != 200 {
			t.Fatalf("%d", res.status)
		}
	})
	t.Run("wrong method: 405 with Allow", func(t *testing.T) {
		e := newEnv(t, tab)
		for _, c := range []struct{ method, path, allow string }{
			{http.MethodPut, "/webhooks/payram", "GET, POST"},
			{http.MethodDelete, "/webhooks/payram", "GET, POST"},
			{http.MethodGet, "/webhooks/shadhinpay", "POST"},
			{http.MethodHead, "/webhooks/shadhinpay", "POST"},
		} {
			res := e.do(c.method, c.path, signed, body)
			if res.status != 405 || res.header.Get("Allow") != c.allow {
				t.Fatalf("%s %s: %d Allow=%q", c.method, c.path, res.status, res.header.Get("Allow"))
			}
		}
	})
	t.Run("body not JSON: 400 with detail", func(t *testing.T) {
		e := newEnv(t, tab)
		b := []byte("reference_id=1&status=FILLED")
		res := e.post("/webhooks/payram", payramHeader(newSecret, b), b)
		if res.status != 400 || res.body["error"] != "invalid_payload" || !strings.Contains(res.body["detail"], "invalid JSON") {
			t.Fatalf("%d %s", res.status, res.raw)
		}
		if e.lastOutcome() != "payram:invalid_payload" {
			t.Errorf("outcome %q", e.lastOutcome())
		}
	})
	t.Run("not JSON for the hmac provider: 400", func(t *testing.T) {
		e := newEnv(t, tab)
		b := []byte("hello")
		h := http.Header{"X-Shadhinpay-Signature": {"sha256=" + fmt.Sprintf("%x", hmacSHA256([]byte(newSecret), b))}}
		res := e.post("/webhooks/shadhinpay", h, b)
		if res.status != 400 || res.body["error"] != "invalid_payload" {
			t.Fatalf("%d %s", res.status, res.raw)
		}
	})
	t.Run("content type is not enforced", func(t *testing.T) {
		e := newEnv(t, tab)
		h := merge(signed, http.Header{"Content-Type": {"text/plain"}})
		if res := e.post("/webhooks/payram", h, body); res.status != 200 {
			t.Fatalf("%d %s", res.status, res.raw)
		}
	})
	t.Run("rate limit: 429 with Retry-After", func(t *testing.T) {
		e := newEnv(t, tab)
		for i := range 2 {
			b := testBody(100 + i)
			if res := e.post("/webhooks/limited", payramHeader(newSecret, b), b); res.status != 200 {
				t.Fatalf("request %d within burst: %d", i, res.status)
			}
		}
		res := e.post("/webhooks/limited", signed, body)
		if res.status != 429 || res.header.Get("Retry-After") != "2" || res.body["error"] != "rate_limited" {
			t.Fatalf("%d Retry-After=%q %s", res.status, res.header.Get("Retry-After"), res.raw)
		}
		if e.lastOutcome() != "limited:rate_limited" {
			t.Errorf("outcome %q", e.lastOutcome())
		}
		// Two seconds later a token is back.
		e.setNow(testNow.Add(2 * time.Second))
		if res := e.post("/webhooks/limited", signed, body); res.status != 200 {
			t.Fatalf("after waiting: %d", res.status)
		}
	})
	t.Run("rate limit: a replayed signed body does not spend the budget", func(t *testing.T) {
		// Found by a security review: PayRam signs no timestamp, so a
		// captured genuine body can be sent again at will; as duplicates
		// its copies must not use up the source's tokens.
		e := newEnv(t, tab)
		e.setNow(testNow.Add(2 * time.Hour))
		old := testBody(400)
		for i := range 6 {
			res := e.post("/webhooks/limited", payramHeader(newSecret, old), old)
			if want := map[bool]string{true: "accepted", false: "duplicate"}[i == 0]; res.status != 200 || res.body["status"] != want {
				t.Fatalf("replay %d: %d %s, want 200 %s", i, res.status, res.raw, want)
			}
		}
		// The first copy, accepted, took one of the two tokens; the five
		// duplicates took none.
		b := testBody(500)
		if res := e.post("/webhooks/limited", payramHeader(newSecret, b), b); res.status != 200 {
			t.Fatalf("genuine delivery after the replays: %d %s", res.status, res.raw)
		}
	})
	t.Run("rate limit: replays in flight do not hold the budget", func(t *testing.T) {
		// Found by the final review: a copy being found a duplicate held a
		// token until the journal answered, so copies kept in flight by
		// the burst starved genuine deliveries.
		release, entered := make(chan struct{}), make(chan struct{}, 8)
		e := newEnv(t, tab, func(o *Options) {
			inner := o.Accept
			o.Accept = func(ctx context.Context, ev *engine.Event) (bool, error) {
				dup, err := inner(ctx, ev)
				if dup {
					entered <- struct{}{}
					<-release
				}
				return dup, err
			}
		})
		e.setNow(testNow.Add(4 * time.Hour))
		old := testBody(600)
		if res := e.post("/webhooks/limited", payramHeader(newSecret, old), old); res.status != 200 {
			t.Fatalf("first copy: %d %s", res.status, res.raw)
		}
		e.setNow(testNow.Add(5 * time.Hour)) // the bucket is full again
		var wg sync.WaitGroup
		for range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				e.post("/webhooks/limited", payramHeader(newSecret, old), old)
			}()
		}
		<-entered
		<-entered
		b := testBody(601)
		res := e.post("/webhooks/limited", payramHeader(newSecret, b), b)
		close(release)
		wg.Wait()
		if res.status != 200 {
			t.Fatalf("genuine delivery with two replays in flight: %d %s", res.status, res.raw)
		}
	})
	t.Run("rate limit: junk does not spend the provider's budget", func(t *testing.T) {
		// Found by a security review: unsigned requests were charged to
		// the source's bucket, so anyone could make the provider's
		// genuine deliveries get 429.
		e := newEnv(t, tab)
		e.setNow(testNow.Add(6 * time.Hour)) // the shared table's bucket is full again, whatever ran before
		for i := range 100 {
			b := testBody(200 + i)
			if res := e.post("/webhooks/limited", http.Header{"Content-Type": {"application/json"}}, b); res.status != 401 {
				t.Fatalf("junk request %d: %d, want 401", i, res.status)
			}
		}
		for i := range 2 {
			b := testBody(300 + i)
			if res := e.post("/webhooks/limited", payramHeader(newSecret, b), b); res.status != 200 {
				t.Fatalf("genuine delivery %d after a flood of junk: %d %s", i, res.status, res.raw)
			}
		}
	})
	t.Run("journal unavailable: 503, never 2xx", func(t *testing.T) {
		e := newEnv(t, tab)
		e.journal.err = errors.New("journal unavailable: disk full")
		res := e.post("/webhooks/payram", signed, body)
		if res.status != 503 || res.raw != `{"error":"unavailable"}`+"\n" || e.lastOutcome() != "payram:unavailable" {
			t.Fatalf("%d %s %s", res.status, res.raw, e.lastOutcome())
		}
		// The provider's retry succeeds once the journal is back.
		e.journal.err = nil
		if res := e.post("/webhooks/payram", signed, body); res.status != 200 || res.body["status"] != "accepted" {
			t.Fatalf("%d %s", res.status, res.raw)
		}
	})
	t.Run("shutting down: 503", func(t *testing.T) {
		e := newEnv(t, tab)
		e.handler.Drain()
		for _, p := range []string{"/webhooks/payram", "/nope"} {
			res := e.post(p, signed, body)
			if res.status != 503 || res.body["error"] != "unavailable" {
				t.Fatalf("%s: %d %s", p, res.status, res.raw)
			}
		}
		if len(e.journal.events) != 0 {
			t.Fatal("journaled while draining")
		}
	})
	t.Run("no table loaded: 404", func(t *testing.T) {
		e := newEnv(t, nil)
		if res := e.post("/webhooks/payram", signed, body); res.status != 404 {
			t.Fatalf("%d", res.status)
		}
	})
}

// TestBodyLimit checks the exact boundary, with and without Content-Length.
func TestBodyLimit(t *testing.T) {
	const limit = 256
	tab := compileServer(t, []serverOption{withMaxBody(limit)},
		[2]string{"none", "provider: none\n"},
		[2]string{"small", "provider: none\nmax_body: 100B\n"},
	)
	e := newEnv(t, tab)
	bodyOf := func(n int) []byte {
		b := []byte(`{"pad":"` + strings.Repeat("x", n-10) + `"}`)
		if len(b) != n {
			t.Fatalf("body is %d bytes", len(b))
		}
		return b
	}
	if res := e.post("/webhooks/none", nil, bodyOf(limit)); res.status != 200 {
		t.Fatalf("exactly max: %d %s", res.status, res.raw)
	}
	res := e.post("/webhooks/none", nil, bodyOf(limit+1))
	if res.status != 413 || res.raw != `{"error":"payload_too_large"}`+"\n" || e.lastOutcome() != "none:too_large" {
		t.Fatalf("max+1: %d %s", res.status, res.raw)
	}
	// Chunked (no Content-Length): the limit is found while reading.
	for n, want := range map[int]int{limit: 200, limit + 1: 413, 10 * limit: 413} {
		req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/webhooks/none", io.MultiReader(bytes.NewReader(bodyOf(n))))
		req.ContentLength = -1
		resp, err := e.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("chunked %d bytes: %d, want %d", n, resp.StatusCode, want)
		}
	}
	// A source's own max_body wins over the server's.
	if res := e.post("/webhooks/small", nil, bodyOf(101)); res.status != 413 {
		t.Fatalf("source max_body: %d", res.status)
	}
	if res := e.post("/webhooks/small", nil, bodyOf(100)); res.status != 200 {
		t.Fatalf("source max_body exactly: %d", res.status)
	}
}

// TestServerSettingsFollowTheTable: the server-wide body limit and the
// trusted proxies come from the Table the request is served with, so a
// reload (a new Table behind Options.Table) changes them for the next
// request on the same handler; a source's own max_body still wins, and
// DefaultMaxBody applies when neither the source nor the server sets one.
func TestServerSettingsFollowTheTable(t *testing.T) {
	sources := [][2]string{
		{"none", "provider: none\n"},
		{"small", "provider: none\nmax_body: 100B\n"},
		{"locked", payramYAML + "allow_ips: [203.0.113.0/24]\n"},
	}
	var cur atomic.Pointer[Table]
	cur.Store(compileServer(t, []serverOption{withMaxBody(200)}, sources...))
	e := newEnv(t, nil, func(o *Options) { o.Table = cur.Load })
	pad := func(n int) []byte { return []byte(`{"pad":"` + strings.Repeat("x", n-10) + `"}`) }
	mid := pad(300) // between the old limit and the new one
	if res := e.post("/webhooks/none", nil, mid); res.status != 413 {
		t.Fatalf("300 bytes under max_body 200: %d %s", res.status, res.raw)
	}
	locked := testBody(1)
	viaProxy := merge(payramHeader(newSecret, locked), http.Header{"X-Forwarded-For": {"203.0.113.7"}})
	if res := e.post("/webhooks/locked", viaProxy, locked); res.status != 403 {
		t.Fatalf("X-Forwarded-For believed from an untrusted peer: %d", res.status)
	}

	cur.Store(compileServer(t, []serverOption{withMaxBody(400), withTrusted("127.0.0.1/32")}, sources...))
	if res := e.post("/webhooks/none", nil, mid); res.status != 200 {
		t.Fatalf("300 bytes after max_body went to 400: %d %s", res.status, res.raw)
	}
	if res := e.post("/webhooks/none", nil, pad(401)); res.status != 413 {
		t.Fatalf("401 bytes under max_body 400: %d", res.status)
	}
	if res := e.post("/webhooks/small", nil, pad(101)); res.status != 413 {
		t.Fatalf("the source's own max_body (100B) lost to the server's: %d", res.status)
	}
	if res := e.post("/webhooks/locked", viaProxy, locked); res.status != 200 {
		t.Fatalf("X-Forwarded-For not believed once 127.0.0.1 is a trusted proxy: %d %s", res.status, res.raw)
	}

	// Back down: the limit shrinks and the proxy is no longer trusted.
	cur.Store(compileServer(t, nil, sources...))
	if res := e.post("/webhooks/locked", viaProxy, testBody(2)); res.status != 403 {
		t.Fatalf("X-Forwarded-For still believed after trusted_proxies was emptied: %d", res.status)
	}
	if res := e.post("/webhooks/none", nil, pad(DefaultMaxBody)); res.status != 200 {
		t.Fatalf("neither max_body set: DefaultMaxBody bytes answered %d", res.status)
	}
	if res := e.post("/webhooks/none", nil, pad(DefaultMaxBody+1)); res.status != 413 {
		t.Fatalf("neither max_body set: DefaultMaxBody+1 bytes answered %d", res.status)
	}
}

// TestSlowLoris sends headers one byte at a time and expects the server to
// hang up once ReadHeaderTimeout passes, without the handler ever running.
func TestSlowLoris(t *testing.T) {
	var calls atomic.Int32
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { calls.Add(1) })
	srv := NewServer("", h)
	srv.ReadHeaderTimeout = 300 * time.Millisecond
	ts := httptest.NewUnstartedServer(h)
	ts.Config = srv
	ts.Start()
	defer ts.Close()

	conn, err := net.Dial("tcp", ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		_, _ = io.Copy(io.Discard, conn) // returns when the server hangs up
	}()
	req := "POST /webhooks/payram HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nX-Slow: " + strings.Repeat("a", 200)
	for i := 0; i < len(req); i++ {
		if _, err := conn.Write([]byte{req[i]}); err != nil {
			break // the server hung up: good
		}
		select {
		case <-closed:
			i = len(req)
		case <-time.After(50 * time.Millisecond):
		}
	}
	select {
	case <-closed:
	case <-time.After(2 * time.Second):
		t.Fatal("slow client not cut off")
	}
	if d := time.Since(start); d > 1500*time.Millisecond {
		t.Fatalf("cut off after %v", d)
	}
	if calls.Load() != 0 {
		t.Fatal("handler ran for an incomplete request")
	}
	// The server's other settings are as specified.
	s := NewServer(":0", h)
	if s.ReadHeaderTimeout != 5*time.Second || s.ReadTimeout != 30*time.Second || s.WriteTimeout != 30*time.Second ||
		s.IdleTimeout != 120*time.Second || s.MaxHeaderBytes != 64<<10 {
		t.Fatalf("server settings %+v", s)
	}
}

// TestForwardedFor checks that X-Forwarded-For counts only when the peer is
// a trusted proxy (the test client connects from 127.0.0.1).
func TestForwardedFor(t *testing.T) {
	src := [2]string{"payram", payramYAML + "allow_ips: [203.0.113.0/24, \"2001:db8::/32\"]\n"}
	body := testBody(1)
	signed := func(xff ...string) http.Header {
		h := payramHeader(newSecret, body)
		for _, v := range xff {
			h.Add("X-Forwarded-For", v)
		}
		return h
	}
	cases := []struct {
		name    string
		trusted []string
		h       http.Header
		want    int
	}{
		{"untrusted peer, forged header", nil, signed("203.0.113.7"), 403},
		{"untrusted peer, no header", nil, signed(), 403},
		{"trusted proxy, allowed client", []string{"127.0.0.1/32"}, signed("203.0.113.7"), 200},
		{"trusted proxy, allowed IPv6 client", []string{"127.0.0.1/32"}, signed("2001:db8::1"), 200},
		{"trusted proxy, other client", []string{"127.0.0.1/32"}, signed("198.51.100.1"), 403},
		{"client forges a hop left of the real one", []string{"127.0.0.1/32"}, signed("203.0.113.7, 198.51.100.1"), 403},
		{"chain of trusted proxies", []string{"127.0.0.1/32", "10.0.0.0/8"}, signed("203.0.113.7, 10.1.2.3"), 200},
		{"chain over two header lines", []string{"127.0.0.1/32", "10.0.0.0/8"}, signed("203.0.113.7", "10.1.2.3"), 200},
		{"garbage hop", []string{"127.0.0.1/32"}, signed("not-an-ip"), 403},
		{"hop with port", []string{"127.0.0.1/32"}, signed("203.0.113.7:4711"), 200},
		{"trusted proxy without header", []string{"127.0.0.1/32"}, signed(), 403},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, compileServer(t, []serverOption{withTrusted(c.trusted...)}, src))
			res := e.post("/webhooks/payram", c.h, body)
			if res.status != c.want {
				t.Fatalf("status %d, want %d", res.status, c.want)
			}
		})
	}
}

// TestForwardedForGarbageLogged: a refusal because a trusted proxy's
// X-Forwarded-For holds no address says so, rather than naming only the
// proxy as the remote address.
func TestForwardedForGarbageLogged(t *testing.T) {
	src := [2]string{"payram", payramYAML + "allow_ips: [203.0.113.0/24]\n"}
	body := testBody(1)
	h := payramHeader(newSecret, body)
	h.Set("X-Forwarded-For", "unknown")
	e := newEnv(t, compileServer(t, []serverOption{withTrusted("127.0.0.1/32")}, src))
	if res := e.post("/webhooks/payram", h, body); res.status != 403 {
		t.Fatalf("status %d, want 403", res.status)
	}
	if !strings.Contains(e.logs.String(), "its X-Forwarded-For names no address") {
		t.Fatalf("log does not say why:\n%s", e.logs.String())
	}
}

// TestNoSecretInLogs drives every kind of refusal and acceptance and then
// looks for secrets and signature values in everything logged.
func TestNoSecretInLogs(t *testing.T) {
	const swSecret = "whsec_c2VjcmV0LWZvci1sb2ctdGVzdC0xMjM0NTY3OA=="
	tab := compile(t,
		[2]string{"payram", payramYAML},
		[2]string{"hmac", "provider: hmac\nsecret: " + newSecret + "\nheader: X-Custom-Thing\ntimestamp_header: X-Ts\n"},
		[2]string{"sw", "provider: standard-webhooks\nsecret: " + swSecret + "\n"},
		[2]string{"stripe", "provider: stripe\nsecret: whsec_" + newSecret + "\n"},
	)
	e := newEnv(t, tab)
	body := testBody(7)
	var sent []string
	send := func(path string, h http.Header, b []byte) {
		for _, vs := range h {
			sent = append(sent, vs...)
		}
		e.post(path, h, b)
	}
	good := payramHeader(newSecret, body)
	send("/webhooks/payram", good, body)
	send("/webhooks/payram", good, append(body, ' '))
	send("/webhooks/payram", http.Header{"Api-Key": {newSecret}}, body)
	send("/webhooks/payram", http.Header{"Api-Key": {newSecret + "-wrong"}}, body)
	send("/webhooks/payram", merge(payramHeader("bad", body), http.Header{"Api-Key": {newSecret}}), body)
	send("/webhooks/payram", good, []byte(`{"no":"fields"}`))
	hm := tab.Provider("hmac")
	h := http.Header{}
	_ = hm.Sign(h, body, testNow)
	send("/webhooks/hmac", h, body)
	send("/webhooks/hmac", h, []byte("{}"))
	send("/webhooks/sw", swHeader(swSecret, "msg_1", testNow.Unix(), body), body)
	send("/webhooks/sw", swHeader(swSecret, "msg_2", testNow.Add(-time.Hour).Unix(), body), body)
	send("/webhooks/stripe", stripeHeader("whsec_"+newSecret, testNow.Unix(), body), []byte("{}"))

	logs := e.logs.String()
	if !strings.Contains(logs, "webhook refused") || !strings.Contains(logs, "webhook accepted") {
		t.Fatalf("expected both outcomes in the log:\n%s", logs)
	}
	for _, secret := range []string{newSecret, swSecret, strings.TrimPrefix(swSecret, "whsec_")} {
		if strings.Contains(logs, secret) {
			t.Fatalf("secret %q in logs:\n%s", secret, logs)
		}
	}
	for _, v := range sent {
		// Signature values are long; short header values (timestamps,
		// ids) may legitimately appear.
		if len(v) >= 20 && strings.Contains(logs, v) {
			t.Fatalf("header value %q in logs:\n%s", v, logs)
		}
	}
	// Nor in the journal's copy of the headers.
	for _, ev := range e.journal.events {
		for k, v := range ev.Headers {
			if strings.Contains(v, newSecret) || k == "x-custom-thing" || k == "api-key" || k == "webhook-signature" {
				t.Fatalf("secret header %s kept: %v", k, ev.Headers)
			}
		}
	}
}

func TestRedactHeaders(t *testing.T) {
	h := http.Header{
		"Content-Type":          {"application/json"},
		"User-Agent":            {"PayRam/3.8"},
		"X-Webhook-Test":        {"true"},
		"X-Forwarded-For":       {"1.2.3.4", "5.6.7.8"},
		"Webhook-Id":            {"msg_1"},
		"Webhook-Timestamp":     {"1"},
		"Webhook-Signature":     {"v1,x"},
		"X-Payram-Signature":    {"sha256=x"},
		"Api-Key":               {"k"},
		"Authorization":         {"Bearer x"},
		"Proxy-Authorization":   {"x"},
		"Cookie":                {"a=b"},
		"Stripe-Signature":      {"t=1,v1=x"},
		"X-Hub-Signature-256":   {"sha256=x"},
		"X-Shopify-Hmac-Sha256": {"x"},
		"X-Api-Token":           {"x"},
		"X-Client-Secret":       {"x"},
	}
	got := RedactHeaders(h)
	want := map[string]string{
		"content-type":      "application/json",
		"user-agent":        "PayRam/3.8",
		"x-webhook-test":    "true",
		"x-forwarded-for":   "1.2.3.4, 5.6.7.8",
		"webhook-id":        "msg_1",
		"webhook-timestamp": "1",
	}
	if len(got) != len(want) {
		t.Fatalf("got %v", got)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
}

// TestHandlerConcurrent runs many deliveries at once under -race: the table
// and providers are shared by every request.
func TestHandlerConcurrent(t *testing.T) {
	tab := compile(t, [2]string{"payram", payramYAML}, [2]string{"sw", "provider: standard-webhooks\nsecret: " + swNew + "\n"})
	e := newEnv(t, tab)
	done := make(chan int)
	for i := range 20 {
		go func() {
			b := testBody(1000 + i)
			s := 0
			if i%2 == 0 {
				s = e.post("/webhooks/payram", payramHeader(newSecret, b), b).status
			} else {
				s = e.post("/webhooks/sw", swHeader(swNew, msgID(b), testNow.Unix(), b), b).status
			}
			done <- s
		}()
	}
	for range 20 {
		if s := <-done; s != 200 {
			t.Errorf("status %d", s)
		}
	}
}

// TestPanicIsNot2xx makes sure a provider bug answers 500, not 200.
func TestPanicIsNot2xx(t *testing.T) {
	tab := compile(t, [2]string{"payram", payramYAML})
	tab.bySource["payram"].provider = panicky{}
	e := newEnv(t, tab)
	res := e.post("/webhooks/payram", nil, []byte("{}"))
	if res.status != 500 || e.lastOutcome() != "payram:error" {
		t.Fatalf("%d %s", res.status, e.lastOutcome())
	}
}

type panicky struct{ none }

func (panicky) Verify(*Request) error { panic("boom") }

// Answers are written without encoding/json when they can be; they must
// read exactly as json.Marshal writes them.
func TestAnswerJSON(t *testing.T) {
	for _, a := range []answer{
		{},
		{Status: "accepted", ID: "1a070f64b7c1e9d2"},
		{Status: "duplicate", ID: "evt_1:2-3.4"},
		errBody("invalid_signature"),
		{Error: "invalid_payload", Detail: "amount must be a decimal number such as \"25.00\", not \"abc\""},
		{Error: "invalid_payload", Detail: "invalid JSON at byte 3: <tag> & co"},
		{Error: "invalid_payload", Detail: "café \u2028 \x7f \x01 \\ \xff"},
		{ID: "only id"},
	} {
		want, _ := json.Marshal(a)
		if got := a.appendJSON(nil); string(got) != string(want)+"\n" {
			t.Errorf("%+v written as %s, want %s", a, got, want)
		}
	}
}
