package webhook

import (
	"net/http"
	"strings"
	"testing"
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
