package actions

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"mime/quotedprintable"
	"net"
	netmail "net/mail"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"github.com/payramd/payramd/config"
)

// mailServer is an in-process SMTP server that keeps what it receives.
type mailServer struct {
	addr string
	// Settings, fixed before the first session.
	user, pass string     // AUTH PLAIN credentials; empty: no AUTH offered
	rcptErr    error      // returned to every RCPT TO
	mu         sync.Mutex // guards got
	got        []received
}

type received struct {
	from   string
	to     []string
	authed string
	data   []byte
}

type mailSession struct {
	srv    *mailServer
	cur    received
	authed string
}

func (s *mailServer) NewSession(*smtp.Conn) (smtp.Session, error) { return &mailSession{srv: s}, nil }

func (m *mailSession) AuthMechanisms() []string {
	if m.srv.user == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (m *mailSession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != m.srv.user || pass != m.srv.pass {
			return &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "Authentication credentials invalid"}
		}
		m.authed = user
		return nil
	}), nil
}

func (m *mailSession) Mail(from string, _ *smtp.MailOptions) error {
	if m.srv.user != "" && m.authed == "" {
		return &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "Authentication required"}
	}
	m.cur = received{from: from, authed: m.authed}
	return nil
}

func (m *mailSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	if m.srv.rcptErr != nil {
		return m.srv.rcptErr
	}
	m.cur.to = append(m.cur.to, to)
	return nil
}

func (m *mailSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	m.cur.data = b
	m.srv.mu.Lock()
	m.srv.got = append(m.srv.got, m.cur)
	m.srv.mu.Unlock()
	return nil
}

func (m *mailSession) Reset()        { m.cur = received{} }
func (m *mailSession) Logout() error { return nil }

// startMailServer serves on 127.0.0.1:0. mode is "none" (plain text),
// "starttls" (plain text offering STARTTLS) or "tls" (implicit TLS).
func startMailServer(t *testing.T, s *mailServer, mode string, cert *tls.Certificate) *mailServer {
	t.Helper()
	srv := smtp.NewServer(s)
	srv.Domain = "localhost"
	srv.ReadTimeout, srv.WriteTimeout = 5*time.Second, 5*time.Second
	srv.ErrorLog = silentLog{}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	switch mode {
	case "starttls":
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{*cert}}
	case "tls":
		l = tls.NewListener(l, &tls.Config{Certificates: []tls.Certificate{*cert}})
	}
	s.addr = l.Addr().String()
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return s
}

type silentLog struct{}

func (silentLog) Printf(string, ...any) {}
func (silentLog) Println(...any)        {}

func (s *mailServer) port() string { _, p, _ := net.SplitHostPort(s.addr); return p }

func (s *mailServer) only(t *testing.T) received {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.got) != 1 {
		t.Fatalf("server received %d messages, want 1", len(s.got))
	}
	return s.got[0]
}

// selfSigned makes a certificate for 127.0.0.1 and writes it as a CA file.
func selfSigned(t *testing.T) (*tls.Certificate, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "payramd test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:              []string{"localhost"},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, caFile
}

const smtpPassword = "hunter2-SMTP-pass"

const emailFields = `
from: "Payramd Alerts <alerts@shop.example>"
to: [ops@shop.example, "{{ customer_email }}"]
cc: boss@shop.example
subject: "Overpaid {{ reference_id }}"
body: "Over by {{ money(filled_amount_in_usd - amount) }} USD = too much.\n"
`

func TestEmailDelivers(t *testing.T) {
	s := startMailServer(t, &mailServer{}, "none", nil)
	act := mustCompile(t, "mail", `
type: email
smtp: {host: 127.0.0.1, port: `+s.port()+`, tls: none}
`+emailFields)
	j := testJob(t, "mail")
	res := act.Run(context.Background(), j)
	if res.Err != nil {
		t.Fatalf("Run: %v", res.Err)
	}
	got := s.only(t)
	if got.from != "alerts@shop.example" {
		t.Errorf("MAIL FROM %q", got.from)
	}
	if strings.Join(got.to, ",") != "ops@shop.example,buyer@example.com,boss@shop.example" {
		t.Errorf("RCPT TO %v", got.to)
	}
	msg, err := netmail.ReadMessage(bytes.NewReader(got.data))
	if err != nil {
		t.Fatalf("message: %v\n%s", err, got.data)
	}
	for name, want := range map[string]string{
		"Subject":        "Overpaid ref-42",
		"Auto-Submitted": "auto-generated",
		"Message-Id":     "<payramd.job_7f3a@shop.example>",
	} {
		if v := msg.Header.Get(name); v != want {
			t.Errorf("%s: %q, want %q", name, v, want)
		}
	}
	if _, err := msg.Header.Date(); err != nil {
		t.Errorf("Date: %v", err)
	}
	if !strings.Contains(msg.Header.Get("Cc"), "boss@shop.example") || !strings.Contains(msg.Header.Get("From"), "alerts@shop.example") {
		t.Errorf("From %q Cc %q", msg.Header.Get("From"), msg.Header.Get("Cc"))
	}
	if ct := msg.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type %q", ct)
	}
	var body io.Reader = msg.Body
	if strings.EqualFold(msg.Header.Get("Content-Transfer-Encoding"), "quoted-printable") {
		body = quotedprintable.NewReader(body)
	}
	b, _ := io.ReadAll(body)
	if got, want := strings.ReplaceAll(string(b), "\r\n", "\n"), "Over by 5.05 USD = too much.\n"; got != want {
		t.Errorf("body %q, want %q", got, want)
	}
	rd, err := act.Render(j)
	if err != nil {
		t.Fatal(err)
	}
	if !hasField(rd, "to", "<ops@shop.example>, <buyer@example.com>") || !hasField(rd, "subject", "Overpaid ref-42") {
		t.Errorf("render %+v", rd.Fields)
	}
}

func TestEmailSTARTTLSWithAuth(t *testing.T) {
	cert, caFile := selfSigned(t)
	s := startMailServer(t, &mailServer{user: "payramd", pass: smtpPassword}, "starttls", cert)
	act := mustCompile(t, "mail", `
type: email
smtp:
  host: 127.0.0.1
  port: `+s.port()+`
  username: payramd
  password: `+smtpPassword+`
  ca_file: `+caFile+`
`+emailFields)
	j := testJob(t, "mail")
	res := act.Run(context.Background(), j)
	if res.Err != nil {
		t.Fatalf("Run: %v", res.Err)
	}
	if got := s.only(t); got.authed != "payramd" {
		t.Errorf("authenticated as %q", got.authed)
	}
	rd, _ := act.Render(j)
	assertNoSecrets(t, []string{smtpPassword}, res, rd)
	if !hasField(rd, "password", "<redacted>") {
		t.Errorf("render %+v", rd.Fields)
	}

	// Without the CA, the certificate does not verify: not retryable.
	act = mustCompile(t, "mail2", "type: email\nsmtp: {host: 127.0.0.1, port: "+s.port()+", username: payramd, password: "+smtpPassword+"}\n"+emailFields)
	res = act.Run(context.Background(), j)
	if res.Err == nil || res.Retryable {
		t.Errorf("untrusted certificate: %v retryable=%v", res.Err, res.Retryable)
	}
	assertNoSecrets(t, []string{smtpPassword}, res)
}

func TestEmailImplicitTLS(t *testing.T) {
	cert, caFile := selfSigned(t)
	s := startMailServer(t, &mailServer{user: "u", pass: smtpPassword}, "tls", cert)
	act := mustCompile(t, "mail", "type: email\nsmtp: {host: 127.0.0.1, port: "+s.port()+", tls: tls, username: u, password: "+smtpPassword+", ca_file: "+caFile+"}\n"+emailFields)
	if res := act.Run(context.Background(), testJob(t, "mail")); res.Err != nil {
		t.Fatalf("Run: %v", res.Err)
	}
	if got := s.only(t); got.authed != "u" {
		t.Errorf("authenticated as %q", got.authed)
	}
}

func TestEmailClassifiesFailures(t *testing.T) {
	cert, caFile := selfSigned(t)
	refused := func() string {
		l, _ := net.Listen("tcp", "127.0.0.1:0")
		defer l.Close()
		_, p, _ := net.SplitHostPort(l.Addr().String())
		return p
	}()
	tests := []struct {
		name      string
		server    *mailServer
		mode      string
		smtp      string // extra smtp: keys
		retryable bool
		errHas    string
	}{
		{"450 mailbox busy", &mailServer{rcptErr: &smtp.SMTPError{Code: 450, EnhancedCode: smtp.EnhancedCode{4, 2, 1}, Message: "Mailbox busy"}}, "none", "tls: none", true, "450"},
		{"550 no such user", &mailServer{rcptErr: &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "No such user"}}, "none", "tls: none", false, "550"},
		{"535 bad password", &mailServer{user: "u", pass: "the-right-one"}, "starttls", "username: u, password: " + smtpPassword + ", ca_file: " + caFile, false, "535"},
		{"no STARTTLS offered", &mailServer{}, "none", "tls: starttls", false, "STARTTLS"},
		{"connection refused", nil, "", "tls: none, port: " + refused, true, "refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			port := ""
			if tt.server != nil {
				port = ", port: " + startMailServer(t, tt.server, tt.mode, cert).port()
			}
			act := mustCompile(t, "m", "type: email\nsmtp: {host: 127.0.0.1, "+tt.smtp+port+"}\n"+emailFields)
			res := act.Run(context.Background(), testJob(t, "m"))
			if res.Err == nil {
				t.Fatal("no error")
			}
			if res.Retryable != tt.retryable || !strings.Contains(res.Err.Error(), tt.errHas) {
				t.Errorf("%v retryable=%v, want retryable=%v mentioning %q", res.Err, res.Retryable, tt.retryable, tt.errHas)
			}
			assertNoSecrets(t, []string{smtpPassword}, res)
		})
	}
}

func TestEmailHonorsDeadline(t *testing.T) {
	// A server that accepts connections and never says hello.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
		}
	}()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	act := mustCompile(t, "m", "type: email\nsmtp: {host: 127.0.0.1, port: "+port+", tls: none}\n"+emailFields)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	res := act.Run(ctx, testJob(t, "m"))
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("Run took %v with a 300ms deadline", took)
	}
	if res.Err == nil || !res.Retryable || !errors.Is(res.Err, context.DeadlineExceeded) {
		t.Errorf("silent server: %v retryable=%v", res.Err, res.Retryable)
	}
}

func TestEmailRenderedAddressIsChecked(t *testing.T) {
	act := mustCompile(t, "m", "type: email\nsmtp: {host: 127.0.0.1, tls: none}\nfrom: a@b.example\nto: '{{ note }}'\n")
	res := act.Run(context.Background(), testJob(t, "m"))
	if res.Err == nil || res.Retryable || !strings.Contains(res.Err.Error(), `"hello" is not an email address`) {
		t.Errorf("got %v retryable=%v", res.Err, res.Retryable)
	}
}

// TestEmailAddressFromEventIsOneRecipient: a customer who fills in an email
// field with "me@x, victim@y, grp:v2@z,v3@z;" must not get the merchant's
// relay to mail everyone listed (found by a security review). An item
// made only of the config's own text may still list several, and nothing
// reaches the server.
func TestEmailAddressFromEventIsOneRecipient(t *testing.T) {
	s := startMailServer(t, &mailServer{}, "none", nil)
	act := mustCompile(t, "m", `
type: email
smtp: {host: 127.0.0.1, port: `+s.port()+`, tls: none}
from: alerts@shop.example
to: ["ops@shop.example, finance@shop.example", "{{ customer_email }}", "{{ meta.source }}@shop.example, {{ 'audit' }}@shop.example"]
subject: hi
body: hi
`)
	for _, evil := range []string{
		"buyer@example.com, attacker@evil.example",
		"grp: v2@evil.example, v3@evil.example;",
		"Buyer <buyer@example.com>, x@evil.example",
	} {
		j := testJob(t, "m")
		j.Event.Payload["customer_email"] = evil
		res := act.Run(context.Background(), j)
		if res.Err == nil || res.Retryable || !strings.Contains(res.Err.Error(), "an address from the event must be exactly one") {
			t.Errorf("%q: got %v retryable=%v; want a failure naming the rule", evil, res.Err, res.Retryable)
		}
	}
	s.mu.Lock()
	n := len(s.got)
	s.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d message(s) reached the server", n)
	}
	res := act.Run(context.Background(), testJob(t, "m"))
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	if got := strings.Join(s.only(t).to, ","); got != "ops@shop.example,finance@shop.example,buyer@example.com,payram@shop.example,audit@shop.example" {
		t.Errorf("RCPT TO %s", got)
	}
}

// TestEmailMixedItemRefusedAtLoad: an item listing a fixed address and one
// from the event would fail every job; check says so at load.
func TestEmailMixedItemRefusedAtLoad(t *testing.T) {
	_, probs := compileYAML(t, "m", "type: email\nsmtp: {host: 127.0.0.1, tls: none}\nfrom: a@b.example\nto: 'ops@shop.example, {{ customer_email }}'\n")
	if got := problemStrings(probs); len(got) != 1 || !strings.Contains(got[0], "an item with an address from the event must be that one address") {
		t.Errorf("problems %q", got)
	}
	_, probs = compileYAML(t, "m", "type: email\nsmtp: {host: 127.0.0.1, tls: none}\nfrom: a@b.example\nto: ['ops@shop.example', '{{ customer_email }}', '{{ meta.source }}@x.example, audit@x.example']\n")
	if probs.HasErrors() {
		t.Errorf("separate items refused: %q", problemStrings(probs))
	}
}

// TestEmailWarnsOfUnencryptedAuthAsGoMailDecides: check warns that tls:
// none with a username fails every message exactly when go-mail refuses to
// authenticate: plain or login auth to a host other than localhost,
// 127.0.0.1 or ::1. The warning used to be skipped for every loopback
// address (127.0.0.2 failed every message with no warning) and given for
// cram-md5, which sends no password and works without TLS.
func TestEmailWarnsOfUnencryptedAuthAsGoMailDecides(t *testing.T) {
	for _, tc := range []struct {
		host, auth string
		warn       bool
	}{
		{"smtp.example.com", "plain", true},
		{"10.0.0.5", "login", true},
		{"127.0.0.2", "plain", true},
		{"127.0.0.1", "plain", false},
		{"localhost", "login", false},
		{"10.0.0.5", "cram-md5", false},
	} {
		src := fmt.Sprintf("type: email\nsmtp: {host: %q, port: 25, username: u, password: p4ssw0rd, tls: none, auth: %s}\nfrom: a@example.com\nto: [b@example.com]\n", tc.host, tc.auth)
		_, probs := compileYAML(t, "m", src)
		if probs.HasErrors() {
			t.Fatalf("%s/%s: errors: %v", tc.host, tc.auth, probs.Err())
		}
		warned := false
		for _, p := range probs.List {
			if p.Warning && strings.Contains(p.Msg, "unencrypted") {
				warned = true
			}
		}
		if warned != tc.warn {
			t.Errorf("host %s, auth %s: warned %v, want %v (%v)", tc.host, tc.auth, warned, tc.warn, probs.List)
		}
	}
}

// TestScrub: a password a server echoes is removed from the error; a short
// one only where it is a whole word, so that "p" does not garble every
// word holding a p, and a long one wherever it occurs.
func TestScrub(t *testing.T) {
	tests := []struct{ msg, secret, want string }{
		{"550 does not support STARTTLS", "p", "550 does not support STARTTLS"},
		{"535 bad password p for ops", "p", "535 bad password <redacted> for ops"},
		{"535 auth ops:hunter2 rejected", "hunter2", "535 auth ops:<redacted> rejected"},
		{"535 auth hunter2x rejected", "hunter2", "535 auth hunter2x rejected"},
		{"535 auth xx-S3cretLongPassw0rd-yy and S3cretLongPassw0rdZ", "S3cretLongPassw0rd", "535 auth xx-<redacted>-yy and <redacted>Z"},
		{"ok", "", "ok"},
		{"p", "p", "<redacted>"},
		{"éplé p", "p", "éplé <redacted>"},
	}
	for _, tt := range tests {
		if got := scrub(tt.msg, config.Secret(tt.secret)); got != tt.want {
			t.Errorf("scrub(%q, %q) = %q, want %q", tt.msg, tt.secret, got, tt.want)
		}
	}
}
