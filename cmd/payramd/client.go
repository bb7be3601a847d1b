package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/mattn/go-isatty"
	"github.com/payramd/payramd/config"
)

// adminClient talks to the running daemon's admin API.
type adminClient struct {
	base  string
	token string
	http  *http.Client
	note  string // why the config did not give the address or token, when it did not
}

func newAdminClient(c *common, adminURL string, stderr io.Writer) *adminClient {
	ac := &adminClient{http: &http.Client{Timeout: 30 * time.Second}}
	ac.token = os.Getenv("PAYRAMD_ADMIN_TOKEN")
	listen := os.Getenv("PAYRAMD_ADMIN_LISTEN")
	if (adminURL == "" && listen == "") || ac.token == "" {
		// The address and the token come from the config. Its server:
		// section is read even when something else in the file fails,
		// which in an operator's shell is usually a secret that only the
		// service's environment file sets.
		opts := loadOptions(c.config)
		var cfg *config.Config
		var probs *config.Problems
		if opts.Embedded != nil {
			cfg, probs = config.LoadBytes(opts.Path, opts.Embedded, opts.Config)
		} else {
			cfg, probs = config.Load(opts.Path, opts.Config)
		}
		if cfg != nil {
			if listen == "" {
				listen = cfg.Server.AdminListen
			}
			if ac.token == "" {
				ac.token = cfg.Server.AdminToken.Reveal()
			}
		}
		if probs.HasErrors() {
			ac.note = fmt.Sprintf("%s has errors (payramd check -c %s lists them), so its admin_listen and admin_token may not have been read", opts.Path, opts.Path)
			if vars := unsetVars(probs); len(vars) > 0 {
				ac.note = fmt.Sprintf("%s does not load in this shell, which does not set %s (the service's environment does), so its admin_listen and admin_token may not have been read", opts.Path, strings.Join(vars, ", "))
			}
			var fix []string
			if adminURL == "" && listen == "" {
				fix = append(fix, "pass --admin URL or set PAYRAMD_ADMIN_LISTEN")
			}
			if ac.token == "" {
				fix = append(fix, "set PAYRAMD_ADMIN_TOKEN if the daemon needs a token")
			}
			if len(fix) > 0 {
				fmt.Fprintf(stderr, "payramd %s: warning: %s; %s\n", c.fs.Name(), ac.note, strings.Join(fix, ", and "))
			}
		}
	}
	if listen == "" {
		listen = "127.0.0.1:8081"
	}
	ac.base = baseURL(listen, false)
	if adminURL != "" {
		ac.base = strings.TrimRight(adminURL, "/")
	}
	return ac
}

// unsetVars names the environment variables a config lacks when they are
// its only errors: the usual case in an operator's shell, where the secrets
// are in the service's environment file and the config itself is fine.
func unsetVars(probs *config.Problems) []string {
	var vars []string
	for _, p := range probs.List {
		switch {
		case p.Warning:
			continue
		case p.UnsetVar == "":
			return nil
		case !slices.Contains(vars, p.UnsetVar):
			vars = append(vars, p.UnsetVar)
		}
	}
	return vars
}

// tokenHint says why a request was unauthorized, as far as the client knows.
func (ac *adminClient) tokenHint() string {
	switch {
	case ac.token == "" && ac.note != "":
		return "no admin token: " + ac.note
	case ac.token == "":
		return "no admin token was sent: set PAYRAMD_ADMIN_TOKEN, or run with the config that sets admin_token"
	}
	return "the admin token sent is not the daemon's: check PAYRAMD_ADMIN_TOKEN and the config's admin_token"
}

func (ac *adminClient) do(method, path string, out any) error {
	req, err := http.NewRequest(method, ac.base+path, nil)
	if err != nil {
		return err
	}
	if ac.token != "" {
		req.Header.Set("Authorization", "Bearer "+ac.token)
	}
	resp, err := ac.http.Do(req)
	if err != nil {
		return fmt.Errorf("%v (is the daemon running, and is its admin listener at %s?)", err, ac.base)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error   string   `json:"error"`
			Sources []string `json:"sources"`
		}
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			switch {
			case resp.StatusCode == http.StatusUnauthorized:
				return fmt.Errorf("%s: %s (%s)", resp.Status, e.Error, ac.tokenHint())
			case resp.StatusCode == http.StatusConflict && len(e.Sources) > 0:
				return fmt.Errorf("that event id is in several sources (%s): add --source with one of them", strings.Join(e.Sources, ", "))
			}
			return fmt.Errorf("%s: %s", resp.Status, e.Error)
		}
		return fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	if raw, ok := out.(*json.RawMessage); ok {
		*raw = body
		return nil
	}
	return json.Unmarshal(body, out)
}

// fetch GETs an admin API path for the command name. done is true when
// nothing is left to do: an error was printed (code 1), or --json printed
// the answer as it is (code 0).
func (ac *adminClient) fetch(c *common, name, path string, stdout, stderr io.Writer) (raw json.RawMessage, code int, done bool) {
	if err := ac.do("GET", path, &raw); err != nil {
		fmt.Fprintf(stderr, "payramd %s: %v\n", name, err)
		return nil, 1, true
	}
	if c.jsonOut {
		printRaw(stdout, raw)
		return raw, 0, true
	}
	return raw, 0, false
}

func adminFlags(name string, stderr io.Writer) (*common, *string) {
	c := newFlags(name, stderr)
	u := c.fs.String("admin", "", "admin API base URL (default: from the config's admin_listen)")
	return c, u
}

func printRaw(w io.Writer, raw json.RawMessage) {
	var buf bytes.Buffer
	if json.Indent(&buf, raw, "", "  ") == nil {
		raw = buf.Bytes()
	}
	fmt.Fprintln(w, strings.TrimSpace(string(raw)))
}

func cmdEvents(args []string, stdout, stderr io.Writer) int {
	c, admin := adminFlags("events", stderr)
	source := c.fs.String("source", "", "only this source; with an event id, the event of this source")
	limit := c.fs.Int("limit", 20, "how many, newest first")
	since := c.fs.String("since", "", "only events received within this duration, such as 24h")
	rawBody := c.fs.Bool("raw", false, "with an event id: print only its body, byte for byte as the provider sent it")
	pos, err := c.parse(args)
	if err != nil {
		return 2
	}
	if *since != "" {
		if _, err := time.ParseDuration(*since); err != nil {
			fmt.Fprintf(stderr, "payramd events: --since %q is not a duration: write a number and a unit, such as 30m or 24h (168h is a week; there is no d)\n", *since)
			return 2
		}
	}
	ac := newAdminClient(c, *admin, stderr)
	if len(pos) > 0 {
		path := "/api/events/" + url.PathEscape(pos[0]) + sourceQuery(*source)
		if *rawBody {
			return printBody(ac, path, stdout, stderr)
		}
		raw, code, done := ac.fetch(c, "events", path, stdout, stderr)
		if !done {
			printEventDetail(stdout, raw)
		}
		return code
	}
	if *rawBody {
		fmt.Fprintln(stderr, "payramd events: --raw prints one event's body: give its id")
		return 2
	}
	q := url.Values{"limit": {fmt.Sprint(*limit)}}
	if *source != "" {
		q.Set("source", *source)
	}
	if *since != "" {
		q.Set("since", *since)
	}
	raw, code, done := ac.fetch(c, "events", "/api/events?"+q.Encode(), stdout, stderr)
	if !done {
		printEventList(stdout, raw)
	}
	return code
}

// printEventList is the terminal view of GET /api/events. A type or id is
// whatever a provider sent: control characters show as \xNN.
func printEventList(w io.Writer, raw json.RawMessage) {
	var list struct {
		Events []struct {
			ID         string    `json:"id"`
			Source     string    `json:"source"`
			Type       string    `json:"type"`
			ReceivedAt time.Time `json:"received_at"`
		} `json:"events"`
	}
	_ = json.Unmarshal(raw, &list)
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RECEIVED\tSOURCE\tTYPE\tID")
	for _, e := range list.Events {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", e.ReceivedAt.Local().Format("2006-01-02 15:04:05"), e.Source, visible(e.Type), visible(e.ID))
	}
	tw.Flush()
}

// visible is one field of a listing as the terminal should show it: on
// one line, its columns kept (newlines and tabs become spaces), and other
// control characters as \xNN.
func visible(s string) string {
	return string(visibleControls([]byte(cellSpaces.Replace(s))))
}

var cellSpaces = strings.NewReplacer("\n", " ", "\r", " ", "\t", " ")

// sourceQuery is the query string that names an event's source, if any.
func sourceQuery(source string) string {
	if source == "" {
		return ""
	}
	return "?" + url.Values{"source": {source}}.Encode()
}

// printBody writes the raw body of the event at path, exactly as it was
// received, for a file or a pipe (`payramd events ID --raw > body.json`).
func printBody(ac *adminClient, path string, stdout, stderr io.Writer) int {
	var d struct {
		Event struct {
			Body       string `json:"body"`
			BodyBase64 string `json:"body_base64"`
		} `json:"event"`
	}
	if err := ac.do("GET", path, &d); err != nil {
		fmt.Fprintln(stderr, "payramd events:", err)
		return 1
	}
	body := []byte(d.Event.Body)
	if d.Event.BodyBase64 != "" {
		b, err := base64.StdEncoding.DecodeString(d.Event.BodyBase64)
		if err != nil {
			fmt.Fprintln(stderr, "payramd events: the daemon sent a body that is not base64:", err)
			return 1
		}
		body = b
	}
	if f, ok := stdout.(*os.File); ok && isatty.IsTerminal(f.Fd()) {
		// A body is whatever reached the endpoint: on a terminal its
		// control characters could move the cursor or retitle the window.
		body = visibleControls(body)
	}
	if _, err := stdout.Write(body); err != nil {
		fmt.Fprintln(stderr, "payramd events:", err)
		return 1
	}
	return 0
}

// visibleControls writes control characters other than newline and tab
// (and bytes that are not UTF-8) as \xNN, for a terminal.
func visibleControls(b []byte) []byte {
	var out []byte
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		if (r == utf8.RuneError && n == 1) || (unicode.IsControl(r) && r != '\n' && r != '\t') {
			for _, c := range b[:n] {
				out = fmt.Appendf(out, "\\x%02x", c)
			}
		} else {
			out = append(out, b[:n]...)
		}
		b = b[n:]
	}
	return out
}

// printEventDetail writes an event, its rules and its jobs for a person.
// What it shows comes from outside: an attempt's output and error hold what
// a payload's customer-written fields made of a log message or a script's
// output, and an error may quote a receiver's answer. Their control
// characters are shown as \xNN (see visibleControls), so that none moves
// the cursor, retitles the window or rewrites a line already shown; --json
// gives the text as it is.
func printEventDetail(out io.Writer, raw json.RawMessage) {
	var buf bytes.Buffer
	writeEventDetail(&buf, raw)
	_, _ = out.Write(visibleControls(buf.Bytes()))
}

func writeEventDetail(w io.Writer, raw json.RawMessage) {
	var d struct {
		Event struct {
			ID         string          `json:"id"`
			Source     string          `json:"source"`
			Type       string          `json:"type"`
			ReceivedAt time.Time       `json:"received_at"`
			Payload    json.RawMessage `json:"payload"`
			Body       string          `json:"body"`
			BodyBase64 string          `json:"body_base64"`
		} `json:"event"`
		Rules []struct {
			Rule         string `json:"rule"`
			Matched      bool   `json:"matched"`
			Suppressed   bool   `json:"suppressed_by_once_per"`
			RanElsewhere bool   `json:"already_ran_on_another_source"`
			Error        string `json:"error"`
		} `json:"rules"`
		Jobs []struct {
			ID        int64  `json:"id"`
			Rule      string `json:"rule"`
			Action    string `json:"action"`
			State     string `json:"state"`
			Attempts  int    `json:"attempts"`
			LastError string `json:"last_error"`
			History   []struct {
				N         int       `json:"n"`
				StartedAt time.Time `json:"started_at"`
				Duration  string    `json:"duration"`
				Outcome   string    `json:"outcome"`
				Error     string    `json:"error"`
				Output    string    `json:"output"`
			} `json:"history"`
		} `json:"jobs"`
	}
	_ = json.Unmarshal(raw, &d)
	fmt.Fprintf(w, "event %s\n  source %s, type %s, received %s\n  payload ", d.Event.ID, d.Event.Source, d.Event.Type, d.Event.ReceivedAt.Local().Format(time.RFC3339))
	printRaw(w, d.Event.Payload)
	n := len(d.Event.Body)
	if b, err := base64.StdEncoding.DecodeString(d.Event.BodyBase64); err == nil {
		n += len(b)
	}
	if n > 0 {
		fmt.Fprintf(w, "  body: %d bytes as received (--raw prints them; the payload above is what rules see)\n", n)
	}
	fmt.Fprintln(w, "rules:")
	for _, r := range d.Rules {
		switch {
		case r.Error != "":
			fmt.Fprintf(w, "  ERROR %s: %s\n", r.Rule, r.Error)
		case r.RanElsewhere:
			fmt.Fprintf(w, "  MATCH %s (already ran for this event id on another source: nothing run)\n", r.Rule)
		case r.Suppressed:
			fmt.Fprintf(w, "  MATCH %s (already fired for its once_per key: nothing run)\n", r.Rule)
		case r.Matched:
			fmt.Fprintf(w, "  MATCH %s\n", r.Rule)
		}
	}
	fmt.Fprintln(w, "jobs:")
	for _, j := range d.Jobs {
		fmt.Fprintf(w, "  #%d %s → %s: %s after %d attempt(s)\n", j.ID, j.Rule, j.Action, j.State, j.Attempts)
		for _, a := range j.History {
			line := fmt.Sprintf("      %d. %s %s %s", a.N, a.StartedAt.Local().Format("15:04:05"), a.Outcome, a.Duration)
			if a.Error != "" {
				line += ": " + a.Error
			}
			fmt.Fprintln(w, line)
			printOutput(w, a.Output)
		}
	}
}

// outputLines is how many of an attempt's last output lines the terminal
// view shows; --json has all that was kept.
const outputLines = 10

// printOutput shows an attempt's output (a script's stdout and stderr, a
// log action's message) under it, indented, so that why a job failed is in
// `payramd events ID` and not only in its --json.
func printOutput(w io.Writer, out string) {
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) == 1 && strings.TrimSpace(lines[0]) == "" {
		return
	}
	if n := len(lines) - outputLines; n > 0 {
		fmt.Fprintf(w, "         | (%d earlier line(s); --json shows them)\n", n)
		lines = lines[n:]
	}
	for _, l := range lines {
		fmt.Fprintf(w, "         | %s\n", l)
	}
}

func cmdJobs(args []string, stdout, stderr io.Writer) int {
	c, admin := adminFlags("jobs", stderr)
	state := c.fs.String("state", "", "pending, running, succeeded or dead")
	limit := c.fs.Int("limit", 20, "how many")
	event := c.fs.String("event", "", "only this event's jobs")
	source := c.fs.String("source", "", "only jobs of events from this source")
	action := c.fs.String("action", "", "only jobs of this action")
	if _, err := c.parse(args); err != nil {
		return 2
	}
	switch *state {
	case "", "pending", "running", "succeeded", "dead":
	default:
		fmt.Fprintf(stderr, "payramd jobs: --state %q: give pending, running, succeeded or dead\n", *state)
		return 2
	}
	ac := newAdminClient(c, *admin, stderr)
	q := url.Values{"limit": {fmt.Sprint(*limit)}}
	if *state != "" {
		q.Set("state", *state)
	}
	if *event != "" {
		q.Set("event", *event)
	}
	if *action != "" {
		q.Set("action", *action)
	}
	if *source != "" {
		q.Set("source", *source)
	}
	raw, code, done := ac.fetch(c, "jobs", "/api/jobs?"+q.Encode(), stdout, stderr)
	if !done {
		printJobList(stdout, raw)
	}
	return code
}

// printJobList is the terminal view of GET /api/jobs. A last error can
// quote a receiver's answer: control characters show as \xNN.
func printJobList(w io.Writer, raw json.RawMessage) {
	var list struct {
		Jobs []struct {
			ID        int64     `json:"id"`
			EventID   string    `json:"event_id"`
			Rule      string    `json:"rule"`
			Action    string    `json:"action"`
			State     string    `json:"state"`
			Attempts  int       `json:"attempts"`
			UpdatedAt time.Time `json:"updated_at"`
			LastError string    `json:"last_error"`
		} `json:"jobs"`
	}
	_ = json.Unmarshal(raw, &list)
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "JOB\tSTATE\tATTEMPTS\tRULE\tACTION\tUPDATED\tLAST ERROR")
	for _, j := range list.Jobs {
		fmt.Fprintf(tw, "%d\t%s\t%d\t%s\t%s\t%s\t%s\n", j.ID, j.State, j.Attempts, j.Rule, j.Action, j.UpdatedAt.Local().Format("01-02 15:04:05"), visible(oneLine(j.LastError, 60)))
	}
	tw.Flush()
}

func oneLine(s string, n int) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

func cmdRetry(args []string, stdout, stderr io.Writer) int {
	c, admin := adminFlags("retry", stderr)
	dead := c.fs.Bool("dead", false, "retry every dead job (after an outage)")
	action := c.fs.String("action", "", "with --dead: only the jobs of this action")
	pos, err := c.parse(args)
	if err != nil {
		return 2
	}
	switch {
	case *dead && len(pos) > 0:
		fmt.Fprintln(stderr, "payramd retry: give job ids or --dead, not both")
		return 2
	case !*dead && len(pos) == 0:
		fmt.Fprintln(stderr, "payramd retry: give job ids (payramd jobs --state dead lists them), or --dead for every dead job")
		return 2
	case *action != "" && !*dead:
		fmt.Fprintln(stderr, "payramd retry: --action goes with --dead")
		return 2
	}
	ac := newAdminClient(c, *admin, stderr)
	ids := pos
	if *dead {
		if ids, err = deadJobs(ac, *action, 1000); err != nil {
			fmt.Fprintln(stderr, "payramd retry:", err)
			return 1
		}
	}
	var retried []json.RawMessage
	type failure struct {
		Job   string `json:"job"`
		Error string `json:"error"`
	}
	var failed []failure
	for _, id := range ids {
		var raw json.RawMessage
		if err := ac.do("POST", "/api/jobs/"+url.PathEscape(id)+"/retry", &raw); err != nil {
			failed = append(failed, failure{id, err.Error()})
			if !c.jsonOut {
				fmt.Fprintf(stderr, "payramd retry: job %s: %v\n", id, err)
			}
			continue
		}
		retried = append(retried, raw)
	}
	switch {
	case c.jsonOut && len(pos) == 1 && len(retried) == 1:
		printRaw(stdout, retried[0]) // one job: the job itself, as always
	case c.jsonOut:
		out, _ := json.Marshal(struct {
			Retried []json.RawMessage `json:"retried"`
			Failed  []failure         `json:"failed"`
		}{append([]json.RawMessage{}, retried...), append([]failure{}, failed...)})
		printRaw(stdout, out)
	case len(pos) == 1 && len(retried) == 1:
		fmt.Fprintf(stdout, "job %s is pending and will run now\n", pos[0])
	case len(pos) == 1:
		// The one job failed: its error is on stderr, and "0 job(s)
		// pending" would only repeat it less clearly.
	case *dead && len(ids) == 0:
		fmt.Fprintln(stdout, "no dead jobs"+forAction(*action))
	default:
		fmt.Fprintf(stdout, "%d job(s) pending and will run now%s\n", len(retried), forAction(*action))
	}
	if len(failed) > 0 {
		return 1
	}
	return 0
}

// deadJobs lists the ids of every dead job, of one action when action is
// set, oldest first. It pages through the API (newest first, pageSize at a
// time below the last id seen) until a page comes back empty, so it never
// depends on the API's own cap on a page.
func deadJobs(ac *adminClient, action string, pageSize int) ([]string, error) {
	var ids []string
	var before int64
	for {
		q := url.Values{"state": {"dead"}, "limit": {strconv.Itoa(pageSize)}}
		if action != "" {
			q.Set("action", action)
		}
		if before > 0 {
			q.Set("before", strconv.FormatInt(before, 10))
		}
		var page struct {
			Jobs []struct {
				ID int64 `json:"id"`
			} `json:"jobs"`
		}
		if err := ac.do("GET", "/api/jobs?"+q.Encode(), &page); err != nil {
			return nil, err
		}
		if len(page.Jobs) == 0 {
			break
		}
		for _, j := range page.Jobs {
			if before > 0 && j.ID >= before {
				return nil, fmt.Errorf("the daemon ignored the page cursor (job %d after %d): is it older than this payramd?", j.ID, before)
			}
			ids = append(ids, strconv.FormatInt(j.ID, 10))
			before = j.ID
		}
	}
	slices.Reverse(ids) // oldest job first
	return ids, nil
}

func forAction(action string) string {
	if action == "" {
		return ""
	}
	return " (action " + action + ")"
}

func cmdReload(args []string, stdout, stderr io.Writer) int {
	c, admin := adminFlags("reload", stderr)
	if _, err := c.parse(args); err != nil {
		return 2
	}
	var st struct {
		OK       bool     `json:"ok"`
		Problems []string `json:"problems"`
	}
	ac := newAdminClient(c, *admin, stderr)
	req, _ := http.NewRequest("POST", ac.base+"/api/reload", nil)
	if ac.token != "" {
		req.Header.Set("Authorization", "Bearer "+ac.token)
	}
	resp, err := ac.http.Do(req)
	if err != nil {
		fmt.Fprintf(stderr, "payramd reload: %v (is the daemon running?)\n", err)
		return 1
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if c.jsonOut {
		printRaw(stdout, body)
	}
	if resp.StatusCode == http.StatusUnauthorized {
		fmt.Fprintf(stderr, "payramd reload: %s (%s)\n", resp.Status, ac.tokenHint())
		return 1
	}
	if err := json.Unmarshal(body, &st); err != nil {
		fmt.Fprintf(stderr, "payramd reload: %s: %s\n", resp.Status, strings.TrimSpace(string(body)))
		return 1
	}
	if !c.jsonOut {
		for _, p := range st.Problems {
			fmt.Fprintln(stdout, p)
		}
	}
	if !st.OK {
		fmt.Fprintln(stderr, "payramd reload: refused; the previous config keeps running")
		return 1
	}
	if !c.jsonOut {
		fmt.Fprintln(stdout, "reloaded")
	}
	return 0
}

func cmdReplay(args []string, stdout, stderr io.Writer) int {
	c, admin := adminFlags("replay", stderr)
	dry := c.fs.Bool("dry-run", false, "backtest: evaluate the config against journaled events, changing nothing")
	since := c.fs.Duration("since", 168*time.Hour, "with --dry-run: how far back")
	dataDir := c.fs.String("data-dir", "", "with --dry-run: the journal directory (default: the config's data_dir)")
	source := c.fs.String("source", "", "the event's source, when its id is in several; with --dry-run, only this source's events")
	pos, err := c.parse(args)
	if err != nil {
		return 2
	}
	if *dry {
		return backtest(c, *since, *dataDir, *source, stdout, stderr)
	}
	if len(pos) != 1 {
		fmt.Fprintln(stderr, "payramd replay: give one event id (payramd events lists them), or --dry-run to backtest")
		return 2
	}
	var raw json.RawMessage
	if err := newAdminClient(c, *admin, stderr).do("POST", "/api/events/"+url.PathEscape(pos[0])+"/replay"+sourceQuery(*source), &raw); err != nil {
		fmt.Fprintln(stderr, "payramd replay:", err)
		return 1
	}
	if c.jsonOut {
		printRaw(stdout, raw)
		return 0
	}
	var r struct {
		Matched []string `json:"matched"`
		Jobs    []struct {
			ID     int64  `json:"id"`
			Action string `json:"action"`
		} `json:"jobs"`
		Held []string `json:"suppressed_by_once_per"`
	}
	_ = json.Unmarshal(raw, &r)
	fmt.Fprintf(stdout, "replayed %s: matched [%s], %d new job(s)\n", pos[0], strings.Join(r.Matched, ", "), len(r.Jobs))
	if len(r.Held) > 0 {
		fmt.Fprintf(stdout, "held back by once_per (its key already fired, so no job): %s\n", strings.Join(r.Held, ", "))
	}
	return 0
}
