// Command payramd verifies payment webhooks, journals them durably,
// evaluates the merchant's rules and runs their actions. See README.md.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"syscall"

	"github.com/mattn/go-isatty"
	payramd "github.com/payramd/payramd"
	"github.com/payramd/payramd/config"
	"github.com/payramd/payramd/daemon"
)

// Set at build time with -ldflags "-X main.version=... -X main.commit=...".
var (
	version = "dev"
	commit  = ""
)

const usage = `payramd — verify payment webhooks, journal them, run your rules.

Usage:
  payramd [run] [-c FILE]          run the daemon in the foreground
  payramd check [-c FILE]          validate the config; FILE:LINE:COL per problem
  payramd test [-c FILE] [--source NAME] [--json] [EVENT.json ...]
                                   dry run: which rules match each event, and
                                   each action rendered (nothing is executed);
                                   with no files, run the config's tests:
  payramd send [-c FILE] --source NAME [--url URL] EVENT.json
                                   sign EVENT.json as the source's provider and
                                   POST it to the running daemon
  payramd events [ID] [--source S] [--since 24h] [--limit N] [--json] [--raw]
                                   list events, or show one with its rules,
                                   jobs and every attempt
  payramd jobs [--state pending|running|succeeded|dead] [--event ID]
               [--source S] [--action A] [--limit N] [--json]
  payramd replay ID [--source S] [--json]
                                   evaluate a journaled event again (current config)
  payramd replay --dry-run [--since 168h] [--source S] [-c candidate.yaml]
                 [--data-dir DIR] [--json]
                                   backtest: what a config would have done with
                                   the journaled events of the window
  payramd retry JOB... | --dead [--action A] [--json]
                                   run dead jobs again
  payramd reload [--json]          reload the running daemon's config
  payramd version [--json]

events, jobs, replay, retry and reload find the daemon through the config's
admin_listen, or --admin URL, or $PAYRAMD_ADMIN_LISTEN, and send admin_token
or $PAYRAMD_ADMIN_TOKEN. run takes --log-format text|json|auto and
--log-level debug|info|warn|error.

Config lookup: -c, else $PAYRAMD_CONFIG, else ./rules.yaml, else
/etc/payramd/rules.yaml; run falls back to the built-in example.
`

func main() {
	// Group commit needs a second thread to gather the next batch while one
	// fsyncs; with GOMAXPROCS=1 latency collapses. Never run with fewer than 2.
	if runtime.GOMAXPROCS(0) < 2 {
		runtime.GOMAXPROCS(2)
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// commands maps each subcommand to its function; "did you mean" hints and
// dispatch both come from it, so a new command is named in one place.
var commands = map[string]func(args []string, stdout, stderr io.Writer) int{
	"run":     func(args []string, _, stderr io.Writer) int { return cmdRun(args, stderr) },
	"check":   cmdCheck,
	"test":    cmdTest,
	"send":    cmdSend,
	"events":  cmdEvents,
	"jobs":    cmdJobs,
	"replay":  cmdReplay,
	"retry":   cmdRetry,
	"reload":  cmdReload,
	"version": cmdVersion,
	"help": func(_ []string, stdout, _ io.Writer) int {
		fmt.Fprint(stdout, usage)
		return 0
	},
}

// aliases are the flag-like spellings people type for two commands.
var aliases = map[string]string{"--version": "version", "-version": "version", "--help": "help", "-help": "help", "-h": "help"}

func run(args []string, stdout, stderr io.Writer) int {
	cmd := "run"
	if len(args) > 0 {
		if a, ok := aliases[args[0]]; ok {
			cmd, args = a, args[1:]
		} else if !strings.HasPrefix(args[0], "-") {
			cmd, args = args[0], args[1:]
		}
	}
	if f, ok := commands[cmd]; ok {
		return f(args, stdout, stderr)
	}
	names := slices.Sorted(maps.Keys(commands))
	fmt.Fprintf(stderr, "payramd: unknown command %q%s\n\n%s", cmd, config.DidYouMean(cmd, names), usage)
	return 2
}

// plural formats a count with its noun: 1 problem, 2 problems.
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// cmdVersion prints the version, or with --json the same facts for
// scripts: {"version", "commit", "go", "platform"}.
func cmdVersion(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("version", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print JSON")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if !*asJSON {
		fmt.Fprintln(stdout, versionString())
		return 0
	}
	b, _ := json.MarshalIndent(map[string]string{
		"version": version, "commit": buildCommit(), "go": runtime.Version(), "platform": runtime.GOOS + "/" + runtime.GOARCH,
	}, "", "  ")
	fmt.Fprintln(stdout, string(b))
	return 0
}

func versionString() string {
	return fmt.Sprintf("payramd %s (commit %s, %s %s/%s)", version, buildCommit(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// buildCommit is the commit stamped by the Makefile, else the one Go
// recorded, else "unknown".
func buildCommit() string {
	c := commit
	if c == "" {
		if bi, ok := debug.ReadBuildInfo(); ok {
			for _, s := range bi.Settings {
				if s.Key == "vcs.revision" {
					c = s.Value
				}
			}
		}
	}
	if c == "" {
		c = "unknown"
	}
	return c
}

// common holds the flags every command shares.
type common struct {
	fs        *flag.FlagSet
	config    string
	logFormat string
	logLevel  string
	jsonOut   bool
}

func newFlags(name string, stderr io.Writer) *common {
	c := &common{fs: flag.NewFlagSet(name, flag.ContinueOnError)}
	c.fs.SetOutput(stderr)
	c.fs.StringVar(&c.config, "c", "", "config file")
	c.fs.StringVar(&c.config, "config", "", "config file")
	c.fs.StringVar(&c.logFormat, "log-format", "auto", "log format: text, json or auto (text on a terminal)")
	c.fs.StringVar(&c.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	c.fs.BoolVar(&c.jsonOut, "json", false, "print JSON")
	c.fs.Usage = func() { fmt.Fprint(stderr, usage) }
	return c
}

// parse parses flags that may come before or after positional arguments.
func (c *common) parse(args []string) ([]string, error) {
	var pos []string
	for {
		if err := c.fs.Parse(args); err != nil {
			return nil, err
		}
		args = c.fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// findConfig applies the lookup order; "" means none exists.
func findConfig(flagValue string) string {
	if flagValue != "" {
		return flagValue
	}
	if env := os.Getenv("PAYRAMD_CONFIG"); env != "" {
		return env
	}
	for _, p := range []string{"rules.yaml", "/etc/payramd/rules.yaml"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// loadOptions resolves the config; with none found, the built-in example.
func loadOptions(flagValue string) daemon.LoadOptions {
	path := findConfig(flagValue)
	if path == "" {
		return daemon.LoadOptions{Path: "rules.example.yaml (built in)", Embedded: payramd.ExampleConfig}
	}
	return daemon.LoadOptions{Path: path}
}

// loadValid loads the config for a command that needs a valid one. When it
// is invalid, it prints every problem and a line saying what to do, and
// returns nil (the command exits 1).
func loadValid(flagValue string, stderr io.Writer) (*daemon.Snapshot, daemon.LoadOptions) {
	return loadValidWith(loadOptions(flagValue), stderr)
}

// loadValidWith is loadValid with the options resolved by the caller.
func loadValidWith(opts daemon.LoadOptions, stderr io.Writer) (*daemon.Snapshot, daemon.LoadOptions) {
	snap, probs := daemon.Load(opts)
	if snap == nil {
		for _, p := range probs.List {
			fmt.Fprintln(stderr, p.String())
		}
		fmt.Fprintf(stderr, "%s: the config is invalid; fix it first (payramd check -c %s)\n", opts.Path, opts.Path)
	}
	return snap, opts
}

// newLoggerTo builds the logger writing to w; term is the real stream,
// used to decide whether "auto" means text (a terminal) or JSON.
func newLoggerTo(format, level string, w, term io.Writer) (*slog.Logger, error) {
	if format == "auto" {
		format = "json"
		if f, ok := term.(*os.File); ok && isatty.IsTerminal(f.Fd()) {
			format = "text"
		}
	}
	log, err := newLogger(format, level, w)
	if err != nil {
		return nil, err
	}
	if f, ok := term.(*os.File); ok && journalStream(f) {
		return slog.New(newPriorityHandler(w, func(pw io.Writer) slog.Handler {
			l, _ := newLogger(format, level, pw) // the same arguments just worked
			return l.Handler()
		})), nil
	}
	return log, nil
}

func newLogger(format, level string, w io.Writer) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level must be debug, info, warn or error")
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "auto":
		if f, ok := w.(*os.File); ok && isatty.IsTerminal(f.Fd()) {
			return slog.New(slog.NewTextHandler(w, opts)), nil
		}
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format must be text, json or auto")
}

func cmdRun(args []string, stderr io.Writer) int {
	c := newFlags("run", stderr)
	if _, err := c.parse(args); err != nil {
		return 2
	}
	logOut := stderr
	if f, ok := stderr.(*os.File); !ok || !isatty.IsTerminal(f.Fd()) {
		buf := newBufferedLog(stderr)
		defer buf.Close()
		logOut = buf
	}
	log, err := newLoggerTo(c.logFormat, c.logLevel, logOut, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "payramd:", err)
		return 2
	}
	slog.SetDefault(log)
	d, err := daemon.New(daemon.Options{Load: loadOptions(c.config), Logger: log, Notify: daemon.Systemd{Log: log}, Version: version})
	if err != nil {
		var ce *config.Error
		if errors.As(err, &ce) {
			// Warnings were logged as warnings by daemon.New; logging
			// them again as errors, and counting them, sends the operator
			// after problems that do not stop the start.
			errs := 0
			for _, p := range ce.Problems {
				if p.Warning {
					continue
				}
				errs++
				log.Error("config error", "problem", p.String())
			}
			// Through logOut, so that it follows the lines above, and
			// under journald with an error's priority, as they have.
			prefix := ""
			if _, ok := log.Handler().(*priorityHandler); ok {
				prefix = "<3>"
			}
			fmt.Fprintf(logOut, "%spayramd: the config is invalid (%s); run `payramd check -c %s` for the list\n", prefix, plural(errs, "error"), loadOptions(c.config).Path)
		} else {
			log.Error("start-up failed", "err", err)
		}
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := d.Run(ctx); err != nil {
		log.Error("payramd stopped with an error", "err", err)
		return 1
	}
	return 0
}
