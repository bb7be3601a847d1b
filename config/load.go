package config

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Options control loading.
type Options struct {
	// Getenv looks up ${VAR} references and the PAYRAMD_* overrides;
	// os.LookupEnv when nil.
	Getenv func(string) (string, bool)
	// StandIn loads for a command that evaluates rules but verifies,
	// sends and runs nothing (the backtest, `payramd replay --dry-run`),
	// from a shell that may lack the service's secrets. See standInUse
	// for where an unset ${VAR} is then tolerated and where it is still
	// an error; every one tolerated is listed in Config.Unset.
	StandIn bool
}

func (o Options) lookup(name string) (string, bool) {
	if o.Getenv != nil {
		return o.Getenv(name)
	}
	return os.LookupEnv(name)
}

// Load reads the config file at path and its includes. It returns the
// config and every problem found; the config must not be used when
// probs.HasErrors().
func Load(path string, opt Options) (*Config, *Problems) {
	data, err := os.ReadFile(path)
	if err != nil {
		probs := &Problems{}
		probs.Errorf(Pos{File: path}, "cannot read the config: %v", trimPathErr(err))
		return nil, probs
	}
	return LoadBytes(path, data, opt)
}

// LoadBytes loads a config from data, named path in messages and used to
// resolve relative include and event paths.
func LoadBytes(path string, data []byte, opt Options) (*Config, *Problems) {
	probs := &Problems{}
	l := &loader{opt: opt, probs: probs, cfg: &Config{Path: path}, lines: map[string][]string{}, exp: map[*yaml.Node]*expansion{}}
	if opt.StandIn {
		probs.moot = map[Pos]bool{}
	}
	l.cfg.Files = append(l.cfg.Files, path)
	root := l.parse(path, data)
	if root != nil {
		l.top(path, root)
	}
	probs.Sort()
	return l.cfg, probs
}

type loader struct {
	opt   Options
	probs *Problems
	cfg   *Config
	lines map[string][]string // each file's lines, for positions in block scalars
	// exp records, for every value that had ${VAR} references, its text as
	// written and where each reference went, so that a problem found in
	// the expanded value is reported where it is in the file.
	exp map[*yaml.Node]*expansion
}

// fields is NewFields that also knows the file's text.
func (l *loader) fields(file string, node *yaml.Node) *Fields {
	f := NewFields(file, node, l.probs)
	f.lines = l.lines[file]
	f.exp = l.exp
	return f
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)
var unknownAnchorRE = regexp.MustCompile(`unknown anchor '([^']*)' referenced`)

// parse turns YAML text into the top mapping node, reporting syntax errors
// in words a merchant can act on.
func (l *loader) parse(path string, data []byte) *yaml.Node {
	l.lines[path] = strings.Split(string(data), "\n")
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		l.yamlError(path, data, err)
		return nil
	}
	if len(doc.Content) == 0 {
		l.probs.Errorf(Pos{File: path, Line: 1, Col: 1}, "the file is empty: expected sources:, actions: and rules: (see rules.example.yaml)")
		return nil
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		l.probs.Errorf(Pos{File: path, Line: root.Line, Col: root.Column}, "the file must be a mapping of sections (server:, sources:, actions:, rules:), not %s", kindName(root))
		return nil
	}
	l.checkDuplicateKeys(path, root, true)
	l.checkTags(path, root)
	l.expand(path, root, nil)
	l.checkComments(path, root)
	return root
}

func (l *loader) yamlError(path string, data []byte, err error) {
	msg := err.Error()
	lines := strings.Split(string(data), "\n")
	if m := unknownAnchorRE.FindStringSubmatch(msg); m != nil {
		pos := Pos{File: path, Line: 1, Col: 1}
		for i, ln := range lines {
			if c := strings.Index(ln, "*"+m[1]); c >= 0 {
				pos = Pos{File: path, Line: i + 1, Col: c + 1}
				break
			}
		}
		l.probs.Errorf(pos, "a value starting with * is read by YAML as a reference to an anchor (*%s), not as text; put the whole value in quotes", m[1])
		return
	}
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		n, _ := strconv.Atoi(m[1])
		detail := m[2]
		n = problemLine(data, detail, n)
		col := 1
		if n >= 1 && n <= len(lines) {
			col = len(lines[n-1]) - len(strings.TrimLeft(lines[n-1], " \t")) + 1
			// A value YAML reads as a tag or an alias (when: !paid && x,
			// when: *x > 1) fails with a message about characters; say why.
			if c, ind := trapAt(lines[n-1]); c > 0 {
				what := "a tag"
				if ind == '*' {
					what = "a reference to an anchor"
				}
				quoted := ""
				if v := strings.TrimSpace(lines[n-1][c-1:]); !strings.ContainsAny(v, `'#`) {
					quoted = ", such as '" + v + "'"
				}
				l.probs.Errorf(Pos{File: path, Line: n, Col: c}, "a value starting with %c is read by YAML as %s, not as text; put the whole value in quotes%s", ind, what, quoted)
				return
			}
		}
		hint := ""
		switch {
		case strings.Contains(detail, "found character that cannot start any token"):
			if n >= 1 && n <= len(lines) && strings.Contains(lines[n-1], "\t") {
				col = strings.IndexByte(lines[n-1], '\t') + 1
				hint = "; YAML does not allow tabs for indentation, use spaces"
			} else {
				hint = "; a value starting with @, ` or % must be quoted"
			}
		case strings.Contains(detail, "mapping values are not allowed"):
			hint = "; a value containing \": \" must be quoted"
		case strings.Contains(detail, "did not find expected ',' or ']'"), strings.Contains(detail, "did not find expected ',' or '}'"):
			hint = "; inside [ ] or { }, put quotes around values containing {, }, [, ], commas or ${VAR}"
		case strings.Contains(detail, "did not find expected key"), strings.Contains(detail, "did not find expected '-' indicator"):
			hint = "; check the indentation of this line against the lines above"
		}
		l.probs.Errorf(Pos{File: path, Line: n, Col: col}, "YAML syntax error: %s%s", detail, hint)
		return
	}
	l.probs.Errorf(Pos{File: path, Line: 1, Col: 1}, "YAML syntax error: %s", strings.TrimPrefix(msg, "yaml: "))
}

// problemLine finds the line a YAML syntax error is on. yaml.v3 reports the
// line before the start of the enclosing block for parser errors (often
// line 1 for a badly indented key far below), so find the shortest prefix
// of the file, from the reported line on, that fails with the same message:
// it ends at the offending line. A prefix that includes that line fails the
// same way whatever follows, so a binary search needs a dozen parses even
// for a long file.
func problemLine(data []byte, detail string, reported int) int {
	var ends []int // ends[k-1] is where line k ends
	for i, b := range data {
		if b == '\n' {
			ends = append(ends, i)
		}
	}
	if len(data) > 0 && data[len(data)-1] != '\n' {
		ends = append(ends, len(data))
	}
	fails := func(k int) bool {
		var doc yaml.Node
		err := yaml.Unmarshal(data[:ends[k-1]], &doc)
		return err != nil && strings.HasSuffix(err.Error(), ": "+detail)
	}
	lo, hi := max(1, reported), len(ends)
	if lo > hi || !fails(hi) {
		return reported
	}
	for lo < hi {
		if mid := (lo + hi) / 2; fails(mid) {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo
}

// trapAt returns the 1-based column of a ! or * that starts a plain value
// on line (after "key:" or "- "), and which of the two it is.
func trapAt(line string) (int, byte) {
	i := len(line) - len(strings.TrimLeft(line, " "))
	for strings.HasPrefix(line[i:], "- ") {
		i += 2
		i += len(line[i:]) - len(strings.TrimLeft(line[i:], " "))
	}
	if i < len(line) && (line[i] == '!' || line[i] == '*') {
		return i + 1, line[i]
	}
	if i < len(line) && (line[i] == '"' || line[i] == '\'' || line[i] == '#') {
		return 0, 0
	}
	k := strings.Index(line[i:], ": ")
	if k < 0 {
		return 0, 0
	}
	j := i + k + 2
	j += len(line[j:]) - len(strings.TrimLeft(line[j:], " "))
	if j < len(line) && (line[j] == '!' || line[j] == '*') {
		return j + 1, line[j]
	}
	return 0, 0
}

// checkDuplicateKeys reports a key written twice in one mapping. yaml.v3
// keeps both in the node tree, and a lookup finds the first, so a second
// rules: pasted at the end of the file (as a cookbook snippet brings one),
// or a url: written twice in an action, was silently ignored. The later
// pair is dropped once reported, so that nothing below reports it again.
// Source and action names are left to sources and actions, which report a
// name used twice, in one file or across includes, in their own words.
func (l *loader) checkDuplicateKeys(path string, n *yaml.Node, top bool) {
	switch n.Kind {
	case yaml.SequenceNode:
		for _, c := range n.Content {
			l.checkDuplicateKeys(path, c, false)
		}
	case yaml.MappingNode:
		first := make(map[string]int, len(n.Content)/2)
		kept := n.Content[:0]
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind == yaml.ScalarNode {
				if line, dup := first[k.Value]; dup {
					l.probs.Errorf(Pos{File: path, Line: k.Line, Col: k.Column}, "%s: is written twice (first at line %d); YAML would read only one of them and silently ignore the other: merge them into one %s:", k.Value, line, k.Value)
					continue
				}
				first[k.Value] = k.Line
			}
			kept = append(kept, k, v)
			if top && (k.Value == "sources" || k.Value == "actions") && v.Kind == yaml.MappingNode {
				for j := 1; j < len(v.Content); j += 2 {
					l.checkDuplicateKeys(path, v.Content[j], false)
				}
				continue
			}
			l.checkDuplicateKeys(path, v, false)
		}
		clear(n.Content[len(kept):])
		n.Content = kept
	}
}

// checkTags finds values YAML read as a tag: `when: !paid` is the tag !paid
// on an empty value, which a merchant meant as "not paid".
func (l *loader) checkTags(path string, n *yaml.Node) {
	if n.Kind == yaml.ScalarNode && strings.HasPrefix(n.Tag, "!") && !strings.HasPrefix(n.Tag, "!!") {
		l.probs.Errorf(Pos{File: path, Line: n.Line, Col: n.Column}, "a value starting with ! is read by YAML as a tag (%s), not as text; put the whole value in quotes, such as '%s'", n.Tag, strings.TrimSpace(n.Tag+" "+n.Value))
		n.Value = n.Tag + " " + n.Value
		n.Tag = "!!str"
	}
	if n.Kind == yaml.AliasNode {
		l.probs.Errorf(Pos{File: path, Line: n.Line, Col: n.Column}, "a value starting with * is read by YAML as a reference to an anchor, not as text; put the whole value in quotes")
		if n.Alias != nil && n.Alias.Kind == yaml.ScalarNode {
			// Read it as the text that was meant, so that the field is not
			// reported again as missing or as not a single value.
			n.Kind, n.Tag, n.Value, n.Alias = yaml.ScalarNode, "!!str", "*"+n.Value, nil
		}
	}
	for _, c := range n.Content {
		l.checkTags(path, c)
	}
}

var envRefRE = regexp.MustCompile(`\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:-|:\+)([^}]*))?\}|\$\{[^}]*\}?`)

// expand replaces ${VAR}, ${VAR:-default} and ${VAR:+word} in every value
// (never in keys). $${ escapes a literal ${. where is the value's place in
// the file (keys and [index]es from the top), for Options.StandIn.
func (l *loader) expand(path string, n *yaml.Node, where []string) {
	if n.Kind == yaml.ScalarNode && strings.Contains(n.Value, "${") {
		src := n.Value
		var b strings.Builder
		e := &expansion{src: src}
		last := 0
		for _, m := range envRefRE.FindAllStringIndex(src, -1) {
			b.WriteString(src[last:m[0]])
			val := l.expandRef(path, n, where, src[m[0]:m[1]])
			e.spans = append(e.spans, expSpan{val: b.Len(), valLen: len(val), src: m[0], srcLen: m[1] - m[0]})
			b.WriteString(val)
			last = m[1]
		}
		b.WriteString(src[last:])
		n.Value = b.String()
		l.exp[n] = e
		if n.Tag == "!!null" && n.Value != "" {
			n.Tag = "!!str"
		}
	}
	for i, c := range n.Content {
		switch n.Kind {
		case yaml.MappingNode:
			if i%2 == 0 {
				continue // keys are never expanded
			}
			l.expand(path, c, append(where[:len(where):len(where)], n.Content[i-1].Value))
		case yaml.SequenceNode:
			l.expand(path, c, append(where[:len(where):len(where)], fmt.Sprintf("[%d]", i)))
		default:
			l.expand(path, c, where)
		}
	}
	if n.Kind == yaml.SequenceNode && l.probs.moot != nil {
		// A list holding a stand-in (secrets: [${OLD}, ${NEW}]) is moot
		// too: a provider may report its items at the list.
		for _, c := range n.Content {
			if l.probs.moot[Pos{File: path, Line: c.Line, Col: c.Column}] {
				l.probs.moot[Pos{File: path, Line: n.Line, Col: n.Column}] = true
				break
			}
		}
	}
}

// expandRef is the text a ${...} reference of node n stands for.
func (l *loader) expandRef(path string, n *yaml.Node, where []string, ref string) string {
	if ref == "$${" {
		return "${"
	}
	m := envRefRE.FindStringSubmatch(ref)
	pos := Pos{File: path, Line: n.Line, Col: n.Column}
	if m[1] == "" {
		l.probs.Errorf(pos, "%q is not a valid variable reference: write ${NAME} or ${NAME:-default}", ref)
		return ref
	}
	val, set := l.opt.lookup(m[1])
	if l.opt.StandIn && m[2] != "" && (!set || val == "") && standInUse(where) != "" {
		// Not an error, the reference says what to do; but this shell may
		// lack a variable the service has, in a value that decides what
		// the backtest reports (enabled: ${SLACK_WEBHOOK_URL:+true}).
		l.cfg.Unset = append(l.cfg.Unset, Unset{Name: m[1], Field: fieldName(where), Pos: pos, Defaulted: true})
	}
	switch m[2] {
	case ":-":
		if !set || val == "" {
			return m[3]
		}
		return val
	case ":+":
		if set && val != "" {
			return m[3]
		}
		return ""
	}
	if set {
		return val
	}
	if l.opt.StandIn {
		if use := standInUse(where); use != "" {
			l.probs.Errorf(pos, "environment variable %s is not set; the backtest cannot stand in for it in %s, which decides %s: set it in this shell or give a default: ${%s:-value}", m[1], fieldName(where), use, m[1])
			return ""
		}
		// Every check of this value is moot: it is not the value the
		// service has, and nothing here uses it (see standInUse).
		l.probs.moot[pos] = true
		l.cfg.Unset = append(l.cfg.Unset, Unset{Name: m[1], Field: fieldName(where), Pos: pos})
		return StandInValue(m[1])
	}
	l.probs.unsetVar(pos, m[1], fmt.Sprintf("environment variable %s is not set; set it (systemd: EnvironmentFile=, then restart: a running payramd does not see new variables) or give a default: ${%s:-value}", m[1], m[1]))
	return ""
}

// StandInValue is what an unset ${name} reads as under Options.StandIn: not
// empty, so that a required field (a source's secret) is present, and
// plain text that reads as itself wherever it is shown.
func StandInValue(name string) string { return "unset-" + name }

// standInUse says what a value at where decides in a backtest, which
// evaluates every rule against journaled events and reports, per rule, the
// matches and the actions (by name, when enabled) that would have run; ""
// when the backtest does not use the value at all.
//
// An unset ${VAR} in a value the backtest uses stays an error under
// Options.StandIn: a stand-in there would change what the report says (a
// when or once_per matching something else, an enabled: or a provider read
// wrong) or fail to parse with a message about the stand-in rather than the
// variable. Everywhere else (secrets, URLs, headers, credentials, SMTP
// settings, timeouts and other numbers, listen addresses, tests:) the value
// only matters to verifying a signature or running an action, which a
// backtest never does; it reads as StandInValue, and any check of it is
// moot, whatever its type, because the value checked is not the service's.
// server.data_dir is tolerated here and refused by the backtest itself
// when it has no --data-dir to use instead.
func standInUse(where []string) string {
	if len(where) == 0 {
		return ""
	}
	switch where[0] {
	case "include":
		return "which files' rules are evaluated"
	case "sources":
		if len(where) == 3 && where[2] == "provider" {
			return "which fields the rules can read from the source's events"
		}
	case "actions":
		if len(where) == 3 {
			return actionUse(where[2])
		}
	case "rules":
		if len(where) < 3 {
			return "the rules"
		}
		if where[2] != "do" {
			switch where[2] {
			case "when":
				return "what the rule matches"
			case "once_per":
				return "which matches once_per holds back"
			case "source":
				return "which events the rule sees"
			case "enabled":
				return "whether the rule runs"
			}
			return "how the rule is evaluated and reported"
		}
		// do: is a name, a list of names and inline actions, or one inline
		// action; an inline action's keys are an action's.
		rest := where[3:]
		if len(rest) > 0 && strings.HasPrefix(rest[0], "[") {
			rest = rest[1:]
		}
		switch len(rest) {
		case 0:
			return "which actions the rule would run"
		case 1:
			return actionUse(rest[0])
		}
	}
	return ""
}

// actionUse is standInUse for an action's key.
func actionUse(key string) string {
	switch key {
	case "type":
		return "what kind of action it is"
	case "enabled":
		return "whether the action would run"
	}
	return ""
}

// fieldName names a place in the file: sources.payram.secret, rules[2].when.
func fieldName(where []string) string {
	var b strings.Builder
	for _, w := range where {
		if b.Len() > 0 && !strings.HasPrefix(w, "[") {
			b.WriteByte('.')
		}
		b.WriteString(w)
	}
	return b.String()
}

func (l *loader) top(path string, root *yaml.Node) {
	f := l.fields(path, root)
	l.server(f.Map("server"), f)
	l.sources(path, f.Node("sources"))
	actionsNode := f.Node("actions")
	rulesNode := f.Node("rules")
	testsNode := f.Node("tests")
	includes := f.ScalarList("include")
	f.Done()

	l.actions(path, actionsNode)
	type pending struct {
		file  string
		rules *yaml.Node
		tests *yaml.Node
	}
	work := []pending{{path, rulesNode, testsNode}}
	dir := filepath.Dir(path)
	for _, inc := range includes {
		pattern := inc.Value
		if !filepath.IsAbs(pattern) {
			pattern = filepath.Join(dir, pattern)
		}
		l.cfg.IncludePatterns = append(l.cfg.IncludePatterns, pattern)
		matches, err := filepath.Glob(pattern)
		if err != nil {
			l.probs.Errorf(inc.Pos, "include: %q is not a valid pattern: %v", inc.Value, err)
			continue
		}
		slices.Sort(matches)
		for _, m := range matches {
			if m == path || slices.Contains(l.cfg.Files, m) {
				continue
			}
			data, err := os.ReadFile(m)
			if err != nil {
				l.probs.Errorf(inc.Pos, "include: cannot read %s: %v", m, trimPathErr(err))
				continue
			}
			l.cfg.Files = append(l.cfg.Files, m)
			root := l.parse(m, data)
			if root == nil {
				continue
			}
			inf := l.fields(m, root)
			for _, k := range []string{"server", "sources", "include"} {
				if kn, v := inf.lookup(k); v != nil {
					l.probs.Errorf(inf.nodePos(kn), "%s: can only be in the main config file (%s); an included file may hold actions:, rules: and tests:", k, path)
				}
			}
			l.actions(m, inf.Node("actions"))
			work = append(work, pending{m, inf.Node("rules"), inf.Node("tests")})
			inf.Done()
		}
	}
	for _, w := range work {
		l.rules(w.file, w.rules)
	}
	for _, w := range work {
		l.tests(w.file, w.tests)
	}
}

func (l *loader) server(f *Fields, top *Fields) {
	s := &l.cfg.Server
	if f == nil {
		f = l.fields(top.file, nil)
	}
	s.Pos = f.Pos()
	s.Listen = orDefault(f.String("listen"), ":8080")
	s.AdminListen = orDefault(f.String("admin_listen"), "127.0.0.1:8081")
	s.AdminToken = f.Secret("admin_token")
	s.DataDir = orDefault(f.String("data_dir"), "./data")
	s.MaxBody = f.Size("max_body", 1<<20)
	s.Retention = f.Duration("retention", 720*time.Hour)
	s.ShutdownTimeout = f.Duration("shutdown_timeout", 30*time.Second)
	s.TrustedProxies = f.Prefixes("trusted_proxies")
	s.TLSCert = f.String("tls_cert")
	s.TLSKey = f.String("tls_key")
	s.Workers = f.Int("workers", 16)
	if v, ok := l.opt.lookup("PAYRAMD_LISTEN"); ok && v != "" {
		s.Listen = v
	}
	adminFrom := "admin_listen"
	if v, ok := l.opt.lookup("PAYRAMD_ADMIN_LISTEN"); ok && v != "" {
		s.AdminListen = v
		adminFrom = "admin_listen (from PAYRAMD_ADMIN_LISTEN)"
	}
	if v, ok := l.opt.lookup("PAYRAMD_DATA_DIR"); ok && v != "" {
		s.DataDir = v
	}
	if (s.TLSCert == "") != (s.TLSKey == "") {
		f.Errorf("tls_cert", "tls_cert and tls_key go together: set both or neither")
	}
	if s.MaxBody <= 0 {
		f.Errorf("max_body", "max_body must be more than zero")
	}
	if s.Workers < 1 || s.Workers > 1024 {
		f.Errorf("workers", "workers must be between 1 and 1024")
	}
	if s.AdminListen != "" && s.AdminListen != "off" && s.AdminToken == "" && !IsLoopback(s.AdminListen) {
		f.Errorf("admin_listen", "%s %q is not a loopback address, so admin_token is required (the admin API can replay events and retry jobs)", adminFrom, s.AdminListen)
	}
	f.Done()
}

// IsLoopback reports whether a listen address only accepts local connections.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

func (l *loader) checkName(what string, k *yaml.Node, file string) bool {
	if !nameRE.MatchString(k.Value) {
		l.probs.Errorf(Pos{File: file, Line: k.Line, Col: k.Column}, "%s name %q may only contain letters, digits, '-', '_' and '.'", what, k.Value)
		return false
	}
	return true
}

func (l *loader) sources(file string, n *yaml.Node) {
	if n == nil || n.Tag == "!!null" {
		return
	}
	if n.Kind != yaml.MappingNode {
		l.probs.Errorf(Pos{File: file, Line: n.Line, Col: n.Column}, "sources must be a mapping of source names to settings, not %s", kindName(n))
		return
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if !l.checkName("source", k, file) {
			continue
		}
		if l.cfg.Source(k.Value) != nil {
			l.probs.Errorf(Pos{File: file, Line: k.Line, Col: k.Column}, "source %q is defined twice", k.Value)
			continue
		}
		if v.Kind != yaml.MappingNode {
			l.probs.Errorf(Pos{File: file, Line: v.Line, Col: v.Column}, "source %q must be a mapping (provider:, secret: ...), not %s", k.Value, kindName(v))
			continue
		}
		f := l.fields(file, v)
		src := &Source{Name: k.Value, Pos: Pos{File: file, Line: k.Line, Col: k.Column}, Fields: f}
		src.Provider = f.RequiredString("provider")
		src.Path = f.String("path")
		if src.Path == "" {
			src.Path = "/webhooks/" + src.Name
		} else if !strings.HasPrefix(src.Path, "/") {
			f.Errorf("path", "path must start with /, such as /webhooks/%s", src.Name)
		}
		f.SuggestEnv(sourceEnv(src.Name, src.Provider))
		src.Secrets = f.Secrets("secret", "secrets")
		src.AllowIPs = f.Prefixes("allow_ips")
		src.MaxBody = f.Size("max_body", 0)
		if rl := f.Map("rate_limit"); rl != nil {
			r := &RateLimit{PerSecond: rl.Float("per_second", 0)}
			r.Burst = rl.Int("burst", max(1, int(r.PerSecond+0.999)))
			if r.PerSecond <= 0 {
				rl.Errorf("per_second", "rate_limit needs per_second, the requests allowed each second (more than zero)")
			}
			if r.Burst < 1 {
				rl.Errorf("burst", "burst must be at least 1")
			}
			rl.Done()
			src.RateLimit = r
		}
		for _, other := range l.cfg.Sources {
			if other.Path == src.Path {
				f.Errorf("path", "path %s is already used by source %q", src.Path, other.Name)
			}
		}
		l.cfg.Sources = append(l.cfg.Sources, src)
		// Done is called by the provider once it has read its own keys.
	}
}

// sourceEnv is the variable a warning about a source's secret written in
// the config suggests: PAYRAM_API_KEY for a PayRam source named payram (a
// PayRam secret is the API key), STRIPE_SECRET for one named stripe.
func sourceEnv(name, provider string) string {
	if provider == "payram" {
		return EnvName(name) + "_API_KEY"
	}
	return EnvName(name) + "_SECRET"
}

func (l *loader) actions(file string, n *yaml.Node) {
	if n == nil || n.Tag == "!!null" {
		return
	}
	if n.Kind != yaml.MappingNode {
		l.probs.Errorf(Pos{File: file, Line: n.Line, Col: n.Column}, "actions must be a mapping of action names to settings, not %s", kindName(n))
		return
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if !l.checkName("action", k, file) {
			continue
		}
		if prev := l.cfg.Action(k.Value); prev != nil {
			l.probs.Errorf(Pos{File: file, Line: k.Line, Col: k.Column}, "action %q is already defined at %s", k.Value, prev.Pos)
			continue
		}
		if a := l.action(file, k.Value, v, false); a != nil {
			l.cfg.Actions = append(l.cfg.Actions, a)
		}
	}
}

func (l *loader) action(file, name string, v *yaml.Node, inline bool) *Action {
	if v.Kind != yaml.MappingNode {
		l.probs.Errorf(Pos{File: file, Line: v.Line, Col: v.Column}, "action %q must be a mapping (type:, url: ...), not %s", name, kindName(v))
		return nil
	}
	f := l.fields(file, v)
	a := &Action{Name: name, Pos: Pos{File: file, Line: v.Line, Col: v.Column}, Inline: inline, Fields: f}
	a.Type = f.RequiredString("type")
	a.Timeout = f.Duration("timeout", 10*time.Second)
	if a.Timeout == 0 {
		f.Errorf("timeout", "timeout must be more than zero")
	}
	a.Enabled = f.Bool("enabled", true)
	a.Retry = DefaultRetry
	if r := f.Map("retry"); r != nil {
		a.Retry.Attempts = r.Int("attempts", a.Retry.Attempts)
		a.Retry.Initial = r.Duration("initial", a.Retry.Initial)
		a.Retry.Max = r.Duration("max", a.Retry.Max)
		if a.Retry.Attempts < 1 {
			r.Errorf("attempts", "attempts counts the first try too, so it must be at least 1")
		}
		if a.Retry.Initial <= 0 {
			r.Errorf("initial", "initial must be more than zero")
		}
		if a.Retry.Max < a.Retry.Initial {
			r.Errorf("max", "max (%s) must not be less than initial (%s)", a.Retry.Max, a.Retry.Initial)
		}
		r.Done()
	}
	return a
}

// eachMapping calls fn for every item of a list of mappings (rules:,
// tests:), reporting a list that is not one and items that are not mappings.
func (l *loader) eachMapping(file string, n *yaml.Node, listHint, itemHint string, fn func(pos Pos, f *Fields)) {
	if n == nil || n.Tag == "!!null" {
		return
	}
	if n.Kind != yaml.SequenceNode {
		l.probs.Errorf(Pos{File: file, Line: n.Line, Col: n.Column}, "%s, not %s", listHint, kindName(n))
		return
	}
	for _, item := range n.Content {
		pos := Pos{File: file, Line: item.Line, Col: item.Column}
		if item.Kind != yaml.MappingNode {
			l.probs.Errorf(pos, "%s, not %s", itemHint, kindName(item))
			continue
		}
		fn(pos, l.fields(file, item))
	}
}

func (l *loader) rules(file string, n *yaml.Node) {
	l.eachMapping(file, n, "rules must be a list, each rule starting with '- name:'", "each rule must be a mapping with name:, when: and do:", func(pos Pos, f *Fields) {
		r := &Rule{Pos: pos}
		r.Name = f.RequiredString("name")
		if r.Name != "" {
			for _, other := range l.cfg.Rules {
				if other.Name == r.Name {
					f.Errorf("name", "rule %q is already defined at %s; rule names must be unique (they key once_per and metrics)", r.Name, other.Pos)
				}
			}
		}
		for _, s := range f.ScalarList("source") {
			if l.cfg.Source(s.Value) == nil {
				l.probs.Errorf(s.Pos, "unknown source %q%s", s.Value, DidYouMean(s.Value, l.sourceNames()))
				continue
			}
			r.Sources = append(r.Sources, s.Value)
		}
		r.When = f.Scalar("when")
		if r.When == nil {
			f.Errorf("when", "%s needs when: a condition such as status == \"FILLED\"", ruleLabel(r.Name))
		}
		r.OncePer = f.Scalar("once_per")
		r.Enabled = f.Bool("enabled", true)
		l.ruleDo(file, r, f)
		f.Done()
		l.cfg.Rules = append(l.cfg.Rules, r)
	})
}

func (l *loader) ruleDo(file string, r *Rule, f *Fields) {
	do := f.Node("do")
	if do == nil || do.Tag == "!!null" {
		f.Errorf("do", "%s needs do: the actions to run, such as do: [ops-slack]", ruleLabel(r.Name))
		return
	}
	items := []*yaml.Node{do}
	if do.Kind == yaml.SequenceNode {
		items = do.Content
	}
	seen := map[string]bool{} // inline action types
	for i, it := range items {
		pos := Pos{File: file, Line: it.Line, Col: it.Column}
		switch it.Kind {
		case yaml.ScalarNode:
			if l.cfg.Action(it.Value) == nil || l.cfg.Action(it.Value).Inline {
				l.probs.Errorf(pos, "unknown action %q%s", it.Value, DidYouMean(it.Value, l.actionNames()))
				continue
			}
			r.Do = append(r.Do, it.Value)
			r.DoPos = append(r.DoPos, pos)
		case yaml.MappingNode:
			// Jobs find their action by name when they run; the type in
			// the name keeps an edit that reorders do: from sending a
			// pending retry to an action of another kind.
			typ := mappingValue(it, "type")
			name := fmt.Sprintf("%s/do[%d]:%s", r.Name, i, typ)
			if seen[typ] && typ != "" {
				l.probs.Warnf(pos, "a second inline %s action in rule %q: retries waiting in the journal find an inline action by its place in do:, so reordering these two would send one's retries to the other; define them under actions: with names", typ, r.Name)
			}
			seen[typ] = true
			if a := l.action(file, name, it, true); a != nil {
				l.cfg.Actions = append(l.cfg.Actions, a)
				r.Do = append(r.Do, name)
				r.DoPos = append(r.DoPos, pos)
			}
		default:
			l.probs.Errorf(pos, "each item of do: is an action name or an inline action (type: ...), not %s", kindName(it))
		}
	}
}

func (l *loader) tests(file string, n *yaml.Node) {
	l.eachMapping(file, n, "tests must be a list, each test starting with '- event:'", "each test must be a mapping with event:, source: and expect:", func(pos Pos, f *Fields) {
		t := &Test{Pos: pos}
		t.Event = f.RequiredString("event")
		if t.Event != "" && !filepath.IsAbs(t.Event) {
			t.Event = filepath.Join(filepath.Dir(file), t.Event)
		}
		t.Source = f.String("source")
		if t.Source != "" && l.cfg.Source(t.Source) == nil {
			f.Errorf("source", "unknown source %q%s", t.Source, DidYouMean(t.Source, l.sourceNames()))
		}
		t.ExpectSet = f.Has("expect")
		// Every file's rules are loaded before any test, so names is complete.
		names := l.ruleNames()
		for _, e := range f.ScalarList("expect") {
			if !slices.Contains(names, e.Value) {
				l.probs.Errorf(e.Pos, "test expects unknown rule %q%s", e.Value, DidYouMean(e.Value, names))
			}
			t.Expect = append(t.Expect, e.Value)
		}
		f.Done()
		l.cfg.Tests = append(l.cfg.Tests, t)
	})
}

func (l *loader) sourceNames() []string {
	var out []string
	for _, s := range l.cfg.Sources {
		out = append(out, s.Name)
	}
	return out
}

func (l *loader) actionNames() []string {
	var out []string
	for _, a := range l.cfg.Actions {
		if !a.Inline {
			out = append(out, a.Name)
		}
	}
	return out
}

func (l *loader) ruleNames() []string {
	var out []string
	for _, r := range l.cfg.Rules {
		out = append(out, r.Name)
	}
	return out
}

// ruleLabel names a rule in a message; a rule whose name is missing is
// already reported as such.
func ruleLabel(name string) string {
	if name == "" {
		return "this rule"
	}
	return fmt.Sprintf("rule %q", name)
}

// mappingValue is the scalar value of key in a mapping node, or "".
func mappingValue(n *yaml.Node, key string) string {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key && n.Content[i+1].Kind == yaml.ScalarNode {
			return n.Content[i+1].Value
		}
	}
	return ""
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
