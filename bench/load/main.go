// Command load measures payramd on loopback against a bare net/http handler
// in the same run, and prints ratios (the machine is shared and noisy, so
// absolute numbers mean little; ratios do).
//
// Three servers run in turn, each in its own process so that the load
// generator never shares a process with what it measures:
//
//   - bare: a net/http handler that reads the body and answers 200;
//   - listener: payramd's webhook handler with PayRam signature checks,
//     decoding and N rules evaluated, but no journal (issue 3's measure);
//   - daemon: the real payramd binary with fsync'd group commit, rules
//     evaluated and jobs created and run as fast as events arrive.
//
// Usage: go run ./bench/load [-duration 30s] [-c 64] [-scale 1,8,64,256] [-rules 100]
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/payramd/payramd/daemon"
	"github.com/payramd/payramd/engine"
	"github.com/payramd/payramd/webhook"
)

const secret = "bench-api-key"

func main() {
	serve := flag.String("serve", "", "internal: run a server (bare or listener) on -addr")
	addr := flag.String("addr", "127.0.0.1:0", "internal: listen address")
	cfgPath := flag.String("config", "", "internal: config for -serve listener")
	duration := flag.Duration("duration", 30*time.Second, "how long each measurement runs")
	conc := flag.Int("c", 64, "concurrent connections for the main comparison")
	scale := flag.String("scale", "1,8,64,256", "concurrency levels for the daemon scaling table (empty: skip)")
	rules := flag.Int("rules", 100, "rules in the config")
	rounds := flag.Int("rounds", 3, "interleaved rounds of the main comparison (medians are reported)")
	wrkBin := flag.String("wrk", "wrk", "wrk binary for the listener comparison with wrk (skipped if not found)")
	target := flag.String("target", "", "only drive this already running server URL (for profiling)")
	cpuProfile := flag.String("cpuprofile", "", "internal: with -serve listener, write a CPU profile until interrupted")
	printConfig := flag.String("print-config", "", "only print the bench config, with this data_dir")
	printWrk := flag.Bool("print-wrk-script", false, "only print the wrk Lua script of pre-signed bodies (for driving a server by hand)")
	flag.Parse()
	if *printWrk {
		_, _ = os.Stdout.Write(wrkScript(20000))
		return
	}
	if *printConfig != "" {
		fmt.Print(benchConfig(*rules, *printConfig))
		return
	}
	if *target != "" {
		r := drive(*target, *conc, *duration)
		fmt.Printf("req/s %.0f p50 %s p99 %s errors %d\n", r.rps, ms(r.p50), ms(r.p99), r.errors)
		return
	}

	switch *serve {
	case "bare":
		serveBare(*addr)
		return
	case "listener":
		if *cpuProfile != "" {
			f, err := os.Create(*cpuProfile)
			check(err)
			check(pprof.StartCPUProfile(f))
			go func() {
				sig := make(chan os.Signal, 1)
				signal.Notify(sig, os.Interrupt)
				<-sig
				pprof.StopCPUProfile()
				f.Close()
				os.Exit(0)
			}()
		}
		serveListener(*addr, *cfgPath)
		return
	}

	dir, err := os.MkdirTemp("", "payramd-load")
	check(err)
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "payramd")
	fmt.Fprintln(os.Stderr, "building payramd…")
	build := exec.Command("go", "build", "-o", bin, "./cmd/payramd")
	build.Stderr = os.Stderr
	check(build.Run())
	self, err := os.Executable()
	check(err)
	cfg := filepath.Join(dir, "rules.yaml")
	check(os.WriteFile(cfg, []byte(benchConfig(*rules, filepath.Join(dir, "data"))), 0o644))

	fmt.Printf("# payramd load test: %s per run, %d rules, GOMAXPROCS=%d, %d CPUs, %s\n", *duration, *rules, runtime.GOMAXPROCS(0), runtime.NumCPU(), time.Now().UTC().Format(time.RFC3339))
	fmt.Printf("# command: go run ./bench/load -duration %s -c %d -rules %d -rounds %d -scale %q\n\n", *duration, *conc, *rules, *rounds, *scale)

	// The three servers run in interleaved rounds and each reports its
	// median round, so that a burst of noise from a neighbour on the shared
	// machine lands in one round of one server rather than in the ratio.
	var bares, listeners, daemons []result
	for r := 0; r < *rounds; r++ {
		fmt.Fprintf(os.Stderr, "round %d/%d\n", r+1, *rounds)
		bares = append(bares, measureServer([]string{self, "-serve", "bare"}, "/webhooks/payram", *conc, *duration))
		listeners = append(listeners, measureServer([]string{self, "-serve", "listener", "-config", cfg}, "/webhooks/payram", *conc, *duration))
		daemons = append(daemons, measureServer([]string{bin, "run", "-c", cfg, "--log-format", "json"}, "/webhooks/payram", *conc, *duration))
	}
	bare, listener, daemonRes := median(bares), median(listeners), median(daemons)
	fmt.Printf("rounds: %d of %s each, interleaved; medians by req/s. Per round, listener/bare: %s; daemon/bare: %s\n\n",
		*rounds, *duration, ratios(listeners, bares), ratios(daemons, bares))

	fmt.Printf("| server (c=%d) | req/s | p50 | p99 | errors | req/s vs bare | p99 vs bare | server CPU per request | peak RSS |\n|---|---|---|---|---|---|---|---|---|\n", *conc)
	for _, r := range []struct {
		name string
		res  result
	}{{"bare net/http handler", bare}, {"payramd listener: verify + decode + rules, no journal", listener}, {"payramd daemon: durable journal (fsync), jobs run", daemonRes}} {
		fmt.Printf("| %s | %.0f | %s | %s | %d | %.2f | %.1f× | %s | %s |\n", r.name, r.res.rps, ms(r.res.p50), ms(r.res.p99), r.res.errors,
			r.res.rps/bare.rps, float64(r.res.p99)/float64(bare.p99), r.res.cpuPerReq(), mib(r.res.rss))
	}
	compareWithWrk(*wrkBin, self, cfg, dir, *conc, *duration, *rounds)
	if *scale == "" {
		return
	}
	fmt.Printf("\n| daemon scaling | req/s | p50 | p99 | req/s vs bare at same c | server CPU per request | peak RSS |\n|---|---|---|---|---|---|---|\n")
	for _, f := range strings.Split(*scale, ",") {
		c, err := strconv.Atoi(strings.TrimSpace(f))
		check(err)
		d := max(*duration/3, 5*time.Second)
		b := measureServer([]string{self, "-serve", "bare"}, "/webhooks/payram", c, d)
		r := measureServer([]string{bin, "run", "-c", cfg, "--log-format", "json"}, "/webhooks/payram", c, d)
		fmt.Printf("| c=%d | %.0f | %s | %s | %.2f | %s | %s |\n", c, r.rps, ms(r.p50), ms(r.p99), r.rps/b.rps, r.cpuPerReq(), mib(r.rss))
	}
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		os.Exit(1)
	}
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000) }

func mib(b int64) string {
	if b <= 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20))
}

// benchConfig is a merchant-like config with n rules, most keyed on status,
// some on customers, all running cheap log actions (at debug level, which
// --log-level warn discards) so jobs are created and run for real.
func benchConfig(n int, dataDir string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "server:\n  data_dir: %s\n  retention: 1h\n  workers: 16\nsources:\n  payram:\n    provider: payram\n    secret: %s\nactions:\n  note:\n    type: log\n    level: debug\n    message: \"{{ reference_id }} {{ status }}\"\nrules:\n", dataDir, secret)
	statuses := []string{"FILLED", "OVER_FILLED", "PARTIALLY_FILLED", "OPEN", "CANCELLED", "UNDEFINED"}
	for i := 0; i < n; i++ {
		var when string
		switch {
		case i%10 == 9:
			when = fmt.Sprintf(`customer_id == "cust_%d" && amount > %d`, i, i%50)
		case i%25 == 24:
			when = fmt.Sprintf(`amount > %d.5`, 1000+i)
		default:
			// Thresholds grow with i, so an event matches one or two rules,
			// as a merchant's alerts do.
			when = fmt.Sprintf(`status == %q && filled_amount_in_usd - amount > %d.%02d`, statuses[i%len(statuses)], i, i%100)
		}
		fmt.Fprintf(&b, "  - name: rule-%d\n    when: '%s'\n    do: [note]\n", i, when)
	}
	return b.String()
}

func serveBare(addr string) {
	ln, err := net.Listen("tcp", addr)
	check(err)
	fmt.Println("listening " + ln.Addr().String())
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"accepted","id":"x"}`))
	}), ReadHeaderTimeout: 5 * time.Second}
	check(srv.Serve(ln))
}

// serveListener runs the webhook handler and the rules without a journal.
func serveListener(addr, cfgPath string) {
	snap, probs := daemon.Load(daemon.LoadOptions{Path: cfgPath})
	if snap == nil {
		check(probs.Err())
	}
	h := webhook.NewHandler(webhook.Options{
		Table: func() *webhook.Table { return snap.Table },
		Accept: func(ctx context.Context, ev *engine.Event) (bool, error) {
			_ = snap.Rules.Evaluate(ev, false)
			_, err := engine.EncodeJSON(ev.Payload)
			return false, err
		},
		// Like the daemon's: JSON lines into a buffer, not a write per line.
		Logger: slog.New(slog.NewJSONHandler(bufio.NewWriterSize(os.Stderr, 64<<10), nil)),
	})
	ln, err := net.Listen("tcp", addr)
	check(err)
	fmt.Println("listening " + ln.Addr().String())
	check(webhook.NewServer(addr, h).Serve(ln))
}

// median returns the result with the median req/s.
func median(rs []result) result {
	s := slices.Clone(rs)
	slices.SortFunc(s, func(a, b result) int {
		switch {
		case a.rps < b.rps:
			return -1
		case a.rps > b.rps:
			return 1
		}
		return 0
	})
	return s[len(s)/2]
}

// ratios lists a/b per round, then their median: the rounds are
// interleaved, so each round's ratio pairs two servers measured minutes
// apart at most, while the tables' ratio of medians may pair rounds far
// apart on a machine whose load drifts.
func ratios(a, b []result) string {
	var parts []string
	var rs []float64
	for i := range a {
		r := a[i].rps / b[i].rps
		rs = append(rs, r)
		parts = append(parts, fmt.Sprintf("%.2f", r))
	}
	slices.Sort(rs)
	return fmt.Sprintf("%s (median %.2f)", strings.Join(parts, ", "), rs[len(rs)/2])
}

type result struct {
	rps      float64
	p50, p99 time.Duration
	errors   int64
	rss      int64
	ok       int64         // successful requests, warm-up included
	cpu      time.Duration // server CPU time (user+system) while driven
}

// cpuPerReq is the server's CPU time per successful request. Unlike req/s it
// hardly depends on what else the shared machine is doing, so it shows
// where a ratio comes from.
func (r result) cpuPerReq() string {
	if r.ok == 0 || r.cpu <= 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.0f µs", float64(r.cpu.Microseconds())/float64(r.ok))
}

// measureServer starts argv, finds its address, drives it with c clients
// for d, and stops it.
func measureServer(argv []string, path string, c int, d time.Duration) result {
	return measureServerWith(argv, func(base string) result { return drive(base+path, c, d) })
}

// measureServerWith starts argv, finds its address, measures it with
// load(base URL), and stops it.
func measureServerWith(argv []string, load func(base string) result) result {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), "PAYRAMD_LISTEN=127.0.0.1:0", "PAYRAMD_ADMIN_LISTEN=127.0.0.1:0")
	out, err := cmd.StdoutPipe()
	check(err)
	errPipe, err := cmd.StderrPipe()
	check(err)
	check(cmd.Start())
	addrCh := make(chan string, 1)
	// The servers' log lines (two per event for the daemon) are read on
	// the same two cores as the servers run, so they are only searched, not
	// decoded: the reader's CPU would otherwise count against the servers
	// that log. journald's cost for the same lines is not measured here.
	scan := func(r io.Reader) {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			line := sc.Bytes()
			if a, ok := bytes.CutPrefix(line, []byte("listening ")); ok {
				addrCh <- string(a)
			}
			if bytes.Contains(line, []byte(`"payramd started"`)) {
				var m map[string]any
				if json.Unmarshal(line, &m) == nil && m["msg"] == "payramd started" {
					addrCh <- fmt.Sprint(m["listen"])
				}
			}
			if bytes.Contains(line, []byte(`"level":"ERROR"`)) {
				fmt.Fprintln(os.Stderr, "server:", string(line))
			}
		}
	}
	go scan(out)
	go scan(errPipe)
	var addr string
	select {
	case addr = <-addrCh:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		check(fmt.Errorf("%s did not start", argv[0]))
	}
	cpu0 := cpuTime(cmd.Process.Pid)
	res := load("http://" + addr)
	res.cpu = cpuTime(cmd.Process.Pid) - cpu0
	res.rss = peakRSS(cmd.Process.Pid)
	_ = cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(40 * time.Second):
		_ = cmd.Process.Kill()
	}
	return res
}

// cpuTime reads the user+system CPU time a running process has used so far
// (fields 14 and 15 of /proc/<pid>/stat, in clock ticks of 1/100 s on Linux).
func cpuTime(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name (field 2) may contain spaces; fields resume after ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// peakRSS reads VmHWM (peak resident set) of a running process.
func peakRSS(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(f), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

var seq atomic.Int64

// drive sends signed, distinct PayRam events from c keep-alive clients.
func drive(url string, c int, d time.Duration) result {
	tr := &http.Transport{MaxIdleConnsPerHost: c, MaxConnsPerHost: c, DisableCompression: true}
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	defer tr.CloseIdleConnections()
	statuses := []string{"FILLED", "OVER_FILLED", "PARTIALLY_FILLED", "OPEN", "CANCELLED"}
	deadline := time.Now().Add(d)
	warmup := time.Now().Add(min(d/10, 2*time.Second))
	var wg sync.WaitGroup
	lats := make([][]time.Duration, c)
	var errs atomic.Int64
	var counted, ok atomic.Int64
	for i := 0; i < c; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			mac := hmac.New(sha256.New, []byte(secret))
			var body bytes.Buffer
			sig := make([]byte, 0, 71)
			for time.Now().Before(deadline) {
				n := seq.Add(1)
				body.Reset()
				fmt.Fprintf(&body, `{"reference_id":"ref_%d","invoice_id":"inv_%d","customer_id":"cust_%d","customer_email":"buyer%d@example.com","status":%q,"amount":"%d.99","filled_amount":"%d.50","filled_amount_in_usd":"%d.50","currency":"USDC","timestamp":%d}`,
					n, n, n%500, n%500, statuses[n%int64(len(statuses))], 40+n%20, 45+n%20, 45+n%20, time.Now().Unix())
				mac.Reset()
				mac.Write(body.Bytes())
				sig = append(sig[:0], "sha256="...)
				sig = hex.AppendEncode(sig, mac.Sum(nil))
				req, _ := http.NewRequest("POST", url, bytes.NewReader(body.Bytes()))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("X-Payram-Signature", string(sig))
				start := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					errs.Add(1)
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				lat := time.Since(start)
				if resp.StatusCode != 200 {
					errs.Add(1)
					continue
				}
				ok.Add(1)
				if start.After(warmup) {
					lats[i] = append(lats[i], lat)
					counted.Add(1)
				}
			}
		}(i)
	}
	wg.Wait()
	var all []time.Duration
	for _, l := range lats {
		all = append(all, l...)
	}
	slices.Sort(all)
	res := result{errors: errs.Load(), ok: ok.Load()}
	if len(all) == 0 {
		return res
	}
	res.rps = float64(len(all)) / deadline.Sub(warmup).Seconds()
	res.p50 = all[len(all)/2]
	res.p99 = all[len(all)*99/100]
	return res
}

// compareWithWrk measures the bare handler and the listener again with wrk,
// a C load generator that takes less of the shared CPU than ours. wrk
// cannot compute an HMAC per request, so it cycles through bodies signed in
// advance; repeats are harmless to the listener, which journals nothing
// (the daemon would answer them as duplicates, so it is not measured here).
func compareWithWrk(wrk, self, cfg, dir string, c int, d time.Duration, rounds int) {
	if _, err := exec.LookPath(wrk); err != nil {
		fmt.Printf("\n(wrk not found, so the wrk comparison is skipped; `make bench` installs it on Debian)\n")
		return
	}
	script := filepath.Join(dir, "signed.lua")
	check(os.WriteFile(script, wrkScript(20000), 0o644))
	run := func(base string) result { return runWrk(wrk, script, base+"/webhooks/payram", c, d) }
	var bares, listeners []result
	for r := 0; r < rounds; r++ {
		fmt.Fprintf(os.Stderr, "wrk round %d/%d\n", r+1, rounds)
		bares = append(bares, measureServerWith([]string{self, "-serve", "bare"}, run))
		listeners = append(listeners, measureServerWith([]string{self, "-serve", "listener", "-config", cfg}, run))
	}
	bare, listener := median(bares), median(listeners)
	fmt.Printf("\nThe same two servers driven by wrk (-t2 -c%d, %s, 20,000 pre-signed bodies); per round, listener/bare: %s\n\n", c, d, ratios(listeners, bares))
	fmt.Printf("| server (wrk, c=%d) | req/s | p50 | p99 | errors | req/s vs bare | server CPU per request |\n|---|---|---|---|---|---|---|\n", c)
	for _, r := range []struct {
		name string
		res  result
	}{{"bare net/http handler", bare}, {"payramd listener: verify + decode + rules, no journal", listener}} {
		fmt.Printf("| %s | %.0f | %s | %s | %d | %.2f | %s |\n", r.name, r.res.rps, ms(r.res.p50), ms(r.res.p99), r.res.errors, r.res.rps/bare.rps, r.res.cpuPerReq())
	}
}

// wrkScript is a wrk Lua script that sends n distinct PayRam payment
// events, each with its X-Payram-Signature, in turn.
func wrkScript(n int) []byte {
	var b bytes.Buffer
	b.WriteString("local bodies, sigs = {}, {}\n")
	statuses := []string{"FILLED", "OVER_FILLED", "PARTIALLY_FILLED", "OPEN", "CANCELLED"}
	for i := 1; i <= n; i++ {
		body := fmt.Sprintf(`{"reference_id":"ref_%d","invoice_id":"inv_%d","customer_id":"cust_%d","customer_email":"buyer%d@example.com","status":%q,"amount":"%d.99","filled_amount":"%d.50","filled_amount_in_usd":"%d.50","currency":"USDC","timestamp":%d}`,
			i, i, i%500, i%500, statuses[i%len(statuses)], 40+i%20, 45+i%20, 45+i%20, time.Now().Unix())
		mac := hmac.New(sha256.New, []byte(secret))
		mac.Write([]byte(body))
		// %q writes a Go string literal; for this ASCII text with only \"
		// escapes it is also a valid Lua string.
		fmt.Fprintf(&b, "bodies[%d] = %q\nsigs[%d] = \"sha256=%x\"\n", i, body, i, mac.Sum(nil))
	}
	b.WriteString(`local i = 0
request = function()
  i = i % #bodies + 1
  return wrk.format("POST", nil, {["Content-Type"] = "application/json", ["X-Payram-Signature"] = sigs[i]}, bodies[i])
end
`)
	return b.Bytes()
}

// runWrk runs wrk against url and reads its summary.
func runWrk(wrk, script, url string, c int, d time.Duration) result {
	out, err := exec.Command(wrk, "-t2", fmt.Sprintf("-c%d", c), fmt.Sprintf("-d%ds", int(d.Seconds())), "--latency", "-s", script, url).CombinedOutput()
	check(err)
	var res result
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 2 && f[0] == "Requests/sec:":
			res.rps, _ = strconv.ParseFloat(f[1], 64)
		case len(f) == 2 && f[0] == "50%":
			res.p50 = wrkDuration(f[1])
		case len(f) == 2 && f[0] == "99%":
			res.p99 = wrkDuration(f[1])
		case len(f) == 5 && f[0] == "Non-2xx":
			res.errors, _ = strconv.ParseInt(f[4], 10, 64)
		case len(f) >= 2 && f[1] == "requests":
			res.ok, _ = strconv.ParseInt(f[0], 10, 64)
		}
	}
	if res.rps == 0 {
		check(fmt.Errorf("could not read wrk's output:\n%s", out))
	}
	res.ok -= res.errors
	return res
}

// wrkDuration parses wrk's latencies, such as 812.00us, 2.31ms or 1.02s.
func wrkDuration(s string) time.Duration {
	d, err := time.ParseDuration(strings.Replace(s, "us", "µs", 1))
	if err != nil {
		return 0
	}
	return d
}
