package actions

import (
	"path/filepath"
	"slices"
	"strings"
)

// codeHit is an argument of an exec command that holds code, or a value
// check cannot prove is data, so it must not contain a placeholder.
type codeHit struct {
	index int
	what  string // "the script of sh -c", "the code of perl -e"…
	// maybe: the argument is not code for certain, but check cannot prove
	// it is data (perl -M, a script path, an unknown option).
	maybe bool
	// always: refused even without a placeholder (xargs -I puts the
	// event's data there).
	always bool
	kind   hitKind // set by interp.scan
}

// hitKind is what an interpreter's argument is to it.
type hitKind int

const (
	kindValue  hitKind = iota // a value check cannot prove is data
	kindCode                  // code, or the program text of awk, sed, jq
	kindScript                // the script file: the code comes from it
	kindSource                // a program file or module given by an option
)

// interp describes how an interpreter reads its command line, enough to
// tell its code and the values of its options from its data. Letters are
// single-letter options, which may be clustered (perl -lne); a letter's
// value is attached (perl -MPOSIX) or, for the "next" kinds, the next
// argument when nothing is attached. An unknown long option written
// without "=" is taken to have a value in the next argument, unless that
// looks like an option.
type interp struct {
	code     string // the value is code: python -c, perl -e
	codeEnds bool   // after the code, everything is the code's arguments (python, node, php)
	value    string // takes a value, attached or next (perl -I, ruby -r, node -C)
	attached string // takes the rest of the cluster, possibly empty (perl -i, ruby -W)
	digits   string // takes the digits that follow (perl -l, -0)
	data     string // takes a value that is data (awk -v)
	file     string // takes the program's file (awk -f, php -f)
	stop     string // takes a value, then the rest belongs to someone else (python -m)
	opens    string // with these letters, operands are files opened by a 2-argument open (perl -n, -p)

	longCode  []string // --eval
	longValue []string // take a value, = or next
	longData  []string // take a value that is data (gawk --assign)
	longData2 []string // take two arguments, both data (jq --arg NAME VALUE)
	longFile2 []string // take a name, then a file (jq --rawfile NAME FILE)
	longFile  []string // --file
	longStop  []string // the rest is data (R --args, jq --args)
	dashCode  []string // single-dash words whose next argument is code (sqlite3 -cmd)
	dashValue []string // single-dash words that take the next argument (sqlite3 -separator)

	program  bool // the first operand is the program text (awk, sed, jq)
	dataOps  int  // operands before the program text that are data (sqlite3's database)
	permutes bool // options are read anywhere, even after operands (GNU sed, jq)
	stdin    bool // with no script or code given, the program is read from standard input
}

var interps = map[string]interp{
	"python": {code: "c", codeEnds: true, value: "WX", stop: "m", stdin: true},
	"perl":   {code: "eE", value: "IMm", attached: "xCdDFiV", digits: "l0", opens: "np", stdin: true},
	"ruby":   {code: "e", value: "IrEC", attached: "WKFx0i", stdin: true},
	"node": {code: "ep", codeEnds: true, value: "rC", longCode: []string{"--eval", "--print"},
		longValue: []string{"--require", "--import", "--loader", "--experimental-loader", "--input-type", "--env-file",
			"--conditions", "--title", "--inspect-port", "--disable-warning", "--redirect-warnings", "--openssl-config"}, stdin: true},
	"bun": {code: "e", codeEnds: true, value: "r", longCode: []string{"--eval", "--print"},
		longValue: []string{"--preload", "--require", "--env-file", "--cwd", "--config"}},
	"php": {code: "rBRE", codeEnds: true, value: "dcz", file: "fF", stdin: true,
		longCode:  []string{"--run", "--process-begin", "--process-code", "--process-end"},
		longValue: []string{"--php-ini", "--define", "--zend-extension"}, longFile: []string{"--file", "--process-file"}},
	"lua":     {code: "e", value: "l", stdin: true},
	"Rscript": {code: "e", file: "f", longStop: []string{"--args"}},
	"awk": {code: "e", value: "FilW", data: "v", file: "fE", program: true,
		longCode: []string{"--source"}, longValue: []string{"--field-separator", "--include", "--load"},
		longData: []string{"--assign"}, longFile: []string{"--file", "--exec"}},
	"sed": {code: "e", value: "l", attached: "i", file: "f", program: true, permutes: true,
		longCode: []string{"--expression"}, longValue: []string{"--line-length"}, longFile: []string{"--file"}},
	"jq": {value: "L", file: "f", program: true, permutes: true,
		longValue: []string{"--indent", "--library-path"}, longData2: []string{"--arg", "--argjson"},
		longFile2: []string{"--slurpfile", "--rawfile"}, longFile: []string{"--from-file"}, longStop: []string{"--args", "--jsonargs"}},
	// Database shells: their code is SQL (or JavaScript), and a value spliced
	// into it is an injection.
	"psql": {code: "c", value: "dhpUoLTFPRU", data: "v", file: "f", dataOps: 2, stdin: true,
		longCode: []string{"--command"}, longData: []string{"--set", "--variable"}, longFile: []string{"--file"}},
	"mysql": {code: "e", value: "uhPDSo", attached: "p", dataOps: 1, stdin: true, longCode: []string{"--execute"}},
	"sqlite3": {program: true, dataOps: 1, stdin: true, dashCode: []string{"-cmd", "--cmd"},
		dashValue: []string{"-separator", "-nullvalue", "-newline", "-init", "-vfs", "-mmap", "-maxsize", "-lookaside", "-pagecache", "-heap"}},
	"mongosh":           {longCode: []string{"--eval"}},
	"mongo":             {longCode: []string{"--eval"}},
	"sqlcmd":            {code: "Qq", value: "SdUPiobtlL"},
	"clickhouse-client": {code: "q", longCode: []string{"--query"}, value: "hudP", longValue: []string{"--host", "--user", "--database", "--password", "--port"}},
	"tsx":               {code: "ep", codeEnds: true, longCode: []string{"--eval", "--print"}, stdin: true},
	"ts-node":           {code: "ep", codeEnds: true, value: "rC", longCode: []string{"--eval", "--print"}, stdin: true},
	"pwsh":              {code: "cCeE"},
}

// interpFor finds how a program reads its command line, by the base name
// of its path: python3.12 is python, gawk is awk, nodejs is node.
func interpFor(prog string) (string, interp, bool) {
	base := filepath.Base(prog)
	name := strings.TrimRight(base, "0123456789.") // python3.12, perl5.36
	switch name {
	case "gawk", "mawk", "nawk":
		name = "awk"
	case "gsed":
		name = "sed"
	case "nodejs":
		name = "node"
	case "pypy", "platform-python", "ipython":
		name = "python"
	case "luajit":
		name = "lua"
	case "R":
		name = "Rscript"
	case "mariadb":
		name = "mysql"
	case "sqlite":
		name = "sqlite3"
	case "powershell":
		name = "pwsh"
	}
	in, ok := interps[name]
	return base, in, ok
}

// isShell reports whether a program path names a shell: ksh93 is ksh.
func isShell(prog string) (string, bool) {
	base := filepath.Base(prog)
	name := strings.TrimSuffix(strings.TrimRight(base, "0123456789"), "-static")
	return base, shells[name]
}

// codeArgs lists the arguments of argv that hold code, or that check
// cannot prove are data: the script of a shell run with -c (and of su,
// runuser, flock and script -c, of watch, of ssh's remote command); for
// the interpreters in interps their code options and program text, and
// the values of options that are not known to be data (perl
// -M'strict;system(…)' runs code); the code of framework commands (rails
// runner, manage.py shell -c…); make's variables. Commands are found where
// they start (commandStarts: argv[0] and what wrappers such as env,
// timeout, sudo, xargs, find -exec run), and a shell with -c anywhere.
func codeArgs(argv []string) []codeHit {
	var hits []codeHit
	for p, a := range argv {
		if base, ok := isShell(a); ok {
			if i, _ := shellScript(argv[p:]); i >= 0 {
				hits = append(hits, codeHit{index: p + i, what: "the script of " + base + " -c"})
			}
		}
	}
	starts := commandStarts(argv, 0)
	for _, p := range starts {
		hits = append(hits, commandHits(argv, p)...)
	}
	// Behind a wrapper check does not know (parallel, a site's own), an
	// interpreter followed by its code option is still a strong sign.
	for p, a := range argv {
		if slices.Contains(starts, p) {
			continue
		}
		if name, in, ok := interpFor(a); ok && in.code != "" && !in.program {
			for _, h := range in.scan(argv[p+1:], name) {
				if !h.maybe {
					h.index += p + 1
					hits = append(hits, h)
				}
			}
		}
	}
	return hits
}

// commandHits checks the command starting at argv[p]; indices are argv's.
func commandHits(argv []string, p int) []codeHit {
	var hits []codeHit
	add := func(at int, hs []codeHit) {
		for _, h := range hs {
			h.index += at
			hits = append(hits, h)
		}
	}
	a, args := argv[p], argv[p+1:]
	if name, in, ok := interpFor(a); ok {
		hs := in.scan(args, name)
		add(p+1, hs)
		if s := scriptHit(hs); s >= 0 { // python3 manage.py shell -c, php artisan tinker
			h, _ := appScan(args[s+1:], appName(args[s]))
			add(p+2+s, h)
		}
		return hits
	}
	switch base := filepath.Base(a); base {
	case "su", "runuser", "flock", "script":
		add(p+1, shellOption(args, base))
	case "watch":
		add(p+1, watchScript(args))
	case "ssh":
		add(p+1, sshCommand(args))
	case "make", "gmake":
		for j, v := range args {
			if !strings.HasPrefix(v, "-") && strings.Contains(v, "=") {
				hits = append(hits, codeHit{index: p + 1 + j, what: "a variable of make, whose $(shell …) make runs"})
			}
		}
	case "xargs":
		// xargs -I R puts the items it reads (the event's JSON) where R
		// stands: inside code, that is the event run as code, with no
		// placeholder at all.
		if r, q := xargsReplace(argv, p); r != "" && q >= 0 {
			for _, h := range codeArgs(argv[q:]) {
				if strings.Contains(argv[q+h.index], r) {
					hits = append(hits, codeHit{index: q + h.index, what: "code where xargs -I puts the event's data (" + r + ")", always: true})
				}
			}
		}
	default:
		h, _ := appScan(args, appName(a)) // bin/rails runner, wp eval, drush ev
		add(p+1, h)
	}
	return hits
}

// scriptHit returns the index of the script operand among an
// interpreter's hits, or -1.
func scriptHit(hs []codeHit) int {
	for _, h := range hs {
		if h.kind == kindScript {
			return h.index
		}
	}
	return -1
}

// xargsReplace returns the replace string of xargs -I R (or -i, {}), and
// where its command starts.
func xargsReplace(argv []string, p int) (string, int) {
	r := ""
	for j := p + 1; j < len(argv); j++ {
		a := argv[j]
		switch {
		case a == "-I" && j+1 < len(argv):
			r = argv[j+1]
		case strings.HasPrefix(a, "-I") && a != "-I":
			r = a[2:]
		case a == "-i" || a == "--replace":
			r = "{}"
		case strings.HasPrefix(a, "-i") || strings.HasPrefix(a, "--replace="):
			_, v, _ := strings.Cut(a, "=")
			if strings.HasPrefix(a, "-i") {
				v = a[2:]
			}
			r = v
		}
		if !strings.HasPrefix(a, "-") {
			break
		}
	}
	return r, wrapperSpecs["xargs"].command(argv, p)
}

// stdinProgram returns the name of the command argv runs when that command
// reads its code from standard input (sh with no script, python3 -, su
// with no -c, manage.py shell with no -c, psql with no -c or -f): payramd
// writes the event's JSON there, so the event would run as code.
func stdinProgram(argv []string) string {
	starts := commandStarts(argv, 0)
	p := starts[len(starts)-1] // the command that gets the input
	a, args := argv[p], argv[p+1:]
	if base, ok := isShell(a); ok {
		if _, stdin := shellScript(argv[p:]); stdin {
			return base
		}
		return ""
	}
	if name, in, ok := interpFor(a); ok {
		hs := in.scan(args, name)
		if s := scriptHit(hs); s >= 0 {
			if _, stdin := appScan(args[s+1:], appName(args[s])); stdin {
				return args[s]
			}
		}
		if in.stdin && readsStdin(args, hs) {
			return name
		}
		return ""
	}
	switch base := filepath.Base(a); base {
	case "ssh":
		// The event's JSON goes on to the remote command: ssh erp bash -s
		// would run it there.
		if r := sshRemote(args); r >= 0 {
			if prog := stdinProgram(args[r:]); prog != "" {
				return "ssh … " + prog
			}
		}
	case "su", "runuser", "script":
		// (runuser -u USER CMD is a wrapper: commandStarts went on to CMD.)
		if len(shellOption(args, base)) == 0 {
			return base // a shell reading the input
		}
	default:
		if _, stdin := appScan(args, appName(a)); stdin {
			return base
		}
	}
	return ""
}

// readsStdin reports whether an interpreter given these arguments (and
// scan's hits for them) reads its program from standard input: no code
// option and no script, or "-".
func readsStdin(args []string, hs []codeHit) bool {
	code := false
	for _, h := range hs {
		if h.kind != kindValue {
			if args[h.index] == "-" {
				return true
			}
			code = true
		}
	}
	return !code
}

// scan reads an interpreter's arguments (after its name) as it would.
// Operands end the scan once they are known to be data: after a script
// file (its own arguments follow), after the program text of awk, sed or
// jq (input files follow), after code given by an option.
func (in interp) scan(args []string, name string) []codeHit {
	var hits []codeHit
	hit := func(i int, kind hitKind, what string) {
		if i < len(args) {
			hits = append(hits, codeHit{index: i, what: what, kind: kind, maybe: kind != kindCode})
		}
	}
	var st scanState
	for j := 0; j < len(args); j++ {
		a := args[j]
		switch {
		case a == "--":
			switch {
			case st.code:
			case in.program && !st.fromFile && !st.program:
				hit(j+1+in.dataOps-st.operands, kindCode, "the program text of "+name)
			case !in.program && !st.fromFile:
				hit(j+1, kindScript, "the script of "+name) // node -- SCRIPT
			}
			return hits
		case strings.HasPrefix(a, "--") && (!st.program || in.permutes):
			if slices.Contains(in.longStop, a) {
				return hits
			}
			opt, _, attached := strings.Cut(a, "=")
			at := j // where the option's value is
			if !attached {
				at = j + 1
			}
			switch {
			case slices.Contains(in.longCode, opt):
				hit(at, kindCode, "the code of "+name+" "+opt)
				st.code = true
			case slices.Contains(in.longData2, opt):
				j += 2
				continue
			case slices.Contains(in.longFile2, opt):
				hit(j+2, kindValue, "the file of "+name+" "+opt)
				j += 2
				continue
			case slices.Contains(in.longData, opt):
			case slices.Contains(in.longFile, opt):
				st.fromFile = true
				hit(at, kindSource, "the program file of "+name+" "+opt)
			case slices.Contains(in.longValue, opt):
				hit(at, kindValue, "the value of "+name+" "+opt)
			default:
				// An unknown option: its value, if any, is unknown too. A
				// script file after it is the script (node
				// --enable-source-maps app.js), not its value.
				hit(j, kindValue, "an option of "+name)
				if attached || j+1 >= len(args) || strings.HasPrefix(args[j+1], "-") || isScriptName(args[j+1]) {
					continue
				}
				hit(j+1, kindValue, "the value of "+name+" "+opt)
			}
			if !attached {
				j++
			}
			if st.code && in.codeEnds {
				return hits
			}
		case slices.Contains(in.dashCode, a):
			hit(j+1, kindCode, "the code of "+name+" "+a)
			j++
		case slices.Contains(in.dashValue, a):
			hit(j+1, kindValue, "the value of "+name+" "+a)
			j++
		case len(a) > 1 && a[0] == '-' && (!st.program || in.permutes):
			var ends bool
			j, ends = in.cluster(args, j, name, &st, hit)
			if ends {
				return hits
			}
		default: // an operand
			st.operands++
			switch {
			case st.operands <= in.dataOps && !st.program:
			case st.code && st.opens:
				hit(j, kindValue, "a file "+name+" -n/-p opens (a name ending in | runs a command)")
			case st.code:
				return hits // the code's arguments
			case in.program && !st.fromFile && !st.program:
				hit(j, kindCode, "the program text of "+name)
				st.program = true
			case in.program && in.permutes:
				// GNU sed and jq read an option anywhere: an input file
				// name from the event may be --expression=….
				hit(j, kindValue, "an operand of "+name+", which it may read as an option")
			case in.program:
				return hits // input files
			case st.fromFile:
				return hits // the script's arguments (php -f FILE ARGS)
			default:
				hit(j, kindScript, "the script of "+name) // a script path from the event picks the code
				return hits                               // its own arguments follow
			}
		}
	}
	return hits
}

// scanState is what scan has learned so far.
type scanState struct {
	code, fromFile, program, opens bool
	operands                       int
}

// cluster reads one argument of single-letter options, args[j], and
// returns the index of the last argument it used and whether the rest of
// argv is data.
func (in interp) cluster(args []string, j int, name string, st *scanState, hit func(int, hitKind, string)) (int, bool) {
	a := args[j]
	next := func(kind hitKind, what string) { // a value in the next argument
		if j+1 < len(args) {
			j++
			hit(j, kind, what)
		}
	}
	for k := 1; k < len(a); k++ {
		l, rest := a[k], a[k+1:]
		opt := name + " -" + string(l)
		if strings.IndexByte(in.opens, l) >= 0 {
			st.opens = true
		}
		switch {
		case strings.IndexByte(in.code, l) >= 0:
			st.code = true
			// perl -e'CODE' has it attached; perl -le and node -pe (-p -e)
			// do not: the rest of the cluster is then more letters, and a
			// placeholder can only be in the next argument.
			if strings.Contains(rest, "{{") {
				hit(j, kindCode, "the code of "+opt)
			} else {
				next(kindCode, "the code of "+opt)
			}
			return j, in.codeEnds
		case strings.IndexByte(in.digits, l) >= 0:
			for k+1 < len(a) && (a[k+1] >= '0' && a[k+1] <= '9' || l == '0' && strings.IndexByte("xXabcdefABCDEF", a[k+1]) >= 0) {
				k++
			}
			continue
		case strings.IndexByte(in.data, l) >= 0:
			if rest == "" && j+1 < len(args) {
				j++ // awk -v name=value: data
			}
		case strings.IndexByte(in.file, l) >= 0:
			st.fromFile = true
			if rest != "" {
				hit(j, kindSource, "the program file of "+opt)
			} else {
				next(kindSource, "the program file of "+opt)
			}
		case strings.IndexByte(in.stop, l) >= 0:
			if rest != "" {
				hit(j, kindSource, "the module of "+opt)
			} else {
				next(kindSource, "the module of "+opt)
			}
			return j, true
		case strings.IndexByte(in.value, l) >= 0:
			if rest != "" {
				hit(j, kindValue, "the value of "+opt)
			} else {
				next(kindValue, "the value of "+opt)
			}
		case strings.IndexByte(in.attached, l) >= 0:
			hit(j, kindValue, "the value of "+opt)
		default:
			continue // a flag; the cluster goes on
		}
		return j, false // the rest of the cluster was a value
	}
	if strings.Contains(a, "{{") {
		hit(j, kindValue, "an option of "+name)
	}
	return j, false
}

// shellScript reads a shell's arguments (argv[0] is the shell) and returns
// the index of its -c script, or -1; and whether it reads its commands
// from standard input instead (no script file, or -s).
func shellScript(argv []string) (int, bool) {
	i, hasC, hasS := 0, false, false
	for i++; i < len(argv); i++ {
		a := argv[i]
		if a == "--" || a == "-" {
			i++
			break
		}
		if strings.HasPrefix(a, "--") {
			switch {
			case a == "--command": // fish's long -c
				hasC = true
			case strings.HasPrefix(a, "--command="):
				return i, false
			case a == "--rcfile" || a == "--init-file":
				i++ // bash's long options that take a file
			}
			continue // long options such as --norc
		}
		if len(a) > 1 && (a[0] == '-' || a[0] == '+') {
			if a[0] == '-' && strings.Contains(a[1:], "c") {
				hasC = true
			}
			if a[0] == '-' && strings.Contains(a[1:], "s") {
				hasS = true
			}
			if strings.ContainsAny(a[1:], "oO") {
				i++ // -o and -O take an option name
			}
			continue
		}
		break
	}
	switch {
	case hasC && i < len(argv):
		return i, false
	case hasC:
		return -1, false
	}
	return -1, hasS || i >= len(argv)
}

// shellOption finds the string that su, runuser, flock or script hand to a
// shell: the value of -c (alone or ending a cluster, as in su -lc) or of
// --command.
func shellOption(args []string, prog string) []codeHit {
	what := "the command of " + prog + " -c, which a shell runs"
	for j, a := range args {
		switch {
		case a == "--":
			return nil
		case a == "--command":
			if j+1 < len(args) {
				return []codeHit{{index: j + 1, what: what}}
			}
		case strings.HasPrefix(a, "--command="):
			return []codeHit{{index: j, what: what}}
		case len(a) > 1 && a[0] == '-' && a[1] != '-':
			if i := strings.IndexByte(a, 'c'); i == len(a)-1 && j+1 < len(args) {
				return []codeHit{{index: j + 1, what: what}}
			} else if i > 0 {
				return []codeHit{{index: j, what: what}} // -c'CMD'
			}
		}
	}
	return nil
}

// watchScript: watch joins its command's arguments and hands them to a
// shell, unless -x (--exec) is given.
func watchScript(args []string) []codeHit {
	for j := 0; j < len(args); j++ {
		a := args[j]
		switch {
		case a == "--exec" || (len(a) > 1 && a[0] == '-' && a[1] != '-' && strings.Contains(a, "x")):
			return nil
		case a == "-n" || a == "--interval":
			j++
		case strings.HasPrefix(a, "-"):
		default:
			var hits []codeHit
			for ; j < len(args); j++ {
				hits = append(hits, codeHit{index: j, what: "the command of watch, which a shell runs"})
			}
			return hits
		}
	}
	return nil
}

// sshValue are ssh's options that take a value.
const sshValue = "BbcDEeFIiJLlmOopQRSWw"

// sshArgs reads ssh's arguments: the indices of its options' values (-o
// ProxyCommand=… runs a command locally) and of the host, -1 when there is
// none. The remote command follows the host.
func sshArgs(args []string) (values []int, host int) {
	for j := 0; j < len(args); j++ {
		a := args[j]
		if len(a) <= 1 || a[0] != '-' {
			return values, j
		}
		for k := 1; k < len(a); k++ {
			if strings.IndexByte(sshValue, a[k]) >= 0 {
				if k == len(a)-1 {
					j++ // the value is the next argument
				}
				if j < len(args) {
					values = append(values, j)
				}
				break
			}
		}
	}
	return values, -1
}

// sshRemote returns the index in args (ssh's arguments) where the remote
// command starts, or -1.
func sshRemote(args []string) int {
	if _, host := sshArgs(args); host >= 0 && host+1 < len(args) {
		return host + 1
	}
	return -1
}

// sshCommand: ssh joins every argument after the host into one command
// line that the remote shell parses.
func sshCommand(args []string) []codeHit {
	values, host := sshArgs(args)
	var hits []codeHit
	for _, i := range values {
		hits = append(hits, codeHit{index: i, what: "the value of an ssh option", maybe: true})
	}
	if host < 0 {
		return hits
	}
	hits = append(hits, codeHit{index: host, what: "the host of ssh", maybe: true})
	for j := host + 1; j < len(args); j++ {
		hits = append(hits, codeHit{index: j, what: "the remote command of ssh, which the remote shell runs"})
	}
	return hits
}

// isScriptName reports whether an argument names a script file by its
// extension, as interpreters' scripts usually do.
func isScriptName(s string) bool {
	switch strings.ToLower(filepath.Ext(s)) {
	case ".js", ".mjs", ".cjs", ".ts", ".mts", ".rb", ".py", ".php", ".pl", ".pm", ".lua", ".r", ".sh", ".awk", ".sed", ".jq", ".sql":
		return !strings.Contains(s, "{{")
	}
	return false
}
