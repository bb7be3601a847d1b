package daemon

import (
	"testing"

	"github.com/payramd/payramd/journal"
)

// TestLocalHost: without an admin token, the API answers requests
// addressed to the machine by address or as localhost (or with no Host,
// which browsers always send), never a name that could be rebound.
func TestLocalHost(t *testing.T) {
	for host, want := range map[string]bool{
		"127.0.0.1:8081": true, "[::1]:8081": true, "localhost:8081": true, "LOCALHOST": true,
		"localhost.:8081": true, "[fe80::1%25lo]:8081": true, "10.0.0.5": true, "": true,
		"rebind.evil.example:8081": false, "localhost.evil.example": false, "127.0.0.1.nip.io": false,
	} {
		if got := localHost(host); got != want {
			t.Errorf("localHost(%q) = %v, want %v", host, got, want)
		}
	}
}

// TestViewEventBody: an event's full view carries its raw body as sent,
// as text when it is UTF-8 and as base64 otherwise; the list view does not.
func TestViewEventBody(t *testing.T) {
	text := &journal.Event{ID: "e", Body: []byte(`{"amount": "10.50" }`), Payload: []byte(`{"amount":10.50}`)}
	if v := viewEvent(text, true); v.Body != `{"amount": "10.50" }` || v.BodyBase64 != "" {
		t.Errorf("UTF-8 body: %+v", v)
	}
	if v := viewEvent(text, false); v.Body != "" || v.Payload != nil {
		t.Errorf("list view carries the body or payload: %+v", v)
	}
	bin := &journal.Event{ID: "e", Body: []byte{0xff, 0xfe, 'x'}}
	if v := viewEvent(bin, true); v.Body != "" || v.BodyBase64 != "//54" {
		t.Errorf("non-UTF-8 body: %+v", v)
	}
}
