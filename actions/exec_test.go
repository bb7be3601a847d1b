//go:build unix

package actions

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// script writes an executable shell script into dir.
func script(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestExecStdinAndEnvironment(t *testing.T) {
	t.Setenv("AWS_SECRET_ACCESS_KEY", "daemon-secret") // must not reach the child
	dir := t.TempDir()
	sh := script(t, dir, "record.sh", `cat > "$OUT/stdin.json"`+"\n")
	act := mustCompile(t, "rec", fmt.Sprintf(`
type: exec
command: [%s]
env:
  OUT: %s
  REF: "{{ reference_id }}"
`, sh, dir))
	j := testJob(t, "rec")
	j.Attempt = 3
	if res := act.Run(context.Background(), j); res.Err != nil {
		t.Fatalf("Run: %v (%s)", res.Err, res.Output)
	}
	var in map[string]any
	b, err := os.ReadFile(filepath.Join(dir, "stdin.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &in); err != nil {
		t.Fatalf("stdin %s: %v", b, err)
	}
	payload, _ := in["payload"].(map[string]any)
	if in["id"] != "evt_123" || in["source"] != "payram" || in["provider"] != "payram" || in["type"] != "payment.over_filled" ||
		in["received_at"] != "2026-11-23T10:00:00Z" || in["headers"] == nil || payload["reference_id"] != "ref-42" || payload["amount"] != 44.99 {
		t.Errorf("stdin: %s", b)
	}
	// The body as the provider sent it, for a script that wants its text
	// (amounts as PayRam wrote them) rather than the normalized payload.
	if in["body"] != testPayload {
		t.Errorf("stdin body = %q, want the raw body %q", in["body"], testPayload)
	}

	// env(1) prints exactly the environment it was given, with nothing a
	// shell would add.
	act = mustCompile(t, "env", `
type: exec
command: [env]
env: {REF: "{{ reference_id }}"}
`)
	res := act.Run(context.Background(), j)
	if res.Err != nil {
		t.Fatalf("Run: %v", res.Err)
	}
	got := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(res.Output), "\n") {
		k, v, _ := strings.Cut(line, "=")
		got[k] = v
	}
	want := map[string]string{
		"PATH":             os.Getenv("PATH"),
		"REF":              "ref-42",
		"PAYRAMD_EVENT_ID": "evt_123",
		"PAYRAMD_RULE":     "overpaid",
		"PAYRAMD_SOURCE":   "payram",
		"PAYRAMD_JOB_ID":   "job_7f3a",
		"PAYRAMD_ATTEMPT":  "3",
	}
	if len(got) != len(want) {
		t.Errorf("child environment %v, want exactly %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s=%q, want %q", k, got[k], v)
		}
	}
}

func TestExecPassesMetacharactersLiterally(t *testing.T) {
	dir := t.TempDir()
	pwned := filepath.Join(dir, "pwned")
	note := fmt.Sprintf(`x"; touch %[1]s; echo $(touch %[1]s) `+"`touch %[1]s`"+` | rm -rf ~ && $HOME '%%s' \n`, pwned)
	raw, _ := json.Marshal(map[string]any{"reference_id": "r", "note": note})
	sh := script(t, dir, "print.sh", `printf '%s' "$1" > "$OUT/arg"`+"\n")
	for name, command := range map[string]string{
		"script":   fmt.Sprintf(`[%s, "{{ note }}"]`, sh),
		"sh -c $1": `[/bin/sh, -c, 'printf "%s" "$1" > "$OUT/arg"', sh, "{{ note }}"]`,
		"twice":    fmt.Sprintf(`[%s, "{{ note }}{{ note }}"]`, sh),
	} {
		t.Run(name, func(t *testing.T) {
			os.Remove(filepath.Join(dir, "arg"))
			act := mustCompile(t, "meta", fmt.Sprintf("type: exec\ncommand: %s\nenv: {OUT: %s}\n", command, dir))
			j := testJob(t, "meta")
			j.Event = testEvent(t, string(raw))
			if res := act.Run(context.Background(), j); res.Err != nil {
				t.Fatalf("Run: %v (%s)", res.Err, res.Output)
			}
			got, err := os.ReadFile(filepath.Join(dir, "arg"))
			if err != nil {
				t.Fatal(err)
			}
			if want := note; !strings.HasPrefix(string(got), want) {
				t.Errorf("argument %q, want %q", got, want)
			}
			if _, err := os.Stat(pwned); err == nil {
				t.Fatal("a metacharacter in the payload was executed")
			}
		})
	}
}

// gone reports whether pid has exited (a zombie waiting for its reaper
// counts: it was killed).
func gone(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] == 'Z' || s[i+2] == 'X'
}

func waitGone(t *testing.T, pidFile string) {
	t.Helper()
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if gone(pid) {
			return
		}
	}
	t.Errorf("child %d still runs", pid)
}

func TestExecTimeoutKillsProcessGroup(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("needs /proc")
	}
	dir := t.TempDir()
	sh := script(t, dir, "fork.sh", `sleep 60 &
echo $! > "$OUT/child.pid"
echo started
sleep 60
`)
	act := mustCompile(t, "fork", fmt.Sprintf("type: exec\ncommand: [%s]\nenv: {OUT: %s}\n", sh, dir))
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	res := act.Run(ctx, testJob(t, "fork"))
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("Run took %v with a 500ms timeout", took)
	}
	if res.Err == nil || !res.Retryable || !errors.Is(res.Err, context.DeadlineExceeded) || !strings.Contains(res.Err.Error(), "timed out") {
		t.Errorf("got %v retryable=%v, want a retryable timeout", res.Err, res.Retryable)
	}
	if !strings.Contains(res.Output, "started") {
		t.Errorf("output %q", res.Output)
	}
	waitGone(t, filepath.Join(dir, "child.pid"))
}

func TestExecLeavesNothingBehind(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("needs /proc")
	}
	dir := t.TempDir()
	// The background child keeps stdout open; Run must not wait for it.
	sh := script(t, dir, "bg.sh", `sleep 60 &
echo $! > "$OUT/child.pid"
echo done
`)
	act := mustCompile(t, "bg", fmt.Sprintf("type: exec\ncommand: [%s]\nenv: {OUT: %s}\n", sh, dir))
	start := time.Now()
	res := act.Run(context.Background(), testJob(t, "bg"))
	if res.Err != nil || strings.TrimSpace(res.Output) != "done" {
		t.Errorf("got %v, output %q", res.Err, res.Output)
	}
	if took := time.Since(start); took > 1500*time.Millisecond {
		t.Errorf("Run took %v: it waited for the background child", took)
	}
	waitGone(t, filepath.Join(dir, "child.pid"))
}

func TestExecOutcomes(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name      string
		body      string // script body; empty: command is used as is
		command   string
		ok        bool
		retryable bool
		errHas    string
		outHas    string
	}{
		{name: "exit 0", body: "echo fine", ok: true, outHas: "fine"},
		{name: "exit 3", body: "echo to-stdout; echo to-stderr >&2; exit 3", retryable: true, errHas: "exited with status 3", outHas: "to-stdout\nto-stderr"},
		{name: "missing absolute", command: "[/nonexistent/payramd-test-prog]", errHas: "not found"},
		{name: "missing on PATH", command: "[payramd-no-such-program]", errHas: "not found"},
		{name: "not executable", command: "[" + filepath.Join(dir, "plain.txt") + "]", errHas: "cannot run"},
		{name: "render error", command: `[echo, "{{ nope.deeper }}"]`, errHas: "rendering command[1]"},
	}
	os.WriteFile(filepath.Join(dir, "plain.txt"), []byte("not a program"), 0o644)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			command := tt.command
			if tt.body != "" {
				command = "[" + script(t, dir, strings.ReplaceAll(tt.name, " ", "_")+".sh", tt.body+"\n") + "]"
			}
			act := mustCompile(t, "o", "type: exec\ncommand: "+command+"\n")
			res := act.Run(context.Background(), testJob(t, "o"))
			if (res.Err == nil) != tt.ok || res.Retryable != tt.retryable {
				t.Fatalf("got %v retryable=%v, want ok=%v retryable=%v", res.Err, res.Retryable, tt.ok, tt.retryable)
			}
			if tt.errHas != "" && !strings.Contains(res.Err.Error(), tt.errHas) {
				t.Errorf("error %q does not mention %q", res.Err, tt.errHas)
			}
			if !strings.Contains(res.Output, tt.outHas) {
				t.Errorf("output %q does not hold %q", res.Output, tt.outHas)
			}
		})
	}
}

func TestExecOutputKeepsTail(t *testing.T) {
	dir := t.TempDir()
	sh := script(t, dir, "loud.sh", "head -c 100000 /dev/zero | tr '\\0' a; echo; echo LAST-LINE\n")
	act := mustCompile(t, "loud", "type: exec\ncommand: ["+sh+"]\n")
	res := act.Run(context.Background(), testJob(t, "loud"))
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	if len(res.Output) > MaxOutput || !strings.HasSuffix(res.Output, "aaa\nLAST-LINE\n") || !strings.HasPrefix(res.Output, "[… first ") {
		t.Errorf("output of %d bytes: %q…%q", len(res.Output), res.Output[:40], res.Output[len(res.Output)-20:])
	}
}

func TestExecConcurrencyCap(t *testing.T) {
	dir := t.TempDir()
	sh := script(t, dir, "slow.sh", `echo start >> "$OUT/log"
sleep 0.2
echo end >> "$OUT/log"
`)
	act := mustCompile(t, "capped", fmt.Sprintf("type: exec\ncommand: [%s]\nenv: {OUT: %s}\nmax_concurrency: 2\n", sh, dir))
	start := time.Now()
	var wg sync.WaitGroup
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if res := act.Run(context.Background(), testJob(t, "capped")); res.Err != nil {
				t.Error(res.Err)
			}
		}()
	}
	wg.Wait()
	if took := time.Since(start); took < 600*time.Millisecond {
		t.Errorf("6 runs of 200ms with 2 slots took %v", took)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "log"))
	running, peak := 0, 0
	for _, line := range strings.Fields(string(b)) {
		if line == "start" {
			running++
		} else {
			running--
		}
		peak = max(peak, running)
	}
	if peak != 2 {
		t.Errorf("peak concurrency %d, want 2:\n%s", peak, b)
	}

	// Waiting for a slot gives up at the deadline.
	act = mustCompile(t, "one", fmt.Sprintf("type: exec\ncommand: [sleep, '0.5']\nmax_concurrency: 1\nenv: {OUT: %s}\n", dir))
	done := make(chan Result)
	go func() { done <- act.Run(context.Background(), testJob(t, "one")) }()
	time.Sleep(100 * time.Millisecond) // let the first take the slot
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	res := act.Run(ctx, testJob(t, "one"))
	if res.Err == nil || !res.Retryable || !strings.Contains(res.Err.Error(), "free slot") {
		t.Errorf("second run: %v retryable=%v", res.Err, res.Retryable)
	}
	if first := <-done; first.Err != nil {
		t.Errorf("first run: %v", first.Err)
	}
}

func TestExecRender(t *testing.T) {
	act := mustCompile(t, "r", `
type: exec
command: [/usr/bin/notify, --ref, "{{ reference_id }}"]
env: {API_TOKEN: tok-very-secret, REF: "{{ reference_id }}"}
`)
	rd, err := act.Render(testJob(t, "r"))
	if err != nil {
		t.Fatal(err)
	}
	if !hasField(rd, "argv", `["/usr/bin/notify","--ref","ref-42"]`) || !hasField(rd, "env", "REF=ref-42") || !hasField(rd, "env", "API_TOKEN=<redacted>") {
		t.Errorf("render %+v", rd.Fields)
	}
	assertNoSecrets(t, []string{"tok-very-secret"}, rd)
}

// TestCodeArgs: where check refuses a placeholder (X stands for one): the
// script of a shell, code options and program text, and interpreter option
// values it cannot prove are data; not the arguments of a script or of code.
func TestCodeArgs(t *testing.T) {
	const X = "{{ x }}"
	tests := []struct {
		argv []string
		want []int // indices reported
	}{
		{[]string{"sh", "-c", X}, []int{2}},
		{[]string{"/bin/bash", "-ec", X, "a"}, []int{2}},
		{[]string{"bash", "--norc", "-o", "pipefail", "-c", X}, []int{5}},
		{[]string{"/usr/bin/env", "A=1", "zsh", "-c", X}, []int{4}},
		{[]string{"sh", "-c", "--", X}, []int{3}},
		{[]string{"timeout", "30", "sh", "-c", X}, []int{4}},
		{[]string{"sudo", "-u", "shop", "sh", "-c", X}, []int{5}},
		{[]string{"busybox", "sh", "-c", X}, []int{3}},
		{[]string{"bash", "--rcfile", "rc", "-c", X}, []int{4}},
		{[]string{"fish", "--command", X}, []int{2}},
		{[]string{"rbash", "-c", X}, []int{2}},
		{[]string{"sh", "-c", "echo $1", "sh", X}, nil}, // $1 is data
		{[]string{"sh", "script.sh", "-c", X}, nil},
		{[]string{"sh", "-e", "script.sh", X}, nil},
		{[]string{"python3", "-c", X}, []int{2}},
		{[]string{"/usr/bin/python3.12", "-u", "-c", X}, []int{3}},
		{[]string{"python3", "-Ic", X}, []int{2}},
		{[]string{"python3", "-c" + X}, []int{1}},
		{[]string{"python3", "-W", "ignore", "-c", X}, []int{4}},
		{[]string{"python3", "-c", "import sys; print(sys.argv[1])", X}, nil}, // sys.argv: data
		{[]string{"python3", "notify.py", "-c", X}, nil},                      // the script's own option
		{[]string{"python3", "-m", "tool", "-c", X}, nil},                     // the module's own
		{[]string{"python3", "-m", X}, []int{2}},                              // the module from the event
		{[]string{"python3", X}, []int{1}},                                    // the script from the event
		{[]string{"pypy3", "-c", X}, []int{2}},
		{[]string{"perl", "-E", X}, []int{2}},
		{[]string{"perl", "-le", X}, []int{2}},
		{[]string{"perl", "-lne", X}, []int{2}},
		{[]string{"perl", "-e" + X}, []int{1}},
		{[]string{"perl", "-I", "lib", "-e", X}, []int{4}},
		{[]string{"perl", "-MData::Dumper", "-e", X}, []int{3}},
		{[]string{"perl", "-Mfeature=say", "-E", X}, []int{3}},
		{[]string{"perl", "-e", "use strict;", "-e", X}, []int{4}},
		{[]string{"perl", "-M" + X, "-e", "1"}, []int{1}}, // -M'strict;system(...)' runs code
		{[]string{"perl", "-l012", "-e", X}, []int{3}},
		{[]string{"perl", "-e", "print $ARGV[0]", X}, nil},
		{[]string{"perl5.36", "-e", X}, []int{2}},
		{[]string{"ruby", "-we", X}, []int{2}},
		{[]string{"ruby", "-r", "json", "-e", X}, []int{4}},
		{[]string{"ruby", "-W:no-deprecated", "-e", X}, []int{3}},
		{[]string{"ruby", "-e", "puts 1", "-e", X}, []int{4}},
		{[]string{"node", "--eval", X}, []int{2}},
		{[]string{"node", "--eval=" + X}, []int{1}},
		{[]string{"node", "-pe", X}, []int{2}},
		{[]string{"node", "-r", "dotenv/config", "-e", X}, []int{4}},
		{[]string{"node", "-C", "dev", "-e", X}, []int{4}},
		{[]string{"node", "--input-type", "module", "-e", X}, []int{4}},
		{[]string{"node", "--some-new-flag", "value", "-e", X}, []int{4}},
		{[]string{"nodejs", "-e", X}, []int{2}},
		{[]string{"node", "-e", "console.log(process.argv[1])", X}, nil},
		{[]string{"node", "app.js", "--eval", X}, nil},
		{[]string{"bun", "-e", X}, []int{2}},
		{[]string{"php", "-R", X}, []int{2}},
		{[]string{"php", "-d", "x=1", "-r", X}, []int{4}},
		{[]string{"lua", "-e", X}, []int{2}},
		{[]string{"luajit", "-e", X}, []int{2}},
		{[]string{"Rscript", "-e", X}, []int{2}},
		{[]string{"R", "--vanilla", "-e", X}, []int{3}},
		{[]string{"Rscript", "report.R", "-e", X}, nil},
		{[]string{"awk", X}, []int{1}},
		{[]string{"gawk", "-F", ",", "-v", "n=1", X, "file"}, []int{5}},
		{[]string{"awk", "-F,", X}, []int{2}},
		{[]string{"awk", "-v", "ref=" + X, "{ print ref }"}, nil}, // -v values are data
		{[]string{"awk", "-vref=" + X, "{ print ref }"}, nil},
		{[]string{"awk", "{ print }", X}, nil}, // an input file
		{[]string{"awk", "-f", "prog.awk", X}, nil},
		{[]string{"awk", "--", X}, []int{2}},
		{[]string{"gawk", "-e", "BEGIN{}", "-e", X}, []int{4}},
		{[]string{"gawk", "-l", "ext", X}, []int{3}},
		{[]string{"sed", "-n", X, "file"}, []int{2}},
		{[]string{"sed", "-e", X}, []int{2}},
		{[]string{"sed", "-e", "s/a/b/", "-e", X}, []int{4}},
		{[]string{"sed", "--expression=" + X}, []int{1}},
		{[]string{"sed", "-i", "-e", X, "file"}, []int{3}},
		{[]string{"sed", "-f", "s.sed", X}, []int{3}}, // GNU sed reads options anywhere: X may be --expression=…
		{[]string{"jq", "-r", X}, []int{2}},
		{[]string{"jq", "--arg", "ref", X, ".x == $ref"}, nil}, // --arg values are data
		{[]string{"jq", "-n", "--argjson", "n", X, "$n"}, nil},
		{[]string{"jq", "--library-path", "lib", X}, []int{3}},
		{[]string{"jq", "-L", X, "."}, []int{2}},
		{[]string{"jq", "--from-file", "f.jq", X}, []int{3}},
		{[]string{"jq", "--args", ".", X}, nil},
		// Found by the third review: commands that hand a string to a
		// shell, database shells, options before code, file operands perl
		// opens, and forms that must pass.
		{[]string{"ssh", "erp", "/opt/erp/mark-paid", X}, []int{3}},
		{[]string{"ssh", "-i", "/k", "-o", "BatchMode=yes", "erp", "mark-paid", "--ref", X}, []int{8}},
		{[]string{"ssh", "-o", "ProxyCommand=" + X, "erp", "true"}, []int{2}},
		{[]string{"su", "-", "shop", "-c", "/opt/notify " + X}, []int{4}},
		{[]string{"runuser", "-l", "shop", "-c", X}, []int{4}},
		{[]string{"su", "shop", "-lc", X}, []int{3}},
		{[]string{"flock", "/var/lock/erp", "-c", X}, []int{3}},
		{[]string{"flock", "/var/lock/erp", "/opt/notify", X}, nil}, // run directly, no shell
		{[]string{"script", "-qc", X, "/dev/null"}, []int{2}},
		{[]string{"watch", "-n", "5", "/opt/check", X}, []int{4}},
		{[]string{"watch", "-x", "/opt/check", X}, nil},
		{[]string{"perl", "-pe", "s/a/b/", X}, []int{3}}, // 2-argument open: "cmd|" runs cmd
		{[]string{"perl", "-e", "print 1", X}, nil},
		{[]string{"node", "--openssl-config", "/etc/ssl/x.cnf", "-e", X}, []int{4}},
		{[]string{"node", "--env-file-if-exists", ".env", "-e", X}, []int{4}},
		{[]string{"php", "--php-ini", "/etc/php.ini", "-r", X}, []int{4}},
		{[]string{"php", "--run", X}, []int{2}},
		{[]string{"php", "artisan", "orders:paid", X}, nil}, // Laravel: the script's arguments
		{[]string{"php", "-f", "notify.php", X}, nil},
		{[]string{"node", "--", X}, []int{2}},
		{[]string{"python3", "--", X}, []int{2}},
		{[]string{"jq", "--rawfile", "t", X, "."}, []int{3}},
		{[]string{"sed", "-n", "p", "file", X}, []int{4}},
		{[]string{"ksh93", "-c", X}, []int{2}},
		{[]string{"gawk", "--assign", "ref=" + X, "{ print ref }"}, nil},
		{[]string{"R", "--vanilla", "--args", X}, nil},
		{[]string{"perl", "-V:osname", X}, []int{2}}, // no code given: X is the script
		{[]string{"psql", "-d", "shop", "-c", "UPDATE o SET paid WHERE ref='" + X + "'"}, []int{4}},
		{[]string{"psql", "-v", "ref=" + X, "-f", "paid.sql"}, nil}, // -v values are data (quote them as :'ref')
		{[]string{"mysql", "-pSECRET", "-e", X}, []int{3}},
		{[]string{"sqlite3", "/var/shop.db", X}, []int{2}},
		{[]string{"mongosh", "--eval", X}, []int{2}},
		{[]string{"/usr/local/bin/hook", "--dir", "/srv/app/php", "--ref", X}, nil},
		// Found by the fourth review: framework commands that run code,
		// commands inside docker/kubectl exec, interpreters under shims,
		// boolean flags before a script, make variables.
		{[]string{"bin/rails", "runner", "Order.paid!('" + X + "')"}, []int{2}},
		{[]string{"python3", "manage.py", "shell", "-c", "paid('" + X + "')"}, []int{4}},
		{[]string{"php", "artisan", "tinker", "--execute=paid('" + X + "')"}, []int{3}},
		{[]string{"wp", "eval", X}, []int{2}},
		{[]string{"drush", "php:eval", X}, []int{2}},
		{[]string{"python3", "manage.py", "mark_paid", X}, nil},
		{[]string{"docker", "exec", "-u", "app", "shop", "python3", "-c", X}, []int{7}},
		{[]string{"kubectl", "exec", "shop-0", "-c", "app", "--", "python3", "-c", X}, []int{8}},
		{[]string{"timeout", "-s", "KILL", "30", "/home/shop/.rbenv/shims/ruby", "-e", X}, []int{6}},
		{[]string{"sudo", "-u", "shop", "/usr/libexec/platform-python", "-c", X}, []int{5}},
		{[]string{"nice", "-n", "10", "perl", "-e", X}, []int{5}},
		{[]string{"find", "/srv/in", "-name", "*.json", "-exec", "python3", "-c", X, "{}", ";"}, []int{7}},
		{[]string{"node", "--enable-source-maps", "notify.js", X}, nil},
		{[]string{"ruby", "--disable-gems", "notify.rb", X}, nil},
		{[]string{"/opt/erp", "invoice", "--source", "node", "--ref", X}, nil},
		{[]string{"/opt/notify", "--via", "ssh", X}, nil},
		{[]string{"make", "-C", "/srv/shop", "release", "VERSION=" + X}, []int{4}},
		// Found by the fifth review: docker compose and other wrappers,
		// env -, runuser -u, and an interpreter with its code option behind
		// a wrapper check does not know.
		{[]string{"docker", "compose", "exec", "php", "php", "-r", X}, []int{6}},
		{[]string{"docker-compose", "exec", "-T", "web", "python3", "-c", X}, []int{6}},
		{[]string{"docker", "run", "--rm", "-e", "A=1", "shop:1", "python3", "-c", X}, []int{8}},
		{[]string{"docker", "compose", "exec", "php", "php", "artisan", "orders:paid", X}, nil},
		{[]string{"gosu", "shop", "python3", "-c", X}, []int{4}},
		{[]string{"uv", "run", "python", "-c", X}, []int{4}},
		{[]string{"npm", "exec", "--", "node", "-e", X}, []int{5}},
		{[]string{"parallel", "python3", "-c", X}, []int{3}}, // an unknown wrapper: the code option still counts
		{[]string{"env", "-", "python3", "-c", X}, []int{4}},
		{[]string{"runuser", "-u", "shop", "--", "python3", "-c", X}, []int{6}},
		{[]string{"runuser", "-u", "shop", "--", "/opt/notify", X}, nil},
		{[]string{"wp", "db", "query", "SELECT * FROM o WHERE ref='" + X + "'"}, []int{3}},
		{[]string{"wp", "db", "export", X}, nil},
		{[]string{"bundle", "exec", "rake", "orders:paid[" + X + "]"}, nil},
		{[]string{"curl", "-d", X, "https://erp.example/paid"}, nil},
		// Found by the sixth review: framework commands with options and
		// site aliases, phar names, ERPNext's bench execute, docker global
		// options.
		{[]string{"bin/rails", "runner", "-e", "production", "Order.paid!('" + X + "')"}, []int{4}},
		{[]string{"bundle", "exec", "rails", "runner", "P('" + X + "')"}, []int{4}},
		{[]string{"drush", "@prod", "php:eval", X}, []int{3}},
		{[]string{"drush", "sql:query", "SELECT 1 WHERE r='" + X + "'"}, []int{2}},
		{[]string{"wp", "@prod", "eval", X}, []int{3}},
		{[]string{"php", "wp-cli.phar", "eval", X}, []int{3}},
		{[]string{"bench", "--site", "shop", "execute", "erpnext.x.paid", "--kwargs", "{'ref':'" + X + "'}"}, []int{6}},
		{[]string{"bench", "--site", "shop", "execute", X}, []int{4}},
		{[]string{"docker", "compose", "-f", "prod.yml", "exec", "web", "bin/rails", "runner", "P('" + X + "')"}, []int{8}},
		{[]string{"docker", "--context", "prod", "exec", "shop", "python3", "-c", X}, []int{7}},
		{[]string{"docker", "run", "--rm", "-m", "512m", "img", "python3", "-c", X}, []int{8}},
		{[]string{"python3", "manage.py", "dbshell", "--", "-c", "SELECT '" + X + "'"}, []int{5}},
		{[]string{"sshpass", "-p", "pw", "ssh", "erp", "/opt/paid", X}, []int{6}},
		{[]string{"mongo", "--eval", X}, []int{2}},
		{[]string{"sqlcmd", "-S", "db", "-Q", X}, []int{4}},
		{[]string{"clickhouse-client", "--query", X}, []int{2}},
		{[]string{"deno", "eval", X}, []int{2}},
		{[]string{"sqlite3", "-separator", ",", "/var/shop.db", X}, []int{4}},
		{[]string{"sqlite3", "-cmd", X, "/var/shop.db"}, []int{2}},
		// A wrapper whose value names an interpreter does not hide the real one.
		{[]string{"/usr/bin/time", "-o", "/tmp/sed", "python3", "-c", X}, []int{5}},
		{[]string{"/usr/bin/notify", "--ref", X}, nil},
	}
	for _, tt := range tests {
		var got []int
		for _, h := range codeArgs(tt.argv) {
			if strings.Contains(tt.argv[h.index], "{{") && !slices.Contains(got, h.index) {
				got = append(got, h.index)
			}
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("codeArgs(%q) reports %v, want %v", tt.argv, got, tt.want)
		}
	}
	for _, tt := range []struct {
		argv []string
		want int
	}{
		{[]string{"/usr/bin/env", "-S", "sh -c 'x'"}, 2},
		{[]string{"env", "-i", "--split-string=sh -c x"}, 2},
		{[]string{"env", "-Ssh -c x"}, 1},
		{[]string{"env", "A=1", "sh"}, -1},
		{[]string{"env", "-iS", "sh -c x"}, 2},
		{[]string{"env", "-u", "HOME", "-S", "sh -c x"}, 4},
		{[]string{"env", "-C", "/opt", "-S", "sh -c x"}, 4},
		{[]string{"env", "--split=sh -c x"}, 1},
		{[]string{"env", "--sp", "sh -c x"}, 2},
	} {
		if got := envSplitIndex(tt.argv); got != tt.want {
			t.Errorf("envSplitIndex(%q) = %d, want %d", tt.argv, got, tt.want)
		}
	}
}

// TestStdinProgram: a shell or interpreter with no script reads its code
// from standard input, where payramd writes the event's JSON.
func TestStdinProgram(t *testing.T) {
	for _, tt := range []struct {
		argv []string
		want string
	}{
		{[]string{"sh"}, "sh"},
		{[]string{"/bin/bash", "-s", "--", "x"}, "bash"},
		{[]string{"python3", "-"}, "python3"},
		{[]string{"python3", "-u"}, "python3"},
		{[]string{"env", "A=1", "node"}, "node"},
		{[]string{"timeout", "30", "perl", "-n"}, "perl"},
		{[]string{"sh", "-c", "echo $1", "sh", "x"}, ""},
		{[]string{"python3", "notify.py"}, ""},
		{[]string{"python3", "-c", "print(1)"}, ""},
		{[]string{"python3", "-m", "tool"}, ""},
		{[]string{"jq", "."}, ""},
		{[]string{"/usr/bin/notify", "sh"}, ""},
		{[]string{"taskset", "-c", "0", "sh"}, "sh"},
		{[]string{"su", "shop"}, "su"},
		{[]string{"script", "-q", "/dev/null"}, "script"},
		{[]string{"psql", "-d", "shop"}, "psql"},
		{[]string{"psql", "shop", "-f", "paid.sql"}, ""},
		{[]string{"sqlite3", "/var/shop.db"}, "sqlite3"},
		{[]string{"mysql", "shop"}, "mysql"},
		{[]string{"python3", "manage.py", "shell"}, "manage.py"},
		{[]string{"php", "artisan", "tinker"}, "artisan"},
		{[]string{"bin/rails", "console"}, "rails"},
		{[]string{"python3", "manage.py", "shell", "-c", "print(1)"}, ""},
		{[]string{"timeout", "30", "/opt/erp", "restart", "node"}, ""},
		{[]string{"runuser", "-u", "shop", "/opt/notify"}, ""},
		{[]string{"wp", "db", "query", "SELECT 1"}, ""},
		{[]string{"wp", "db", "export", "/tmp/x.sql"}, ""},
		{[]string{"wp", "db", "cli"}, "wp"},
		{[]string{"odoo-bin", "shell", "-d", "shop"}, "odoo-bin"},
		{[]string{"ssh", "erp", "bash", "-s"}, "ssh … bash"},
		{[]string{"ssh", "-i", "/k", "erp", "mysql", "shop"}, "ssh … mysql"},
		{[]string{"ssh", "erp", "/opt/paid"}, ""},
		{[]string{"bench", "--site", "shop", "console"}, "bench"},
		{[]string{"python3", "manage.py", "dbshell", "--", "-c", "SELECT 1"}, ""},
		{[]string{"python3", "manage.py", "dbshell"}, "manage.py"},
		{[]string{"jq", "-r", ".reference_id"}, ""},
		{[]string{"sed", "-n", "p"}, ""},
		{[]string{"cat"}, ""},
		{[]string{"curl", "--data-binary", "@-", "https://erp.example"}, ""},
	} {
		if got := stdinProgram(tt.argv); got != tt.want {
			t.Errorf("stdinProgram(%q) = %q, want %q", tt.argv, got, tt.want)
		}
	}
}

// TestExecCheckAllowsConfigAndData: forms the code guard must let through,
// at the config level: code built only from the config's own text, data
// after the code, jq and awk data options.
func TestExecCheckAllowsConfigAndData(t *testing.T) {
	for _, cmd := range []string{
		`[python3, -c, "print('{{ meta.source }}')"]`,
		`[python3, -c, "import sys; print(sys.argv[1])", "{{ reference_id }}"]`,
		`[jq, -n, --arg, ref, "{{ reference_id }}", "$ref"]`,
		`[awk, -v, "ref={{ reference_id }}", "BEGIN { print ref }"]`,
		`[php, artisan, "orders:paid", "{{ reference_id }}"]`,
		`[/usr/bin/env, "REF={{ reference_id }}", /usr/local/bin/notify]`,
	} {
		_, probs := compileYAML(t, "a", "type: exec\ncommand: "+cmd+"\n")
		if probs.HasErrors() {
			t.Errorf("%s: %q", cmd, problemStrings(probs))
		}
	}
}

// TestXargsReplaceInCode: xargs -I puts what it reads, the event's JSON,
// where its replace string stands; inside code that runs the event with no
// placeholder at all.
func TestXargsReplaceInCode(t *testing.T) {
	for _, tt := range []struct {
		argv []string
		want int
	}{
		{[]string{"xargs", "-I{}", "sh", "-c", "/opt/notify {}"}, 4},
		{[]string{"xargs", "-I", "REF", "python3", "-c", "print('REF')"}, 5},
		{[]string{"xargs", "-I{}", "/opt/notify", "{}"}, -1},
		{[]string{"xargs", "sh", "-c", "/opt/notify \"$@\"", "sh"}, -1},
	} {
		got := -1
		for _, h := range codeArgs(tt.argv) {
			if h.always {
				got = h.index
			}
		}
		if got != tt.want {
			t.Errorf("codeArgs(%q): xargs hit at %d, want %d", tt.argv, got, tt.want)
		}
	}
}
