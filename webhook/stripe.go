package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/payramd/payramd/config"
)

func init() { Register("stripe", newStripe) }

// stripe verifies Stripe-style signatures (Stripe itself, and the providers
// that copied it, such as Payvost): a header "t=<unix>,v1=<hex>[,v1=<hex>]"
// where each v1 is the hex HMAC-SHA256 of "<t>.<body>" keyed with the whole
// secret string, whsec_ included.
type stripe struct {
	secrets [][]byte
	header  string
	tol     time.Duration
}

var _ Provider = (*stripe)(nil)

func newStripe(src *config.Source) (Provider, error) {
	p := &stripe{header: src.Fields.String("header"), tol: readTolerance(src.Fields)}
	if p.header == "" {
		p.header = "Stripe-Signature"
	}
	p.secrets = requireSecrets(src)
	return p, nil
}

func (p *stripe) sensitiveHeaders() []string { return []string{p.header} }

func (p *stripe) mac(secret []byte, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Verify checks the timestamp in both directions, unlike Stripe's own
// libraries, which accept any future timestamp: a signature over a
// far-future time would otherwise stay replayable until then. Entries other
// than t and v1 (v0 is Stripe's test scheme) are ignored.
func (p *stripe) Verify(r *Request) error {
	header, ok := headerValue(r.Header, p.header)
	if !ok {
		return errSignature("missing %s header", p.header)
	}
	var ts string
	var sigs [][]byte
	for _, item := range strings.Split(header, ",") {
		k, v, found := strings.Cut(strings.TrimSpace(item), "=")
		if !found {
			continue
		}
		switch k {
		case "t":
			if ts != "" && ts != v {
				return errSignature("%s holds two different timestamps", p.header)
			}
			ts = v
		case "v1":
			if b, err := hex.DecodeString(v); err == nil {
				sigs = append(sigs, b)
			}
		}
	}
	if ts == "" {
		return errSignature("%s holds no t= timestamp", p.header)
	}
	if err := checkTimestamp(ts, r.Now, p.tol); err != nil {
		return err
	}
	if len(sigs) == 0 {
		return errSignature("%s holds no v1 signature", p.header)
	}
	if !anyMACMatches(p.secrets, sigs, func(s []byte) []byte { return p.mac(s, ts, r.Body) }) {
		return errSignature("%s does not match the body", p.header)
	}
	return nil
}

// Sign writes "t=<now>,v1=<hex>" with the newest secret.
func (p *stripe) Sign(h http.Header, body []byte, now time.Time) error {
	if len(p.secrets) == 0 {
		return errSignature("no secret configured")
	}
	ts := strconv.FormatInt(now.Unix(), 10)
	h.Set(p.header, "t="+ts+",v1="+hex.EncodeToString(p.mac(p.secrets[len(p.secrets)-1], ts, body)))
	return nil
}

// Normalize takes the event id and type from the payload's top-level id and
// type, which Stripe keeps stable across retries of one event.
func (p *stripe) Normalize(r *Request) (*Normalized, error) {
	payload, err := decodeObject(r.Body)
	if err != nil {
		return nil, err
	}
	return &Normalized{ID: stringField(payload, "id"), Type: stringField(payload, "type"), Payload: payload}, nil
}
