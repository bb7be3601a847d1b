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
}

// interp describes how an interpreter reads its command line, enough to
// tell its code and the values of its options from its data. Letters are
// single-letter options, which may be clustered (perl -lne); a letter's
// value is attached (perl -MPOSIX) or, for the "next" kinds, the next
// argument when nothing is attached.
type interp struct {
	code     string // the value is code: python -c, perl -e
	codeEnds bool   // after the code, everything is the code's arguments (python, node, php)
	value    string // takes a value, attached or next (perl -I, ruby -r, node -C)
	attached string // takes the rest of the cluster, possibly empty (perl -i, ruby -W)
	digits   string // takes the digits that follow (perl -l, -0)
	data     string // takes a value that is data (awk -v)
	file     string // takes the program's file: no program text follows (awk -f)
	stop     string // takes a value, then the rest belongs to someone else (python -m)

	longCode  []string // --eval
	longValue []string // long options that take the next argument when no = is given
	longData2 []string // take two arguments, both data (jq --arg NAME VALUE)
	longFile  []string // --file

	program bool // the first operand is the program text (awk, sed, jq)
}

var interps = map[string]interp{
	"python": {code: "c", codeEnds: true, value: "WX", stop: "m"},
	"perl":   {code: "eE", value: "IMm", attached: "xCdDFi", digits: "l0"},
	"ruby":   {code: "e", value: "IrEC", attached: "WKFx0i"},
	"node": {code: "ep", codeEnds: true, value: "rC", longCode: []string{"--eval", "--print"},
		longValue: []string{"--require", "--import", "--loader", "--experimental-loader", "--input-type", "--env-file",
			"--conditions", "--title", "--inspect-port", "--disable-warning", "--redirect-warnings"}},
	"bun": {code: "e", codeEnds: true, value: "r", longCode: []string{"--eval", "--print"},
		longValue: []string{"--preload", "--require", "--env-file", "--cwd"}},
	"php":     {code: "rBRE", codeEnds: true, value: "dcz", file: "fF"},
	"lua":     {code: "e", value: "l"},
	"Rscript": {code: "e", file: "f"},
	"awk": {code: "e", value: "FilW", data: "v", file: "fE", program: true,
		longCode: []string{"--source"}, longValue: []string{"--field-separator", "--include", "--load"},
		longFile: []string{"--file", "--exec"}},
	"sed": {code: "e", value: "l", attached: "i", file: "f", program: true,
		longCode: []string{"--expression"}, longValue: []string{"--line-length"}, longFile: []string{"--file"}},
	"jq": {value: "L", file: "f", program: true,
		longValue: []string{"--indent", "--library-path", "--slurpfile", "--rawfile"},
		longData2: []string{"--arg", "--argjson"}, longFile: []string{"--from-file"}},
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
	case "pypy":
		name = "python"
	case "luajit":
		name = "lua"
	case "R":
		name = "Rscript"
	}
	in, ok := interps[name]
	return base, in, ok
}

// codeArgs lists the arguments of argv that hold code: the script of a
// shell run with -c, and for the interpreters above their code options and
// program text. It also lists, for those interpreters, the values of the
// options before the script that are not known to be data (perl
// -M'strict;system(...)' runs code too): check refuses a placeholder in any
// of them. It looks at every position in argv, so a wrapper (env, timeout,
// sudo…) in front changes nothing; an interpreter's name used as a mere
// value elsewhere may cause a needless refusal, never a missed one.
func codeArgs(argv []string) []codeHit {
	var hits []codeHit
	for p, a := range argv {
		base := filepath.Base(a)
		if shells[base] {
			if i := shellScriptIndex(argv[p:]); i >= 0 {
				hits = append(hits, codeHit{index: p + i, what: "the script of " + base + " -c"})
			}
			continue
		}
		if name, in, ok := interpFor(a); ok {
			for _, h := range in.scan(argv[p+1:], name) {
				h.index += p + 1
				hits = append(hits, h)
			}
		}
	}
	return hits
}

// scan reads an interpreter's arguments (after its name) as it would.
// Operands end the scan once they are known to be data: after a script
// file (its own arguments follow), after the program text of awk, sed or
// jq (input files follow), after code given by an option.
func (in interp) scan(args []string, name string) []codeHit {
	var hits []codeHit
	hit := func(i int, what string) {
		if i < len(args) {
			hits = append(hits, codeHit{i, what, !strings.HasPrefix(what, "the code of ") && !strings.HasPrefix(what, "the program text of ")})
		}
	}
	fromFile, program, code := false, false, false
	for j := 0; j < len(args); j++ {
		a := args[j]
		switch {
		case a == "--":
			if in.program && !fromFile && !program && j+1 < len(args) {
				hit(j+1, "the program text of "+name)
			}
			return hits
		case strings.HasPrefix(a, "--"):
			opt, _, attached := strings.Cut(a, "=")
			at := j // where the option's value is
			if !attached {
				at = j + 1
			}
			switch {
			case slices.Contains(in.longCode, opt):
				hit(at, "the code of "+name+" "+opt)
				code = true
			case slices.Contains(in.longData2, opt):
				j += 2
				continue
			case slices.Contains(in.longFile, opt):
				fromFile = true
				hit(at, "the program file of "+name+" "+opt)
			case slices.Contains(in.longValue, opt):
				hit(at, "the value of "+name+" "+opt)
			default:
				hit(j, "an option of "+name) // an unknown option with the event's data in it
				continue
			}
			if !attached {
				j++
			}
			if code && in.codeEnds {
				return hits
			}
		case len(a) > 1 && a[0] == '-':
			var ends bool
			j, code, fromFile, ends = in.cluster(args, j, name, code, fromFile, hit)
			if ends {
				return hits
			}
		default: // an operand
			switch {
			case code:
				return hits // the code's arguments
			case in.program && !fromFile && !program:
				hit(j, "the program text of "+name)
				program = true
			case in.program:
				return hits // input files
			default:
				hit(j, "the script of "+name) // a script path from the event picks the code
				if strings.ContainsAny(a, "/.") {
					return hits // a script file: its own arguments follow
				}
				// A bare word may be the value of an option not listed
				// here (node --title x -e …): keep reading, refusing too
				// much rather than too little.
			}
		}
	}
	return hits
}

// cluster reads one argument of single-letter options, args[j], and
// returns the index of the last argument it used, whether code and a
// program file were given, and whether the rest of argv is data.
func (in interp) cluster(args []string, j int, name string, code, fromFile bool, hit func(int, string)) (int, bool, bool, bool) {
	a := args[j]
	next := func(what string) { // a value in the next argument
		if j+1 < len(args) {
			j++
			hit(j, what)
		}
	}
	for k := 1; k < len(a); k++ {
		l, rest := a[k], a[k+1:]
		opt := name + " -" + string(l)
		switch {
		case strings.IndexByte(in.code, l) >= 0:
			code = true
			// perl -e'CODE' has it attached; perl -le and node -pe (-p -e)
			// do not: the rest of the cluster is then more letters, and a
			// placeholder can only be in the next argument.
			if strings.Contains(rest, "{{") {
				hit(j, "the code of "+opt)
			} else {
				next("the code of " + opt)
			}
			return j, code, fromFile, in.codeEnds
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
			fromFile = true
			if rest != "" {
				hit(j, "the program file of "+opt)
			} else {
				next("the program file of " + opt)
			}
		case strings.IndexByte(in.stop, l) >= 0:
			if rest != "" {
				hit(j, "the module of "+opt)
			} else {
				next("the module of " + opt)
			}
			return j, code, fromFile, true
		case strings.IndexByte(in.value, l) >= 0:
			if rest != "" {
				hit(j, "the value of "+opt)
			} else {
				next("the value of " + opt)
			}
		case strings.IndexByte(in.attached, l) >= 0:
			hit(j, "the value of "+opt)
		default:
			continue // a flag; the cluster goes on
		}
		return j, code, fromFile, false // the rest of the cluster was a value
	}
	if strings.Contains(a, "{{") {
		hit(j, "an option of "+name)
	}
	return j, code, fromFile, false
}
