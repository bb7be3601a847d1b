package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/payramd/payramd/config"
)

func init() { Register("standard-webhooks", newStandardWebhooks) }

const (
	swIDHeader        = "Webhook-Id"
	swTimestampHeader = "Webhook-Timestamp"
	swSignatureHeader = "Webhook-Signature"
	swSecretPrefix    = "whsec_"
)

// standardWebhooks implements https://www.standardwebhooks.com (v1, the
// symmetric HMAC-SHA256 scheme): the signed content is
// "<webhook-id>.<webhook-timestamp>.<body>" and webhook-signature is a
// space-separated list of "v1,<base64>" entries.
type standardWebhooks struct {
	keys [][]byte
	tol  time.Duration
}

var _ Provider = (*standardWebhooks)(nil)

func newStandardWebhooks(src *config.Source) (Provider, error) {
	p := &standardWebhooks{tol: readTolerance(src.Fields)}
	for i, s := range requireSecrets(src) {
		key, ok := swDecodeSecret(string(s))
		if !ok {
			// Never quote the value: it is a secret even when malformed.
			src.Fields.Errorf(secretKey(src.Fields), "secret %d is not a Standard Webhooks secret: expected whsec_ followed by base64 (as the sender shows it)", i+1)
			continue
		}
		p.keys = append(p.keys, key)
	}
	return p, nil
}

// swDecodeSecret strips the optional whsec_ prefix and base64-decodes the
// rest, as the reference libraries do. A secret without the prefix is
// decoded too (some dashboards show it bare) rather than used as raw bytes:
// guessing "raw" would silently verify nothing, while a secret that is not
// base64 fails `check` with a clear message.
func swDecodeSecret(s string) ([]byte, bool) {
	s = strings.TrimPrefix(strings.TrimSpace(s), swSecretPrefix)
	key, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		if key, err = base64.RawStdEncoding.DecodeString(s); err != nil {
			return nil, false
		}
	}
	return key, len(key) > 0
}

func (p *standardWebhooks) mac(key []byte, id, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id))
	m.Write([]byte{'.'})
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Verify ignores signature versions other than v1 (v1a is asymmetric and
// not supported; unknown versions are future ones) and accepts any matching
// v1 entry, which is how senders rotate secrets.
func (p *standardWebhooks) Verify(r *Request) error {
	id, _ := headerValue(r.Header, swIDHeader)
	if id == "" {
		return errSignature("missing webhook-id header")
	}
	ts, ok := headerValue(r.Header, swTimestampHeader)
	if !ok {
		return errSignature("missing webhook-timestamp header")
	}
	if err := checkTimestamp(ts, r.Now, p.tol); err != nil {
		return err
	}
	sigHeader, ok := headerValue(r.Header, swSignatureHeader)
	if !ok {
		return errSignature("missing webhook-signature header")
	}
	var sigs [][]byte
	for _, entry := range strings.Fields(sigHeader) {
		version, sig, found := strings.Cut(entry, ",")
		if !found || version != "v1" {
			continue
		}
		b, err := base64.StdEncoding.DecodeString(sig)
		if err != nil {
			continue
		}
		sigs = append(sigs, b)
	}
	if len(sigs) == 0 {
		return errSignature("webhook-signature holds no v1 signature")
	}
	match := false
	for _, k := range p.keys {
		want := p.mac(k, id, ts, r.Body)
		for _, got := range sigs {
			if macEqual(got, want) {
				match = true
			}
		}
	}
	if !match {
		return errSignature("webhook-signature does not match the body")
	}
	return nil
}

// Sign sets all three headers. A webhook-id already in h is kept; otherwise
// it is derived from the body, so that sending the same event file twice
// is a duplicate, as it is for providers whose id comes from the payload.
func (p *standardWebhooks) Sign(h http.Header, body []byte, now time.Time) error {
	if len(p.keys) == 0 {
		return errSignature("no secret configured")
	}
	id := h.Get(swIDHeader)
	if id == "" {
		sum := sha256.Sum256(body)
		id = "msg_" + hex.EncodeToString(sum[:12])
		h.Set(swIDHeader, id)
	}
	ts := strconv.FormatInt(now.Unix(), 10)
	h.Set(swTimestampHeader, ts)
	mac := p.mac(p.keys[len(p.keys)-1], id, ts, body)
	h.Set(swSignatureHeader, "v1,"+base64.StdEncoding.EncodeToString(mac))
	return nil
}

// Normalize uses webhook-id as the event id: the spec makes it the
// idempotency key, stable across the sender's retries.
func (p *standardWebhooks) Normalize(r *Request) (*Normalized, error) {
	payload, err := decodeObject(r.Body)
	if err != nil {
		return nil, err
	}
	id, _ := headerValue(r.Header, swIDHeader)
	return &Normalized{ID: id, Type: stringField(payload, "type"), Payload: payload}, nil
}
