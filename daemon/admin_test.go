package daemon

import "testing"

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
