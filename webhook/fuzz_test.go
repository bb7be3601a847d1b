package webhook

import (
	"bytes"
	"crypto/hmac"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/payramd/payramd/engine"
)

// The fuzz targets check two things: nothing panics on hostile input, and a
// signature is accepted only for exactly the bytes it was computed over.
// Each target signs a fixed original body, then lets the fuzzer vary the
// body (the original signature must then fail unless the body is the
// original) and the header value (any accepted value must be a genuine
// MAC of the body, checked with code independent of the provider).

const fuzzSecret = "fuzz-secret-3c9d"

var fuzzBody = []byte(`{"reference_id":"ref_1","status":"FILLED","amount":"25.00"}`)

func fuzzProvider(f *testing.F, yaml string) Provider {
	f.Helper()
	return compile(f, [2]string{"src", yaml}).Provider("src")
}

func FuzzPayramVerify(f *testing.F) {
	p := fuzzProvider(f, "provider: payram\nsecret: "+fuzzSecret+"\n")
	orig := payramHeader(fuzzSecret, fuzzBody)
	f.Add(fuzzBody, orig.Get("X-Payram-Signature"))
	f.Add(fuzzBody, strings.ToUpper(orig.Get("X-Payram-Signature")))
	f.Add([]byte(`{}`), "sha256=")
	f.Add([]byte(nil), fuzzSecret)
	f.Add(append(fuzzBody, ' '), "sha256=zz")
	f.Fuzz(func(t *testing.T, body []byte, value string) {
		if err := p.Verify(&Request{Header: orig, Body: body, Now: testNow}); (err == nil) != bytes.Equal(body, fuzzBody) {
			t.Fatalf("original signature on other body: err=%v", err)
		}
		if p.Verify(&Request{Header: http.Header{"X-Payram-Signature": {value}}, Body: body, Now: testNow}) == nil {
			v := strings.TrimSpace(value)
			got, err := hex.DecodeString(v[len("sha256="):])
			if err != nil || !hmac.Equal(got, hmacSHA256([]byte(fuzzSecret), body)) {
				t.Fatalf("accepted a signature that is not the body's MAC: %q", value)
			}
		}
		if p.Verify(&Request{Header: http.Header{"Api-Key": {value}}, Body: body, Now: testNow}) == nil && value != fuzzSecret {
			t.Fatalf("accepted API-Key %q", value)
		}
	})
}

func FuzzHMACVerify(f *testing.F) {
	plain := fuzzProvider(f, "provider: hmac\nsecret: "+fuzzSecret+"\nheader: X-Sig\nprefix: sha256=\n")
	timed := fuzzProvider(f, "provider: hmac\nsecret: "+fuzzSecret+"\nheader: X-Sig\ntimestamp_header: X-Ts\n")
	origPlain := http.Header{}
	_ = plain.Sign(origPlain, fuzzBody, testNow)
	origTimed := http.Header{}
	_ = timed.Sign(origTimed, fuzzBody, testNow)
	ts := origTimed.Get("X-Ts")
	f.Add(fuzzBody, origPlain.Get("X-Sig"), ts)
	f.Add(fuzzBody, origTimed.Get("X-Sig"), ts+"0")
	f.Add([]byte("x"), "sha256=,sha256=00", " "+ts)
	f.Add([]byte(""), "", "")
	f.Fuzz(func(t *testing.T, body []byte, value, tsValue string) {
		if err := plain.Verify(&Request{Header: origPlain, Body: body, Now: testNow}); (err == nil) != bytes.Equal(body, fuzzBody) {
			t.Fatalf("original signature on other body: err=%v", err)
		}
		// The timestamp is part of what is signed.
		h := origTimed.Clone()
		h.Set("X-Ts", tsValue)
		if err := timed.Verify(&Request{Header: h, Body: body, Now: testNow}); (err == nil) != (bytes.Equal(body, fuzzBody) && tsValue == ts) {
			t.Fatalf("original signature with body/timestamp changed (%q): err=%v", tsValue, err)
		}
		if plain.Verify(&Request{Header: http.Header{"X-Sig": {value}}, Body: body, Now: testNow}) == nil {
			want := hmacSHA256([]byte(fuzzSecret), body)
			ok := false
			for _, tok := range strings.FieldsFunc(value, func(c rune) bool { return c == ',' || c == ' ' || c == '\t' }) {
				tok = strings.TrimSpace(tok) // as the verifier does: whitespace is not signature
				if len(tok) > 7 && strings.EqualFold(tok[:7], "sha256=") {
					if got, err := hex.DecodeString(tok[7:]); err == nil && hmac.Equal(got, want) {
						ok = true
					}
				}
			}
			if !ok {
				t.Fatalf("accepted %q", value)
			}
		}
	})
}

func FuzzStandardWebhooksVerify(f *testing.F) {
	p := fuzzProvider(f, "provider: standard-webhooks\nsecret: "+swNew+"\n")
	const id = "msg_fuzz"
	ts := strconv.FormatInt(testNow.Unix(), 10)
	orig := swHeader(swNew, id, testNow.Unix(), fuzzBody)
	f.Add(fuzzBody, id, ts, orig.Get("Webhook-Signature"))
	f.Add(fuzzBody, id+".", ts, "v1a,xx v1,"+strings.Repeat("A", 44))
	f.Add([]byte("{}"), "", "1e9", "")
	f.Add(fuzzBody, id, " "+ts, orig.Get("Webhook-Signature")+" v2,x")
	f.Fuzz(func(t *testing.T, body []byte, fid, fts, sig string) {
		if err := p.Verify(&Request{Header: orig, Body: body, Now: testNow}); (err == nil) != bytes.Equal(body, fuzzBody) {
			t.Fatalf("original signature on other body: err=%v", err)
		}
		h := orig.Clone()
		h.Set("Webhook-Id", fid)
		h.Set("Webhook-Timestamp", fts)
		if err := p.Verify(&Request{Header: h, Body: body, Now: testNow}); (err == nil) != (bytes.Equal(body, fuzzBody) && fid == id && fts == ts) {
			t.Fatalf("original signature with id %q / timestamp %q: err=%v", fid, fts, err)
		}
		h.Set("Webhook-Signature", sig)
		if p.Verify(&Request{Header: h, Body: body, Now: testNow}) == nil {
			mustInt(t, fts)
			want := hmacSHA256(swSecretKey(swNew), []byte(fid+"."+fts+"."+string(body)))
			ok := false
			for _, entry := range strings.Fields(sig) {
				if v, b64, _ := strings.Cut(entry, ","); v == "v1" {
					if got, err := base64.StdEncoding.DecodeString(b64); err == nil && hmac.Equal(got, want) {
						ok = true
					}
				}
			}
			if !ok {
				t.Fatalf("accepted %q", sig)
			}
		}
		if _, err := p.Normalize(&Request{Header: h, Body: body}); err != nil && !errors.Is(err, ErrInvalidPayload) {
			t.Fatalf("normalize error not a payload error: %v", err)
		}
	})
}

func mustInt(t *testing.T, s string) int64 {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil {
		t.Fatalf("accepted unparsable timestamp %q", s)
	}
	return n
}

func FuzzStripeVerify(f *testing.F) {
	const secret = "whsec_" + fuzzSecret
	p := fuzzProvider(f, "provider: stripe\nsecret: "+secret+"\n")
	orig := stripeHeader(secret, testNow.Unix(), fuzzBody)
	f.Add(fuzzBody, orig.Get("Stripe-Signature"))
	f.Add(fuzzBody, "t=,v1=")
	f.Add(fuzzBody, "t=1,t=2,v1=00")
	f.Add([]byte("{}"), strings.ToUpper(orig.Get("Stripe-Signature")))
	f.Add(fuzzBody, "v1="+stripeSig(secret, testNow.Unix(), fuzzBody)+",t="+strconv.FormatInt(testNow.Unix(), 10))
	f.Fuzz(func(t *testing.T, body []byte, header string) {
		if err := p.Verify(&Request{Header: orig, Body: body, Now: testNow}); (err == nil) != bytes.Equal(body, fuzzBody) {
			t.Fatalf("original signature on other body: err=%v", err)
		}
		if p.Verify(&Request{Header: http.Header{"Stripe-Signature": {header}}, Body: body, Now: testNow}) == nil {
			// Independently: some t and some v1 in the header must form
			// a genuine signature of this body.
			var tss, sigs []string
			for _, item := range strings.Split(header, ",") {
				k, v, _ := strings.Cut(strings.TrimSpace(item), "=")
				switch k {
				case "t":
					tss = append(tss, v)
				case "v1":
					sigs = append(sigs, v)
				}
			}
			ok := false
			for _, ts := range tss {
				want := hmacSHA256([]byte(secret), []byte(ts+"."+string(body)))
				for _, s := range sigs {
					if got, err := hex.DecodeString(s); err == nil && hmac.Equal(got, want) {
						ok = true
					}
				}
			}
			if !ok {
				t.Fatalf("accepted %q", header)
			}
		}
	})
}

func FuzzPayramNormalize(f *testing.F) {
	p := &payram{}
	for _, s := range []string{
		string(fuzzBody),
		`{"reference_id":"r","payment_state":"canceled","filled_amount":18,"filled_amount_in_usd":null}`,
		`{"event_type":"payout.sent","amount":"1e3","amount_usd":"-0.10"}`,
		`{"event_type":"payout.ping"}`,
		`{"reference_id":"r","status":"FILLED",}`,
		`{"reference_id":"r","status":"FILLED","amount":123456789012345678901234567890}`,
		`{"reference_id":"r","status":"FILLED","amount":"12.345678901234567890123","filled_amount":"-0.0000000000000000000001"}`,
		`[]`, `null`, ``, `reference_id=r&status=OPEN`,
	} {
		f.Add([]byte(s), "POST", "")
	}
	f.Add([]byte(""), "GET", "reference_id=r&payment_state=FILLED&amount=5")
	f.Add([]byte(""), "GET", "reference_id=r&status=x&status=y&amount=abc")
	f.Add([]byte("reference_id=r&status=OPEN&amount=1.5"), "POST", "form")
	f.Fuzz(func(t *testing.T, body []byte, method, query string) {
		h := http.Header{}
		if query == "form" {
			h.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		q, _ := url.ParseQuery(query)
		n, err := p.Normalize(&Request{Method: method, Header: h, Query: q, Body: body})
		if err != nil {
			if !errors.Is(err, ErrInvalidPayload) {
				t.Fatalf("error is not a payload error: %v", err)
			}
			return
		}
		if n.Type == "" || n.Payload == nil {
			t.Fatalf("normalized without type or payload: %+v", n)
		}
		for _, k := range payramAmounts {
			switch v := n.Payload[k].(type) {
			case nil, engine.Decimal:
			case engine.BigNumber:
				// A JSON number a Decimal cannot hold.
				if _, err := engine.ParseDecimal(v.String()); err == nil {
					t.Fatalf("%s is a BigNumber %s, which a Decimal holds", k, v)
				}
				if _, err := engine.NewBigNumber(v.String()); err != nil {
					t.Fatalf("%s is a BigNumber %q: %v", k, v, err)
				}
			default:
				t.Fatalf("%s is %T after normalization", k, n.Payload[k])
			}
		}
		if s, ok := n.Payload["status"].(string); ok && (s != strings.ToUpper(s) || s == "CANCELED") {
			t.Fatalf("status %q not normalized", s)
		}
	})
}
