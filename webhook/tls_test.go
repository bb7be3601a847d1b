package webhook

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// writeCert writes a self-signed certificate with the given serial.
func writeCert(t *testing.T, dir string, serial int64) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: "localhost"},
		DNSNames:     []string{"localhost"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// TestCertReloader serves TLS from a reloader, renews the certificate in
// place, and checks that a broken renewal keeps the old one.
func TestCertReloader(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := writeCert(t, dir, 1)
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
	writeCert(t, dir, 2)
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
	c3, k3 := writeCert(t, other, 3)
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
	writeCert(t, other, 4)
	if err := cr.Reload(); err != nil || serial() != 4 {
		t.Fatalf("Reload after SetFiles does not read the new files: %v", err)
	}
	if _, err := NewCertReloader(filepath.Join(dir, "missing.pem"), keyFile); err == nil {
		t.Fatal("missing certificate accepted at start")
	}
}
