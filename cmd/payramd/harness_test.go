package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The end-to-end tests build the real binary once and drive it as a user
// would: real processes, real files, real HTTP on loopback, real signals.

// binPath is built with the race detector and runs the daemon; cliPath is
// a plain build for the short-lived CLI commands (a race-enabled binary
// takes about a second just to start).
var binPath, cliPath string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "payramd-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binPath = filepath.Join(dir, "payramd")
	build := exec.Command("go", "build", "-race", "-o", binPath, ".")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building payramd:", err)
		os.Exit(1)
	}
	cliPath = filepath.Join(dir, "payramd-cli")
	build = exec.Command("go", "build", "-o", cliPath, ".")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building payramd:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is a running payramd.
type proc struct {
	t      *testing.T
	cmd    *exec.Cmd
	Public string // http://127.0.0.1:port
	Admin  string
	mu     sync.Mutex
	logs   bytes.Buffer
	done   chan struct{}
	exit   error
}

// startDaemon runs `payramd run -c cfg` with listeners on free ports and
// waits until it is serving.
func startDaemon(t *testing.T, cfg string, env ...string) *proc {
	t.Helper()
	p := &proc{t: t, done: make(chan struct{})}
	p.cmd = exec.Command(binPath, "run", "-c", cfg, "--log-format", "json", "--log-level", "debug")
	p.cmd.Env = append(baseEnv(), "PAYRAMD_LISTEN=127.0.0.1:0", "PAYRAMD_ADMIN_LISTEN=127.0.0.1:0")
	p.cmd.Env = append(p.cmd.Env, env...)
	// An io.Pipe as Stderr (not StderrPipe, which Wait closes as soon as
	// the process exits): Wait then returns only after every byte has been
	// handed to the scanner, so the last lines (a shutdown's, flushed at
	// exit) are never lost; done waits for the scanner too.
	stderr, stderrW := io.Pipe()
	p.cmd.Stderr = stderrW
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		once := false
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.logs.WriteString(line + "\n")
			p.mu.Unlock()
			var m map[string]any
			if !once && json.Unmarshal([]byte(line), &m) == nil && m["msg"] == "payramd started" {
				p.Public = "http://" + fmt.Sprint(m["listen"])
				p.Admin = "http://" + fmt.Sprint(m["admin"])
				once = true
				close(ready)
			}
		}
		_, _ = io.Copy(io.Discard, stderr) // after a scan error, never block the daemon's stderr
	}()
	go func() {
		p.exit = p.cmd.Wait()
		stderrW.Close()
		<-scanned
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("daemon log:\n%s", p.Logs())
		}
	})
	select {
	case <-ready:
	case <-p.done:
		t.Fatalf("payramd exited before serving: %v\n%s", p.exit, p.Logs())
	case <-time.After(20 * time.Second):
		t.Fatalf("payramd did not start in time\n%s", p.Logs())
	}
	return p
}

func baseEnv() []string {
	return []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "GORACE=halt_on_error=1 atexit_sleep_ms=0"}
}

// Logs returns everything the daemon logged so far.
func (p *proc) Logs() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.logs.String()
}

// waitLog waits for a log line containing every fragment.
func (p *proc) waitLog(timeout time.Duration, fragments ...string) string {
	p.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		for _, line := range strings.Split(p.Logs(), "\n") {
			ok := true
			for _, f := range fragments {
				if !strings.Contains(line, f) {
					ok = false
					break
				}
			}
			if ok {
				return line
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	p.t.Fatalf("no log line with %q within %s", fragments, timeout)
	return ""
}

func (p *proc) signal(sig syscall.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatal(err)
	}
}

// wait waits for the process to exit and returns its exit code.
func (p *proc) wait(timeout time.Duration) int {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		p.t.Fatalf("payramd did not exit within %s", timeout)
	}
	if p.cmd.ProcessState == nil {
		return -1
	}
	return p.cmd.ProcessState.ExitCode()
}

// getJSON fetches an admin API path into out.
func (p *proc) getJSON(path string, out any) int {
	p.t.Helper()
	resp, err := http.Get(p.Admin + path)
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(body, out); err != nil {
			p.t.Fatalf("GET %s: %v: %s", path, err, body)
		}
	}
	return resp.StatusCode
}

// metric returns the value of one Prometheus series (exact label match), or -1.
func (p *proc) metric(series string) float64 {
	p.t.Helper()
	resp, err := http.Get(p.Admin + "/metrics")
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, series+" ") {
			var v float64
			fmt.Sscanf(strings.TrimPrefix(line, series+" "), "%g", &v)
			return v
		}
	}
	return -1
}

// runCLI runs the binary with args and returns exit code, stdout, stderr.
func runCLI(t *testing.T, env []string, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, cliPath, args...)
	cmd.Env = append(baseEnv(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("running payramd %v: %v", args, err)
		}
		code = ee.ExitCode()
	}
	return code, out.String(), errb.String()
}

// writeFile writes content to dir/name and returns the path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// sink is a real HTTP server on loopback recording what actions send it.
type sink struct {
	srv  *httptest.Server
	URL  string
	mu   sync.Mutex
	reqs []sinkReq
	// status decides the answer to the nth request (1-based); 200 when nil.
	status func(n int) int
}

type sinkReq struct {
	Method string
	Path   string
	Header http.Header
	Body   string
}

func newSink(t *testing.T, status func(n int) int) *sink {
	s := &sink{status: status}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.reqs = append(s.reqs, sinkReq{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Body: string(body)})
		n := len(s.reqs)
		st := s.status
		s.mu.Unlock()
		code := 200
		if st != nil {
			code = st(n)
		}
		w.WriteHeader(code)
	}))
	s.URL = s.srv.URL
	t.Cleanup(s.srv.Close)
	return s
}

func (s *sink) requests() []sinkReq {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]sinkReq(nil), s.reqs...)
}

// waitCount waits until the sink has received at least n requests.
func (s *sink) waitCount(t *testing.T, n int, timeout time.Duration) []sinkReq {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if r := s.requests(); len(r) >= n {
			return r
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("sink received %d requests, want %d, within %s", len(s.requests()), n, timeout)
	return nil
}

// newSinkWith starts a loopback server calling fn for every request; it
// answers 200 and returns the server's URL.
func newSinkWith(t *testing.T, fn func(r *http.Request)) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fn(r)
		w.WriteHeader(200)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// backtestReport is what `payramd replay --dry-run --json` prints.
type backtestReport struct {
	Events int          `json:"events"`
	Rules  []reportRule `json:"rules"`
	Unset  []struct {
		Name      string   `json:"name"`
		Fields    []string `json:"fields"`
		Defaulted bool     `json:"defaulted"`
	} `json:"unset_variables"`
}

// reportRule is one rule of a backtestReport: the test reads the JSON
// names itself, so that a renamed field in the command fails it.
type reportRule struct {
	Rule         string         `json:"rule"`
	Matched      int            `json:"matched"`
	OncePer      int            `json:"suppressed_by_once_per"`
	RanElsewhere int            `json:"already_ran_on_another_source"`
	Actions      map[string]int `json:"actions"`
}

// backtestJSON runs `payramd replay --dry-run --since 1h --json` with args
// (and env) and decodes its report, failing the test if it does not exit 0.
func backtestJSON(t *testing.T, env []string, args ...string) backtestReport {
	t.Helper()
	code, out, errOut := runCLI(t, env, append([]string{"replay", "--dry-run", "--since", "1h", "--json"}, args...)...)
	var bt backtestReport
	if err := json.Unmarshal([]byte(out), &bt); code != 0 || err != nil {
		t.Fatalf("backtest %v: exit %d, %v\n%s%s", args, code, err, out, errOut)
	}
	return bt
}
