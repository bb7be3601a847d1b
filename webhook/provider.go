// Package webhook is payramd's public listener: it routes each request to
// its source, checks who may send it (allow_ips, rate limit, size), verifies
// its signature with the source's provider, normalizes the payload, and hands
// the resulting engine.Event to the journal before answering.
//
// Providers are registered by name from their own file (see Register), so
// adding a scheme is one file. A provider only knows about bytes, headers and
// payloads; everything HTTP-shaped (status codes, logging, metrics) lives in
// the Handler, so every provider answers the same way for the same situation.
package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/payramd/payramd/config"
	"github.com/payramd/payramd/engine"
)

// ErrInvalidSignature is wrapped by every verification failure; the handler
// answers 401. The wrapping message is a reason for the log and never holds
// a secret or a signature value, because logs are read by more people than
// the secrets are.
var ErrInvalidSignature = errors.New("invalid signature")

// ErrInvalidPayload is wrapped by every normalization failure the sender
// caused; the handler answers 400 and shows the message as the detail, so
// it is written for the person fixing the sender.
var ErrInvalidPayload = errors.New("invalid payload")

// Provider verifies and normalizes one source's deliveries. An instance is
// built per source by its Factory and is used concurrently by many requests,
// so it must not change after the factory returns.
type Provider interface {
	// Verify checks authenticity over the raw body. It returns nil, or an
	// error wrapping ErrInvalidSignature (401). The message is for logs:
	// it never includes a secret or signature value.
	Verify(r *Request) error
	// Normalize decodes the payload. An error wrapping ErrInvalidPayload
	// is a 400 with the message as detail.
	Normalize(r *Request) (*Normalized, error)
	// Sign adds what the provider would send (headers, and for timestamped
	// schemes the timestamp now) so that `payramd send` signs a test event
	// exactly as the provider does. It signs with the newest (last) secret.
	Sign(h http.Header, body []byte, now time.Time) error
}

// Request is what a provider sees of one delivery. Body is the exact bytes
// received: signatures are always computed over them, never over a
// re-serialization.
type Request struct {
	Source string
	Method string
	Header http.Header
	Query  url.Values
	Body   []byte
	// Now is the time the request arrived, for timestamp tolerance.
	Now time.Time
}

// Normalized is a decoded delivery.
type Normalized struct {
	// ID is the provider's delivery id, or "" to use DefaultID.
	ID string
	// Type is meta.type, such as payment.filled or payout.sent.
	Type string
	// Payload holds the decoded fields; numbers are engine.Decimal.
	Payload map[string]any
}

// FieldType is the type of a known payload field. It is a string (not an
// enum from another package) so that the engine can consume schemas without
// importing this package, which itself imports the engine.
type FieldType string

// Field types. Every field may also be absent or null (nil in rules). An Int
// is an engine.Decimal without a fractional part: all JSON numbers are
// decimals at run time.
const (
	String  FieldType = "string"
	Decimal FieldType = "decimal"
	Int     FieldType = "int"
	Bool    FieldType = "bool"
	Object  FieldType = "object"
	List    FieldType = "list"
	Any     FieldType = "any"
)

// Schema is implemented by providers whose payload fields are known (payram),
// so that `check` can type-check rules and suggest the right name for a
// misspelled field. Providers that pass arbitrary JSON do not implement it.
type Schema interface {
	Fields() map[string]FieldType
}

// MethodLister is implemented by providers that accept methods other than
// POST. PayRam's older deliveries are GETs, so the payram provider lists GET
// too; everything else is POST only.
type MethodLister interface {
	Methods() []string
}

// sensitiveHeaders is implemented by providers whose configured header names
// carry secrets but might not look like it (an hmac source can name its
// signature header anything), so the handler removes them from meta.headers.
type sensitiveHeaders interface {
	sensitiveHeaders() []string
}

// Factory builds a provider for one source. It reads its own keys from
// src.Fields, reporting bad values with src.Fields.Errorf (which carries the
// file position), and returns an error only for a problem tied to no key.
// When it reports a problem it may return a nil provider.
type Factory func(src *config.Source) (Provider, error)

var (
	registryMu sync.RWMutex
	registry   = map[string]Factory{}
)

// Register makes a provider available under name. It is called from the
// provider's init, and panics on a duplicate, which is a programming error.
func Register(name string, f Factory) {
	registryMu.Lock()
	defer registryMu.Unlock()
	if _, dup := registry[name]; dup {
		panic("webhook: provider " + name + " registered twice")
	}
	registry[name] = f
}

// Providers returns the registered names, sorted, for "did you mean" hints
// and documentation.
func Providers() []string {
	registryMu.RLock()
	defer registryMu.RUnlock()
	names := make([]string, 0, len(registry))
	for n := range registry {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

func lookupFactory(name string) Factory {
	registryMu.RLock()
	defer registryMu.RUnlock()
	return registry[name]
}

// DefaultID is the event id of a delivery whose provider sends no id: the
// hex SHA-256 of the source name, a NUL byte and the raw body. The NUL keeps
// ("ab", "c…") and ("a", "bc…") apart. A redelivery of the same bytes to
// the same source therefore gets the same id and is answered "duplicate".
// For a GET carrying only query parameters, pass the query (see requestKey).
func DefaultID(source string, body []byte) string {
	h := sha256.New()
	h.Write([]byte(source))
	h.Write([]byte{0})
	h.Write(body)
	return hex.EncodeToString(h.Sum(nil))
}

// requestKey is the content a default id is computed over: the raw body, or
// for a body-less request the canonical (sorted) query string, so that two
// GET deliveries with different parameters do not collide.
func requestKey(r *Request) []byte {
	if len(r.Body) == 0 && len(r.Query) > 0 {
		return []byte("?" + r.Query.Encode())
	}
	return r.Body
}

// errSignature wraps ErrInvalidSignature with a reason.
func errSignature(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidSignature, fmt.Sprintf(format, args...))
}

// payloadError is an ErrInvalidPayload whose text is only the detail, since
// the handler already says "invalid_payload" in the answer.
type payloadError struct{ msg string }

func (e *payloadError) Error() string        { return e.msg }
func (e *payloadError) Is(target error) bool { return target == ErrInvalidPayload }

func errPayload(format string, args ...any) error {
	return &payloadError{msg: fmt.Sprintf(format, args...)}
}

// headerValues returns every value of the named header. net/http
// canonicalizes incoming names, but a Request built by hand (tests,
// `payramd test`) may not have, so it falls back to a case-insensitive scan.
func headerValues(h http.Header, name string) []string {
	if v := h.Values(name); len(v) > 0 {
		return v
	}
	for k, v := range h {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return nil
}

// headerValue returns the first value of the named header and whether the
// header was present at all (an empty value counts as present).
func headerValue(h http.Header, name string) (string, bool) {
	v := headerValues(h, name)
	if len(v) == 0 {
		return "", false
	}
	return v[0], true
}

// macEqual compares two MACs in constant time. hmac.Equal only reveals
// whether the lengths differ, which is public (the algorithm fixes it).
func macEqual(a, b []byte) bool { return hmac.Equal(a, b) }

// anyMACMatches reports whether any received signature equals the MAC that
// any secret gives (secrets rotate, senders may send several signatures).
// It compares every pair, in constant time each, without stopping early.
func anyMACMatches(secrets [][]byte, sigs [][]byte, mac func(secret []byte) []byte) bool {
	match := false
	for _, s := range secrets {
		want := mac(s)
		for _, got := range sigs {
			if macEqual(got, want) {
				match = true
			}
		}
	}
	return match
}

// checkTimestamp parses a Unix-seconds timestamp and refuses one more than
// tol in the past or the future. Exactly tol is accepted. The future bound
// matters as much as the past one: a signature over a far-future timestamp
// would otherwise be replayable until that time.
//
// The value is taken exactly as received, not trimmed: the signature covers
// those bytes, so a timestamp that only parses after cleaning up would let
// a header that was not signed verify.
func checkTimestamp(raw string, now time.Time, tol time.Duration) error {
	if raw == "" {
		return errSignature("missing timestamp")
	}
	ts, err := strconv.ParseInt(raw, 10, 64)
	if err != nil {
		return errSignature("timestamp is not a whole number of Unix seconds")
	}
	// Clamp before converting: the age in nanoseconds below must not
	// overflow. 2^32 s either side of 1970 (to 2106) covers every real
	// timestamp and keeps |age| under 2^33 s, ~8.6e18 ns.
	const limit = 1 << 32
	if ts < -limit || ts > limit {
		return errSignature("timestamp out of range")
	}
	// Compare whole seconds: the timestamp has no finer resolution, so a
	// delivery exactly tol old is accepted for all of that second, not only
	// at its first instant (and the refusal never reads "5m0s old, more than
	// the 5m0s tolerance").
	age := time.Duration(now.Unix()-ts) * time.Second
	switch {
	case age > tol:
		return errSignature("timestamp is %s old, more than the %s tolerance", age, tol)
	case -age > tol:
		return errSignature("timestamp is %s in the future, more than the %s tolerance", -age, tol)
	}
	return nil
}

// readTolerance reads the optional tolerance key (default 5m). Zero is
// refused: it would reject nearly every delivery, and a merchant who wants no
// timestamp check should not configure one.
func readTolerance(f *config.Fields) time.Duration {
	const def = 5 * time.Minute
	tol := f.Duration("tolerance", def)
	if tol <= 0 {
		f.Errorf("tolerance", "tolerance must be more than zero, such as 5m")
		return def
	}
	return tol
}

// secretKey is the key a source's secrets are written under (secret,
// secrets or secret_file), so that a problem with one is reported there
// rather than at the source.
func secretKey(f *config.Fields) string {
	for _, k := range []string{"secret", "secrets", "secret_file"} {
		if f.Has(k) {
			return k
		}
	}
	return "secret"
}

// requireSecrets returns the source's secrets as byte slices, reporting a
// config error when there are none: a verifying provider without a secret
// could accept nothing, and silently refusing every delivery is worse than
// failing `payramd check`.
func requireSecrets(src *config.Source) [][]byte {
	if len(src.Secrets) == 0 {
		// When the secret is there but empty (an unset ${VAR}) or its
		// secret_file cannot be read, the loader has said so at that spot;
		// repeating it in other words ("needs a secret: add secret:" to a
		// source that has secret_file) only adds noise.
		key := secretKey(src.Fields)
		if !src.Fields.Problems().HasErrorAt(src.Fields.KeyPos(key)) {
			src.Fields.Errorf(key, "provider %s needs a secret: add secret: ${ENV_VAR} (or secrets: [old, new] while rotating)", src.Provider)
		}
		return nil
	}
	out := make([][]byte, len(src.Secrets))
	for i, s := range src.Secrets {
		out[i] = []byte(s.Reveal())
	}
	return out
}

// decodeObject decodes a JSON object body for providers without their own
// shape, turning decoder errors into 400s.
func decodeObject(body []byte) (map[string]any, error) {
	m, err := engine.DecodeObject(body)
	if err != nil {
		return nil, errPayload("%v", err)
	}
	return m, nil
}

// stringField returns payload[key] when it is a non-empty string.
func stringField(p map[string]any, key string) string {
	s, _ := p[key].(string)
	return s
}
