package main

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestEveryProviderThroughTheDaemon signs a sample event for each provider
// with `payramd send` (as that provider would) and posts it to the real
// daemon; then posts the same body with the signature of another body,
// which must be refused. It proves send and the listener agree for every
// scheme, and that the seeds' payloads normalize.
func TestEveryProviderThroughTheDaemon(t *testing.T) {
	dir := t.TempDir()
	s := newSink(t, nil)
	cfg := writeFile(t, dir, "rules.yaml", fmt.Sprintf(`server:
  data_dir: %s
sources:
  payram:
    provider: payram
    secret: pk_live_e2e
    require_signature: true
  shadhinpay:
    provider: hmac
    path: /webhooks/shadhinpay
    secret: shadhin-secret
    header: X-ShadhinPay-Signature
    prefix: "sha256="
  svix:
    provider: standard-webhooks
    secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw
  payvost:
    provider: stripe
    header: Payvost-Signature
    secrets: [whsec_old_payvost, whsec_new_payvost]
  internal:
    provider: none
actions:
  sink:
    type: http
    url: %s/{{ meta.source }}
rules:
  - name: every-event
    when: "true"
    do: [sink]
`, filepath.Join(dir, "data"), s.URL))
	p := startDaemon(t, cfg)

	cases := []struct {
		source, file, wantType string
	}{
		{"payram", "../../testdata/events/over_filled.json", "payment.over_filled"},
		{"payram", "../../testdata/events/payout_sent.json", "payout.sent"},
		{"shadhinpay", "../../testdata/providers/shadhinpay_payment_completed.json", "payment.completed"},
		{"svix", "../../testdata/providers/standard_webhooks_invoice_paid.json", "invoice.paid"},
		{"payvost", "../../testdata/providers/payvost_payment_succeeded.json", "payment.succeeded"},
		{"internal", "../../testdata/events/filled.json", ""},
	}
	for i, tc := range cases {
		t.Run(tc.source+"/"+filepath.Base(tc.file), func(t *testing.T) {
			code, out, errOut := runCLI(t, nil, "send", "-c", cfg, "--source", tc.source, "--url", p.Public+pathOf(tc.source), tc.file)
			if code != 0 || !strings.Contains(out, `"status":"accepted"`) {
				t.Fatalf("send: %d %s %s", code, out, errOut)
			}
			reqs := s.waitCount(t, i+1, 10*time.Second)
			last := reqs[len(reqs)-1]
			if last.Path != "/"+tc.source {
				t.Errorf("delivered to %s, want /%s", last.Path, tc.source)
			}
			raw, _ := os.ReadFile(tc.file)
			if last.Body != string(raw) {
				t.Errorf("forwarded body differs from the raw body received")
			}
			var ev struct {
				Events []struct {
					Source string `json:"source"`
					Type   string `json:"type"`
				} `json:"events"`
			}
			p.getJSON("/api/events?limit=1&source="+tc.source, &ev)
			if len(ev.Events) == 0 || ev.Events[0].Type != tc.wantType {
				t.Errorf("journaled type = %+v, want %q", ev.Events, tc.wantType)
			}
		})
	}

	// A signature made for another body is refused by every verifying provider.
	for _, src := range []string{"payram", "shadhinpay", "svix", "payvost"} {
		t.Run(src+"/tampered", func(t *testing.T) {
			other := writeFile(t, t.TempDir(), "other.json", `{"reference_id":"x","status":"FILLED","event":"payment.completed","type":"x","id":"evt_x"}`)
			hdr := signedHeaders(t, cfg, src, other) // a genuine signature, for another body
			req, _ := http.NewRequest("POST", p.Public+pathOf(src), bytes.NewReader([]byte(`{"reference_id":"y","status":"FILLED","event":"payment.completed","type":"x","id":"evt_y"}`)))
			req.Header = hdr
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 401 {
				t.Errorf("tampered body for %s answered %d, want 401", src, resp.StatusCode)
			}
		})
	}
}

func pathOf(source string) string {
	if source == "shadhinpay" {
		return "/webhooks/shadhinpay"
	}
	return "/webhooks/" + source
}

// signedHeaders captures the headers `payramd send` signs a file with, by
// sending it to a local recorder.
func signedHeaders(t *testing.T, cfg, source, file string) http.Header {
	t.Helper()
	got := make(chan http.Header, 1)
	rec := newSinkWith(t, func(r *http.Request) { got <- r.Header.Clone() })
	runCLI(t, nil, "send", "-c", cfg, "--source", source, "--url", rec, file)
	select {
	case h := <-got:
		return h
	case <-time.After(10 * time.Second):
		t.Fatal("send did not reach the recorder")
	}
	return nil
}
