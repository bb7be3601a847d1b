//go:build unix

package actions

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/payramd/payramd/config"
	"github.com/payramd/payramd/engine"
	"gopkg.in/yaml.v3"
)

func init() { Register("exec", newExec) }

var _ Action = (*Exec)(nil)

// Exec runs a command: `command` (argv, each item a template), `dir`, `env`
// (a map of templates) and `max_concurrency` (4).
//
// The command never goes through a shell of ours, so an event field in argv
// is one argument however many quotes, semicolons or $( ) it holds. The
// child gets a clean environment — PATH (the daemon's, or a safe default),
// PAYRAMD_EVENT_ID, PAYRAMD_RULE, PAYRAMD_SOURCE, PAYRAMD_JOB_ID,
// PAYRAMD_ATTEMPT and the action's env — because the daemon's environment
// holds its secrets. The event is written to stdin as JSON. The child runs
// in its own process group; when the timeout expires, or when the command
// exits, the whole group is killed, so nothing it started outlives the
// attempt. Exit 0 is success; another status is retried; a command that
// does not exist is not.
//
// Output keeps the last MaxOutput bytes of stdout and stderr together (the
// tail, because that is where the error usually is).
type Exec struct {
	name  string
	argv  []*engine.Template
	dir   string
	env   []namedTemplate
	slots chan struct{}
}

// defaultPath is the child's PATH when the daemon has none (systemd gives
// services one, but a bare exec may not).
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// shells are the interpreters whose -c argument is a script.
var shells = map[string]bool{"sh": true, "bash": true, "rbash": true, "dash": true, "zsh": true, "ksh": true, "mksh": true, "ash": true,
	"csh": true, "tcsh": true, "fish": true, "yash": true, "posh": true}

// codeEnv are variables that make a program load or run what they name
// (a shell's startup file, preloaded libraries, interpreter options, the
// PATH programs are looked up on): a placeholder in one of them would let
// the event choose code.
var codeEnv = []string{"BASH_ENV", "ENV", "PROMPT_COMMAND", "PS4", "SHELLOPTS", "BASHOPTS", "IFS", "PATH",
	"LD_PRELOAD", "LD_LIBRARY_PATH", "LD_AUDIT", "GCONV_PATH", "NODE_OPTIONS", "NODE_PATH", "PERL5OPT", "PERL5LIB",
	"PERLLIB", "RUBYOPT", "RUBYLIB", "PYTHONPATH", "PYTHONSTARTUP", "PYTHONHOME", "PYTHONINSPECT", "JAVA_TOOL_OPTIONS",
	"_JAVA_OPTIONS", "GIT_SSH_COMMAND", "GIT_EXEC_PATH", "PAGER", "EDITOR", "VISUAL"}

// reservedEnv are set by payramd and cannot be configured.
var reservedEnv = []string{"PAYRAMD_EVENT_ID", "PAYRAMD_RULE", "PAYRAMD_SOURCE", "PAYRAMD_JOB_ID", "PAYRAMD_ATTEMPT"}

func newExec(c *config.Action) (Action, error) {
	s := newSpec(c)
	a := &Exec{name: c.Name}
	if n := s.f.Node("command"); n != nil && n.Kind == yaml.ScalarNode && strings.ContainsAny(n.Value, " \t") {
		s.errorf("command", "command is a list of arguments, not a command line: write command: [%s] (it never goes through a shell)", strings.Join(strings.Fields(n.Value), ", "))
	}
	var scs []*config.Scalar
	a.argv, scs = s.templates("command")
	if len(a.argv) == 0 {
		s.missing("command", " (a list: the program and its arguments, such as [/usr/local/bin/notify, \"{{ reference_id }}\"])")
	}
	checkShellScript(s, scs, a.argv)
	if dir := s.f.Scalar("dir"); dir != nil && dir.Value != "" {
		// Relative to the config file, like every other path in it.
		a.dir = dir.Value
		if !filepath.IsAbs(a.dir) {
			a.dir = filepath.Join(filepath.Dir(c.Fields.File()), a.dir)
		}
		if strings.Contains(dir.Value, "{{") {
			s.errorf("dir", "dir cannot contain placeholders: a directory chosen by the event could be anywhere")
		} else if fi, err := os.Stat(a.dir); err != nil || !fi.IsDir() {
			s.warnf("dir", "dir %s is not a directory (yet); the command will fail until it exists", a.dir)
		}
	}
	a.env = s.templateMap("env")
	warnLiteralCredentials(s, "env", a.env)
	for _, e := range a.env {
		switch {
		case e.name == "" || strings.ContainsAny(e.name, "=\x00"):
			s.errorAt(e.pos, "env: %q is not a valid variable name", e.name)
		case slices.Contains(reservedEnv, e.name):
			s.errorAt(e.pos, "env: %s is set by payramd", e.name)
		case slices.Contains(codeEnv, e.name) && e.value != nil && !fromConfig(e.value):
			s.errorAt(e.pos, "env: %s with a placeholder lets the event choose code or where programs are found; set it to a fixed value", e.name)
		}
	}
	if len(scs) > 0 && len(a.argv) > 0 && s.enabled {
		if v, ok := constant(a.argv[0]); ok {
			checkProgram(s, scs[0].Pos, v, a.dir)
		}
	}
	n := s.f.Int("max_concurrency", 4)
	if n < 1 {
		s.errorf("max_concurrency", "max_concurrency must be at least 1, not %d", n)
		n = 1
	}
	if !s.ok() {
		return nil, errInvalid
	}
	a.slots = execSlots(c.Name, n)
	return a, nil
}

// checkShellScript rejects a placeholder inside code that a program parses:
// the script of `sh -c` (wherever the shell comes in argv: after env,
// timeout, nice, sudo…), the code of `python3 -c`, `perl -e` and the like,
// an interpreter option check cannot prove harmless (see codeArgs), and
// the command line `env -S` splits itself. The event's data would be run as
// code. Arguments after the script ($0, $1, …) are safe and allowed.
func checkShellScript(s *spec, scs []*config.Scalar, ts []*engine.Template) {
	argv := make([]string, len(scs))
	for i, sc := range scs {
		argv[i] = sc.Value
	}
	report := func(i int, what string, maybe bool) {
		sc := scs[i]
		at := strings.Index(sc.Value, "{{")
		if at < 0 || (i < len(ts) && ts[i] != nil && fromConfig(ts[i])) {
			return // no placeholder, or only the config's own text
		}
		why := "it would run whatever the event contains"
		if maybe {
			why = "check cannot tell that the program will not run it as code"
		}
		fix := "pass data through env: instead (env: {REF: \"{{ reference_id }}\"} and \"$REF\" in the script)"
		if strings.Contains(what, "of ssh") {
			fix = "the remote command gets the event's JSON on its standard input: read the value from there"
		}
		s.errorAt(sc.AtOffset(at), "placeholder inside %s: %s; %s", what, why, fix)
	}
	reported := map[int]bool{}
	hits := codeArgs(argv)
	slices.SortStableFunc(hits, func(a, b codeHit) int { // an always-refused hit first
		switch {
		case a.always == b.always:
			return 0
		case a.always:
			return -1
		}
		return 1
	})
	for _, h := range hits {
		switch {
		case reported[h.index]:
		case h.always:
			reported[h.index] = true
			s.errorAt(scs[h.index].Pos, "%s: the event would run as code; pass it as an argument instead", h.what)
		default:
			reported[h.index] = true
			report(h.index, h.what, h.maybe)
		}
	}
	if i := envSplitIndex(argv); i >= 0 {
		report(i, "the command line of env -S", false)
	}
	if len(argv) > 0 {
		report(0, "the program (first item of command), which would then be the event's choice", false)
	}
	if prog := stdinProgram(argv); prog != "" && len(scs) > 0 {
		s.errorAt(scs[0].Pos, "%s reads its program from standard input here, and payramd writes the event's JSON there: the event would run as code; give a script file (or -c/-e code with no placeholder)", prog)
	}
}

// envSplitIndex returns the index of the string given to `env -S` (or
// --split-string, or an abbreviation such as --split), which env splits
// into a command line itself, or -1. Options are read as GNU env reads
// them: -iS'…' in a cluster, -u NAME and -C DIR before it.
func envSplitIndex(argv []string) int {
	for p, a := range argv {
		if filepath.Base(a) != "env" {
			continue
		}
		for i := p + 1; i < len(argv) && strings.HasPrefix(argv[i], "-") && argv[i] != "-"; i++ {
			o := argv[i]
			if o == "--" {
				break
			}
			if strings.HasPrefix(o, "--") {
				name, _, attached := strings.Cut(o, "=")
				switch {
				case len(name) >= 3 && strings.HasPrefix("--split-string", name):
					if attached {
						return i
					}
					if i+1 < len(argv) {
						return i + 1
					}
				case !attached && len(name) >= 3 && (strings.HasPrefix("--unset", name) || strings.HasPrefix("--chdir", name)):
					i++
				}
				continue
			}
			for k := 1; k < len(o); k++ {
				switch o[k] {
				case 'S':
					if k+1 < len(o) {
						return i
					}
					if i+1 < len(argv) {
						return i + 1
					}
				case 'u', 'C':
					if k+1 == len(o) {
						i++
					}
				default:
					continue
				}
				break
			}
		}
	}
	return -1
}

// checkProgram warns, at the first item of command, when the program will
// not be found: a name not on PATH or a path that does not exist. A warning,
// not an error: the program may be installed after the config is written.
func checkProgram(s *spec, pos config.Pos, prog, dir string) {
	warn := func(format string, args ...any) { s.f.Problems().Warnf(pos, format, args...) }
	switch {
	case prog == "":
		s.errorAt(pos, "the program (first item of command) is empty")
	case !strings.Contains(prog, "/"):
		if _, err := lookPath(prog, childPath()); err != nil {
			warn("%s is not found on PATH (%s); write its absolute path", prog, childPath())
		}
	case filepath.IsAbs(prog):
		if _, err := os.Stat(prog); err != nil {
			warn("%s does not exist (yet); the command will fail until it does", prog)
		}
	default:
		base := dir
		if base == "" {
			base, _ = os.Getwd()
		}
		if _, err := os.Stat(filepath.Join(base, prog)); err != nil {
			warn("%s is a relative path and is not found from %s; write its absolute path", prog, base)
		}
	}
}

// childPath is the PATH the child gets and programs are looked up on.
func childPath() string {
	if p := os.Getenv("PATH"); p != "" {
		return p
	}
	return defaultPath
}

// lookPath finds an executable on pathList. Relative entries (such as "."
// or an empty one) are skipped: they would run whatever sits in the
// working directory.
func lookPath(name, pathList string) (string, error) {
	for _, dir := range filepath.SplitList(pathList) {
		if !filepath.IsAbs(dir) {
			continue
		}
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", exec.ErrNotFound
}

var slotsByAction = struct {
	sync.Mutex
	m map[string]chan struct{}
}{m: map[string]chan struct{}{}}

// execSlots returns the semaphore bounding how many children of the named
// action run at once. It is process-wide and outlives reloads, so a reload
// does not reset the count; a changed max_concurrency takes a fresh
// semaphore, and children started under the old one finish against it.
func execSlots(name string, n int) chan struct{} {
	slotsByAction.Lock()
	defer slotsByAction.Unlock()
	if ch, ok := slotsByAction.m[name]; ok && cap(ch) == n {
		return ch
	}
	ch := make(chan struct{}, n)
	slotsByAction.m[name] = ch
	return ch
}

// invocation is a rendered command.
type invocation struct {
	argv  []string
	env   []string // NAME=value, PATH first
	stdin []byte
}

func (a *Exec) build(j *Job) (*invocation, error) {
	vars := j.Event.Env()
	argv, err := renderAll("command", a.argv, vars)
	if err != nil {
		return nil, err
	}
	if len(argv) == 0 || argv[0] == "" {
		return nil, errors.New("command: the program is empty")
	}
	inv := &invocation{argv: argv}
	path := childPath()
	var own []string
	for _, e := range a.env {
		v, err := render("env."+e.name, e.value, vars)
		if err != nil {
			return nil, err
		}
		if strings.ContainsRune(v, 0) {
			return nil, fmt.Errorf("env.%s: the value contains a NUL byte", e.name)
		}
		if e.name == "PATH" {
			path = v
			continue
		}
		own = append(own, e.name+"="+v)
	}
	inv.env = append(inv.env, "PATH="+path)
	inv.env = append(inv.env, own...)
	inv.env = append(inv.env,
		"PAYRAMD_EVENT_ID="+j.Event.ID,
		"PAYRAMD_RULE="+j.Rule,
		"PAYRAMD_SOURCE="+j.Event.Source,
		"PAYRAMD_JOB_ID="+j.ID,
		"PAYRAMD_ATTEMPT="+strconv.Itoa(j.Attempt),
	)
	inv.stdin, err = eventJSON(j.Event)
	if err != nil {
		return nil, fmt.Errorf("encoding the event for stdin: %v", err)
	}
	return inv, nil
}

// eventJSON is what a command reads on stdin: the event with its
// normalized payload (what rules see: PayRam's amounts as exact JSON
// numbers) and the body as the provider sent it (its amounts as text), as
// "body" when it is UTF-8, else "body_base64", as the admin API gives it.
func eventJSON(e *engine.Event) ([]byte, error) {
	ev := map[string]any{
		"id":          e.ID,
		"source":      e.Source,
		"provider":    e.Provider,
		"type":        e.Type,
		"received_at": e.ReceivedAt,
		"headers":     e.Headers,
		"payload":     e.Payload,
	}
	k, v := engine.BodyField(e.Raw)
	ev[k] = v
	return engine.EncodeJSON(ev)
}

// Render shows argv, dir and env; values of credential-looking variables
// are masked.
func (a *Exec) Render(j *Job) (*Rendered, error) {
	inv, err := a.build(j)
	if err != nil {
		return nil, err
	}
	argv, _ := engine.EncodeJSON(inv.argv)
	out := &Rendered{Type: "exec", Fields: []KV{{"argv", string(argv)}}}
	if a.dir != "" {
		out.Fields = append(out.Fields, KV{"dir", a.dir})
	}
	for _, kv := range inv.env {
		name, value, _ := strings.Cut(kv, "=")
		if sensitiveName(name) {
			value = masked
		}
		out.Fields = append(out.Fields, KV{"env", name + "=" + value})
	}
	out.Fields = append(out.Fields, KV{"stdin", fmt.Sprintf("the event as JSON (%d bytes)", len(inv.stdin))})
	return out, nil
}

// Run starts the command once, waiting for a free slot first (the wait
// counts against the timeout).
func (a *Exec) Run(ctx context.Context, j *Job) Result {
	inv, err := a.build(j)
	if err != nil {
		return permanent(err, "")
	}
	select {
	case a.slots <- struct{}{}:
		defer func() { <-a.slots }()
	case <-ctx.Done():
		return retryable(&timeoutError{what: fmt.Sprintf("waiting for a free slot (max_concurrency %d of action %s)", cap(a.slots), a.name), err: ctx.Err()}, "")
	}

	prog := inv.argv[0]
	if !strings.Contains(prog, "/") {
		p, err := lookPath(prog, pathOf(inv.env))
		if err != nil {
			return permanent(fmt.Errorf("command not found: %s is not on PATH", prog), "")
		}
		prog = p
	}
	cmd := exec.CommandContext(ctx, prog, inv.argv[1:]...)
	cmd.Args[0] = inv.argv[0]
	cmd.Dir = a.dir
	cmd.Env = inv.env
	cmd.Stdin = bytes.NewReader(inv.stdin)
	out := &tailBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return killGroup(cmd.Process.Pid) }
	// A grandchild that left the group could hold the pipes open forever.
	cmd.WaitDelay = 2 * time.Second

	start := time.Now()
	if err := cmd.Start(); err != nil {
		return startError(prog, err)
	}
	// Kill what the command left behind before reaping it, while its pid
	// still names the group and cannot have been reused.
	reapGroup(cmd.Process.Pid)
	err = cmd.Wait()
	elapsed := time.Since(start)

	if ctxErr := ctx.Err(); ctxErr != nil && err != nil {
		return retryable(&timeoutError{what: fmt.Sprintf("command timed out after %s; it was killed with its process group", formatDuration(elapsed)), err: ctxErr}, out.String())
	}
	var exitErr *exec.ExitError
	switch {
	case err == nil:
		return success(out.String())
	case errors.Is(err, exec.ErrWaitDelay):
		// Exited 0, but something it started kept the output open.
		return success(out.String() + "\n[payramd: output was still open after the command exited; closed]")
	case errors.As(err, &exitErr):
		if st, ok := exitErr.Sys().(syscall.WaitStatus); ok && st.Signaled() {
			return retryable(fmt.Errorf("command was killed by signal %s", st.Signal()), out.String())
		}
		return retryable(fmt.Errorf("command exited with status %d", exitErr.ExitCode()), out.String())
	}
	return retryable(fmt.Errorf("command: %v", err), out.String())
}

func pathOf(env []string) string {
	for _, kv := range env {
		if p, ok := strings.CutPrefix(kv, "PATH="); ok {
			return p
		}
	}
	return defaultPath
}

// startError classifies a failure to start: a missing or non-executable
// program, or a missing dir, will not fix itself; anything else (too many
// processes, out of memory) may.
func startError(prog string, err error) Result {
	switch {
	case errors.Is(err, exec.ErrNotFound), errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ENOTDIR):
		return permanent(fmt.Errorf("command not found: %v", err), "")
	case errors.Is(err, syscall.EACCES), errors.Is(err, syscall.ENOEXEC), errors.Is(err, fs.ErrPermission):
		return permanent(fmt.Errorf("cannot run %s: %v", prog, err), "")
	}
	return retryable(fmt.Errorf("starting %s: %v", prog, err), "")
}

// killGroup sends SIGKILL to the process group pgid; a group that is
// already gone is not an error.
func killGroup(pgid int) error {
	if err := syscall.Kill(-pgid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return err
	}
	return nil
}

// tailBuffer keeps the last MaxOutput bytes written to it.
type tailBuffer struct {
	mu      sync.Mutex
	buf     []byte
	dropped int64
}

const tailKeep = MaxOutput - 64 // room for the truncation note

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := len(p)
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - tailKeep; over > 0 {
		t.dropped += int64(over)
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return n, nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	b := t.buf
	if t.dropped == 0 {
		return string(b)
	}
	// Start on a character boundary.
	for len(b) > 0 && !utf8Start(b[0]) {
		b = b[1:]
	}
	return fmt.Sprintf("[… first %d bytes cut]\n%s", t.dropped, b)
}
