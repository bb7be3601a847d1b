package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/payramd/payramd/webhook"
)

// The delivery guarantees of SPEC section 7, proven against the real binary:
// acknowledged events survive kill -9, retries count exactly, dead jobs are
// visible and revivable, once_per holds across deliveries and restarts,
// SIGTERM leaves pending work for the next start, and an unwritable journal
// answers 503 instead of acknowledging what it could not store.

const durSecret = "test-api-key"

// durConfig is a config with one payram source; actions and rules are YAML
// blocks indented by two spaces, appended under actions: and rules:.
func durConfig(dataDir string, shutdown time.Duration, actions, rules string) string {
	return fmt.Sprintf(`server:
  data_dir: %s
  shutdown_timeout: %s
sources:
  payram:
    provider: payram
    secret: %s
actions:
%srules:
%s`, dataDir, shutdown, durSecret, actions, rules)
}

// sinkAction is an http action called name posting to url.
func sinkAction(name, url, retry string) string {
	return fmt.Sprintf("  %s:\n    type: http\n    url: %s/hook\n    timeout: 30s\n    retry: %s\n", name, url, retry)
}

const fulfilRule = "  - name: fulfil\n    when: status == \"FILLED\"\n    do: [sink]\n"

// payment is a PayRam FILLED webhook for ref; distinct (ref, ts) give
// distinct bodies and therefore distinct event ids. pad makes it bigger.
func payment(ref string, ts int64, pad int) []byte {
	b := fmt.Appendf(nil, `{"reference_id":%q,"invoice_id":"inv_%s","customer_id":"cust_381","status":"FILLED","amount":"49.99","filled_amount":"49.99","filled_amount_in_usd":"49.99","currency":"USDC","timestamp":%d`, ref, ref, ts)
	if pad > 0 {
		b = fmt.Appendf(b, `,"note":%q`, strings.Repeat("x", pad))
	}
	return append(b, '}')
}

// payramEventID is the id payramd gives a PayRam body (PayRam sends none).
func payramEventID(body []byte) string { return webhook.DefaultID("payram", body) }

// webhookAnswer is the listener's JSON answer.
type webhookAnswer struct {
	Status string `json:"status"`
	ID     string `json:"id"`
	Error  string `json:"error"`
}

var durClient = &http.Client{
	Timeout:   20 * time.Second,
	Transport: &http.Transport{MaxIdleConnsPerHost: 32, MaxIdleConns: 64, IdleConnTimeout: 5 * time.Second},
}

// postSigned delivers body to the payram source the way PayRam does:
// X-Payram-Signature: sha256=<hex HMAC-SHA256(body, api key)>.
func postSigned(base string, body []byte) (int, webhookAnswer, error) {
	return postSignedWith(durClient, base, body)
}

// postSignedWith is postSigned through client c.
func postSignedWith(c *http.Client, base string, body []byte) (int, webhookAnswer, error) {
	req, err := http.NewRequest(http.MethodPost, base+"/webhooks/payram", strings.NewReader(string(body)))
	if err != nil {
		return 0, webhookAnswer{}, err
	}
	mac := hmac.New(sha256.New, []byte(durSecret))
	mac.Write(body)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Payram-Signature", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	resp, err := c.Do(req)
	if err != nil {
		return 0, webhookAnswer{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	var a webhookAnswer
	if err == nil {
		err = json.Unmarshal(raw, &a)
	}
	// The status line is what a provider acts on: a 200 whose body was cut
	// off is still an acknowledgement, so the code is returned either way.
	return resp.StatusCode, a, err
}

// mustAccept posts body and fails unless it is accepted.
func mustAccept(t *testing.T, p *proc, body []byte) string {
	t.Helper()
	code, a, err := postSigned(p.Public, body)
	if err != nil || code != 200 || a.Status != "accepted" {
		t.Fatalf("POST: %d %+v %v", code, a, err)
	}
	if a.ID != payramEventID(body) {
		t.Fatalf("answered id %s, want %s", a.ID, payramEventID(body))
	}
	return a.ID
}

// paySink is a loopback receiver for the http action that keys what it
// gets by the payment's reference_id; behave decides each answer.
type paySink struct {
	srv *httptest.Server
	URL string

	mu     sync.Mutex
	behave func(ref string, n int) (code int, delay time.Duration) // nil: 200 at once
	tries  map[string]int                                          // requests per ref
	ok     map[string]int                                          // 2xx answers per ref that the client waited for
	keys   map[string][]string                                     // Idempotency-Key of every request per ref
	total  int
}

func newPaySink(t *testing.T, behave func(ref string, n int) (int, time.Duration)) *paySink {
	s := &paySink{behave: behave, tries: map[string]int{}, ok: map[string]int{}, keys: map[string][]string{}}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var p struct {
			Ref string `json:"reference_id"`
		}
		_ = json.Unmarshal(body, &p)
		s.mu.Lock()
		s.total++
		s.tries[p.Ref]++
		s.keys[p.Ref] = append(s.keys[p.Ref], r.Header.Get("Idempotency-Key"))
		n, behave := s.tries[p.Ref], s.behave
		s.mu.Unlock()
		code, delay := 200, time.Duration(0)
		if behave != nil {
			code, delay = behave(p.Ref, n)
		}
		if delay > 0 {
			select {
			case <-time.After(delay):
			case <-r.Context().Done():
				return // the daemon gave up (or died): not delivered
			}
		}
		if r.Context().Err() != nil {
			return
		}
		if code/100 == 2 {
			s.mu.Lock()
			s.ok[p.Ref]++
			s.mu.Unlock()
		}
		w.WriteHeader(code)
	}))
	s.URL = s.srv.URL
	t.Cleanup(s.srv.Close)
	return s
}

// newOutageSink is a receiver that answers 503 until up is set, then 200.
func newOutageSink(t *testing.T) (s *paySink, up *atomic.Bool) {
	up = new(atomic.Bool)
	return newPaySink(t, func(string, int) (int, time.Duration) {
		if up.Load() {
			return 200, 0
		}
		return 503, 0
	}), up
}

func (s *paySink) triesOf(ref string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tries[ref]
}

// missing returns the refs with no completed 2xx delivery.
func (s *paySink) missing(refs []string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, r := range refs {
		if s.ok[r] == 0 {
			out = append(out, r)
		}
	}
	return out
}

// waitDelivered waits until every ref has been delivered at least once.
func (s *paySink) waitDelivered(t *testing.T, refs []string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		m := s.missing(refs)
		if len(m) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d acknowledged events never delivered within %s, e.g. %v", len(m), len(refs), timeout, m[:min(len(m), 5)])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// report logs and returns how many deliveries beyond one per ref the sink
// saw (at-least-once allows them), and checks that every request for one
// ref carried the same Idempotency-Key, so a receiver can drop them.
func (s *paySink) report(t *testing.T, refs []string) int {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	dups := 0
	for _, r := range refs {
		dups += max(s.ok[r]-1, 0)
		keys := slices.Compact(slices.Sorted(slices.Values(s.keys[r])))
		if len(keys) != 1 || keys[0] == "" {
			t.Errorf("ref %s: Idempotency-Keys %v, want one stable key across attempts and restarts", r, keys)
		}
	}
	t.Logf("sink: %d requests, %d refs delivered, %d duplicate deliveries (at-least-once)", s.total, len(refs), dups)
	return dups
}

func (s *paySink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total
}

// eventDetail is GET /api/events/{id}.
type eventDetail struct {
	Event struct {
		ID string `json:"id"`
	} `json:"event"`
	Rules []struct {
		Rule       string `json:"rule"`
		Matched    bool   `json:"matched"`
		Suppressed bool   `json:"suppressed_by_once_per"`
	} `json:"rules"`
	Jobs []jobDetail `json:"jobs"`
}

type jobDetail struct {
	ID       int64  `json:"id"`
	Action   string `json:"action"`
	State    string `json:"state"`
	Attempts int    `json:"attempts"`
	History  []struct {
		N       int    `json:"n"`
		Outcome string `json:"outcome"`
		Error   string `json:"error"`
	} `json:"history"`
}

// fetchEvent is GET /api/events/{id}, usable from any goroutine.
func fetchEvent(admin, id string) (*eventDetail, int, error) {
	resp, err := durClient.Get(admin + "/api/events/" + id)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	var d eventDetail
	if resp.StatusCode != 200 {
		return nil, resp.StatusCode, nil
	}
	if err := json.NewDecoder(resp.Body).Decode(&d); err != nil {
		return nil, resp.StatusCode, err
	}
	return &d, 200, nil
}

// checkSucceeded checks through the admin API that every event is in the
// journal and each of its jobs succeeded (polling briefly: a job's record
// lands just after the sink answered).
func checkSucceeded(t *testing.T, p *proc, ids []string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var mu sync.Mutex
	var bad []string
	work := make(chan string)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for id := range work {
				var why string
				for {
					d, code, err := fetchEvent(p.Admin, id)
					switch {
					case err != nil:
						why = err.Error()
					case code != 200:
						why = fmt.Sprintf("GET /api/events/%s: %d", id, code)
					case len(d.Jobs) == 0:
						why = "no jobs"
					default:
						why = ""
						for _, j := range d.Jobs {
							if j.State != "succeeded" {
								why = fmt.Sprintf("job %d is %s after %d attempts", j.ID, j.State, j.Attempts)
							}
						}
					}
					if why == "" || time.Now().After(deadline) {
						break
					}
					time.Sleep(50 * time.Millisecond)
				}
				if why != "" {
					mu.Lock()
					bad = append(bad, id[:12]+": "+why)
					mu.Unlock()
				}
			}
		})
	}
	for _, id := range ids {
		work <- id
	}
	close(work)
	wg.Wait()
	if len(bad) > 0 {
		t.Errorf("%d of %d acknowledged events not journaled with succeeded jobs, e.g. %v", len(bad), len(ids), bad[:min(len(bad), 5)])
	}
}

// startDur starts the daemon without the race runtime's one-second sleep
// at exit, which would otherwise count against the shutdown timeout.
func startDur(t *testing.T, cfg string) *proc {
	t.Helper()
	return startDaemon(t, cfg, "GORACE=halt_on_error=1 atexit_sleep_ms=0")
}

// kill9 kills the daemon with SIGKILL: no shutdown code runs at all.
func kill9(t *testing.T, p *proc) {
	t.Helper()
	p.signal(syscall.SIGKILL)
	p.wait(10 * time.Second)
	durClient.CloseIdleConnections()
}

// stopClean stops the daemon with SIGTERM and requires exit status 0
// (which also proves the race detector found nothing: it would exit 66).
func stopClean(t *testing.T, p *proc) {
	t.Helper()
	p.signal(syscall.SIGTERM)
	if code := p.wait(15 * time.Second); code != 0 {
		t.Errorf("exit status after SIGTERM = %d, want 0", code)
	}
}

// postAll posts bodies with 16 goroutines and returns their answers.
func postAll(base string, bodies [][]byte) ([]int, []webhookAnswer, []error) {
	codes, answers, errs := make([]int, len(bodies)), make([]webhookAnswer, len(bodies)), make([]error, len(bodies))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(bodies) {
					return
				}
				codes[i], answers[i], errs[i] = postSigned(base, bodies[i])
			}
		})
	}
	wg.Wait()
	return codes, answers, errs
}

// TestDurableWhileEndpointDown (Done-when 1): 300 events acknowledged while
// the action's endpoint fails, kill -9, restart, endpoint up: every one of
// the 300 is delivered.
func TestDurableWhileEndpointDown(t *testing.T) {
	t.Parallel()
	t0 := time.Now()
	s, up := newOutageSink(t)
	dir := t.TempDir()
	cfg := writeFile(t, dir, "rules.yaml", durConfig(filepath.Join(dir, "data"), 5*time.Second,
		sinkAction("sink", s.URL, "{attempts: 50, initial: 50ms, max: 500ms}"), fulfilRule))
	p := startDur(t, cfg)

	const n = 300
	refs, bodies := make([]string, n), make([][]byte, n)
	for i := range n {
		refs[i] = fmt.Sprintf("down_%03d", i)
		bodies[i] = payment(refs[i], 1763900000+int64(i), 0)
	}
	codes, answers, errs := postAll(p.Public, bodies)
	ids := make([]string, n)
	for i := range n {
		if errs[i] != nil || codes[i] != 200 || answers[i].Status != "accepted" {
			t.Fatalf("event %d: %d %+v %v", i, codes[i], answers[i], errs[i])
		}
		ids[i] = answers[i].ID
	}
	t.Logf("300 events accepted after %s", time.Since(t0).Round(time.Millisecond))
	// Let every job fail at least once, so the crash hits jobs that are
	// pending with a backoff, running, and being recorded.
	deadline := time.Now().Add(20 * time.Second)
	for slices.ContainsFunc(refs, func(r string) bool { return s.triesOf(r) == 0 }) {
		if time.Now().After(deadline) {
			t.Fatal("not every job was attempted while the endpoint was down")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if m := s.missing(refs); len(m) != n {
		t.Fatalf("%d events delivered while the endpoint was down", n-len(m))
	}
	kill9(t, p)
	t.Logf("killed after %s with %d failed attempts seen", time.Since(t0).Round(time.Millisecond), s.count())

	up.Store(true)
	p = startDur(t, cfg)
	s.waitDelivered(t, refs, 30*time.Second)
	t.Logf("all 300 delivered %s after start", time.Since(t0).Round(time.Millisecond))
	s.report(t, refs)
	checkSucceeded(t, p, ids, 10*time.Second)
	stopClean(t, p)
}

// TestDurableKill9DuringIngest (Done-when 2): 16 senders post distinct
// events continuously while the daemon is killed with SIGKILL three times at
// random moments and restarted on the same data dir; every event that was
// answered 200 is delivered and visible in the admin API.
func TestDurableKill9DuringIngest(t *testing.T) {
	t.Parallel()
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 0))
	t.Logf("seed %d", seed)
	// A little latency keeps jobs in flight when the kills land.
	s := newPaySink(t, func(ref string, n int) (int, time.Duration) {
		return 200, time.Duration(rand.IntN(5)) * time.Millisecond
	})
	dir := t.TempDir()
	cfg := writeFile(t, dir, "rules.yaml", durConfig(filepath.Join(dir, "data"), 5*time.Second,
		sinkAction("sink", s.URL, "{attempts: 50, initial: 50ms, max: 500ms}"), fulfilRule))

	var base atomic.Pointer[string]
	var stopping atomic.Bool
	var mu sync.Mutex
	acked := map[string]string{} // ref -> event id
	var dupAcks, refused, connErrs atomic.Int64
	var wg sync.WaitGroup
	run := func(g int) {
		for i := 0; !stopping.Load(); i++ {
			ref := fmt.Sprintf("k%02d_%05d", g, i)
			body := payment(ref, 1763900000+int64(i), 0)
			// Like a provider: send the same delivery until it is answered 200.
			for !stopping.Load() {
				code, a, err := postSigned(*base.Load(), body)
				if code == 200 {
					if a.ID != "" && a.ID != payramEventID(body) {
						t.Errorf("answered id %s for %s, want %s", a.ID, ref, payramEventID(body))
					}
					if a.Status == "duplicate" {
						// The earlier attempt was journaled but its answer
						// was lost in the crash.
						dupAcks.Add(1)
					}
					mu.Lock()
					acked[ref] = payramEventID(body)
					mu.Unlock()
					break
				}
				if err != nil && code == 0 {
					connErrs.Add(1)
				} else {
					refused.Add(1)
				}
				time.Sleep(10 * time.Millisecond)
			}
		}
	}
	ackedCount := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(acked)
	}

	t0 := time.Now()
	p := startDur(t, cfg)
	base.Store(&p.Public)
	for g := range 16 {
		wg.Go(func() { run(g) })
	}
	// serve lets the senders work against the current daemon for a random
	// 300-800 ms, counted from its first acknowledgement (a loaded machine
	// can take a while to get going after a restart).
	serve := func() time.Duration {
		n := ackedCount()
		deadline := time.Now().Add(15 * time.Second)
		for ackedCount() == n {
			if time.Now().After(deadline) {
				t.Fatal("the restarted daemon acknowledged nothing")
			}
			time.Sleep(5 * time.Millisecond)
		}
		d := time.Duration(300+rng.IntN(501)) * time.Millisecond
		time.Sleep(d)
		return d
	}
	for k := 1; k <= 3; k++ {
		d := serve()
		kill9(t, p)
		t.Logf("kill -9 #%d after %s of ingest: %d events acknowledged so far, %d requests at the sink", k, d, ackedCount(), s.count())
		p = startDur(t, cfg)
		base.Store(&p.Public)
	}
	serve()
	stopping.Store(true)
	wg.Wait()

	mu.Lock()
	refs := make([]string, 0, len(acked))
	ids := make([]string, 0, len(acked))
	for r, id := range acked {
		refs = append(refs, r)
		ids = append(ids, id)
	}
	mu.Unlock()
	t.Logf("%d events acknowledged in %s (%d of them as duplicates of a delivery whose answer the crash lost); %d connection errors, %d non-200 answers",
		len(refs), time.Since(t0).Round(time.Millisecond), dupAcks.Load(), connErrs.Load(), refused.Load())
	if len(refs) < 50 {
		t.Fatalf("only %d events acknowledged: the test did not exercise much", len(refs))
	}
	s.waitDelivered(t, refs, 60*time.Second)
	t.Logf("all acknowledged events delivered %s after the first start", time.Since(t0).Round(time.Millisecond))
	s.report(t, refs)
	checkSucceeded(t, p, ids, 10*time.Second)
	stopClean(t, p)
}

// TestRetryCounts (Done-when 3): a receiver failing three times then
// succeeding gets exactly four attempts of one job; a 400 gets exactly one
// and the job is dead.
func TestRetryCounts(t *testing.T) {
	t.Parallel()
	flaky := newPaySink(t, func(ref string, n int) (int, time.Duration) {
		if n <= 3 {
			return 503, 0
		}
		return 200, 0
	})
	refusing := newPaySink(t, func(string, int) (int, time.Duration) { return 400, 0 })
	dir := t.TempDir()
	retry := "{attempts: 10, initial: 50ms, max: 200ms}"
	cfg := writeFile(t, dir, "rules.yaml", durConfig(filepath.Join(dir, "data"), 5*time.Second,
		sinkAction("flaky", flaky.URL, retry)+sinkAction("refusing", refusing.URL, retry),
		"  - name: fulfil\n    when: status == \"FILLED\"\n    do: [flaky, refusing]\n"))
	p := startDur(t, cfg)
	id := mustAccept(t, p, payment("retry_1", 1763900420, 0))

	flaky.waitDelivered(t, []string{"retry_1"}, 10*time.Second)
	// Give any extra attempt time to show up.
	deadline := time.Now().Add(10 * time.Second)
	var d *eventDetail
	for {
		var err error
		var code int
		d, code, err = fetchEvent(p.Admin, id)
		if err != nil || code != 200 {
			t.Fatalf("GET event: %d %v", code, err)
		}
		settled := len(d.Jobs) == 2 && !slices.ContainsFunc(d.Jobs, func(j jobDetail) bool {
			return j.State == "pending" || j.State == "running"
		})
		if settled || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // twice the longest backoff: nothing more may come
	if got := flaky.triesOf("retry_1"); got != 4 {
		t.Errorf("flaky receiver got %d requests, want exactly 4", got)
	}
	if got := refusing.triesOf("retry_1"); got != 1 {
		t.Errorf("receiver answering 400 got %d requests, want exactly 1", got)
	}
	d, _, _ = fetchEvent(p.Admin, id)
	for _, j := range d.Jobs {
		var outcomes []string
		for _, h := range j.History {
			outcomes = append(outcomes, h.Outcome)
		}
		switch j.Action {
		case "flaky":
			if j.State != "succeeded" || j.Attempts != 4 || !slices.Equal(outcomes, []string{"retry", "retry", "retry", "succeeded"}) {
				t.Errorf("flaky job: %s after %d attempts, history %v; want succeeded after 4: retry×3, succeeded", j.State, j.Attempts, outcomes)
			}
		case "refusing":
			if j.State != "dead" || j.Attempts != 1 || !slices.Equal(outcomes, []string{"failed"}) {
				t.Errorf("400 job: %s after %d attempts, history %v; want dead after 1 failed attempt", j.State, j.Attempts, outcomes)
			}
			if len(j.History) == 1 && !strings.Contains(j.History[0].Error, "400") {
				t.Errorf("400 job error %q does not say 400", j.History[0].Error)
			}
		default:
			t.Errorf("unexpected job %+v", j)
		}
	}
	flaky.report(t, []string{"retry_1"})
	if got := p.metric(`payramd_action_attempts_total{action="flaky",outcome="retry"}`); got != 3 {
		t.Errorf("flaky retry attempts metric = %v, want 3", got)
	}
	if got := p.metric(`payramd_action_attempts_total{action="refusing",outcome="failed"}`); got != 1 {
		t.Errorf("refusing failed attempts metric = %v, want 1", got)
	}
	stopClean(t, p)
}

// TestDeadJobAndRetry (Done-when 4): exhausted retries make a job dead,
// visible in the metrics and the admin API; `payramd retry` revives it.
func TestDeadJobAndRetry(t *testing.T) {
	t.Parallel()
	s, up := newOutageSink(t)
	dir := t.TempDir()
	cfg := writeFile(t, dir, "rules.yaml", durConfig(filepath.Join(dir, "data"), 5*time.Second,
		sinkAction("sink", s.URL, "{attempts: 3, initial: 50ms, max: 100ms}"), fulfilRule))
	p := startDur(t, cfg)
	id := mustAccept(t, p, payment("dead_1", 1763900420, 0))

	var jobs struct {
		Jobs []struct {
			ID       int64  `json:"id"`
			EventID  string `json:"event_id"`
			State    string `json:"state"`
			Attempts int    `json:"attempts"`
		} `json:"jobs"`
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		p.getJSON("/api/jobs?state=dead", &jobs)
		if len(jobs.Jobs) > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(jobs.Jobs) != 1 || jobs.Jobs[0].EventID != id || jobs.Jobs[0].Attempts != 3 {
		t.Fatalf("GET /api/jobs?state=dead = %+v, want this event's job after 3 attempts", jobs.Jobs)
	}
	job := jobs.Jobs[0].ID
	time.Sleep(300 * time.Millisecond)
	if got := s.triesOf("dead_1"); got != 3 {
		t.Errorf("receiver got %d requests, want exactly 3 (retry: attempts: 3)", got)
	}
	if got := p.metric(`payramd_action_attempts_total{action="sink",outcome="dead"}`); got != 1 {
		t.Errorf(`payramd_action_attempts_total{action="sink",outcome="dead"} = %v, want 1`, got)
	}
	if got := p.metric(`payramd_action_attempts_total{action="sink",outcome="retry"}`); got != 2 {
		t.Errorf(`payramd_action_attempts_total{action="sink",outcome="retry"} = %v, want 2`, got)
	}
	waitMetric(t, p, `payramd_jobs{state="dead"}`, 1, 8*time.Second) // refreshed every 5 s
	if got := p.metric(`payramd_jobs{state="pending"}`); got != 0 {
		t.Errorf(`payramd_jobs{state="pending"} = %v, want 0`, got)
	}

	up.Store(true)
	code, out, errOut := runCLI(t, nil, "retry", strconv.FormatInt(job, 10), "-c", cfg, "--admin", p.Admin)
	if code != 0 || !strings.Contains(out, "pending") {
		t.Fatalf("payramd retry %d: exit %d: %s %s", job, code, out, errOut)
	}
	s.waitDelivered(t, []string{"dead_1"}, 10*time.Second)
	checkSucceeded(t, p, []string{id}, 5*time.Second)
	if got := s.triesOf("dead_1"); got != 4 {
		t.Errorf("receiver got %d requests, want 4 (3 before dying, 1 after the retry)", got)
	}
	// A revived job is a retry of the same job: same idempotency key.
	s.report(t, []string{"dead_1"})
	waitMetric(t, p, `payramd_jobs{state="dead"}`, 0, 8*time.Second)
	// Retrying a succeeded job is refused.
	if code, _, errOut := runCLI(t, nil, "retry", strconv.FormatInt(job, 10), "-c", cfg, "--admin", p.Admin); code == 0 {
		t.Errorf("payramd retry of a succeeded job exited 0: %s", errOut)
	}
	stopClean(t, p)
}

// TestRetryEveryDeadJob: after an outage, `payramd retry --dead` revives
// every dead job (or, with --action, one action's), and they are delivered.
func TestRetryEveryDeadJob(t *testing.T) {
	s, up := newOutageSink(t)
	dir := t.TempDir()
	cfg := writeFile(t, dir, "rules.yaml", durConfig(filepath.Join(dir, "data"), 5*time.Second,
		sinkAction("sink", s.URL, "{attempts: 1}")+sinkAction("audit", s.URL, "{attempts: 1}"),
		"  - name: fulfil\n    when: status == \"FILLED\"\n    do: [sink, audit]\n"))
	p := startDur(t, cfg)
	var ids []string
	for i := range 3 {
		ids = append(ids, mustAccept(t, p, payment(fmt.Sprintf("out_%d", i), 1763900500, 0)))
	}
	type job struct {
		Action string `json:"action"`
	}
	var jobs struct {
		Jobs []job `json:"jobs"`
	}
	deadline := time.Now().Add(10 * time.Second)
	for p.getJSON("/api/jobs?state=dead", &jobs); len(jobs.Jobs) < 6; p.getJSON("/api/jobs?state=dead", &jobs) {
		if time.Now().After(deadline) {
			t.Fatalf("dead jobs: %d, want 6", len(jobs.Jobs))
		}
		time.Sleep(20 * time.Millisecond)
	}

	// The listing pages through the API (the review found it stopped at
	// the API's 1,000 and said nothing); pages of 4 exercise that here.
	all, err := deadJobs(&adminClient{base: p.Admin, http: http.DefaultClient}, "", 4)
	var nums []int
	for _, id := range all {
		n, _ := strconv.Atoi(id)
		nums = append(nums, n)
	}
	if err != nil || len(all) != 6 || !slices.IsSorted(nums) {
		t.Fatalf("dead jobs, pages of 4: %v %v, want 6 ids oldest first", all, err)
	}

	up.Store(true)
	code, out, errOut := runCLI(t, nil, "retry", "--dead", "--action", "sink", "-c", cfg, "--admin", p.Admin)
	if code != 0 || strings.TrimSpace(out) != "3 job(s) pending and will run now (action sink)" {
		t.Fatalf("payramd retry --dead --action sink: exit %d: %q %s", code, out, errOut)
	}
	s.waitDelivered(t, []string{"out_0", "out_1", "out_2"}, 10*time.Second)
	p.getJSON("/api/jobs?state=dead", &jobs)
	if len(jobs.Jobs) != 3 || slices.ContainsFunc(jobs.Jobs, func(j job) bool { return j.Action != "audit" }) {
		t.Fatalf("dead after retrying sink's: %+v, want audit's three", jobs.Jobs)
	}

	code, out, errOut = runCLI(t, nil, "retry", "--dead", "--json", "-c", cfg, "--admin", p.Admin)
	var res struct {
		Retried []struct {
			ID    int64  `json:"id"`
			State string `json:"state"`
		} `json:"retried"`
		Failed []any `json:"failed"`
	}
	if err := json.Unmarshal([]byte(out), &res); code != 0 || err != nil || len(res.Retried) != 3 || len(res.Failed) != 0 {
		t.Fatalf("payramd retry --dead --json: exit %d: %s %s", code, out, errOut)
	}
	checkSucceeded(t, p, ids, 10*time.Second) // both jobs of every event
	if code, out, _ := runCLI(t, nil, "retry", "--dead", "-c", cfg, "--admin", p.Admin); code != 0 || strings.TrimSpace(out) != "no dead jobs" {
		t.Errorf("payramd retry --dead with none left: exit %d: %q", code, out)
	}
	for _, args := range [][]string{{"retry"}, {"retry", "--dead", "7"}, {"retry", "--action", "sink", "7"}} {
		if code, _, errOut := runCLI(t, nil, append(args, "--admin", p.Admin)...); code != 2 {
			t.Errorf("payramd %v: exit %d, want 2 (usage): %s", args, code, errOut)
		}
	}
	stopClean(t, p)
}

func waitMetric(t *testing.T, p *proc, series string, want float64, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got := p.metric(series)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s = %v, want %v within %s", series, got, want, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestOncePerAcrossDeliveries (Done-when 5): a once_per: reference_id rule
// fires once per reference id across distinct deliveries (PayRam resending
// FILLED with a new timestamp: a new event id), even when they arrive
// concurrently and across a kill -9; another reference id fires again.
func TestOncePerAcrossDeliveries(t *testing.T) {
	t.Parallel()
	s := newPaySink(t, nil)
	dir := t.TempDir()
	cfg := writeFile(t, dir, "rules.yaml", durConfig(filepath.Join(dir, "data"), 5*time.Second,
		sinkAction("sink", s.URL, "{attempts: 5, initial: 50ms, max: 200ms}"),
		"  - name: fulfil\n    when: status == \"FILLED\"\n    once_per: reference_id\n    do: [sink]\n"))
	p := startDur(t, cfg)

	first := mustAccept(t, p, payment("once_A", 1763900000, 0))
	second := mustAccept(t, p, payment("once_A", 1763900001, 0))
	// Eight more resends at once: they may share one group commit.
	var bodies [][]byte
	for i := range 8 {
		bodies = append(bodies, payment("once_A", 1763900010+int64(i), 0))
	}
	bodies = append(bodies, payment("once_B", 1763900000, 0))
	codes, answers, errs := postAll(p.Public, bodies)
	for i := range bodies {
		if codes[i] != 200 || answers[i].Status != "accepted" || errs[i] != nil {
			t.Fatalf("resend %d: %d %+v %v", i, codes[i], answers[i], errs[i])
		}
	}
	s.waitDelivered(t, []string{"once_A", "once_B"}, 10*time.Second)
	time.Sleep(300 * time.Millisecond)
	if a, b := s.triesOf("once_A"), s.triesOf("once_B"); a != 1 || b != 1 {
		t.Errorf("deliveries: once_A %d, once_B %d; want exactly 1 each", a, b)
	}
	// The first event fired; the resend matched but was suppressed.
	d, _, err := fetchEvent(p.Admin, first)
	if err != nil || d == nil || len(d.Jobs) != 1 {
		t.Fatalf("first event: %+v %v", d, err)
	}
	d, _, err = fetchEvent(p.Admin, second)
	if err != nil || d == nil || len(d.Jobs) != 0 || len(d.Rules) != 1 || !d.Rules[0].Matched || !d.Rules[0].Suppressed {
		t.Errorf("resent event: %+v %v; want matched, suppressed by once_per, no jobs", d, err)
	}

	// The once_per keys are as durable as the events.
	kill9(t, p)
	p = startDur(t, cfg)
	mustAccept(t, p, payment("once_A", 1763900100, 0))
	mustAccept(t, p, payment("once_B", 1763900100, 0))
	mustAccept(t, p, payment("once_C", 1763900100, 0))
	s.waitDelivered(t, []string{"once_C"}, 10*time.Second)
	time.Sleep(300 * time.Millisecond)
	for ref, want := range map[string]int{"once_A": 1, "once_B": 1, "once_C": 1} {
		if got := s.triesOf(ref); got != want {
			t.Errorf("after restart: %s delivered %d times, want %d", ref, got, want)
		}
	}
	// An operator replaying the first event to fulfil it again is told why
	// nothing ran, and nothing does.
	code, out, errOut := runCLI(t, nil, "replay", first, "-c", cfg, "--admin", p.Admin)
	if code != 0 || !strings.Contains(out, "matched [fulfil], 0 new job(s)") ||
		!strings.Contains(out, "held back by once_per (its key already fired, so no job): fulfil") {
		t.Errorf("replay of a once_per event: %d %q %q; want the rule named as held back", code, out, errOut)
	}
	time.Sleep(300 * time.Millisecond)
	if got := s.triesOf("once_A"); got != 1 {
		t.Errorf("after the replay once_A was delivered %d times, want 1", got)
	}
	stopClean(t, p)
}

// TestEventsRawBody: `payramd events ID --raw` prints the body byte for
// byte as the provider sent it, which the payload rules see is not
// (amounts are numbers there, strings here; spacing and order are gone).
func TestEventsRawBody(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := writeFile(t, dir, "rules.yaml", durConfig(filepath.Join(dir, "data"), 5*time.Second,
		"  note:\n    type: log\n    message: \"{{ reference_id }}\"\n", "  - name: fulfil\n    when: status == \"FILLED\"\n    do: [note]\n"))
	p := startDur(t, cfg)
	// The raw body is there byte for byte (the payload rules see is
	// normalized: amounts are numbers there, strings here).
	raw := payment("once_raw", 1763900200, 0)
	raw = append([]byte("{ \"note\" : \"caf\u00e9\",\n  "), raw[1:]...)
	rawID := mustAccept(t, p, raw)
	if code, out, errOut := runCLI(t, nil, "events", rawID, "--raw", "-c", cfg, "--admin", p.Admin); code != 0 || out != string(raw) {
		t.Errorf("events --raw: %d %q %q; want the body as sent, %q", code, out, errOut, raw)
	}
	if code, out, _ := runCLI(t, nil, "events", rawID, "-c", cfg, "--admin", p.Admin); code != 0 || !strings.Contains(out, fmt.Sprintf("body: %d bytes as received", len(raw))) {
		t.Errorf("events ID does not point at the raw body: %d %s", code, out)
	}
	stopClean(t, p)
}

// TestSIGTERMLeavesPendingJobs (Done-when 6): SIGTERM with jobs pending
// (receiver down, long backoff) and one job hanging exits 0 within
// shutdown_timeout, and those jobs run after the next start.
func TestSIGTERMLeavesPendingJobs(t *testing.T) {
	t.Parallel()
	var up atomic.Bool
	s := newPaySink(t, func(ref string, n int) (int, time.Duration) {
		switch {
		case up.Load():
			return 200, 0
		case ref == "term_hang":
			return 200, time.Hour // answers only when the daemon gives up
		}
		return 503, 0
	})
	const timeout = 3 * time.Second
	dir := t.TempDir()
	cfg := writeFile(t, dir, "rules.yaml", durConfig(filepath.Join(dir, "data"), timeout,
		sinkAction("sink", s.URL, "{attempts: 10, initial: 4s, max: 4s}"), fulfilRule))
	p := startDur(t, cfg)
	refs := []string{"term_1", "term_2", "term_3", "term_4", "term_5", "term_hang"}
	var ids []string
	for i, r := range refs {
		ids = append(ids, mustAccept(t, p, payment(r, 1763900000+int64(i), 0)))
	}
	deadline := time.Now().Add(10 * time.Second)
	for slices.ContainsFunc(refs, func(r string) bool { return s.triesOf(r) == 0 }) {
		if time.Now().After(deadline) {
			t.Fatal("jobs were not attempted")
		}
		time.Sleep(10 * time.Millisecond)
	}
	var pending struct {
		Jobs []struct {
			ID int64 `json:"id"`
		} `json:"jobs"`
	}
	for {
		p.getJSON("/api/jobs?state=pending", &pending)
		if len(pending.Jobs) == 5 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if len(pending.Jobs) != 5 {
		t.Fatalf("%d pending jobs before SIGTERM, want 5", len(pending.Jobs))
	}

	t0 := time.Now()
	p.signal(syscall.SIGTERM)
	p.waitLog(5*time.Second, "shutting down")
	// While the hanging job holds the shutdown, the listener is still open:
	// a delivery on a new connection hears 503 (the provider retries later),
	// not a refused connection, and /readyz fails so a load balancer stops
	// sending.
	fresh := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	if code, a, err := postSignedWith(fresh, p.Public, payment("term_late", 1763900100, 0)); err != nil || code != http.StatusServiceUnavailable || a.Error != "unavailable" {
		t.Errorf("webhook on a new connection while shutting down: %d %+v %v, want 503 unavailable", code, a, err)
	}
	if resp, err := fresh.Get(p.Admin + "/readyz"); err != nil {
		t.Errorf("/readyz while shutting down: %v", err)
	} else {
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(raw), "shutting down") {
			t.Errorf("/readyz while shutting down: %d %s, want 503 shutting down", resp.StatusCode, raw)
		}
	}
	code := p.wait(timeout + 10*time.Second)
	took := time.Since(t0)
	t.Logf("SIGTERM to exit: %s (shutdown_timeout %s)", took.Round(time.Millisecond), timeout)
	if code != 0 {
		t.Errorf("exit status %d after SIGTERM, want 0", code)
	}
	// The hanging job holds the shutdown for the whole timeout; a little
	// more is allowed for the race-enabled binary to wind down.
	if took > timeout+time.Second {
		t.Errorf("SIGTERM took %s to exit, want within shutdown_timeout %s", took, timeout)
	}
	if !strings.Contains(p.Logs(), "jobs still running will run again") {
		t.Errorf("no log about the job cut short by the shutdown timeout")
	}
	if m := s.missing(refs); len(m) != len(refs) {
		t.Fatalf("delivered before the restart: %v", m)
	}

	up.Store(true)
	p = startDur(t, cfg)
	s.waitDelivered(t, refs, 15*time.Second)
	checkSucceeded(t, p, ids, 5*time.Second)
	s.report(t, refs)
	stopClean(t, p)
}

// TestUnwritableJournal (Done-when 7): while the data dir cannot be written
// the listener answers 503 {"error":"unavailable"} and /readyz 503, never
// 200; once the condition clears new events are accepted, and nothing
// acknowledged before, during or after is lost (checked after a kill -9).
//
// The tests run as root, which file permissions do not stop, so two real
// conditions are used instead: a full file system (a small tmpfs mounted on
// the data dir and filled up) and immutable files (chattr +i, which even
// root cannot write). Each skips where it cannot be set up; the journal's
// own TestDiskFull and TestCommitFailureIsNeverAcked inject the same
// failures in process.
func TestUnwritableJournal(t *testing.T) {
	t.Parallel()
	t.Run("full disk", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		data := filepath.Join(dir, "data")
		if err := os.Mkdir(data, 0o700); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=6m,mode=0700", "tmpfs", data).CombinedOutput(); err != nil {
			t.Skipf("cannot mount a small tmpfs to fill up (needs root / CAP_SYS_ADMIN): %v %s", err, out)
		}
		t.Cleanup(func() {
			if out, err := exec.Command("umount", "-l", data).CombinedOutput(); err != nil {
				t.Errorf("umount %s: %v %s", data, err, out)
			}
		})
		filler := filepath.Join(data, "filler")
		unwritable(t, dir, data, func() {
			fillDisk(t, filler)
		}, func() {
			if err := os.Remove(filler); err != nil {
				t.Fatal(err)
			}
		}, false)
	})
	t.Run("immutable files", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		data := filepath.Join(dir, "data")
		if err := os.Mkdir(data, 0o700); err != nil {
			t.Fatal(err)
		}
		probe := filepath.Join(dir, "probe")
		os.WriteFile(probe, nil, 0o600)
		if out, err := exec.Command("chattr", "+i", probe).CombinedOutput(); err != nil {
			t.Skipf("chattr +i is not supported here (needs root and a file system with the immutable flag): %v %s", err, out)
		}
		exec.Command("chattr", "-i", probe).Run()
		var paths []string
		chattr := func(flag string) {
			for _, p := range paths {
				if out, err := exec.Command("chattr", flag, p).CombinedOutput(); err != nil {
					t.Errorf("chattr %s %s: %v %s", flag, p, err, out)
				}
			}
		}
		// Registered after TempDir, so it runs before its removal.
		t.Cleanup(func() { chattr("-i") })
		unwritable(t, dir, data, func() {
			all, _ := filepath.Glob(filepath.Join(data, "*"))
			for _, f := range all {
				// SQLite maps the -shm wal-index into memory; an immutable
				// mapped file makes its next memory write a SIGBUS, which
				// no program survives. Real failures (a full or read-only
				// disk) fail the writes to the database and WAL instead,
				// which is what this case models.
				if !strings.HasSuffix(f, "-shm") {
					paths = append(paths, f)
				}
			}
			paths = append(paths, data)
			chattr("+i")
		}, func() {
			chattr("-i")
			paths = nil
		}, true)
	})
}

// fillDisk writes to name until the file system has no space left.
func fillDisk(t *testing.T, name string) {
	t.Helper()
	f, err := os.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	for _, size := range []int{64 << 10, 4 << 10, 512, 1} {
		for {
			if _, err := f.Write(buf[:size]); err != nil {
				if !errors.Is(err, syscall.ENOSPC) {
					t.Fatal(err)
				}
				break
			}
		}
	}
}

// unwritable runs the scenario: breakIt makes the data dir unwritable, fix
// undoes it.
//
// busy: the receiver answers 503 slowly until the end, so jobs are running
// and retrying when the data dir breaks and their results cannot be
// recorded: they must run again once it is fixed, without a restart.
// Otherwise the daemon is idle when the data dir breaks. (On a full disk a
// transaction in flight at that moment can leave WAL space allocated that a
// later small commit fits into, which would make /readyz rightly say 200;
// an idle daemon makes "nothing fits" certain.)
func unwritable(t *testing.T, dir, data string, breakIt, fix func(), busy bool) {
	var up atomic.Bool
	up.Store(!busy)
	s := newPaySink(t, func(string, int) (int, time.Duration) {
		if up.Load() {
			return 200, 0
		}
		return 503, 150 * time.Millisecond
	})
	cfg := writeFile(t, dir, "rules.yaml", durConfig(data, 5*time.Second,
		sinkAction("sink", s.URL, "{attempts: 100, initial: 50ms, max: 200ms}"), fulfilRule))
	p := startDur(t, cfg)

	acked := map[string]string{} // ref -> id
	var before, beforeIDs []string
	for i := range 20 {
		ref := fmt.Sprintf("before_%02d", i)
		acked[ref] = mustAccept(t, p, payment(ref, 1763900000+int64(i), 2000))
		before, beforeIDs = append(before, ref), append(beforeIDs, acked[ref])
	}
	if busy {
		deadline := time.Now().Add(10 * time.Second)
		for s.count() < 20 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
	} else {
		s.waitDelivered(t, before, 10*time.Second)
		checkSucceeded(t, p, beforeIDs, 10*time.Second)
	}

	breakIt()
	broke := time.Now()
	// SQLite may still fit small commits into WAL space it allocated
	// earlier; such a commit is on disk, and acknowledging it is right. So
	// the guarantee checked is: every 200 is durable (it joins the acked
	// set, checked after a kill -9 below), and the journal soon refuses
	// with 503 — never anything else.
	refused, transport := 0, 0
	for i := range 3000 {
		ref := fmt.Sprintf("during_%04d", i)
		code, a, err := postSigned(p.Public, payment(ref, 1763900000+int64(i), 8000))
		switch {
		case err != nil && code == 0 && transport < 5:
			// No answer is no acknowledgement: the guarantee holds. (Seen
			// once under heavy parallel load: a keep-alive connection
			// reset.) A dead daemon fails the steps below.
			transport++
			t.Logf("POST while unwritable: no answer (%v); not acknowledged", err)
		case code == 200 && a.Status == "accepted":
			acked[ref] = a.ID
		case code == 503 && a.Error == "unavailable":
			refused++
		default:
			t.Fatalf("POST while the journal is unwritable: %d %+v %v; want 503 {\"error\":\"unavailable\"} (or 200 for a commit that still fit)", code, a, err)
		}
		if refused >= 30 {
			break
		}
	}
	if refused < 30 {
		t.Fatalf("the journal kept accepting %d events on an unwritable data dir", len(acked))
	}
	t.Logf("accepted %d events into already-allocated space before refusing", len(acked)-len(before))
	var ready struct {
		Error string `json:"error"`
	}
	// Like an ingest, the readiness probe's tiny write may still fit in
	// allocated space now and then; it must report the outage, not hide it.
	sawNotReady := false
	for range 20 {
		if p.getJSON("/readyz", &ready) == 503 {
			sawNotReady = true
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !sawNotReady {
		t.Errorf("/readyz never answered 503 while the journal refused events")
	}
	t.Logf("/readyz while unwritable: %s", ready.Error)
	// Events journaled before are still readable.
	if d, code, err := fetchEvent(p.Admin, acked["before_00"]); err != nil || code != 200 || d.Event.ID != acked["before_00"] {
		t.Errorf("reading an earlier event while unwritable: %d %v", code, err)
	}
	time.Sleep(300 * time.Millisecond) // let job records and claims fail for a while

	fix()
	up.Store(true)
	// The dispatcher cannot claim jobs meanwhile; it must back off rather
	// than spin (and flood the log on a full disk). A job finishing frees a
	// worker and may prompt one more claim each.
	logs, window := p.Logs(), time.Since(broke)
	claimErrs, unrecorded := strings.Count(logs, "claiming jobs failed"), strings.Count(logs, "recording a job attempt failed")
	t.Logf("unwritable for %s: %d failed job claims, %d job results not recorded at first", window.Round(time.Millisecond), claimErrs, unrecorded)
	if limit := 5 + int(3*window.Seconds()) + unrecorded; claimErrs > limit {
		t.Errorf("%d failed job claims in %s: the dispatcher spins while the journal is unwritable", claimErrs, window)
	}
	deadline := time.Now().Add(10 * time.Second)
	for p.getJSON("/readyz", nil) != 200 {
		if time.Now().After(deadline) {
			t.Fatal("/readyz did not recover after the condition cleared")
		}
		time.Sleep(50 * time.Millisecond)
	}
	for i := range 10 {
		ref := fmt.Sprintf("after_%02d", i)
		acked[ref] = mustAccept(t, p, payment(ref, 1763900000+int64(i), 2000))
	}
	var refs, ids []string
	for r, id := range acked {
		refs = append(refs, r)
		ids = append(ids, id)
	}
	// Delivered by this same process: jobs whose results could not be
	// recorded while the journal was unwritable must not stay stuck.
	s.waitDelivered(t, refs, 20*time.Second)
	checkSucceeded(t, p, ids, 10*time.Second)

	// And all of it is on disk.
	kill9(t, p)
	p = startDur(t, cfg)
	checkSucceeded(t, p, ids, 10*time.Second)
	s.report(t, refs)
	stopClean(t, p)
}

// TestDeletedDataDir: an operator deletes the data dir under the running
// daemon. Webhooks get 503 (never a 2xx for an event with nowhere to go),
// the log says once, in words, what happened and what to do, and the
// failing job claims are logged once rather than every second.
func TestDeletedDataDir(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	s := newPaySink(t, nil)
	cfg := writeFile(t, dir, "rules.yaml", durConfig(data, 5*time.Second, sinkAction("sink", s.URL, "{attempts: 3, initial: 50ms, max: 50ms}"), fulfilRule))
	p := startDur(t, cfg)
	mustAccept(t, p, payment("before_delete", 1763900500, 0))
	s.waitDelivered(t, []string{"before_delete"}, 10*time.Second)
	if err := os.RemoveAll(data); err != nil {
		t.Fatal(err)
	}
	p.waitLog(10*time.Second, "the journal file was deleted while payramd runs")
	if code, a, err := postSigned(p.Public, payment("after_delete", 1763900501, 0)); err != nil || code != 503 || a.Error != "unavailable" {
		t.Errorf("webhook after the data dir was deleted: %d %+v %v; want 503 unavailable", code, a, err)
	}
	time.Sleep(2500 * time.Millisecond) // two more claims by the dispatcher's safety net
	logs := p.Logs()
	if n := strings.Count(logs, "the journal file was deleted"); n != 1 {
		t.Errorf("the deletion was reported %d times, want once", n)
	}
	if n := strings.Count(logs, "claiming jobs failed"); n != 1 {
		t.Errorf("failed claims logged %d times in ~3 s, want once (then once a minute)", n)
	}
}
