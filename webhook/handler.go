package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/payramd/payramd/engine"
)

// Accepter stores an event durably (and evaluates it) before the provider
// is answered. It reports duplicate when the event id was seen before. Any
// error means the event is not on disk; the handler answers 503 so that the
// provider retries.
type Accepter func(ctx context.Context, ev *engine.Event) (duplicate bool, err error)

// Options configures a Handler.
type Options struct {
	// Table returns the current routing table; hot reload swaps what it
	// returns. Each request reads it once, so it sees one snapshot. The
	// body limit and the trusted proxies come from it too (see Compile).
	Table func() *Table
	// Accept journals an event. Its context is not canceled when the
	// client hangs up (a journal write must not stop halfway) and has no
	// deadline: Accept bounds its own waits.
	Accept Accepter
	// Observe is called once per routed request with its source and
	// outcome: accepted, duplicate, invalid_signature, forbidden,
	// too_large, invalid_payload, rate_limited, unavailable or error.
	// Unknown paths and wrong methods are not observed: their "source"
	// would be whatever a scanner makes up.
	Observe func(source, outcome string)
	Logger  *slog.Logger
	Now     func() time.Time
}

// Handler is the public webhook listener. It is safe for concurrent use.
type Handler struct {
	o        Options
	draining atomic.Bool
}

// DefaultMaxBody is the body limit when neither the source nor the server
// sets one: payment webhooks are a few KiB.
const DefaultMaxBody = 1 << 20

// NewHandler returns the listener's handler.
func NewHandler(o Options) *Handler {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Observe == nil {
		o.Observe = func(string, string) {}
	}
	if o.Table == nil {
		o.Table = func() *Table { return nil }
	}
	if o.Accept == nil {
		o.Accept = func(context.Context, *engine.Event) (bool, error) {
			return false, errors.New("no journal configured")
		}
	}
	return &Handler{o: o}
}

// Drain makes every later request a 503, for SIGTERM: the provider retries
// against the next process instead of being told "accepted" by one that may
// not get to write the event.
func (h *Handler) Drain() { h.draining.Store(true) }

// Draining reports whether Drain was called.
func (h *Handler) Draining() bool { return h.draining.Load() }

// refusal is one way a request can be turned down: its metric label (""
// for none), status, answer and log reason.
type refusal struct {
	outcome string
	status  int
	body    answer
	reason  string
}

// answer is every JSON body the listener sends; the field order is the one
// SPEC section 6 shows ({"status":…,"id":…}).
type answer struct {
	Status string `json:"status,omitempty"`
	ID     string `json:"id,omitempty"`
	Error  string `json:"error,omitempty"`
	Detail string `json:"detail,omitempty"`
}

// ServeHTTP runs the checks in the order of SPEC section 6: route, method,
// allow_ips, rate limit, body size, signature, payload, journal. Cheap
// checks that need no secret come first, so that an unwanted sender costs
// as little as possible and learns nothing about the signature.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	now := h.o.Now()
	tab := h.o.Table()
	rt := tab.lookup(r.URL.Path)
	client := clientAddr(r, tab.trustedProxies())

	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			src := ""
			if rt != nil {
				src = rt.source
			}
			h.o.Logger.Error("webhook handler panic", "source", src, "panic", v)
			h.o.Observe(src, "error")
			writeJSON(w, http.StatusInternalServerError, errBody("internal_error"))
		}
	}()

	if h.draining.Load() {
		w.Header().Set("Connection", "close")
		src := ""
		if rt != nil {
			src = rt.source
		}
		h.refuse(w, r, src, client, refusal{"unavailable", http.StatusServiceUnavailable, errBody("unavailable"), "shutting down"})
		return
	}
	if rt == nil || rt.provider == nil {
		h.o.Logger.Debug("webhook refused", "path", r.URL.Path, "remote", addrString(client, r), "status", http.StatusNotFound, "reason", "no source at this path")
		writeJSON(w, http.StatusNotFound, errBody("not_found"))
		return
	}
	if !slices.Contains(rt.methods, r.Method) {
		w.Header().Set("Allow", strings.Join(rt.methods, ", "))
		h.refuse(w, r, rt.source, client, refusal{"", http.StatusMethodNotAllowed, errBody("method_not_allowed"), "method " + r.Method + " not allowed"})
		return
	}
	if len(rt.allow) > 0 && !allowed(rt.allow, client) {
		h.refuse(w, r, rt.source, client, refusal{"forbidden", http.StatusForbidden, errBody("forbidden"), "client address not in allow_ips"})
		return
	}
	limit := rt.maxBody
	if limit <= 0 {
		limit = DefaultMaxBody // a route not built by Compile
	}
	tooLarge := func() refusal {
		return refusal{"too_large", http.StatusRequestEntityTooLarge, errBody("payload_too_large"), "body larger than " + strconv.FormatInt(limit, 10) + " bytes"}
	}
	if r.ContentLength > limit {
		h.refuse(w, r, rt.source, client, tooLarge())
		return
	}
	// Read one byte more than allowed: exactly the limit is fine, and the
	// extra byte is how an over-long chunked body is noticed without
	// reading all of it.
	body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		h.refuse(w, r, rt.source, client, refusal{"error", http.StatusBadRequest, answer{Error: "invalid_payload", Detail: "could not read the request body"}, "reading body: " + err.Error()})
		return
	}
	if int64(len(body)) > limit {
		h.refuse(w, r, rt.source, client, tooLarge())
		return
	}

	var query url.Values
	if r.URL.RawQuery != "" {
		// Parsing allocates even for an empty query, and a POST has none.
		query = r.URL.Query()
	}
	req := &Request{Source: rt.source, Method: r.Method, Header: r.Header, Query: query, Body: body, Now: now}
	if err := rt.provider.Verify(req); err != nil {
		reason := err.Error()
		if r.Header.Get("X-Webhook-Test") != "" {
			reason += testPingHint
		}
		h.refuse(w, r, rt.source, client, refusal{"invalid_signature", http.StatusUnauthorized, errBody("invalid_signature"), reason})
		return
	}
	// The rate limit counts verified, new deliveries only. Charged before
	// verification, it let anyone who can reach the endpoint spend the
	// source's budget with junk, so that the provider's genuine deliveries
	// got 429; and a captured signed body replayed over and over (PayRam
	// signs no timestamp) would spend it as duplicates, even holding
	// tokens while each copy is being found a duplicate (all found by
	// security reviews). So here the budget is only looked at, and an
	// accepted delivery is charged below, once it is journaled. Deliveries
	// in flight together may overshoot the limit by their number. A flood
	// of junk costs a body read (max_body) and an HMAC each, and is
	// answered 401.
	if rt.limiter != nil {
		if tokens := rt.limiter.TokensAt(h.o.Now()); tokens < 1 {
			secs := 1
			if l := float64(rt.limiter.Limit()); l > 0 {
				secs = max(1, int(math.Ceil((1-tokens)/l)))
			}
			w.Header().Set("Retry-After", strconv.Itoa(secs))
			h.refuse(w, r, rt.source, client, refusal{"rate_limited", http.StatusTooManyRequests, errBody("rate_limited"), "rate limit exceeded"})
			return
		}
	}
	n, err := rt.provider.Normalize(req)
	if err != nil {
		if errors.Is(err, ErrInvalidPayload) {
			h.refuse(w, r, rt.source, client, refusal{"invalid_payload", http.StatusBadRequest, answer{Error: "invalid_payload", Detail: err.Error()}, err.Error()})
		} else {
			h.o.Logger.Error("webhook normalize failed", "source", rt.source, "error", err)
			h.o.Observe(rt.source, "error")
			writeJSON(w, http.StatusInternalServerError, errBody("internal_error"))
		}
		return
	}

	ev := &engine.Event{
		ID:         n.ID,
		Source:     rt.source,
		Provider:   rt.providerName,
		Type:       n.Type,
		ReceivedAt: now,
		Headers:    RedactHeaders(r.Header),
		Payload:    n.Payload,
		Raw:        body,
		ProviderID: n.ID != "",
	}
	if ev.ID == "" {
		ev.ID = DefaultID(rt.source, requestKey(req))
	}
	if ev.Payload == nil {
		ev.Payload = map[string]any{}
	}
	for _, name := range rt.redact {
		delete(ev.Headers, name)
	}

	// A client hanging up must not abort a journal write halfway: the
	// provider's retry would then find a half-known event. Accept bounds
	// its own waits instead.
	dup, err := h.o.Accept(context.WithoutCancel(r.Context()), ev)
	if err != nil {
		// Whatever went wrong, the event is not known to be on disk, so
		// the answer must make the provider retry.
		h.o.Logger.Error("webhook not journaled", "source", rt.source, "id", ev.ID, "remote", addrString(client, r), "error", err)
		h.o.Observe(rt.source, "unavailable")
		writeJSON(w, http.StatusServiceUnavailable, errBody("unavailable"))
		return
	}
	status, msg := "accepted", "webhook accepted"
	if dup {
		status, msg = "duplicate", "webhook duplicate"
	} else if rt.limiter != nil {
		rt.limiter.ReserveN(h.o.Now(), 1) // charged; the bucket may go below zero
	}
	// This line is written for every webhook, so it is built directly:
	// typed attributes (key-value pairs would box each string) and no
	// caller lookup (Logger.LogAttrs walks the stack for a source location
	// nobody asked for).
	if lh := h.o.Logger.Handler(); lh.Enabled(context.Background(), slog.LevelInfo) {
		rec := slog.NewRecord(time.Now(), slog.LevelInfo, msg, 0)
		rec.AddAttrs(slog.String("source", rt.source), slog.String("id", ev.ID), slog.String("type", ev.Type), slog.String("remote", addrString(client, r)))
		_ = lh.Handle(context.Background(), rec)
	}
	h.o.Observe(rt.source, status)
	writeJSON(w, http.StatusOK, answer{Status: status, ID: ev.ID})
}

// refuse answers a refused request and logs why, at Warn: a stream of these
// is either a misconfigured provider or someone probing, and either way the
// operator should see it. The reason never contains a secret or signature.
func (h *Handler) refuse(w http.ResponseWriter, r *http.Request, source string, client netip.Addr, rf refusal) {
	h.o.Logger.Warn("webhook refused", "source", source, "remote", addrString(client, r), "method", r.Method, "status", rf.status, "reason", rf.reason)
	if rf.outcome != "" && source != "" {
		h.o.Observe(source, rf.outcome)
	}
	writeJSON(w, rf.status, rf.body)
}

func errBody(code string) answer { return answer{Error: code} }

// testPingHint ends the log reason of a refused request that says it is a
// provider's connection test (PayRam's dashboard sends X-Webhook-Test), so
// that the operator setting a webhook up learns why the test failed; the
// provider may switch the webhook off after a failed test.
const testPingHint = "; this is a connection test from the provider's dashboard (X-Webhook-Test), verified like any delivery: check that the source's secret is the key the provider signs with (PayRam: the project's API key)"

// Every answer's header values, shared: net/http only reads them.
var (
	jsonContentType = []string{"application/json"}
	noSniff         = []string{"nosniff"}
)

func writeJSON(w http.ResponseWriter, status int, v answer) {
	buf := answerBufs.Get().(*[]byte)
	b := v.appendJSON((*buf)[:0])
	h := w.Header()
	// Assigned under their canonical names: Set would canonicalize them
	// again on every answer.
	h["Content-Type"] = jsonContentType
	h["X-Content-Type-Options"] = noSniff
	w.WriteHeader(status)
	_, _ = w.Write(b)
	if cap(b) <= 1024 {
		*buf = b
		answerBufs.Put(buf)
	}
}

// answerBufs holds buffers for answers: net/http copies what Write is
// given, so a buffer is free again when Write returns.
var answerBufs = sync.Pool{New: func() any { b := make([]byte, 0, 128); return &b }}

// appendJSON appends the answer as json.Marshal writes it, and a newline.
// Every answer is one, and the usual ones hold only plain words and ids,
// which are written directly; any other character (a quote, an HTML
// character json.Marshal escapes, non-ASCII text in a detail) sends the
// whole answer through json.Marshal.
func (a answer) appendJSON(dst []byte) []byte {
	fields := [...]struct{ name, value string }{{"status", a.Status}, {"id", a.ID}, {"error", a.Error}, {"detail", a.Detail}}
	for _, f := range fields {
		if !plainJSON(f.value) {
			b, _ := json.Marshal(a)
			return append(append(dst, b...), '\n')
		}
	}
	dst = append(dst, '{')
	first := true
	for _, f := range fields {
		if f.value == "" {
			continue // omitempty
		}
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = append(dst, '"')
		dst = append(dst, f.name...)
		dst = append(dst, `":"`...)
		dst = append(dst, f.value...)
		dst = append(dst, '"')
	}
	return append(dst, '}', '\n')
}

// plainJSON reports whether json.Marshal writes s between quotes unchanged.
func plainJSON(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20 || c >= 0x7f, c == '"', c == '\\', c == '<', c == '>', c == '&':
			return false
		}
	}
	return true
}

func allowed(allow []netip.Prefix, a netip.Addr) bool {
	if !a.IsValid() {
		return false
	}
	for _, p := range allow {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func trusted(proxies []netip.Prefix, a netip.Addr) bool {
	return a.IsValid() && allowed(proxies, a)
}

// clientAddr is the address allow_ips is checked against. X-Forwarded-For is
// believed only when the peer is a trusted proxy, and then read from the
// right, skipping further trusted proxies: the rightmost untrusted hop is
// the first one no trusted party vouches for, while everything left of it
// may be made up by the client. An unparsable hop yields an invalid
// address, which no allow_ips matches. proxies are the trusted proxies of
// the table the request is served with.
func clientAddr(r *http.Request, proxies []netip.Prefix) netip.Addr {
	peer := parseHop(r.RemoteAddr)
	if !trusted(proxies, peer) {
		return peer
	}
	var hops []string
	for _, v := range r.Header.Values("X-Forwarded-For") {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				hops = append(hops, p)
			}
		}
	}
	for i := len(hops) - 1; i >= 0; i-- {
		a := parseHop(hops[i])
		if !a.IsValid() || !trusted(proxies, a) || i == 0 {
			return a
		}
	}
	return peer
}

// parseHop parses "addr", "addr:port" or "[v6]:port".
func parseHop(s string) netip.Addr {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap()
	}
	if a, err := netip.ParseAddr(strings.Trim(s, "[]")); err == nil {
		return a.Unmap()
	}
	return netip.Addr{}
}

func addrString(a netip.Addr, r *http.Request) string {
	if a.IsValid() {
		return a.String()
	}
	if parseHop(r.RemoteAddr).IsValid() {
		// The peer is a trusted proxy whose X-Forwarded-For names no
		// address: say so, or the log reads as if the proxy itself was
		// refused, and adding it to allow_ips would change nothing.
		return r.RemoteAddr + " (a trusted proxy; its X-Forwarded-For names no address)"
	}
	return r.RemoteAddr
}

// sensitiveHeaderParts are name fragments of headers that carry
// credentials in some provider's scheme: signatures (X-Payram-Signature,
// Stripe-Signature, webhook-signature, X-Hub-Signature-256), HMACs
// (X-Shopify-Hmac-Sha256), keys (API-Key), and the usual auth, cookie and
// token headers. Matching fragments rather than a list of names also covers
// providers payramd has never heard of.
var sensitiveHeaderParts = []string{"sig", "hmac", "auth", "key", "cookie", "secret", "token", "password", "credential", "session"}

// RedactHeaders returns the headers as meta.headers shows them and the
// journal stores them: lower-case names, repeated values joined with ", ",
// and every header that may carry a credential removed. What is left is
// safe to show in the admin API and in rule templates.
func RedactHeaders(h http.Header) map[string]string {
	out := make(map[string]string, len(h))
	for name, vs := range h {
		kh, known := knownHeaders[name]
		if !known {
			lower := strings.ToLower(name)
			kh = knownHeader{lower, isSensitiveHeader(lower)}
		}
		if kh.sensitive {
			continue
		}
		out[kh.lower] = strings.Join(vs, ", ")
	}
	return out
}

// knownHeaders holds, for the canonical names most deliveries carry, their
// lower-case form and whether they are sensitive, worked out once: lower-
// casing allocates, and RedactHeaders runs for every request.
var knownHeaders = func() map[string]knownHeader {
	m := map[string]knownHeader{}
	for _, n := range []string{
		"Accept", "Accept-Encoding", "Connection", "Content-Length", "Content-Type",
		"User-Agent", "X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host",
		"X-Real-Ip", "X-Request-Id", "Traceparent", "Webhook-Id", "Webhook-Timestamp",
		"X-Payram-Signature", "Api-Key", "Authorization", "Stripe-Signature", "Webhook-Signature",
	} {
		lower := strings.ToLower(n)
		m[n] = knownHeader{lower, isSensitiveHeader(lower)}
	}
	return m
}()

type knownHeader struct {
	lower     string
	sensitive bool
}

func isSensitiveHeader(lower string) bool {
	for _, part := range sensitiveHeaderParts {
		if strings.Contains(lower, part) {
			return true
		}
	}
	return false
}

// Server timeouts for the public listener. They are what cuts off slow and
// half-open clients: ReadHeaderTimeout stops a slow-loris drip of headers,
// ReadTimeout a slow body, IdleTimeout parked keep-alive connections.
const (
	ReadHeaderTimeout = 5 * time.Second
	ReadTimeout       = 30 * time.Second
	WriteTimeout      = 30 * time.Second
	IdleTimeout       = 120 * time.Second
	MaxHeaderBytes    = 64 << 10
)

// NewServer returns an http.Server for the public listener with the
// timeouts above. The caller may change fields before starting it (tests
// shorten ReadHeaderTimeout) and sets TLSConfig for TLS.
func NewServer(addr string, h http.Handler) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       ReadTimeout,
		WriteTimeout:      WriteTimeout,
		IdleTimeout:       IdleTimeout,
		MaxHeaderBytes:    MaxHeaderBytes,
		// Connection-level noise (TLS handshakes from scanners, resets)
		// is debug material, not something to wake an operator for.
		ErrorLog: slog.NewLogLogger(slog.Default().Handler(), slog.LevelDebug),
	}
}
