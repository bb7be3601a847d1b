package config

import (
	"path/filepath"
	"strconv"
	"strings"
	"unicode"

	"gopkg.in/yaml.v3"
)

// A secret written in rules.yaml itself travels wherever the file does (a
// ticket, a chat, a git repository), so check warns about one: never an
// error, a literal secret works and is handy while trying things out. A
// secret is written in the config when no part of it comes from a ${VAR}
// reference and it is not read from a *_file.

// FromEnv reports whether any of the value's bytes in [start, end) came
// from a ${VAR} or ${VAR:-default} reference (a reference that expanded to
// nothing counts when it sits in or at the edge of the range). The text of
// a $${ escape and the word of ${VAR:+word} are written in the file, so
// they do not count: the variable only decides whether the word is there.
func (s *Scalar) FromEnv(start, end int) bool {
	return s != nil && s.exp.fromEnv(start, end)
}

func (e *expansion) fromEnv(start, end int) bool {
	if e == nil {
		return false
	}
	for _, sp := range e.spans {
		m := envRefRE.FindStringSubmatch(e.src[sp.src : sp.src+sp.srcLen])
		if m == nil || m[1] == "" || m[2] == ":+" {
			continue // $${, an invalid reference (an error already) or ${VAR:+word}
		}
		if sp.valLen == 0 && sp.val >= start && sp.val <= end || sp.val < end && sp.val+sp.valLen > start {
			return true
		}
	}
	return false
}

// HasText reports whether s holds a letter or a digit: a value of only
// spaces or punctuation is no secret.
func HasText(s string) bool {
	return strings.IndexFunc(s, func(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }) >= 0
}

// WarnLiteralSecret warns that a secret is written in the config at pos.
// what names it ("secret", "the password in url"), instead shows it
// written with a variable (secret: ${PAYRAM_API_KEY}), and fileKey, when
// not "", is the *_file key that can read it from a file. The message
// never holds the secret: callers pass names and examples only. One
// warning per position, however often the value is read.
func (ps *Problems) WarnLiteralSecret(pos Pos, what, instead, fileKey string) {
	for _, p := range ps.List {
		if p.Pos == pos && p.Warning && strings.HasPrefix(p.Msg, what+" is written in the config;") {
			return
		}
	}
	file := filepath.Base(pos.File)
	if pos.File == "" || file == "." || file == "/" {
		file = "the config file"
	}
	orFile := ""
	if fileKey != "" {
		orFile = " or in " + fileKey
	}
	ps.Warnf(pos, "%s is written in the config; anyone who can read %s can use it: put it in the environment (%s, set in the service's EnvironmentFile)%s", what, file, instead, orFile)
}

// SuggestEnv sets the variable name the literal-secret warning of this
// mapping's secrets suggests (PAYRAM_API_KEY for a source named payram);
// by default it follows the key (SMTP_PASSWORD for password).
func (f *Fields) SuggestEnv(name string) { f.envName = name }

// EnvName makes a variable name of a config name: upper case, with every
// run of other characters than letters and digits an underscore.
func EnvName(s string) string {
	var b strings.Builder
	under := false
	for _, r := range strings.ToUpper(s) {
		if r < 128 && (unicode.IsLetter(r) || unicode.IsDigit(r)) {
			if under && b.Len() > 0 {
				b.WriteByte('_')
			}
			under = false
			b.WriteRune(r)
		} else {
			under = true
		}
	}
	return b.String()
}

// secretEnv is the variable the warning about key's literal secret suggests.
func (f *Fields) secretEnv(key string) string {
	if f.envName != "" {
		return f.envName
	}
	switch key {
	case "secret":
		return "WEBHOOK_SECRET"
	case "password":
		return "SMTP_PASSWORD"
	case "admin_token":
		return "PAYRAMD_ADMIN_TOKEN"
	}
	return EnvName(key)
}

// warnLiteral warns when the secret in node n (key's value, or item i of
// the list plural when i > 0) is written in the config.
func (f *Fields) warnLiteral(key, plural string, i int, n *yaml.Node) {
	if !HasText(n.Value) || f.exp[n].fromEnv(0, len(n.Value)) {
		return
	}
	v := f.secretEnv(key)
	what, instead := key, key+": ${"+v+"}"
	if i > 0 {
		what = "item " + strconv.Itoa(i) + " of " + plural
		instead = plural + ": [${" + v + "_OLD}, ${" + v + "}]"
	}
	f.probs.WarnLiteralSecret(f.nodePos(n), what, instead, key+"_file")
}
