package webhook

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"hash"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/payramd/payramd/config"
	"github.com/payramd/payramd/engine"
)

func init() { Register("payram", newPayram) }

const (
	payramSignatureHeader = "X-Payram-Signature"
	payramLegacyHeader    = "API-Key"
	payramSignaturePrefix = "sha256="
)

// payram verifies PayRam deliveries: X-Payram-Signature (HMAC-SHA256 of the
// raw body keyed with the project API key) or, for older PayRam versions,
// the API-Key header carrying the key itself.
type payram struct {
	secrets [][]byte
	// macs[i] reuses HMAC states keyed with secrets[i] (see keyedMAC).
	macs []*keyedMAC
	// requireSignature refuses the legacy API-Key header, for merchants
	// whose PayRam is new enough to sign: the key then never needs to
	// travel in a header, where proxies and logs may keep it.
	requireSignature bool
}

var (
	_ Provider     = (*payram)(nil)
	_ Schema       = (*payram)(nil)
	_ MethodLister = (*payram)(nil)
)

func newPayram(src *config.Source) (Provider, error) {
	p := &payram{requireSignature: src.Fields.Bool("require_signature", false)}
	p.secrets = requireSecrets(src)
	for _, s := range p.secrets {
		p.macs = append(p.macs, &keyedMAC{secret: s})
	}
	return p, nil
}

// keyedMAC hands out HMAC-SHA256 states keyed with one secret. hmac.New
// hashes the key into two fresh digests on every call, which for a
// webhook-sized body costs about as much as the MAC itself; a used state
// goes back to its keyed starting point with Reset instead.
type keyedMAC struct {
	secret []byte
	pool   sync.Pool // of *macState
}

type macState struct {
	h   hash.Hash
	sum [sha256.Size]byte
}

// equal reports, in constant time, whether got is the MAC of body.
func (k *keyedMAC) equal(got, body []byte) bool {
	m, _ := k.pool.Get().(*macState)
	if m == nil {
		m = &macState{h: hmac.New(sha256.New, k.secret)}
	}
	m.h.Write(body)
	ok := macEqual(got, m.h.Sum(m.sum[:0]))
	// Reset before pooling, so that no state derived from this body is kept.
	m.h.Reset()
	m.sum = [sha256.Size]byte{}
	k.pool.Put(m)
	return ok
}

// Methods lists GET because PayRam's older documentation delivers payment
// webhooks as GETs (with a JSON body or query parameters).
func (p *payram) Methods() []string { return []string{http.MethodGet, http.MethodPost} }

// Verify insists on the signature whenever the header is present, even next
// to a valid API-Key: otherwise anyone who could strip or garble the
// signature would push verification down to the weaker legacy check.
func (p *payram) Verify(r *Request) error {
	if sig, ok := headerValue(r.Header, payramSignatureHeader); ok {
		if len(r.Body) == 0 && len(r.Query) > 0 {
			// The signature covers the body, and this payload comes from
			// the query string: a signature over nothing would vouch for
			// any query, and anyone who saw one could forge events.
			return errSignature("%s covers the body, but this GET carries its payload in the query string; PayRam's GET deliveries are authenticated with the %s header", payramSignatureHeader, payramLegacyHeader)
		}
		return p.verifySignature(sig, r.Body)
	}
	if p.requireSignature {
		return errSignature("missing %s header (require_signature is on, so API-Key alone is refused)", payramSignatureHeader)
	}
	key, ok := headerValue(r.Header, payramLegacyHeader)
	if !ok {
		return errSignature("missing %s and %s headers", payramSignatureHeader, payramLegacyHeader)
	}
	if key == "" {
		return errSignature("empty %s header", payramLegacyHeader)
	}
	// Hashing both sides first makes the comparison independent of the
	// lengths too, so a timing probe cannot even learn the key's length.
	got := sha256.Sum256([]byte(key))
	match := 0
	for _, s := range p.secrets {
		want := sha256.Sum256(s)
		match |= subtle.ConstantTimeCompare(got[:], want[:])
	}
	if match != 1 {
		return errSignature("%s header does not match the secret", payramLegacyHeader)
	}
	return nil
}

func (p *payram) verifySignature(sig string, body []byte) error {
	sig = strings.TrimSpace(sig)
	if len(sig) < len(payramSignaturePrefix) || !strings.EqualFold(sig[:len(payramSignaturePrefix)], payramSignaturePrefix) {
		return errSignature("%s is not of the form sha256=<hex>", payramSignatureHeader)
	}
	// Decoding the hex compares bytes, not text, so upper- and lower-case
	// hex both verify. A signature of the right length decodes into the
	// stack buffer; any other length cannot match but is still checked
	// for being hex, so the reason logged is the same as ever.
	var gotBuf [sha256.Size]byte
	digits := sig[len(payramSignaturePrefix):]
	var got []byte
	if hex.DecodedLen(len(digits)) == len(gotBuf) {
		var digitBuf [2 * sha256.Size]byte
		if _, err := hex.Decode(gotBuf[:], digitBuf[:copy(digitBuf[:], digits)]); err != nil {
			return errSignature("%s is not valid hex", payramSignatureHeader)
		}
		got = gotBuf[:]
	} else {
		var err error
		if got, err = hex.DecodeString(digits); err != nil {
			return errSignature("%s is not valid hex", payramSignatureHeader)
		}
	}
	match := false
	for _, k := range p.macs {
		// Every secret is tried, so the time taken does not say which one
		// (if any) matched.
		if k.equal(got, body) {
			match = true
		}
	}
	if !match {
		return errSignature("%s does not match the body", payramSignatureHeader)
	}
	return nil
}

func payramMAC(secret, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return m.Sum(nil)
}

// Sign sets X-Payram-Signature only. PayRam also sends the key itself in
// API-Key, but a test tool has no reason to put the secret on the wire.
func (p *payram) Sign(h http.Header, body []byte, _ time.Time) error {
	if len(p.secrets) == 0 {
		return errSignature("no secret configured")
	}
	h.Set(payramSignatureHeader, payramSignaturePrefix+hex.EncodeToString(payramMAC(p.secrets[len(p.secrets)-1], body)))
	return nil
}

// payramAmounts are the fields PayRam sends as JSON strings, numbers or
// null depending on version; rules need them as decimals to compare money.
var payramAmounts = []string{"amount", "filled_amount", "filled_amount_in_usd", "amount_usd"}

// payramSchema is every top-level field PayRam documents for payment and
// payout webhooks. Extra keys are allowed (PayRam's schema says so); the
// schema only drives "did you mean" warnings and type checks.
var payramSchema = map[string]FieldType{
	// payments
	"reference_id":          String,
	"invoice_id":            String,
	"customer_id":           String,
	"customer_email":        String,
	"status":                String,
	"payment_state":         String,
	"amount":                Decimal,
	"filled_amount":         Decimal,
	"filled_amount_in_usd":  Decimal,
	"currency":              String,
	"timestamp":             Int,
	"payment_info":          List,
	"confirmation_current":  Int,
	"confirmation_required": Int,
	// payouts
	"event_type":      String,
	"payout_id":       Any, // the docs show 120 but never state the type
	"network":         String,
	"token":           String,
	"amount_usd":      Decimal,
	"email":           String,
	"address":         String,
	"from_address":    String,
	"tx_hash":         String,
	"withdrawal_type": String,
	"currency_type":   String,
	"created_at":      Int,
	"updated_at":      Int,
	"failure_reason":  String,
}

// Fields returns the known PayRam fields.
func (p *payram) Fields() map[string]FieldType {
	out := make(map[string]FieldType, len(payramSchema))
	for k, v := range payramSchema {
		out[k] = v
	}
	return out
}

// Normalize makes every PayRam version look like the current one, so that
// rules are written once: status (from payment_state on old versions) is
// upper-case with PayRam's spelling CANCELLED, and amounts are decimals.
func (p *payram) Normalize(r *Request) (*Normalized, error) {
	payload, fromText, err := payramPayload(r)
	if err != nil {
		return nil, err
	}
	for _, k := range payramAmounts {
		v, present := payload[k]
		if !present {
			continue
		}
		d, err := payramAmount(k, v)
		if err != nil {
			return nil, err
		}
		payload[k] = d
	}
	if fromText {
		// Query and form values are all text; give the other numeric
		// fields their JSON types where they parse, so rules can compare
		// them the same way whichever way PayRam delivered.
		for k, t := range payramSchema {
			s, ok := payload[k].(string)
			if !ok || (t != Int && t != Decimal) {
				continue
			}
			s = strings.TrimSpace(s)
			d, err := engine.ParseDecimal(s)
			if err == nil {
				payload[k] = d
				continue
			}
			var de *engine.DigitsError
			if errors.As(err, &de) {
				if b, err := engine.NewBigNumber(s); err == nil {
					payload[k] = b
				}
			}
		}
	}

	status, err := payramStatus(payload)
	if err != nil {
		return nil, err
	}
	if cur, _ := payload["status"].(string); status != "" && status != cur {
		payload["status"] = status
	}

	eventType, hasType := payload["event_type"]
	if hasType && eventType != nil {
		et, ok := eventType.(string)
		if !ok || strings.TrimSpace(et) == "" {
			return nil, errPayload("event_type must be a non-empty string")
		}
		// Payouts (and the payout.ping test) carry their own type.
		return &Normalized{Type: strings.TrimSpace(et), Payload: payload}, nil
	}
	if !payramHasReference(payload["reference_id"]) {
		return nil, errPayload("not a PayRam webhook: a payment needs reference_id and status (or payment_state), a payout needs event_type")
	}
	if status == "" {
		return nil, errPayload("not a PayRam webhook: a payment needs a status (or payment_state) next to reference_id")
	}
	typ, ok := paymentTypes[status]
	if !ok {
		typ = "payment." + strings.ToLower(status)
	}
	return &Normalized{Type: typ, Payload: payload}, nil
}

// paymentTypes are the event types of PayRam's documented payment statuses,
// built once rather than for every delivery.
var paymentTypes = func() map[string]string {
	m := map[string]string{}
	for _, s := range []string{"OPEN", "VERIFYING", "FILLED", "PARTIALLY_FILLED", "OVER_FILLED", "CANCELLED", "UNDEFINED"} {
		m[s] = "payment." + strings.ToLower(s)
	}
	return m
}()

// payramPayload decodes the body as JSON, a form, or (for a body-less GET)
// the query parameters. fromText reports that every value is a string.
func payramPayload(r *Request) (payload map[string]any, fromText bool, err error) {
	// Trimmed in place: a string copy of every body only to look at its
	// first byte showed up in the listener's profile.
	body := bytes.TrimSpace(r.Body)
	if len(body) == 0 {
		if r.Method == http.MethodGet && len(r.Query) > 0 {
			return valuesPayload(r.Query), true, nil
		}
		return nil, false, errPayload("empty body: expected a JSON object")
	}
	if body[0] != '{' && isForm(r.Header) {
		q, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, false, errPayload("invalid form body: %v", err)
		}
		return valuesPayload(q), true, nil
	}
	m, err := decodeObject(r.Body)
	return m, false, err
}

func isForm(h http.Header) bool {
	ct, _ := headerValue(h, "Content-Type")
	mt, _, _ := mime.ParseMediaType(ct)
	return mt == "application/x-www-form-urlencoded"
}

// valuesPayload turns query or form values into a payload: one value is a
// string, a repeated parameter a list of strings.
func valuesPayload(v url.Values) map[string]any {
	m := make(map[string]any, len(v))
	for k, vs := range v {
		switch len(vs) {
		case 0:
			m[k] = ""
		case 1:
			m[k] = vs[0]
		default:
			l := make([]any, len(vs))
			for i, s := range vs {
				l[i] = s
			}
			m[k] = l
		}
	}
	return m
}

// payramAmount converts one amount field. An empty string is treated like
// null (not yet known) rather than refused: PayRam sends "not filled yet" as
// null today, and an empty string means the same to any reader.
func payramAmount(field string, v any) (any, error) {
	switch t := v.(type) {
	case nil:
		return nil, nil
	case engine.Decimal, engine.BigNumber:
		return t, nil
	case string:
		s := strings.TrimSpace(t)
		if s == "" {
			return nil, nil
		}
		d, err := engine.ParseDecimal(s)
		if err == nil {
			return d, nil
		}
		// An amount of an 18-decimal token has more digits than a Decimal
		// holds: it keeps them all, as a BigNumber.
		var de *engine.DigitsError
		if errors.As(err, &de) {
			if b, err := engine.NewBigNumber(s); err == nil {
				return b, nil
			}
		}
		return nil, errPayload("%s must be a decimal number such as \"25.00\", not %q", field, truncate(t, 40))
	}
	return nil, errPayload("%s must be a number, a numeric string or null", field)
}

// payramStatus returns the normalized status, "" when the payload has none.
func payramStatus(p map[string]any) (string, error) {
	v, ok := p["status"]
	if !ok || v == nil {
		v, ok = p["payment_state"]
		if !ok || v == nil {
			return "", nil
		}
	}
	s, isString := v.(string)
	if !isString {
		return "", errPayload("status must be a string such as \"FILLED\"")
	}
	s = strings.ToUpper(strings.TrimSpace(s))
	if s == "CANCELED" {
		// PayRam's older page spells it with one L; rules are written
		// against the current spelling.
		s = "CANCELLED"
	}
	return s, nil
}

func payramHasReference(v any) bool {
	switch t := v.(type) {
	case string:
		return strings.TrimSpace(t) != ""
	case engine.Decimal, engine.BigNumber:
		return true
	}
	return false
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
