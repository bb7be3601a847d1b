package webhook

import (
	"net/http"
	"testing"
)

// A PayRam GET whose payload is in the query string has an empty body, and
// X-Payram-Signature covers the body: the HMAC of nothing is the same for
// every such request, so it must not authenticate one. The legacy API-Key
// header still does.
func TestPayramQueryGETNeedsAPIKey(t *testing.T) {
	const secret = "pk_query_test"
	tab := compile(t, [2]string{"payram", "provider: payram\nsecret: " + secret + "\n"})
	e := newEnv(t, tab)
	path := "/webhooks/payram?reference_id=ref_q&payment_state=FILLED&amount=10"

	emptySig := payramHeader(secret, nil) // a genuine signature of the empty body
	if r := e.do(http.MethodGet, path, emptySig, nil); r.status != http.StatusUnauthorized {
		t.Errorf("query GET with a signature of the empty body: %d %s, want 401", r.status, r.raw)
	}
	withKey := http.Header{"Api-Key": {secret}}
	if r := e.do(http.MethodGet, path, withKey, nil); r.status != http.StatusOK {
		t.Errorf("query GET with the API-Key header: %d %s, want 200", r.status, r.raw)
	}
}
