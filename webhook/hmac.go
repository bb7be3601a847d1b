package webhook

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"hash"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/payramd/payramd/config"
)

func init() { Register("hmac", newHMAC) }

// hmacProvider verifies the common "HMAC of the raw body in a header" scheme
// (GitHub, Shopify, ShadhinPay, Payvost and many more), configured by
// header, prefix, encoding and algorithm rather than by provider name, so a
// merchant can add a provider payramd has never heard of.
type hmacProvider struct {
	secrets  [][]byte
	header   string
	prefix   string
	base64   bool
	newHash  func() hash.Hash
	tsHeader string // "" when the scheme signs no timestamp
	tol      time.Duration
}

var _ Provider = (*hmacProvider)(nil)

func newHMAC(src *config.Source) (Provider, error) {
	f := src.Fields
	p := &hmacProvider{
		header:   f.String("header"),
		prefix:   f.String("prefix"),
		base64:   f.OneOf("encoding", "hex", "hex", "base64") == "base64",
		tsHeader: f.String("timestamp_header"),
	}
	if p.header == "" && !f.Problems().HasErrorAt(f.KeyPos("header")) {
		f.Errorf("header", "provider hmac needs header: the request header the signature arrives in, such as X-Hub-Signature-256")
	}
	switch f.OneOf("algorithm", "sha256", "sha256", "sha512", "sha1") {
	case "sha512":
		p.newHash = sha512.New
	case "sha1":
		p.newHash = sha1.New
	default:
		p.newHash = sha256.New
	}
	if p.tsHeader != "" {
		p.tol = readTolerance(f)
	} else if f.Has("tolerance") {
		f.Warnf("tolerance", "tolerance has no effect without timestamp_header")
	}
	p.secrets = requireSecrets(src)
	return p, nil
}

func (p *hmacProvider) sensitiveHeaders() []string { return []string{p.header} }

// mac computes the MAC over the body, or over "<timestamp>.<body>" with the
// timestamp exactly as received (re-formatting it would break signatures
// made over, say, a leading zero).
func (p *hmacProvider) mac(secret []byte, ts string, body []byte) []byte {
	m := hmac.New(p.newHash, secret)
	if p.tsHeader != "" {
		m.Write([]byte(ts))
		m.Write([]byte{'.'})
	}
	m.Write(body)
	return m.Sum(nil)
}

// Verify accepts the header repeated, or several signatures in one value
// separated by commas or spaces (neither occurs inside hex or base64), so
// that a sender rotating its secret can send both signatures.
func (p *hmacProvider) Verify(r *Request) error {
	values := headerValues(r.Header, p.header)
	if len(values) == 0 {
		return errSignature("missing %s header", p.header)
	}
	var ts string
	if p.tsHeader != "" {
		var ok bool
		if ts, ok = headerValue(r.Header, p.tsHeader); !ok {
			return errSignature("missing %s header", p.tsHeader)
		}
		if err := checkTimestamp(ts, r.Now, p.tol); err != nil {
			return err
		}
	}
	split := func(c rune) bool { return c == ',' || c == ' ' || c == '\t' }
	if strings.ContainsAny(p.prefix, ", \t") {
		// A prefix with a separator in it cannot be split around.
		split = func(rune) bool { return false }
	}
	var sigs [][]byte
	for _, v := range values {
		for _, tok := range strings.FieldsFunc(strings.TrimSpace(v), split) {
			if p.prefix != "" {
				if len(tok) < len(p.prefix) || !strings.EqualFold(tok[:len(p.prefix)], p.prefix) {
					continue
				}
				tok = tok[len(p.prefix):]
			}
			if b, ok := p.decode(tok); ok {
				sigs = append(sigs, b)
			}
		}
	}
	if len(sigs) == 0 {
		if p.prefix != "" {
			return errSignature("%s holds no %q signature", p.header, p.prefix)
		}
		return errSignature("%s is not valid %s", p.header, p.encodingName())
	}
	if !anyMACMatches(p.secrets, sigs, func(s []byte) []byte { return p.mac(s, ts, r.Body) }) {
		return errSignature("%s does not match the body", p.header)
	}
	return nil
}

func (p *hmacProvider) encodingName() string {
	if p.base64 {
		return "base64"
	}
	return "hex"
}

// decode accepts any base64 alphabet and padding: the decoded bytes still
// have to equal the MAC, so leniency here costs nothing.
func (p *hmacProvider) decode(s string) ([]byte, bool) {
	if !p.base64 {
		b, err := hex.DecodeString(s)
		return b, err == nil
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, true
		}
	}
	return nil, false
}

// Sign sets the signature header (and the timestamp header when configured),
// lower-case hex or padded standard base64, as most senders write them.
func (p *hmacProvider) Sign(h http.Header, body []byte, now time.Time) error {
	if len(p.secrets) == 0 {
		return errSignature("no secret configured")
	}
	var ts string
	if p.tsHeader != "" {
		ts = strconv.FormatInt(now.Unix(), 10)
		h.Set(p.tsHeader, ts)
	}
	mac := p.mac(p.secrets[len(p.secrets)-1], ts, body)
	enc := hex.EncodeToString(mac)
	if p.base64 {
		enc = base64.StdEncoding.EncodeToString(mac)
	}
	h.Set(p.header, p.prefix+enc)
	return nil
}

// Normalize decodes a JSON object. meta.type comes from a top-level event or
// type string, the two names such providers use (ShadhinPay's "event",
// Stripe-like "type").
func (p *hmacProvider) Normalize(r *Request) (*Normalized, error) {
	payload, err := decodeObject(r.Body)
	if err != nil {
		return nil, err
	}
	// No delivery id is taken from a header: none is covered by these
	// signatures, so a captured delivery replayed with a fresh id would
	// run its actions again. The event id is the hash of the signed body;
	// a delivery-id header stays visible to rules in meta.headers.
	return &Normalized{Type: genericType(payload), Payload: payload}, nil
}

func genericType(payload map[string]any) string {
	if s := stringField(payload, "event"); s != "" {
		return s
	}
	return stringField(payload, "type")
}
