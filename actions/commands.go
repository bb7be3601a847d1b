package actions

import (
	"path/filepath"
	"slices"
	"strings"
)

// wrapper describes a program that runs another command given on its
// command line (timeout 30 CMD…), enough to find where that command starts.
type wrapper struct {
	value     string   // short options that take a value, attached or next (timeout -s SIG)
	longValue []string // long options that take the next argument unless written with =
	operands  int      // operands before the command (timeout's duration, chroot's directory)
	assigns   bool     // NAME=VALUE operands come first (env)
	dashDash  bool     // the command follows "--" (kubectl exec POD -- CMD)
	numeric   bool     // -N is an option (nice -10)
}

var wrapperSpecs = map[string]wrapper{
	"env":         {value: "uC", longValue: []string{"--unset", "--chdir"}, assigns: true},
	"timeout":     {value: "sk", longValue: []string{"--signal", "--kill-after"}, operands: 1},
	"nice":        {value: "n", longValue: []string{"--adjustment"}, numeric: true},
	"nohup":       {},
	"setsid":      {},
	"stdbuf":      {value: "ioe", longValue: []string{"--input", "--output", "--error"}},
	"ionice":      {value: "cnp", longValue: []string{"--class", "--classdata", "--pid"}},
	"chrt":        {value: "TPD", longValue: []string{"--sched-runtime", "--sched-period", "--sched-deadline"}, operands: 1},
	"taskset":     {operands: 1},
	"numactl":     {value: "CNmpiP", longValue: []string{"--physcpubind", "--cpunodebind", "--membind", "--preferred", "--interleave"}},
	"time":        {value: "of", longValue: []string{"--output", "--format"}},
	"sudo":        {value: "ugCDhprtUT", longValue: []string{"--user", "--group", "--close-from", "--chdir", "--host", "--prompt", "--role", "--type", "--other-user", "--command-timeout"}},
	"doas":        {value: "uC"},
	"chroot":      {longValue: []string{"--userspec", "--groups"}, operands: 1},
	"nsenter":     {value: "tS", longValue: []string{"--target", "--setuid", "--setgid"}},
	"systemd-run": {value: "pEu", longValue: []string{"--property", "--setenv", "--unit", "--uid", "--gid", "--working-directory", "--description", "--slice", "--on-calendar", "--on-active"}},
	"busybox":     {},
	"xargs":       {value: "IEdnLPsa", longValue: []string{"--replace", "--eof", "--delimiter", "--max-args", "--max-lines", "--max-procs", "--max-chars", "--arg-file"}},
	"flock":       {value: "wE", longValue: []string{"--timeout", "--conflict-exit-code"}, operands: 1},
	"kubectl":     {dashDash: true},
	"bundle":      {operands: 1}, // bundle exec CMD
	"gosu":        {operands: 1},
	"su-exec":     {operands: 1},
	"chpst":       {value: "ugUeln"},
	"setpriv":     {},
	"uv":          {operands: 1}, // uv run CMD
	"poetry":      {operands: 1},
	"pipenv":      {operands: 1},
	"pyenv":       {operands: 1}, // pyenv exec CMD
	"rbenv":       {operands: 1},
	"npm":         {dashDash: true}, // npm exec -- CMD
	"tini":        {value: "sgpe"},
	"dumb-init":   {},
	"strace":      {value: "oeEpsuaIbPX"},
	"unshare":     {value: "S"},
	"firejail":    {},
	"xvfb-run":    {value: "nsefpw"},
	"sshpass":     {value: "pfdPe"},
}

// dockerFlags are docker's and docker compose's options that take no value;
// every other option is read as taking one (docker run has dozens).
var dockerFlags = []string{"-d", "--detach", "-i", "--interactive", "-t", "--tty", "-it", "-ti", "-dit", "--rm", "--init",
	"--privileged", "--read-only", "-T", "--no-deps", "--service-ports", "--remove-orphans", "-P", "--publish-all",
	"--debug", "-D", "--tls", "--tlsverify", "--no-TTY", "--quiet-pull", "--pull", "--sig-proxy", "--oom-kill-disable"}

// dockerCommand returns where the command of docker exec CTR CMD (or run
// IMAGE CMD) starts, the subcommand being at argv[sub].
func dockerCommand(argv []string, sub int) int {
	for j := sub + 1; j < len(argv); j++ {
		a := argv[j]
		switch {
		case a == "--":
		case strings.HasPrefix(a, "-") && !strings.Contains(a, "=") && !slices.Contains(dockerFlags, a):
			j++ // a value: -e A=1, -m 512m, --memory 1g, -u app
		case strings.HasPrefix(a, "-"):
		default:
			if j+1 < len(argv) {
				return j + 1 // after the container or image
			}
			return -1
		}
	}
	return -1
}

// runuserWrapper is runuser with -u: it runs the command itself, no shell.
var runuserWrapper = wrapper{value: "ugGw", longValue: []string{"--user", "--group", "--supp-group", "--whitelist-environment"}}

// commandStarts returns the positions in argv where a command starts:
// argv[0], and inside it the command of each wrapper (env, timeout, sudo,
// xargs, flock FILE, find -exec, docker exec CTR, kubectl exec -- …),
// recursively.
func commandStarts(argv []string, p int) []int {
	if p >= len(argv) {
		return nil
	}
	out := []int{p}
	base := filepath.Base(argv[p])
	switch {
	case base == "find":
		for j := p + 1; j < len(argv); j++ {
			switch argv[j] {
			case "-exec", "-execdir", "-ok", "-okdir":
				out = append(out, commandStarts(argv, j+1)...)
				for j < len(argv) && argv[j] != ";" && argv[j] != "+" {
					j++
				}
			}
		}
		return out
	case base == "docker" || base == "podman" || base == "docker-compose":
		// docker exec CTR CMD, docker container exec, docker compose exec
		// SERVICE CMD, docker-compose exec, docker run IMAGE CMD.
		// Global options (docker --context X, compose -f FILE -p NAME) come
		// before the subcommand; each takes a value unless written with =.
		sub := p + 1
		for ; sub < len(argv); sub++ {
			a := argv[sub]
			if a == "compose" || a == "container" {
				continue
			}
			if !strings.HasPrefix(a, "-") {
				break
			}
			if !strings.Contains(a, "=") && !slices.Contains(dockerFlags, a) {
				sub++ // its value
			}
		}
		if sub < len(argv) && (argv[sub] == "exec" || argv[sub] == "run") {
			if q := dockerCommand(argv, sub); q >= 0 {
				return append(out, commandStarts(argv, q)...)
			}
		}
		return out
	case base == "runuser" && slices.ContainsFunc(argv[p+1:], func(a string) bool { return a == "-u" || strings.HasPrefix(a, "--user") }):
		if q := runuserWrapper.command(argv, p); q >= 0 {
			return append(out, commandStarts(argv, q)...)
		}
		return out
	case base == "flock" && slices.ContainsFunc(argv[p+1:], func(a string) bool { return a == "-c" || strings.HasPrefix(a, "--command") }):
		return out // flock FILE -c CMD: a shell runs CMD (shellOption)
	}
	if w, ok := wrapperSpecs[base]; ok {
		if q := w.command(argv, p); q >= 0 {
			out = append(out, commandStarts(argv, q)...)
		}
	}
	return out
}

// command returns where the wrapped command starts after the wrapper at
// argv[p], or -1 when there is none.
func (w wrapper) command(argv []string, p int) int {
	operands := 0
	for j := p + 1; j < len(argv); j++ {
		a := argv[j]
		switch {
		case w.dashDash:
			if a == "--" {
				return j + 1
			}
		case a == "--":
			if j+1 < len(argv) {
				return j + 1
			}
			return -1
		case strings.HasPrefix(a, "--"):
			name, _, attached := strings.Cut(a, "=")
			if !attached && slices.Contains(w.longValue, name) {
				j++
			}
		case len(a) > 1 && a[0] == '-':
			if w.numeric && a[1] >= '0' && a[1] <= '9' {
				continue
			}
			for k := 1; k < len(a); k++ {
				if strings.IndexByte(w.value, a[k]) >= 0 {
					if k == len(a)-1 {
						j++
					}
					break
				}
			}
		case w.assigns && a == "-": // env -: -i
		case w.assigns && strings.Contains(a, "=") && !strings.HasPrefix(a, "="):
		case operands < w.operands:
			operands++
		default:
			return j
		}
	}
	return -1
}

// appCode describes commands of web frameworks that run code given on the
// command line, or read it from standard input when given none.
type appCode struct {
	sub      []string // the subcommand
	sub2     []string // and its own subcommand, when it has one (wp db query)
	operand  bool     // the code is the next operand (rails runner CODE)
	code     string   // or the value of this short option (manage.py shell -c)
	longCode []string // or of these long options (artisan tinker --execute)
	values   []string // options of the subcommand that take a value (rails runner -e ENV)
	passArgs bool     // after "--", a -c, -e or -f given to the database client is its code (dbshell -- -c SQL)
	stdin    bool     // with no code, it reads code from standard input
}

// apps are keyed by the program or script's base name (appName).
var apps = map[string][]appCode{
	"rails": {{sub: []string{"runner", "r"}, operand: true, values: []string{"-e", "--environment"}, stdin: true},
		{sub: []string{"console", "c", "dbconsole", "db"}, stdin: true}},
	"manage.py": {{sub: []string{"shell"}, code: "c", longCode: []string{"--command"}, stdin: true},
		{sub: []string{"dbshell"}, passArgs: true, values: []string{"--database"}, stdin: true}},
	"artisan": {{sub: []string{"tinker"}, longCode: []string{"--execute"}, stdin: true}, {sub: []string{"db"}, stdin: true}},
	"wp": {{sub: []string{"eval"}, operand: true}, {sub: []string{"shell"}, stdin: true},
		{sub: []string{"db"}, sub2: []string{"query"}, operand: true, stdin: true}, {sub: []string{"db"}, sub2: []string{"cli", "console"}, stdin: true}},
	"drush": {{sub: []string{"php:eval", "ev", "php-eval", "eval"}, operand: true},
		{sub: []string{"sql:query", "sqlq", "sql-query"}, operand: true, stdin: true},
		{sub: []string{"php:cli", "php", "core:cli", "sql:cli", "sqlc"}, stdin: true}},
	// Frappe/ERPNext: bench execute runs eval() on --args and --kwargs.
	"bench": {{sub: []string{"execute"}, operand: true, longCode: []string{"--args", "--kwargs"}},
		{sub: []string{"console", "mariadb", "postgres", "db-console"}, stdin: true}},
	"odoo": {{sub: []string{"shell"}, stdin: true}},
	"deno": {{sub: []string{"eval"}, operand: true}, {sub: []string{"repl"}, stdin: true}},
}

// appGlobals are options before the subcommand that take a value, so
// that their value is not read as the subcommand (bench --site shop …).
var appGlobals = []string{"--site", "-d", "--database", "-c", "--config", "--path", "--url", "--settings", "--pythonpath"}

// appScan checks the arguments after an application script or program
// (name is its base name): the code of its eval-like subcommands. It
// reports whether the command reads code from standard input.
func appScan(args []string, name string) (hits []codeHit, stdin bool) {
	cmds, ok := apps[name]
	if !ok {
		return nil, false
	}
	operand := func(from int) int { // the next operand: not an option, a global's value or a @site alias
		for j := from; j < len(args); j++ {
			a := args[j]
			switch {
			case slices.Contains(appGlobals, a):
				j++
			case strings.HasPrefix(a, "-") || strings.HasPrefix(a, "@"):
			default:
				return j
			}
		}
		return -1
	}
	sub := operand(0)
	if sub < 0 {
		return nil, false
	}
	for _, c := range cmds {
		if !slices.Contains(c.sub, args[sub]) {
			continue
		}
		what := "the code of " + name + " " + args[sub]
		at := sub
		if c.sub2 != nil {
			if at = operand(sub + 1); at < 0 || !slices.Contains(c.sub2, args[at]) {
				continue
			}
			what += " " + args[at]
		}
		found := false
		add := func(i int) {
			found = true
			if i < len(args) {
				hits = append(hits, codeHit{index: i, what: what})
			}
		}
		for j := at + 1; j < len(args); j++ {
			a := args[j]
			opt, _, attached := strings.Cut(a, "=")
			switch {
			case a == "--" && c.passArgs:
				for k := j + 1; k < len(args); k++ {
					if o := args[k]; o == "-c" || o == "-e" || o == "-f" || o == "--command" || o == "--execute" {
						add(k + 1)
					}
				}
				return hits, c.stdin && !found
			case slices.Contains(c.longCode, opt):
				if attached {
					add(j)
				} else {
					add(j + 1)
					j++
				}
			case c.code != "" && a == "-"+c.code:
				add(j + 1)
				j++
			case slices.Contains(c.values, opt):
				if !attached {
					j++
				}
			case c.operand && !strings.HasPrefix(a, "-") && !found:
				if a == "-" {
					return hits, true
				}
				add(j)
			}
		}
		return hits, c.stdin && !found
	}
	return nil, false
}

// appName is how apps knows a program or script: bin/rails is rails,
// /srv/shop/manage.py is manage.py, django-admin is manage.py, wp-cli.phar
// is wp, odoo-bin is odoo.
func appName(prog string) string {
	switch base := filepath.Base(prog); base {
	case "django-admin", "django-admin.py":
		return "manage.py"
	case "wp-cli.phar":
		return "wp"
	case "drush.phar":
		return "drush"
	case "odoo-bin":
		return "odoo"
	default:
		return base
	}
}
