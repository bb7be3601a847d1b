package daemon

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/payramd/payramd/engine"
	"github.com/payramd/payramd/journal"
)

// adminHandler serves health, metrics and the admin API. When admin_token
// is set every route but the health checks needs it as a bearer token.
func (d *Daemon) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", d.readyz)
	mux.Handle("GET /metrics", d.auth(d.metrics.Handler()))
	mux.Handle("GET /api/events", d.auth(http.HandlerFunc(d.apiEvents)))
	mux.Handle("GET /api/events/{id}", d.auth(http.HandlerFunc(d.apiEvent)))
	mux.Handle("POST /api/events/{id}/replay", d.auth(http.HandlerFunc(d.apiReplay)))
	mux.Handle("GET /api/jobs", d.auth(http.HandlerFunc(d.apiJobs)))
	mux.Handle("POST /api/jobs/{id}/retry", d.auth(http.HandlerFunc(d.apiRetry)))
	mux.Handle("POST /api/reload", d.auth(http.HandlerFunc(d.apiReload)))
	mux.Handle("GET /api/config", d.auth(http.HandlerFunc(d.apiConfig)))
	if os.Getenv("PAYRAMD_PPROF") == "1" {
		// Profiling for performance work only: behind the admin token, off
		// unless asked for.
		mux.Handle("GET /debug/pprof/", d.auth(http.HandlerFunc(pprof.Index)))
		mux.Handle("GET /debug/pprof/profile", d.auth(http.HandlerFunc(pprof.Profile)))
	}
	return mux
}

func (d *Daemon) auth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token := d.Snapshot().Config.Server.AdminToken.Reveal()
		if token == "" && !localHost(r.Host) {
			// Without a token the admin API is on loopback only, and this
			// keeps a web page from reaching it through DNS rebinding (a
			// name of the attacker's that resolves to 127.0.0.1): a browser
			// sends that name as Host, a local client an address.
			writeJSON(w, http.StatusForbidden, map[string]string{"error": "without admin_token the admin API answers only requests addressed to an IP address or localhost"})
			return
		}
		if token != "" {
			got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(token)) != 1 {
				w.Header().Set("WWW-Authenticate", `Bearer realm="payramd"`)
				writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "unauthorized"})
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// localHost reports whether a request's Host names the machine by address
// or as localhost, as curl, payramd's CLI and health probes do; or is
// absent (HTTP/1.0), which a browser never sends.
func localHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if i := strings.IndexByte(host, '%'); i >= 0 {
		host = host[:i] // an IPv6 zone: fe80::1%25lo
	}
	return host == "" || net.ParseIP(host) != nil || strings.EqualFold(strings.TrimSuffix(host, "."), "localhost")
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func apiError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}

// storeFailed answers a journal error: 404 with notFound for ErrNotFound,
// 409 naming the sources for an event id found in several, 503 otherwise
// (the journal is unavailable). It reports whether err was set.
func storeFailed(w http.ResponseWriter, err error, notFound string) bool {
	var amb *journal.AmbiguousError
	switch {
	case err == nil:
		return false
	case errors.Is(err, journal.ErrNotFound):
		apiError(w, http.StatusNotFound, notFound)
	case errors.As(err, &amb):
		writeJSON(w, http.StatusConflict, map[string]any{
			"error":   "event id " + strconv.Quote(amb.ID) + " is in several sources; add ?source= with one of them",
			"sources": amb.Sources,
		})
	default:
		apiError(w, http.StatusServiceUnavailable, err.Error())
	}
	return true
}

func (d *Daemon) readyz(w http.ResponseWriter, r *http.Request) {
	if d.Snapshot() == nil {
		apiError(w, http.StatusServiceUnavailable, "no config loaded")
		return
	}
	if d.handler != nil && d.handler.Draining() {
		apiError(w, http.StatusServiceUnavailable, "shutting down")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := d.store.Ping(ctx); err != nil {
		apiError(w, http.StatusServiceUnavailable, "journal not writable: "+err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

func limitParam(r *http.Request, def int) int {
	n, err := strconv.Atoi(r.URL.Query().Get("limit"))
	if err != nil || n <= 0 {
		return def
	}
	return min(n, 1000)
}

// eventView is an event as the API shows it.
type eventView struct {
	ID         string            `json:"id"`
	Source     string            `json:"source"`
	Provider   string            `json:"provider"`
	Type       string            `json:"type"`
	ReceivedAt time.Time         `json:"received_at"`
	Headers    map[string]string `json:"headers,omitempty"`
	Payload    json.RawMessage   `json:"payload,omitempty"`
	// Body is the raw body as the provider sent it (the payload is the
	// normalized form rules see): as text when it is UTF-8, else base64.
	Body       string `json:"body,omitempty"`
	BodyBase64 string `json:"body_base64,omitempty"`
}

func viewEvent(e *journal.Event, full bool) eventView {
	v := eventView{ID: e.ID, Source: e.Source, Provider: e.Provider, Type: e.Type, ReceivedAt: e.ReceivedAt.UTC()}
	if full {
		v.Headers = e.Headers
		if len(e.Payload) > 0 {
			v.Payload = json.RawMessage(e.Payload)
		}
		if k, b := engine.BodyField(e.Body); k == "body" {
			v.Body = b
		} else {
			v.BodyBase64 = b
		}
	}
	return v
}

func (d *Daemon) apiEvents(w http.ResponseWriter, r *http.Request) {
	f := journal.EventFilter{Source: r.URL.Query().Get("source"), Limit: limitParam(r, 50)}
	if s := r.URL.Query().Get("since"); s != "" {
		dur, err := time.ParseDuration(s)
		if err != nil {
			apiError(w, http.StatusBadRequest, "since must be a duration such as 24h")
			return
		}
		f.Since = time.Now().Add(-dur)
	}
	evs, err := d.store.Events(r.Context(), f)
	if err != nil {
		apiError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	out := make([]eventView, 0, len(evs))
	for i := range evs {
		out = append(out, viewEvent(&evs[i], false))
	}
	writeJSON(w, http.StatusOK, map[string]any{"events": out})
}

type attemptView struct {
	N         int       `json:"n"`
	StartedAt time.Time `json:"started_at"`
	Duration  string    `json:"duration"`
	Outcome   string    `json:"outcome"`
	Error     string    `json:"error,omitempty"`
	Output    string    `json:"output,omitempty"`
}

type jobView struct {
	ID        int64         `json:"id"`
	EventID   string        `json:"event_id"`
	Source    string        `json:"source,omitempty"`
	Rule      string        `json:"rule"`
	Action    string        `json:"action"`
	State     string        `json:"state"`
	Attempts  int           `json:"attempts"`
	RunAt     *time.Time    `json:"run_at,omitempty"`
	CreatedAt time.Time     `json:"created_at"`
	UpdatedAt time.Time     `json:"updated_at"`
	LastError string        `json:"last_error,omitempty"`
	History   []attemptView `json:"history,omitempty"`
}

func viewJob(j *journal.Job) jobView {
	v := jobView{ID: j.ID, EventID: j.EventID, Source: j.Source, Rule: j.Rule, Action: j.Action, State: string(j.State), Attempts: j.Attempts,
		CreatedAt: j.CreatedAt.UTC(), UpdatedAt: j.UpdatedAt.UTC(), LastError: j.LastError}
	if j.State == journal.Pending && !j.RunAt.IsZero() {
		t := j.RunAt.UTC()
		v.RunAt = &t
	}
	return v
}

func (d *Daemon) apiEvent(w http.ResponseWriter, r *http.Request) {
	det, err := d.store.Event(r.Context(), r.URL.Query().Get("source"), r.PathValue("id"))
	if storeFailed(w, err, "no such event") {
		return
	}
	type ruleView struct {
		Rule       string `json:"rule"`
		Matched    bool   `json:"matched"`
		Suppressed bool   `json:"suppressed_by_once_per,omitempty"`
		// The rule had already run for this event id on another source.
		RanElsewhere bool   `json:"already_ran_on_another_source,omitempty"`
		Error        string `json:"error,omitempty"`
	}
	var rules []ruleView
	for _, rr := range det.Results {
		rules = append(rules, ruleView{Rule: rr.Rule, Matched: rr.Matched, Suppressed: rr.Suppressed && !rr.RanElsewhere, RanElsewhere: rr.RanElsewhere, Error: rr.Error})
	}
	var jobs []jobView
	for _, jd := range det.Jobs {
		v := viewJob(&jd.Job)
		for _, a := range jd.Attempts {
			v.History = append(v.History, attemptView{N: a.N, StartedAt: a.StartedAt.UTC(), Duration: a.Duration.Round(time.Microsecond).String(), Outcome: a.Outcome, Error: a.Error, Output: a.Output})
		}
		jobs = append(jobs, v)
	}
	writeJSON(w, http.StatusOK, map[string]any{"event": viewEvent(&det.Event, true), "rules": rules, "jobs": jobs})
}

func (d *Daemon) apiReplay(w http.ResponseWriter, r *http.Request) {
	id, source := r.PathValue("id"), r.URL.Query().Get("source")
	det, err := d.store.Event(r.Context(), source, id)
	if storeFailed(w, err, "no such event") {
		return
	}
	ev, err := eventFromJournal(&det.Event)
	if err != nil {
		apiError(w, http.StatusInternalServerError, err.Error())
		return
	}
	snap := d.Snapshot()
	_, eval, err := d.evaluate(snap, ev)
	if err != nil {
		apiError(w, http.StatusInternalServerError, err.Error())
		return
	}
	res, err := d.store.Replay(r.Context(), det.Event.Source, id, eval)
	if storeFailed(w, err, "no such event") { // pruned since it was read: 404
		return
	}
	d.countResults(ev, eval)
	d.jobsPending()
	var matched []string
	for _, m := range eval.Matches {
		matched = append(matched, m.Rule)
	}
	views := make([]jobView, 0, len(res.Jobs))
	for _, j := range res.Jobs {
		views = append(views, viewJob(j))
	}
	// A rule that matched but created no job because its once_per key had
	// fired is named, so that a replay meant to run it again does not look
	// like it silently did nothing.
	held := res.Suppressed
	if held == nil {
		held = []string{}
	}
	d.log.Info("event replayed", "event", id, "source", det.Event.Source, "matched", len(matched), "jobs", len(res.Jobs), "held_back_by_once_per", len(held))
	writeJSON(w, http.StatusOK, map[string]any{"id": id, "source": det.Event.Source, "matched": matched, "jobs": views, "suppressed_by_once_per": held})
}

func (d *Daemon) apiJobs(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := journal.JobFilter{State: journal.JobState(q.Get("state")), EventID: q.Get("event"), Source: q.Get("source"), Action: q.Get("action"), Limit: limitParam(r, 50)}
	if f.State != "" && !f.State.Valid() {
		apiError(w, http.StatusBadRequest, "state must be pending, running, succeeded or dead")
		return
	}
	if b := q.Get("before"); b != "" {
		n, err := strconv.ParseInt(b, 10, 64)
		if err != nil || n <= 0 {
			apiError(w, http.StatusBadRequest, "before must be a job id: the last id of the previous page")
			return
		}
		f.Before = n
	}
	jobs, err := d.store.Jobs(r.Context(), f)
	if err != nil {
		apiError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	out := make([]jobView, 0, len(jobs))
	for i := range jobs {
		out = append(out, viewJob(&jobs[i]))
	}
	writeJSON(w, http.StatusOK, map[string]any{"jobs": out})
}

func (d *Daemon) apiRetry(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		apiError(w, http.StatusBadRequest, "job id must be a number")
		return
	}
	j, err := d.store.Retry(r.Context(), id)
	if storeFailed(w, err, "no such job, or it is running or succeeded") {
		return
	}
	d.log.Info("job retried by hand", "job", id, "action", j.Action)
	d.jobsPending()
	writeJSON(w, http.StatusOK, map[string]any{"job": viewJob(j)})
}

func (d *Daemon) apiReload(w http.ResponseWriter, r *http.Request) {
	ok, st := d.reload("admin API")
	code := http.StatusOK
	if !ok {
		code = http.StatusUnprocessableEntity
	}
	writeJSON(w, code, st)
}

func (d *Daemon) apiConfig(w http.ResponseWriter, r *http.Request) {
	d.reloadMu.Lock()
	st := d.lastReload
	d.reloadMu.Unlock()
	sum := d.Snapshot().Summary()
	sum["last_reload"] = st
	writeJSON(w, http.StatusOK, sum)
}
