package webhook

import (
	"crypto/tls"
	"fmt"
	"sync"
	"sync/atomic"
)

// CertReloader serves a certificate that can be replaced while the listener
// runs: certbot and friends renew certificates in place, and SIGHUP should
// pick the new one up without dropping connections. A failed reload keeps
// the current certificate, so a half-written renewal never takes TLS down.
// A config reload may point it at other files (SetFiles).
type CertReloader struct {
	mu                sync.Mutex // guards the file names and orders loads
	certFile, keyFile string
	cert              atomic.Pointer[tls.Certificate]
}

// NewCertReloader loads the key pair once; an error here is a start-up error.
func NewCertReloader(certFile, keyFile string) (*CertReloader, error) {
	c := &CertReloader{certFile: certFile, keyFile: keyFile}
	if err := c.Reload(); err != nil {
		return nil, err
	}
	return c, nil
}

// Reload reads the key pair again and, when it is valid, serves it from the
// next handshake on.
func (c *CertReloader) Reload() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.load(c.certFile, c.keyFile)
}

// SetFiles loads the key pair from other files and, when it is valid,
// serves it from the next handshake on and reloads from these files from
// then on. When it is not, the current certificate and files stay.
func (c *CertReloader) SetFiles(certFile, keyFile string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.load(certFile, keyFile); err != nil {
		return err
	}
	c.certFile, c.keyFile = certFile, keyFile
	return nil
}

// Files returns the certificate and key files in use.
func (c *CertReloader) Files() (certFile, keyFile string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.certFile, c.keyFile
}

// load serves the key pair in certFile and keyFile. c.mu is held.
func (c *CertReloader) load(certFile, keyFile string) error {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return fmt.Errorf("loading TLS certificate %s and key %s: %w", certFile, keyFile, err)
	}
	c.cert.Store(&cert)
	return nil
}

// GetCertificate is for tls.Config.GetCertificate.
func (c *CertReloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return c.cert.Load(), nil
}

// TLSConfig returns a server configuration using the reloader, with TLS 1.2
// as the floor (every payment provider supports it).
func (c *CertReloader) TLSConfig() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: c.GetCertificate}
}
