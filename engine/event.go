package engine

import (
	"encoding/base64"
	"time"
	"unicode/utf8"
)

// Event is one accepted delivery, as rules see it.
type Event struct {
	ID         string
	Source     string
	Provider   string
	Type       string // normalized, e.g. payment.filled or payout.sent
	ReceivedAt time.Time
	// Headers holds request headers with lower-case names and secrets
	// (signatures, keys, authorization) removed.
	Headers map[string]string
	// Payload is the decoded, normalized payload: numbers are Decimal.
	Payload map[string]any
	// Raw is the body exactly as received (empty for a GET with query parameters).
	Raw []byte
	// ProviderID is true when ID is the provider's own delivery id (Stripe's
	// evt_…, a webhook-id header) rather than one payramd derived from the
	// source and body: such an id can arrive on several sources.
	ProviderID bool
}

// Meta is what rules see as meta.*.
type Meta struct {
	ID         string            `expr:"id"`
	Source     string            `expr:"source"`
	Provider   string            `expr:"provider"`
	Type       string            `expr:"type"`
	ReceivedAt time.Time         `expr:"received_at"`
	Headers    map[string]string `expr:"headers"`
}

// Meta returns the event's meta.* view.
func (e *Event) Meta() Meta {
	return Meta{ID: e.ID, Source: e.Source, Provider: e.Provider, Type: e.Type, ReceivedAt: e.ReceivedAt, Headers: e.Headers}
}

// Env builds the variables an expression sees: every top-level payload
// field, plus payload and meta (which win over payload fields of the same
// name). A fresh map per event: expr must never read a map being written.
func (e *Event) Env() map[string]any {
	env := make(map[string]any, len(e.Payload)+2)
	e.fillEnv(env)
	return env
}

// fillEnv writes the variables Env returns into an empty map.
func (e *Event) fillEnv(env map[string]any) {
	for k, v := range e.Payload {
		env[k] = v
	}
	env["payload"] = e.Payload
	env["meta"] = e.Meta()
}

// BodyField is how a raw body is put in JSON for people and scripts (the
// admin API, an exec action's stdin): as text under "body" when it is
// UTF-8, which payment webhooks are, else base64 under "body_base64".
func BodyField(raw []byte) (key, value string) {
	if utf8.Valid(raw) {
		return "body", string(raw)
	}
	return "body_base64", base64.StdEncoding.EncodeToString(raw)
}
