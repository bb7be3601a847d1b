package webhook

import (
	"encoding/hex"
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

// A delivery-id header is not covered by an hmac signature, so it must not
// decide what is a duplicate: the same signed body replayed with a fresh id
// header is the same event.
func TestHMACReplayWithNewDeliveryIDIsDuplicate(t *testing.T) {
	const secret = "shadhin-secret"
	tab := compile(t, [2]string{"shop", "provider: hmac\nsecret: " + secret + "\nheader: X-Sig\nprefix: \"sha256=\"\n"})
	e := newEnv(t, tab)
	body := []byte(`{"event":"payment.completed","data":{"payment_id":"p1","amount":10}}`)
	sig := "sha256=" + hex.EncodeToString(hmacSHA256([]byte(secret), body))
	first := e.post("/webhooks/shop", http.Header{"X-Sig": {sig}, "X-Delivery": {"d-1"}}, body)
	replay := e.post("/webhooks/shop", http.Header{"X-Sig": {sig}, "X-Delivery": {"d-2"}}, body)
	if first.status != 200 || first.body["status"] != "accepted" {
		t.Fatalf("first delivery: %d %s", first.status, first.raw)
	}
	if replay.status != 200 || replay.body["status"] != "duplicate" || replay.body["id"] != first.body["id"] {
		t.Errorf("replay with a new id header: %d %s, want a duplicate of %s", replay.status, replay.raw, first.body["id"])
	}
}
