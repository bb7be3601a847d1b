package webhook

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/payramd/payramd/engine"
)

// BenchmarkVerify measures one verification per scheme on a ~1 KiB body,
// the size of a typical payment webhook.
func BenchmarkVerify(b *testing.B) {
	body := []byte(`{"reference_id":"ref_bench","status":"FILLED","amount":"25.00","pad":"` + strings.Repeat("x", 960) + `"}`)
	configs := []struct{ name, yaml string }{
		{"payram", "provider: payram\nsecret: " + newSecret + "\n"},
		{"payram-api-key", "provider: payram\nsecret: " + newSecret + "\n"},
		{"hmac-sha256-hex", "provider: hmac\nsecret: " + newSecret + "\nheader: X-Sig\nprefix: sha256=\n"},
		{"hmac-sha512-base64-timestamp", "provider: hmac\nsecret: " + newSecret + "\nheader: X-Sig\nencoding: base64\nalgorithm: sha512\ntimestamp_header: X-Ts\n"},
		{"standard-webhooks", "provider: standard-webhooks\nsecret: " + swNew + "\n"},
		{"stripe", "provider: stripe\nsecret: whsec_" + newSecret + "\n"},
		{"none", "provider: none\n"},
	}
	for _, c := range configs {
		p := compile(b, [2]string{"src", c.yaml}).Provider("src")
		h := http.Header{}
		if c.name == "payram-api-key" {
			h.Set("API-Key", newSecret)
		} else if err := p.Sign(h, body, testNow); err != nil {
			b.Fatal(err)
		}
		r := &Request{Source: "src", Method: http.MethodPost, Header: h, Body: body, Now: testNow}
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if err := p.Verify(r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkHandler measures a whole accepted delivery over loopback HTTP
// with an in-memory journal, to show what verification costs in context.
func BenchmarkHandler(b *testing.B) {
	tab := compile(b, [2]string{"payram", "provider: payram\nsecret: " + newSecret + "\n"})
	e := newEnv(b, tab)
	body := testBody(1)
	h := payramHeader(newSecret, body)
	b.ReportAllocs()
	for b.Loop() {
		if res := e.post("/webhooks/payram", h, body); res.status != 200 {
			b.Fatal(res.status)
		}
	}
}

// listenerBody is what bench/load sends: a PayRam payment with amounts as
// strings and a numeric timestamp.
var listenerBody = []byte(`{"reference_id":"ref_123456","invoice_id":"inv_123456","customer_id":"cust_456","customer_email":"buyer456@example.com","status":"FILLED","amount":"46.99","filled_amount":"51.50","filled_amount_in_usd":"51.50","currency":"USDC","timestamp":1795000000}`)

// BenchmarkNormalize measures decoding and normalizing a PayRam payment.
func BenchmarkNormalize(b *testing.B) {
	p := &payram{}
	r := &Request{Source: "payram", Method: http.MethodPost, Header: http.Header{"Content-Type": {"application/json"}}, Body: listenerBody, Now: testNow}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.Normalize(r); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkServeHTTP measures the handler alone (no network, no journal):
// routing, body read, verification, normalization, header redaction, the
// log line and the answer. It is the listener's own CPU per request.
func BenchmarkServeHTTP(b *testing.B) {
	tab := compile(b, [2]string{"payram", "provider: payram\nsecret: " + newSecret + "\n"})
	h := NewHandler(Options{
		Table:  func() *Table { return tab },
		Accept: func(context.Context, *engine.Event) (bool, error) { return false, nil },
		Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)),
	})
	hdr := payramHeader(newSecret, listenerBody)
	hdr.Set("Content-Type", "application/json")
	hdr.Set("User-Agent", "Go-http-client/1.1")
	hdr.Set("Accept-Encoding", "gzip")
	req := httptest.NewRequest(http.MethodPost, "/webhooks/payram", nil)
	req.Header = hdr
	req.ContentLength = int64(len(listenerBody))
	b.ReportAllocs()
	for b.Loop() {
		req.Body = io.NopCloser(bytes.NewReader(listenerBody))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatal(w.Code, w.Body.String())
		}
	}
}
