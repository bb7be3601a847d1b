package webhook

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

const (
	oldSecret = "old-secret-5f2c1a"
	newSecret = "new-secret-9b7e44"
	// Standard Webhooks secrets are base64; the first is the spec's vector.
	swOld = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	swNew = "whsec_c2Vjb25kLXN0YW5kYXJkLXdlYmhvb2tzLWtleQ=="
)

// scheme describes one provider configuration for the shared verification
// table: how a genuine sender signs, and which variants apply.
type scheme struct {
	name        string
	yaml        string
	old, new    string
	wrong       string // a well-formed secret the source does not have
	sign        func(secret string, body []byte, ts int64) http.Header
	timestamped bool
	// upper rewrites a genuine header to upper-case hex (nil: not hex).
	upper func(h http.Header) http.Header
	// multi signs with several signatures of which only one is valid.
	multi func(secret string, body []byte, ts int64) http.Header
}

func upperHeader(name string, keepPrefix int) func(http.Header) http.Header {
	return func(h http.Header) http.Header {
		v := h.Get(name)
		h.Set(name, v[:keepPrefix]+strings.ToUpper(v[keepPrefix:]))
		return h
	}
}

var schemes = []scheme{
	{
		name: "payram",
		yaml: "provider: payram\nsecrets: [" + oldSecret + ", " + newSecret + "]\n",
		old:  oldSecret, new: newSecret,
		sign:  func(s string, b []byte, _ int64) http.Header { return payramHeader(s, b) },
		upper: upperHeader("X-Payram-Signature", len("sha256=")),
	},
	{
		name: "hmac-github",
		yaml: "provider: hmac\nsecrets: [" + oldSecret + ", " + newSecret + "]\nheader: X-Hub-Signature-256\nprefix: sha256=\n",
		old:  oldSecret, new: newSecret,
		sign: func(s string, b []byte, _ int64) http.Header {
			return http.Header{"X-Hub-Signature-256": {"sha256=" + hex.EncodeToString(hmacSHA256([]byte(s), b))}}
		},
		upper: upperHeader("X-Hub-Signature-256", len("sha256=")),
		multi: func(s string, b []byte, _ int64) http.Header {
			good := "sha256=" + hex.EncodeToString(hmacSHA256([]byte(s), b))
			bad := "sha256=" + hex.EncodeToString(hmacSHA256([]byte("nope"), b))
			return http.Header{"X-Hub-Signature-256": {bad + "," + good}}
		},
	},
	{
		name: "hmac-shopify-base64",
		yaml: "provider: hmac\nsecrets: [" + oldSecret + ", " + newSecret + "]\nheader: X-Shopify-Hmac-Sha256\nencoding: base64\n",
		old:  oldSecret, new: newSecret,
		sign: func(s string, b []byte, _ int64) http.Header {
			return http.Header{"X-Shopify-Hmac-Sha256": {base64.StdEncoding.EncodeToString(hmacSHA256([]byte(s), b))}}
		},
		multi: func(s string, b []byte, _ int64) http.Header {
			good := base64.StdEncoding.EncodeToString(hmacSHA256([]byte(s), b))
			bad := base64.StdEncoding.EncodeToString(hmacSHA256([]byte("nope"), b))
			return http.Header{"X-Shopify-Hmac-Sha256": {bad, good}} // repeated header
		},
	},
	{
		name: "hmac-timestamped-sha512",
		yaml: "provider: hmac\nsecrets: [" + oldSecret + ", " + newSecret + "]\nheader: X-Sig\nalgorithm: sha512\ntimestamp_header: X-Timestamp\n",
		old:  oldSecret, new: newSecret,
		sign: func(s string, b []byte, ts int64) http.Header {
			t := strconv.FormatInt(ts, 10)
			m := hmac.New(sha512.New, []byte(s))
			m.Write([]byte(t + "." + string(b)))
			return http.Header{"X-Sig": {hex.EncodeToString(m.Sum(nil))}, "X-Timestamp": {t}}
		},
		timestamped: true,
		upper:       upperHeader("X-Sig", 0),
	},
	{
		name: "standard-webhooks",
		yaml: "provider: standard-webhooks\nsecrets: [" + swOld + ", " + swNew + "]\n",
		old:  swOld, new: swNew, wrong: "whsec_" + base64.StdEncoding.EncodeToString([]byte("a-key-nobody-configured")),
		sign: func(s string, b []byte, ts int64) http.Header {
			return swHeader(s, msgID(b), ts, b)
		},
		timestamped: true,
		multi: func(s string, b []byte, ts int64) http.Header {
			h := swHeader(s, msgID(b), ts, b)
			h.Set("Webhook-Signature", "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= v2,abcd "+h.Get("Webhook-Signature")+" v1a,xyz")
			return h
		},
	},
	{
		name: "stripe",
		yaml: "provider: stripe\nsecrets: [whsec_" + oldSecret + ", whsec_" + newSecret + "]\n",
		old:  "whsec_" + oldSecret, new: "whsec_" + newSecret,
		sign:        func(s string, b []byte, ts int64) http.Header { return stripeHeader(s, ts, b) },
		timestamped: true,
		upper: func(h http.Header) http.Header {
			v := h.Get("Stripe-Signature")
			i := strings.Index(v, "v1=") + 3
			h.Set("Stripe-Signature", v[:i]+strings.ToUpper(v[i:]))
			return h
		},
		multi: func(s string, b []byte, ts int64) http.Header {
			t := strconv.FormatInt(ts, 10)
			return http.Header{"Stripe-Signature": {"t=" + t + ",v1=" + stripeSig("whsec_other", ts, b) + ",v1=" + stripeSig(s, ts, b) + ",v0=" + stripeSig("x", ts, b)}}
		},
	},
}

// msgID gives each body its own webhook-id, as a sender would.
func msgID(b []byte) string { return fmt.Sprintf("msg_%x", sha512.Sum512_224(b)) }

// testBody is a valid PayRam payment, so every scheme's body is also a
// payload the payram provider accepts; n makes each body (and so its
// default id) distinct.
func testBody(n int) []byte {
	return []byte(fmt.Sprintf(`{"reference_id":"ref_%d","status":"FILLED","amount":"10.00","n":%d}`, n, n))
}

// TestVerifySchemes runs every provider through the same situations over a
// real loopback listener.
func TestVerifySchemes(t *testing.T) {
	const tol = 5 * time.Minute
	for _, sc := range schemes {
		t.Run(sc.name, func(t *testing.T) {
			tab := compile(t, [2]string{"src", sc.yaml})
			e := newEnv(t, tab)
			ts := testNow.Unix()
			wrong := sc.wrong
			if wrong == "" {
				wrong = sc.new + "x"
			}
			n := 0
			next := func() []byte { n++; return testBody(n) }

			type tc struct {
				name string
				want int
				req  func() (http.Header, []byte)
			}
			cases := []tc{
				{"valid newest secret", 200, func() (http.Header, []byte) { b := next(); return sc.sign(sc.new, b, ts), b }},
				{"valid older secret (rotation)", 200, func() (http.Header, []byte) { b := next(); return sc.sign(sc.old, b, ts), b }},
				{"wrong secret", 401, func() (http.Header, []byte) { b := next(); return sc.sign(wrong, b, ts), b }},
				{"tampered body", 401, func() (http.Header, []byte) {
					b := next()
					h := sc.sign(sc.new, b, ts)
					return h, bytes.Replace(b, []byte("10.00"), []byte("99.00"), 1)
				}},
				{"tampered body, one byte appended", 401, func() (http.Header, []byte) {
					b := next()
					return sc.sign(sc.new, b, ts), append(b, ' ')
				}},
				{"re-serialized JSON (same data, other bytes)", 401, func() (http.Header, []byte) {
					b := next()
					h := sc.sign(sc.new, b, ts)
					var v any
					_ = json.Unmarshal(b, &v)
					re, _ := json.MarshalIndent(v, "", "  ")
					if bytes.Equal(re, b) {
						t.Fatal("re-serialization produced the same bytes")
					}
					return h, re
				}},
				{"missing header", 401, func() (http.Header, []byte) { return http.Header{}, next() }},
			}
			if sc.upper != nil {
				cases = append(cases, tc{"upper-case hex", 200, func() (http.Header, []byte) {
					b := next()
					return sc.upper(sc.sign(sc.new, b, ts)), b
				}})
			}
			if sc.multi != nil {
				cases = append(cases, tc{"several signatures, one valid", 200, func() (http.Header, []byte) {
					b := next()
					return sc.multi(sc.new, b, ts), b
				}}, tc{"several signatures, none valid", 401, func() (http.Header, []byte) {
					b := next()
					return sc.multi(wrong, b, ts), b
				}})
			}
			if sc.timestamped {
				at := func(d time.Duration) func() (http.Header, []byte) {
					return func() (http.Header, []byte) {
						b := next()
						return sc.sign(sc.new, b, testNow.Add(d).Unix()), b
					}
				}
				cases = append(cases,
					tc{"exactly tolerance old", 200, at(-tol)},
					tc{"tolerance+1s old (stale)", 401, at(-tol - time.Second)},
					tc{"exactly tolerance in the future", 200, at(tol)},
					tc{"tolerance+1s in the future", 401, at(tol + time.Second)},
					tc{"a day old", 401, at(-24 * time.Hour)},
				)
			}
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					h, b := c.req()
					res := e.post("/webhooks/src", h, b)
					if res.status != c.want {
						t.Fatalf("status %d, want %d (%s)\nlog:\n%s", res.status, c.want, res.raw, e.logs.String())
					}
					switch c.want {
					case 200:
						if res.body["status"] != "accepted" || res.body["id"] == "" {
							t.Fatalf("body %s", res.raw)
						}
					case 401:
						if res.raw != `{"error":"invalid_signature"}`+"\n" {
							t.Fatalf("body %q", res.raw)
						}
						if e.lastOutcome() != "src:invalid_signature" {
							t.Fatalf("outcome %q", e.lastOutcome())
						}
					}
				})
			}
		})
	}
}

// TestTimestampEdgeCases covers timestamps that are not numbers at all.
func TestTimestampEdgeCases(t *testing.T) {
	for _, raw := range []string{"", "abc", "1.5", "1614265330.0", "99999999999999999999", "-1", " "} {
		if err := checkTimestamp(raw, testNow, time.Minute); err == nil {
			t.Errorf("timestamp %q accepted", raw)
		}
	}
	if err := checkTimestamp(strconv.FormatInt(testNow.Unix(), 10), testNow, time.Minute); err != nil {
		t.Error(err)
	}
}

// TestTimestampWholeSeconds: a timestamp exactly tolerance old or ahead is
// accepted whatever the fraction of the second the request arrives in; one
// second more is refused, and the message does not contradict itself.
func TestTimestampWholeSeconds(t *testing.T) {
	now := testNow.Add(900 * time.Millisecond)
	for _, ts := range []int64{testNow.Unix() - 60, testNow.Unix() + 60} {
		if err := checkTimestamp(strconv.FormatInt(ts, 10), now, time.Minute); err != nil {
			t.Errorf("timestamp %d at %s: %v", ts, now, err)
		}
	}
	err := checkTimestamp(strconv.FormatInt(testNow.Unix()-61, 10), now, time.Minute)
	if err == nil || !strings.Contains(err.Error(), "1m1s old, more than the 1m0s tolerance") {
		t.Errorf("61 s old: %v", err)
	}
	err = checkTimestamp(strconv.FormatInt(testNow.Unix()+61, 10), now, time.Minute)
	if err == nil || !strings.Contains(err.Error(), "1m1s in the future, more than the 1m0s tolerance") {
		t.Errorf("61 s ahead: %v", err)
	}
	// Far timestamps never wrap the age's arithmetic around: one 2^34 s
	// ahead (the year 2500) must not be called old.
	far := testNow.Unix() + 1<<34
	if err := checkTimestamp(strconv.FormatInt(far, 10), now, time.Minute); err == nil || strings.Contains(err.Error(), " old,") {
		t.Errorf("timestamp %d: %v; want refused as in the future or out of range", far, err)
	}
}

// TestPublishedVectors checks the providers against signatures published by
// the scheme authors, computed with code payramd does not share.
func TestPublishedVectors(t *testing.T) {
	t.Run("standard-webhooks", func(t *testing.T) {
		tab := compile(t, [2]string{"sw", "provider: standard-webhooks\nsecret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n"})
		p := tab.Provider("sw")
		body := []byte(`{"test": 2432232314}`)
		req := func(sig string) *Request {
			return &Request{Method: "POST", Body: body, Now: time.Unix(1614265330, 0), Header: http.Header{
				"Webhook-Id":        {"msg_p5jXN8AQM9LWM0D4loKWxJek"},
				"Webhook-Timestamp": {"1614265330"},
				"Webhook-Signature": {sig},
			}}
		}
		const valid = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
		if err := p.Verify(req(valid)); err != nil {
			t.Fatalf("published vector refused: %v", err)
		}
		if err := p.Verify(req("v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=")); err == nil {
			t.Fatal("published invalid signature accepted")
		}
		if err := p.Verify(req("v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= v2,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= " + valid + " v2,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=")); err != nil {
			t.Fatalf("published multi-signature case refused: %v", err)
		}
		// Sign must reproduce the vector byte for byte.
		h := http.Header{"Webhook-Id": {"msg_p5jXN8AQM9LWM0D4loKWxJek"}}
		if err := p.Sign(h, body, time.Unix(1614265330, 0)); err != nil {
			t.Fatal(err)
		}
		if h.Get("Webhook-Signature") != valid || h.Get("Webhook-Timestamp") != "1614265330" {
			t.Fatalf("Sign gave %q", h.Get("Webhook-Signature"))
		}
		n, err := p.Normalize(req(valid))
		if err != nil || n.ID != "msg_p5jXN8AQM9LWM0D4loKWxJek" {
			t.Fatalf("normalize: %+v, %v", n, err)
		}
	})
	t.Run("github", func(t *testing.T) {
		tab := compile(t, [2]string{"gh", "provider: hmac\nsecret: \"It's a Secret to Everybody\"\nheader: X-Hub-Signature-256\nprefix: sha256=\n"})
		p := tab.Provider("gh")
		const sig = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
		r := &Request{Body: []byte("Hello, World!"), Now: testNow, Header: http.Header{"X-Hub-Signature-256": {sig}}}
		if err := p.Verify(r); err != nil {
			t.Fatalf("published vector refused: %v", err)
		}
		// The configured prefix is required.
		r.Header.Set("X-Hub-Signature-256", strings.TrimPrefix(sig, "sha256="))
		if err := p.Verify(r); err == nil {
			t.Fatal("signature without the configured prefix accepted")
		}
		h := http.Header{}
		_ = p.Sign(h, []byte("Hello, World!"), testNow)
		if h.Get("X-Hub-Signature-256") != sig {
			t.Fatalf("Sign gave %q", h.Get("X-Hub-Signature-256"))
		}
	})
	t.Run("shopify", func(t *testing.T) {
		tab := compile(t, [2]string{"shop", "provider: hmac\nsecret: test_secret_key\nheader: X-Shopify-Hmac-Sha256\nencoding: base64\n"})
		p := tab.Provider("shop")
		const sig = "B23tXN681gZ0qIWNRrgtzBE9XSDo5yaUu6wfmhu3a7g="
		r := &Request{Body: []byte(`{"foo": "bar"}`), Now: testNow, Header: http.Header{"X-Shopify-Hmac-Sha256": {sig}}}
		if err := p.Verify(r); err != nil {
			t.Fatalf("published vector refused: %v", err)
		}
		r.Body = []byte(`{"foo":"bar"}`)
		if err := p.Verify(r); err == nil {
			t.Fatal("re-serialized body accepted")
		}
		h := http.Header{}
		_ = p.Sign(h, []byte(`{"foo": "bar"}`), testNow)
		if h.Get("X-Shopify-Hmac-Sha256") != sig {
			t.Fatalf("Sign gave %q", h.Get("X-Shopify-Hmac-Sha256"))
		}
	})
}

// TestPayramHeaders covers the rules specific to PayRam's two headers.
func TestPayramHeaders(t *testing.T) {
	body := testBody(1)
	good := payramHeader(newSecret, body)
	bad := payramHeader("wrong", body)
	key := func(k string) http.Header { return http.Header{"Api-Key": {k}} }
	cases := []struct {
		name string
		yaml string
		h    http.Header
		ok   bool
	}{
		{"signature", "", good, true},
		{"legacy API-Key", "", key(newSecret), true},
		{"legacy API-Key, older secret", "", key(oldSecret), true},
		{"legacy API-Key wrong", "", key("wrong"), false},
		{"legacy API-Key prefix of secret", "", key(newSecret[:5]), false},
		{"legacy API-Key empty", "", key(""), false},
		{"valid API-Key next to a bad signature", "", merge(bad, key(newSecret)), false},
		{"valid API-Key next to an empty signature", "", merge(http.Header{"X-Payram-Signature": {""}}, key(newSecret)), false},
		{"valid signature next to a wrong API-Key", "", merge(good, key("wrong")), true},
		{"signature without prefix", "", http.Header{"X-Payram-Signature": {strings.TrimPrefix(good.Get("X-Payram-Signature"), "sha256=")}}, false},
		{"signature not hex", "", http.Header{"X-Payram-Signature": {"sha256=zz"}}, false},
		{"prefix in upper case", "", http.Header{"X-Payram-Signature": {"SHA256=" + strings.TrimPrefix(good.Get("X-Payram-Signature"), "sha256=")}}, true},
		{"require_signature refuses API-Key", "require_signature: true\n", key(newSecret), false},
		{"require_signature accepts signature", "require_signature: true\n", good, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tab := compile(t, [2]string{"payram", "provider: payram\nsecrets: [" + oldSecret + ", " + newSecret + "]\n" + c.yaml})
			e := newEnv(t, tab)
			res := e.post("/webhooks/payram", c.h, body)
			if (res.status == 200) != c.ok {
				t.Fatalf("status %d (%s), want ok=%v", res.status, res.raw, c.ok)
			}
		})
	}
	// Header names are case-insensitive even in a hand-built Request.
	tab := compile(t, [2]string{"payram", "provider: payram\nsecret: " + newSecret + "\n"})
	r := &Request{Body: body, Header: http.Header{"X-PayRam-Signature": good["X-Payram-Signature"]}}
	if err := tab.Provider("payram").Verify(r); err != nil {
		t.Fatalf("X-PayRam-Signature spelling refused: %v", err)
	}
}

// TestSignRoundTrip signs with each provider's Sign (as `payramd send`
// does) and verifies over HTTP.
func TestSignRoundTrip(t *testing.T) {
	configs := map[string]string{
		"payram":          "provider: payram\nsecrets: [" + oldSecret + ", " + newSecret + "]\nrequire_signature: true\n",
		"hmac":            "provider: hmac\nsecret: " + newSecret + "\nheader: X-Signature\nprefix: \"v1=\"\n",
		"hmac-base64-ts":  "provider: hmac\nsecret: " + newSecret + "\nheader: X-Signature\nencoding: base64\nalgorithm: sha1\ntimestamp_header: X-Signature-Timestamp\ntolerance: 1m\n",
		"standard":        "provider: standard-webhooks\nsecrets: [" + swOld + ", " + swNew + "]\n",
		"stripe":          "provider: stripe\nsecret: whsec_abc\n",
		"stripe-payvost":  "provider: stripe\nsecret: whsec_abc\nheader: Payvost-Signature\n",
		"none":            "provider: none\n",
		"stripe-tolerant": "provider: stripe\nsecret: whsec_abc\ntolerance: 10m\n",
	}
	var srcs [][2]string
	for name, y := range configs {
		srcs = append(srcs, [2]string{name, y})
	}
	tab := compile(t, srcs...)
	e := newEnv(t, tab)
	for name := range configs {
		t.Run(name, func(t *testing.T) {
			body := []byte(`{"reference_id":"r","status":"OPEN","id":"evt_` + name + `","type":"thing.happened"}`)
			h := http.Header{}
			if err := tab.Provider(name).Sign(h, body, testNow); err != nil {
				t.Fatal(err)
			}
			res := e.post(tab.Path(name), h, body)
			if res.status != 200 {
				t.Fatalf("status %d %s\n%s", res.status, res.raw, e.logs.String())
			}
			// The same signature over other bytes must fail (none aside).
			if name != "none" {
				res = e.post(tab.Path(name), h, append(body, '\n'))
				if res.status != 401 {
					t.Fatalf("signature reused on another body: status %d", res.status)
				}
			}
		})
	}
	// Sign uses the newest secret: a table knowing only the old one refuses.
	oldOnly := compile(t, [2]string{"standard", "provider: standard-webhooks\nsecret: " + swOld + "\n"})
	h := http.Header{}
	_ = tab.Provider("standard").Sign(h, []byte(`{}`), testNow)
	if err := oldOnly.Provider("standard").Verify(&Request{Header: h, Body: []byte(`{}`), Now: testNow}); err == nil {
		t.Fatal("Sign did not use the newest secret")
	}
}
