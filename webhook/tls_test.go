package webhook

import (
	"crypto/tls"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/payramd/payramd/internal/testcert"
)

// TestCertReloader serves TLS from a reloader, renews the certificate in
// place, and checks that a broken renewal keeps the old one.
func TestCertReloader(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := testcert.Write(t, dir, 1)
	cr, err := NewCertReloader(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cr.TLSConfig())
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer("", http.NotFoundHandler())
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()

	serial := func() int64 {
		conn, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // self-signed test certificate
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
	}
	if s := serial(); s != 1 {
		t.Fatalf("serial %d", s)
	}
	testcert.Write(t, dir, 2)
	if err := cr.Reload(); err != nil {
		t.Fatal(err)
	}
	if s := serial(); s != 2 {
		t.Fatalf("after reload: serial %d", s)
	}
	if err := os.WriteFile(keyFile, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := cr.Reload(); err == nil {
		t.Fatal("broken key pair reloaded")
	}
	if s := serial(); s != 2 {
		t.Fatalf("after failed reload: serial %d", s)
	}
	// A config reload pointing at other files: served, and reloaded from
	// then on; files that do not load keep the certificate and the files.
	other := filepath.Join(dir, "other")
	if err := os.Mkdir(other, 0o700); err != nil {
		t.Fatal(err)
	}
	c3, k3 := testcert.Write(t, other, 3)
	if err := cr.SetFiles(c3, k3); err != nil {
		t.Fatal(err)
	}
	if s := serial(); s != 3 {
		t.Fatalf("after SetFiles: serial %d", s)
	}
	if err := cr.SetFiles(filepath.Join(dir, "missing.pem"), k3); err == nil {
		t.Fatal("SetFiles to a missing certificate succeeded")
	}
	if c, k := cr.Files(); c != c3 || k != k3 || serial() != 3 {
		t.Fatalf("after a failed SetFiles: files %s %s, serial %d", c, k, serial())
	}
	testcert.Write(t, other, 4)
	if err := cr.Reload(); err != nil || serial() != 4 {
		t.Fatalf("Reload after SetFiles does not read the new files: %v", err)
	}
	if _, err := NewCertReloader(filepath.Join(dir, "missing.pem"), keyFile); err == nil {
		t.Fatal("missing certificate accepted at start")
	}
}
