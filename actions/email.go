package actions

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	netmail "net/mail"
	"net/textproto"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/payramd/payramd/config"
	"github.com/payramd/payramd/engine"
	"github.com/wneessen/go-mail"
	mailsmtp "github.com/wneessen/go-mail/smtp"
)

func init() { Register("email", newEmail) }

var _ Action = (*Email)(nil)

// Email sends a text/plain message over SMTP:
//
//	smtp: {host, port, username, password (or password_file), tls, auth, ca_file}
//	from, to, cc, subject, body
//
// tls is starttls (default, port 587), tls (implicit TLS, port 465) or none
// (port 25). TLS is mandatory unless tls: none says otherwise, and
// credentials are never sent over an unencrypted connection except to
// localhost. ca_file adds the PEM certificates of a private CA (a relay on
// the LAN, a test server) to the system roots. auth is plain (default),
// login or cram-md5, used when username is set.
//
// The Message-ID is derived from the job id, so the copies that
// at-least-once delivery may send thread together in the recipient's client.
type Email struct {
	host     string
	port     int
	tlsMode  string
	username string
	password config.Secret
	auth     mail.SMTPAuthType
	roots    *x509.CertPool

	from    *engine.Template
	to      []*engine.Template
	cc      []*engine.Template
	subject *engine.Template
	body    *engine.Template
}

var smtpAuthTypes = map[string]mail.SMTPAuthType{
	"plain":    mail.SMTPAuthPlain,
	"login":    mail.SMTPAuthLogin,
	"cram-md5": mail.SMTPAuthCramMD5,
}

func newEmail(c *config.Action) (Action, error) {
	s := newSpec(c)
	a := &Email{}
	if sm := s.sub("smtp"); sm != nil {
		a.readSMTP(sm)
		sm.done()
	} else {
		s.missing("smtp", " (smtp: {host: smtp.example.com, username: …, password: …})")
	}
	a.from = s.requiredTemplate("from", " (the sender, such as payramd@example.com)")
	if v, ok := constant(a.from); ok {
		if _, err := parseAddress(v); err != nil {
			s.errorf("from", "from: %v", err)
		}
	}
	var scs []*config.Scalar
	a.to, scs = s.templates("to")
	if len(a.to) == 0 {
		s.missing("to", " (one address or a list)")
	}
	checkAddressList(s, "to", a.to, scs)
	a.cc, scs = s.templates("cc")
	checkAddressList(s, "cc", a.cc, scs)
	a.subject = s.template("subject")
	a.body = s.template("body")
	if !s.ok() {
		return nil, errInvalid
	}
	return a, nil
}

func (a *Email) readSMTP(s *spec) {
	a.host = strings.TrimSpace(s.f.String("host"))
	if a.host == "" {
		s.missing("host", " (the mail server, such as smtp.example.com)")
	} else if strings.ContainsAny(a.host, ":/ ") {
		s.errorf("host", "host is a name or address only, such as smtp.example.com; put the port in port:")
	}
	a.tlsMode = s.f.OneOf("tls", "starttls", "starttls", "tls", "none")
	defPort := map[string]int{"starttls": 587, "tls": 465, "none": 25}[a.tlsMode]
	a.port = s.f.Int("port", defPort)
	if a.port < 1 || a.port > 65535 {
		s.errorf("port", "port must be between 1 and 65535, not %d", a.port)
	}
	a.username = s.f.String("username")
	a.password = s.f.Secret("password")
	if a.password != "" && a.username == "" {
		s.errorf("password", "password is set but username is not")
	}
	a.auth = smtpAuthTypes[s.f.OneOf("auth", "plain", "plain", "login", "cram-md5")]
	if a.username != "" && a.tlsMode == "none" && a.auth != mail.SMTPAuthCramMD5 && !isLocalhost(a.host) {
		s.warnf("tls", "tls: none with a username: the password cannot be sent over an unencrypted connection, so every message will fail; use starttls or tls")
	}
	if path := s.f.String("ca_file"); path != "" {
		if !filepath.IsAbs(path) {
			path = filepath.Join(filepath.Dir(s.f.File()), path)
		}
		pem, err := os.ReadFile(path)
		if err != nil {
			s.errorf("ca_file", "ca_file: cannot read: %v", err)
			return
		}
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			s.errorf("ca_file", "ca_file: %s holds no PEM certificate", path)
			return
		}
		a.roots = pool
	}
}

// isLocalhost matches the names go-mail sends plain or login credentials
// to without TLS: exactly these, not every loopback address (127.0.0.2
// fails there). CRAM-MD5 never sends the password, so it is not limited.
func isLocalhost(host string) bool {
	return host == "localhost" || host == "127.0.0.1" || host == "::1"
}

// checkAddressList validates the constant items of to/cc at load, and
// refuses an item that mixes a list with an address from the event
// ("ops@shop.example, {{ customer_email }}"), which would fail every job:
// an address from the event must be an item of its own.
func checkAddressList(s *spec, key string, ts []*engine.Template, scs []*config.Scalar) {
	for i, t := range ts {
		if v, ok := constant(t); ok {
			if _, err := parseAddressList(v); err != nil {
				s.errorAt(scs[i].Pos, "%s: %v", key, err)
			}
			continue
		}
		if !fromConfig(t) && strings.Contains(strings.Join(t.Literals(), ""), ",") {
			s.errorAt(scs[i].Pos, "%s: an item with an address from the event must be that one address; write the others as items of their own (%s: [ops@…, \"{{ customer_email }}\"])", key, key)
		}
	}
}

// parseAddress accepts one RFC 5322 address, such as a@example.com or
// "Ops <ops@example.com>".
func parseAddress(s string) (*netmail.Address, error) {
	addr, err := netmail.ParseAddress(strings.TrimSpace(s))
	if err != nil {
		return nil, fmt.Errorf("%q is not an email address such as ops@example.com", s)
	}
	return addr, nil
}

// parseAddressList accepts one address or several separated by commas: a
// constant item may list several (build allows only one from a placeholder).
func parseAddressList(s string) ([]*netmail.Address, error) {
	if strings.TrimSpace(s) == "" {
		return nil, errors.New("empty address")
	}
	list, err := netmail.ParseAddressList(strings.TrimSpace(s))
	if err != nil {
		return nil, fmt.Errorf("%q is not an email address such as ops@example.com", s)
	}
	return list, nil
}

// message is a rendered email.
type message struct {
	from          *netmail.Address
	to, cc        []*netmail.Address
	subject, body string
}

func (a *Email) build(j *Job) (*message, error) {
	env := j.Event.Env()
	m := &message{}
	from, err := render("from", a.from, env)
	if err != nil {
		return nil, err
	}
	if m.from, err = parseAddress(from); err != nil {
		return nil, fmt.Errorf("from: %v", err)
	}
	for _, list := range []struct {
		name string
		ts   []*engine.Template
		dst  *[]*netmail.Address
	}{{"to", a.to, &m.to}, {"cc", a.cc, &m.cc}} {
		vs, err := renderAll(list.name, list.ts, env)
		if err != nil {
			return nil, err
		}
		for i, v := range vs {
			addrs, err := parseAddressList(v)
			if err != nil {
				return nil, fmt.Errorf("%s: %v", list.name, err)
			}
			// A value from the event (a customer's email, say) is one
			// recipient: "me@x, victim@y, …" must not turn the merchant's
			// relay into a mailer for whoever fills in the field.
			if len(addrs) > 1 && !fromConfig(list.ts[i]) {
				return nil, fmt.Errorf("%s: %q holds %d addresses, but an address from the event must be exactly one (write one %s: item per recipient)", list.name, v, len(addrs), list.name)
			}
			*list.dst = append(*list.dst, addrs...)
		}
	}
	if len(m.to) == 0 {
		return nil, errors.New("to: no recipient")
	}
	if m.subject, err = render("subject", a.subject, env); err != nil {
		return nil, err
	}
	// A line break in a header would end it; a subject is one line.
	m.subject = strings.Join(strings.Fields(m.subject), " ")
	if a.subject == nil {
		m.subject = "payramd: " + j.Rule
	}
	if a.body == nil {
		payload, _ := engine.EncodeJSON(j.Event.Payload)
		m.body = fmt.Sprintf("Rule %s matched event %s from %s.\n\n%s\n", j.Rule, j.Event.ID, j.Event.Source, payload)
	} else if m.body, err = render("body", a.body, env); err != nil {
		return nil, err
	}
	return m, nil
}

func addrStrings(as []*netmail.Address) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.String()
	}
	return out
}

// Render shows the message and the server; the password is masked.
func (a *Email) Render(j *Job) (*Rendered, error) {
	m, err := a.build(j)
	if err != nil {
		return nil, err
	}
	out := &Rendered{Type: "email", Fields: []KV{{"smtp", net.JoinHostPort(a.host, strconv.Itoa(a.port)) + " (" + a.tlsMode + ")"}}}
	if a.username != "" {
		out.Fields = append(out.Fields, KV{"username", a.username}, KV{"password", masked})
	}
	out.Fields = append(out.Fields,
		KV{"from", m.from.String()},
		KV{"to", strings.Join(addrStrings(m.to), ", ")})
	if len(m.cc) > 0 {
		out.Fields = append(out.Fields, KV{"cc", strings.Join(addrStrings(m.cc), ", ")})
	}
	out.Fields = append(out.Fields, KV{"subject", m.subject}, KV{"body", m.body})
	return out, nil
}

func (a *Email) tlsConfig() *tls.Config {
	return &tls.Config{ServerName: a.host, MinVersion: tls.VersionTLS12, RootCAs: a.roots}
}

// Run sends the message once. A client is built per attempt: it is cheap,
// and it lets the connection be closed the moment ctx expires.
func (a *Email) Run(ctx context.Context, j *Job) Result {
	m, err := a.build(j)
	if err != nil {
		return permanent(err, "")
	}
	msg := mail.NewMsg()
	if err := msg.From(m.from.String()); err != nil {
		return permanent(fmt.Errorf("from: %v", err), "")
	}
	if err := msg.To(addrStrings(m.to)...); err != nil {
		return permanent(fmt.Errorf("to: %v", err), "")
	}
	if len(m.cc) > 0 {
		if err := msg.Cc(addrStrings(m.cc)...); err != nil {
			return permanent(fmt.Errorf("cc: %v", err), "")
		}
	}
	msg.Subject(m.subject)
	msg.SetBodyString(mail.TypeTextPlain, m.body)
	msg.SetDate()
	msg.SetMessageIDWithValue(messageID(j.ID, m.from.Address))
	msg.SetUserAgent(userAgent)
	// RFC 3834: keeps vacation responders from answering an alert.
	msg.SetGenHeader(mail.Header("Auto-Submitted"), "auto-generated")

	// Go-mail bounds each SMTP command by its own timeout, not by ctx, so
	// the connection is closed when ctx ends: the attempt then returns at
	// its deadline even when the server stops answering mid-conversation.
	var stop func() bool
	dial := func(dctx context.Context, network, addr string) (net.Conn, error) {
		d := &net.Dialer{}
		var conn net.Conn
		var err error
		if a.tlsMode == "tls" {
			conn, err = (&tls.Dialer{NetDialer: d, Config: a.tlsConfig()}).DialContext(dctx, network, addr)
		} else {
			conn, err = d.DialContext(dctx, network, addr)
		}
		if err != nil {
			return nil, err
		}
		stop = context.AfterFunc(ctx, func() { conn.Close() })
		return conn, nil
	}
	// Go-mail's own per-command timeout is set past the deadline, so that
	// ctx (closing the connection) is what ends a stuck attempt and the
	// error says "no answer in time" rather than a bare i/o timeout.
	timeout := 30 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		timeout = max(time.Until(dl), 0) + time.Second
	}
	opts := []mail.Option{
		mail.WithPort(a.port),
		mail.WithTimeout(timeout),
		mail.WithDialContextFunc(dial),
		mail.WithTLSConfig(a.tlsConfig()),
	}
	switch a.tlsMode {
	case "starttls":
		opts = append(opts, mail.WithTLSPolicy(mail.TLSMandatory))
	case "tls":
		// The dialer speaks TLS itself; go-mail must not try STARTTLS.
		opts = append(opts, mail.WithSSL(), mail.WithTLSPolicy(mail.NoTLS))
	case "none":
		// Go-mail insists on TLS by default; none must be explicit.
		opts = append(opts, mail.WithTLSPolicy(mail.NoTLS))
	}
	if a.username != "" {
		opts = append(opts, mail.WithSMTPAuth(a.auth), mail.WithUsername(a.username), mail.WithPassword(a.password.Reveal()))
	}
	client, err := mail.NewClient(a.host, opts...)
	if err != nil {
		return permanent(fmt.Errorf("smtp: %v", err), "")
	}
	err = client.DialAndSendWithContext(ctx, msg)
	if stop != nil {
		stop()
	}
	where := "smtp " + net.JoinHostPort(a.host, strconv.Itoa(a.port))
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return retryable(&timeoutError{what: where + ": no answer in time (" + firstLine(err.Error()) + ")", err: ctxErr}, "")
		}
		msg := where + ": " + scrub(err.Error(), a.password)
		var unknownCA x509.UnknownAuthorityError
		if errors.As(err, &unknownCA) {
			msg += " (if the server's certificate comes from a private CA, set smtp.ca_file)"
		}
		err = &safeError{msg: msg, err: err}
		if smtpRetryable(err) {
			return retryable(err, "")
		}
		return permanent(err, "")
	}
	return success(fmt.Sprintf("%s accepted the message for %s", where, strings.Join(addrStrings(append(m.to, m.cc...)), ", ")))
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// scrub removes a secret from a message, in case a server echoes it. A
// short one (under 8 bytes) is replaced only where it is a whole word: a
// password "p" would otherwise turn "does not support STARTTLS" into "does
// not su<redacted><redacted>ort", garbling the error and showing where the
// password's letters occur (found by a QA pass). A longer one found inside
// a word is no coincidence and is replaced there too.
func scrub(s string, secret config.Secret) string {
	word := secret.Reveal()
	switch {
	case word == "":
		return s
	case len(word) >= 8:
		return strings.ReplaceAll(s, word, masked)
	}
	var b strings.Builder
	for {
		i := strings.Index(s, word)
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		end := i + len(word)
		if wordChar(s[:i], true) || wordChar(s[end:], false) {
			b.WriteString(s[:i+1]) // inside a longer word: keep, look further on
			s = s[i+1:]
			continue
		}
		b.WriteString(s[:i])
		b.WriteString(masked)
		s = s[end:]
	}
}

// wordChar reports whether the character next to a match continues a word
// (a letter or digit): the last one of before, or the first one of after.
func wordChar(s string, before bool) bool {
	if s == "" {
		return false
	}
	r, _ := utf8.DecodeRuneInString(s)
	if before {
		r, _ = utf8.DecodeLastRuneInString(s)
	}
	return unicode.IsLetter(r) || unicode.IsDigit(r)
}

// messageID builds <payramd.JOBID@domain-of-from>, stable across attempts.
func messageID(jobID, from string) string {
	domain := "payramd.invalid"
	if i := strings.LastIndexByte(from, '@'); i >= 0 && i+1 < len(from) {
		domain = from[i+1:]
	}
	var b strings.Builder
	b.WriteString("payramd.")
	for _, r := range jobID {
		if r < 128 && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_.", r)) {
			b.WriteRune(r)
		} else {
			fmt.Fprintf(&b, "=%02X", r)
		}
	}
	return b.String() + "@" + domain
}

// smtpRetryable follows SMTP's own reply classes: 4xx is "try again later",
// 5xx is "this will not work". Failures to connect are retried;
// configuration mistakes (no TLS where it is required, an authentication
// mechanism the server lacks, a certificate that does not verify) are not.
func smtpRetryable(err error) bool {
	var se *mail.SendError
	if errors.As(err, &se) {
		switch code := se.ErrorCode(); {
		case code >= 500:
			return false
		case code >= 400:
			return true
		}
		switch se.Reason {
		case mail.ErrGetSender, mail.ErrGetRcpts, mail.ErrNoUnencoded:
			return false
		}
		return retryableTransport(err)
	}
	var tp *textproto.Error
	if errors.As(err, &tp) {
		return tp.Code < 500
	}
	if errors.Is(err, mailsmtp.ErrUnencrypted) || errors.Is(err, mailsmtp.ErrWrongHostname) {
		return false
	}
	msg := err.Error()
	if strings.Contains(msg, "does not support") || strings.Contains(msg, "not supported") {
		return false
	}
	return retryableTransport(err)
}
