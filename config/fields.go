package config

import (
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Secret is a string that never prints, marshals or logs itself. Call Reveal
// where the real value is needed (signing, authenticating).
type Secret string

// Reveal returns the secret's value.
func (s Secret) Reveal() string { return string(s) }

func (s Secret) String() string { return "<redacted>" }

// GoString keeps %#v from printing the value.
func (s Secret) GoString() string { return "<redacted>" }

// MarshalJSON and MarshalYAML redact, so a config summary cannot leak.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"<redacted>"`), nil }

// MarshalYAML redacts.
func (s Secret) MarshalYAML() (any, error) { return "<redacted>", nil }

// Scalar is a string value together with where it sits in its file, so that
// errors found inside it (an expression's column) can be mapped back to the
// file.
type Scalar struct {
	Value string
	Pos   Pos
	// Style is the YAML style the value was written in.
	Style yaml.Style
	// Comment is a line comment YAML found after an unquoted value. A ` #` in
	// an unquoted expression starts a comment, so a non-empty Comment on an
	// expression usually means the expression was cut short.
	Comment string
	cut     *cutComment // where Comment is in the file, when known
	// Sensitive marks a value that may be a secret (a URL, a credential
	// header): warnings about it give its position, never its text.
	Sensitive bool

	// For a block scalar (| or >) read from a file: the column before its
	// content (its indentation), and for > the widths of the source lines
	// that fold into its first line. Zero when unknown.
	indent int
	folded []int

	exp *expansion // set when the value had ${VAR} references
}

// expansion is a value's text as written before its ${VAR} references were
// replaced, and where each went.
type expansion struct {
	src   string
	spans []expSpan // in order
}

// expSpan is one reference: at byte src (srcLen long) in the text as
// written, at byte val (valLen long) in the value.
type expSpan struct{ val, valLen, src, srcLen int }

// toSource maps a byte offset in the expanded value to the text as
// written; an offset inside a reference's value maps to its "${".
func (e *expansion) toSource(off int) int {
	shift := 0
	for _, sp := range e.spans {
		if off < sp.val {
			break
		}
		if off < sp.val+sp.valLen {
			return sp.src
		}
		shift = sp.src + sp.srcLen - (sp.val + sp.valLen)
	}
	return off + shift
}

// blockLayout measures a block scalar whose indicator is on line (1-based)
// of a file's lines: the indentation of its content and the widths of the
// content lines that fold into one line (a run at the same indentation with
// no blank line).
func blockLayout(lines []string, line int) (indent int, widths []int) {
	i := line // the line after the indicator, 0-based
	for i < len(lines) && strings.TrimSpace(lines[i]) == "" {
		i++
	}
	if i >= len(lines) {
		return 0, nil
	}
	indent = len(lines[i]) - len(strings.TrimLeft(lines[i], " "))
	for ; i < len(lines); i++ {
		ln := strings.TrimRight(lines[i], " \r")
		if strings.TrimSpace(ln) == "" || len(ln)-len(strings.TrimLeft(ln, " ")) != indent {
			break
		}
		widths = append(widths, len([]rune(ln[indent:])))
	}
	return indent, widths
}

// AtOffset maps a byte offset into the value (as strings.Index gives) to a
// position in the file. Columns count characters, as YAML's do. After
// ${VAR} expansion the offset is one in the expanded value; the position is
// where that text is in the file.
func (s *Scalar) AtOffset(off int) Pos {
	text := s.Value
	off = min(max(off, 0), len(text))
	if s.exp != nil {
		text, off = s.exp.src, min(s.exp.toSource(off), len(s.exp.src))
	}
	line, col := 1, 1
	for _, r := range text[:off] {
		if r == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
	}
	return s.place(line, col)
}

// At maps a 1-based line and column inside the value (as reported by expr)
// to a position in the file.
func (s *Scalar) At(line, col int) Pos {
	if s.exp != nil && line > 0 && col > 0 {
		return s.AtOffset(byteOffset(s.Value, line, col))
	}
	return s.place(line, col)
}

// byteOffset is the byte offset of a 1-based line and column (counted in
// characters) in s.
func byteOffset(s string, line, col int) int {
	l, c := 1, 1
	for i, r := range s {
		if l == line && c == col || l > line {
			return i
		}
		if r == '\n' {
			l, c = l+1, 1
		} else {
			c++
		}
	}
	return len(s)
}

// place is At for a line and column in the text as written.
func (s *Scalar) place(line, col int) Pos {
	p := s.Pos
	if line <= 0 || col <= 0 {
		return p
	}
	switch {
	case s.Style&yaml.LiteralStyle != 0 && s.indent > 0:
		// Line for line as in the file, after the indentation.
		return Pos{File: p.File, Line: p.Line + line, Col: s.indent + col}
	case s.Style&yaml.FoldedStyle != 0 && s.indent > 0 && line == 1:
		// The first line is the first lines of the file joined with spaces.
		i := 0
		for i < len(s.folded)-1 && col > s.folded[i]+1 {
			col -= s.folded[i] + 1
			i++
		}
		return Pos{File: p.File, Line: p.Line + 1 + i, Col: s.indent + col}
	case s.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0:
		// The value starts on the line after the indicator; without the
		// file we estimate its indentation from the indicator's column.
		return Pos{File: p.File, Line: p.Line + line, Col: col + p.Col + 1}
	case s.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0:
		if line == 1 {
			return Pos{File: p.File, Line: p.Line, Col: p.Col + col}
		}
	default:
		if line == 1 {
			return Pos{File: p.File, Line: p.Line, Col: p.Col + col - 1}
		}
	}
	return Pos{File: p.File, Line: p.Line + line - 1, Col: col}
}

// Fields decodes one YAML mapping. Every accessor both reads a key and
// declares it as known; Done then reports keys nobody asked for, with a
// suggestion. Errors go to the shared Problems with the value's position.
type Fields struct {
	file  string
	node  *yaml.Node
	known []string
	probs *Problems
	dir   string   // for resolving relative paths (secret_file)
	lines []string // the file's lines when known, to place errors in block scalars
	exp   map[*yaml.Node]*expansion
	// envName is the variable a warning about a secret written here
	// suggests (SuggestEnv); "" to follow the key.
	envName string
}

// scalar wraps a scalar node with its position.
func (f *Fields) scalar(n *yaml.Node) *Scalar {
	s := &Scalar{Value: n.Value, Pos: f.nodePos(n), Style: n.Style, Comment: n.LineComment, exp: f.exp[n]}
	if n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0 && f.lines != nil {
		s.indent, s.folded = blockLayout(f.lines, n.Line)
	}
	if n.Style == 0 && n.LineComment != "" && f.lines != nil {
		s.cut = measureCut(f.file, f.lines, n, s.asWritten())
	}
	return s
}

// NewFields wraps a mapping node. A nil node gives an empty Fields (every key absent).
func NewFields(file string, node *yaml.Node, probs *Problems) *Fields {
	return &Fields{file: file, node: node, probs: probs, dir: dirOf(file)}
}

// Problems returns the collector errors are written to.
func (f *Fields) Problems() *Problems { return f.probs }

// Pos is the position of the mapping itself.
func (f *Fields) Pos() Pos {
	if f.node == nil {
		return Pos{File: f.file}
	}
	return f.nodePos(f.node)
}

// File is the file the mapping was read from.
func (f *Fields) File() string { return f.file }

func (f *Fields) nodePos(n *yaml.Node) Pos { return Pos{File: f.file, Line: n.Line, Col: n.Column} }

// lookup returns the key and value nodes for key, declaring it known.
func (f *Fields) lookup(key string) (k, v *yaml.Node) {
	if !slices.Contains(f.known, key) {
		f.known = append(f.known, key)
	}
	if f.node == nil || f.node.Kind != yaml.MappingNode {
		return nil, nil
	}
	for i := 0; i+1 < len(f.node.Content); i += 2 {
		if f.node.Content[i].Value == key {
			return f.node.Content[i], f.node.Content[i+1]
		}
	}
	return nil, nil
}

// Declare marks keys as known without reading them (read elsewhere).
func (f *Fields) Declare(keys ...string) {
	for _, k := range keys {
		f.lookup(k)
	}
}

// Has reports whether key is present (and declares it).
func (f *Fields) Has(key string) bool {
	_, v := f.lookup(key)
	return v != nil
}

// KeyPos is the position of key's value, or of the mapping when absent.
func (f *Fields) KeyPos(key string) Pos {
	if _, v := f.lookup(key); v != nil {
		return f.nodePos(v)
	}
	return f.Pos()
}

// Errorf records an error at key's value (or the mapping when key is absent).
func (f *Fields) Errorf(key, format string, args ...any) {
	f.probs.Errorf(f.KeyPos(key), format, args...)
}

// Warnf records a warning at key's value.
func (f *Fields) Warnf(key, format string, args ...any) {
	f.probs.Warnf(f.KeyPos(key), format, args...)
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return "a single value"
	case yaml.AliasNode:
		return "an alias"
	}
	return "something else"
}

// scalarNode returns key's value node when it is a scalar, reporting otherwise.
func (f *Fields) scalarNode(key string) *yaml.Node {
	_, v := f.lookup(key)
	if v == nil {
		return nil
	}
	if v.Kind != yaml.ScalarNode {
		f.probs.Errorf(f.nodePos(v), "%s must be a single value, not %s", key, kindName(v))
		return nil
	}
	if v.Tag == "!!null" {
		return nil
	}
	return v
}

// Scalar returns key's value with its position, or nil when absent or null.
func (f *Fields) Scalar(key string) *Scalar {
	v := f.scalarNode(key)
	if v == nil {
		return nil
	}
	return f.scalar(v)
}

// String returns key's value, "" when absent.
func (f *Fields) String(key string) string {
	if v := f.scalarNode(key); v != nil {
		return v.Value
	}
	return ""
}

// RequiredString returns key's value, reporting an error when it is absent or empty.
func (f *Fields) RequiredString(key string) string {
	s := f.String(key)
	if s == "" && !f.probs.hasAt(f.KeyPos(key)) {
		if f.Has(key) {
			f.Errorf(key, "%s must not be empty", key)
		} else {
			f.Errorf(key, "missing required field %q", key)
		}
	}
	return s
}

func (ps *Problems) hasAt(p Pos) bool {
	for _, q := range ps.List {
		if q.Pos == p && !q.Warning {
			return true
		}
	}
	return false
}

// OneOf returns key's value, which must be one of allowed (def when absent).
func (f *Fields) OneOf(key, def string, allowed ...string) string {
	s := f.String(key)
	if s == "" {
		return def
	}
	if !slices.Contains(allowed, s) {
		f.Errorf(key, "%s must be one of %s, not %q%s", key, strings.Join(allowed, ", "), s, DidYouMean(s, allowed))
		return def
	}
	return s
}

// Bool returns key's value as a boolean. An empty value (for example an
// unset ${VAR:+true}) counts as false.
func (f *Fields) Bool(key string, def bool) bool {
	v := f.scalarNode(key)
	if v == nil {
		return def
	}
	switch strings.ToLower(strings.TrimSpace(v.Value)) {
	case "true", "yes", "on", "1":
		return true
	case "false", "no", "off", "0", "":
		return false
	}
	f.probs.Errorf(f.nodePos(v), "%s must be true or false, not %q", key, v.Value)
	return def
}

// Int returns key's value as an integer.
func (f *Fields) Int(key string, def int) int {
	v := f.scalarNode(key)
	if v == nil {
		return def
	}
	n, err := strconv.Atoi(strings.TrimSpace(v.Value))
	if err != nil {
		f.probs.Errorf(f.nodePos(v), "%s must be a whole number, not %q", key, v.Value)
		return def
	}
	return n
}

// Float returns key's value as a number.
func (f *Fields) Float(key string, def float64) float64 {
	v := f.scalarNode(key)
	if v == nil {
		return def
	}
	n, err := strconv.ParseFloat(strings.TrimSpace(v.Value), 64)
	if err != nil {
		f.probs.Errorf(f.nodePos(v), "%s must be a number, not %q", key, v.Value)
		return def
	}
	return n
}

// Duration returns key's value as a Go duration such as 30s, 5m or 720h.
func (f *Fields) Duration(key string, def time.Duration) time.Duration {
	v := f.scalarNode(key)
	if v == nil {
		return def
	}
	d, err := ParseDuration(v.Value)
	if err != nil {
		f.probs.Errorf(f.nodePos(v), "%s: %v", key, err)
		return def
	}
	return d
}

// ParseDuration parses a Go duration and explains the format on failure.
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	d, err := time.ParseDuration(s)
	if err != nil {
		hint := ""
		if strings.HasSuffix(s, "d") {
			hint = "; days are written in hours (720h is 30 days)"
		}
		return 0, fmt.Errorf("%q is not a duration: write a number and a unit, such as 30s, 5m or 720h%s", s, hint)
	}
	if d < 0 {
		return 0, fmt.Errorf("%q: a duration cannot be negative", s)
	}
	return d, nil
}

// Size returns key's value as a byte count (1MiB, 512KiB, 1MB, 1048576).
func (f *Fields) Size(key string, def int64) int64 {
	v := f.scalarNode(key)
	if v == nil {
		return def
	}
	n, err := ParseSize(v.Value)
	if err != nil {
		f.probs.Errorf(f.nodePos(v), "%s: %v", key, err)
		return def
	}
	return n
}

// ParseSize parses a byte size with an optional unit: B, KB, MB, GB (powers
// of 1000) or KiB, MiB, GiB (powers of 1024).
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	units := []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1000}, {"MB", 1000 * 1000}, {"GB", 1000 * 1000 * 1000}, {"B", 1}}
	mult := int64(1)
	for _, u := range units {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 || n > (1<<50)/mult {
		return 0, fmt.Errorf("%q is not a size: write a number and a unit, such as 1MiB, 512KiB or 1MB", s)
	}
	return n * mult, nil
}

// Strings returns key's value as a list; a single value is a list of one.
func (f *Fields) Strings(key string) []string {
	_, v := f.lookup(key)
	if v == nil || v.Tag == "!!null" {
		return nil
	}
	switch v.Kind {
	case yaml.ScalarNode:
		return []string{v.Value}
	case yaml.SequenceNode:
		out := make([]string, 0, len(v.Content))
		for _, item := range v.Content {
			if item.Kind != yaml.ScalarNode {
				f.probs.Errorf(f.nodePos(item), "each item of %s must be a single value, not %s", key, kindName(item))
				continue
			}
			out = append(out, item.Value)
		}
		return out
	}
	f.probs.Errorf(f.nodePos(v), "%s must be a value or a list of values, not %s", key, kindName(v))
	return nil
}

// ScalarList is Strings with positions.
func (f *Fields) ScalarList(key string) []*Scalar {
	_, v := f.lookup(key)
	if v == nil || v.Tag == "!!null" {
		return nil
	}
	mk := f.scalar
	switch v.Kind {
	case yaml.ScalarNode:
		return []*Scalar{mk(v)}
	case yaml.SequenceNode:
		var out []*Scalar
		for _, item := range v.Content {
			if item.Kind != yaml.ScalarNode {
				f.probs.Errorf(f.nodePos(item), "each item of %s must be a single value, not %s", key, kindName(item))
				continue
			}
			out = append(out, mk(item))
		}
		return out
	}
	f.probs.Errorf(f.nodePos(v), "%s must be a value or a list of values, not %s", key, kindName(v))
	return nil
}

// KV is one entry of a string map, in file order.
type KV struct {
	Key   string
	Value *Scalar
}

// StringMap returns key's value as an ordered list of key/value strings.
func (f *Fields) StringMap(key string) []KV {
	_, v := f.lookup(key)
	if v == nil || v.Tag == "!!null" {
		return nil
	}
	if v.Kind != yaml.MappingNode {
		f.probs.Errorf(f.nodePos(v), "%s must be a mapping of names to values, not %s", key, kindName(v))
		return nil
	}
	var out []KV
	for i := 0; i+1 < len(v.Content); i += 2 {
		k, val := v.Content[i], v.Content[i+1]
		if val.Kind != yaml.ScalarNode {
			f.probs.Errorf(f.nodePos(val), "%s.%s must be a single value, not %s", key, k.Value, kindName(val))
			continue
		}
		out = append(out, KV{Key: k.Value, Value: f.scalar(val)})
	}
	return out
}

// Map returns key's value as nested Fields, or nil when absent. Call Done on
// the result too.
func (f *Fields) Map(key string) *Fields {
	_, v := f.lookup(key)
	if v == nil || v.Tag == "!!null" {
		return nil
	}
	if v.Kind != yaml.MappingNode {
		f.probs.Errorf(f.nodePos(v), "%s must be a mapping (key: value lines indented under it), not %s", key, kindName(v))
		return nil
	}
	return &Fields{file: f.file, node: v, probs: f.probs, dir: f.dir, lines: f.lines, exp: f.exp}
}

// Node returns key's raw value node (declaring it), for callers with their
// own structure.
func (f *Fields) Node(key string) *yaml.Node {
	_, v := f.lookup(key)
	return v
}

// Secret reads a secret from key, or from key+"_file" (a path, relative to
// the config file, whose content minus a trailing newline is the secret;
// systemd credentials live under $CREDENTIALS_DIRECTORY). Secrets are never
// quoted in errors. A secret written in the config itself, with no part of
// it from a ${VAR}, gets a warning (see WarnLiteralSecret); one from
// key+"_file" does not.
//
// An empty value means "no secret" (an optional password left unset); the
// caller decides whether one is required.
func (f *Fields) Secret(key string) Secret {
	s := f.secrets(key, "", "")
	if len(s) == 0 {
		return ""
	}
	return s[0]
}

// Secrets reads one or more secrets: key (one value), plural (a list, for
// rotation) and key+"_file". Pass plural "" to allow only one. An empty
// secret is an error: it would verify a signature made with no key.
func (f *Fields) Secrets(key, plural string) []Secret {
	return f.secrets(key, plural, "an empty secret would accept anything signed with no key")
}

// NonEmptySecret reads one secret (key or key+"_file") like Secret, but a
// key that is present with an empty value, or a file holding nothing, is an
// error saying why it matters (why), unless an unset ${VAR} was reported
// there already. An absent key is not an error here.
func (f *Fields) NonEmptySecret(key, why string) Secret {
	s := f.secrets(key, "", why)
	if len(s) == 0 {
		return ""
	}
	return s[0]
}

// secrets reads the secrets of key; a non-empty why makes an empty one an
// error explained by why.
func (f *Fields) secrets(key, plural string, why string) []Secret {
	var out []Secret
	var at []Pos // where each secret was written, for the empty-secret error
	if v := f.scalarNode(key); v != nil {
		out = append(out, Secret(v.Value))
		at = append(at, f.nodePos(v))
		f.warnLiteral(key, plural, 0, v)
	}
	if plural != "" {
		_, v := f.lookup(plural)
		if v != nil && v.Tag != "!!null" {
			if v.Kind != yaml.SequenceNode {
				f.probs.Errorf(f.nodePos(v), "%s must be a list of secrets (for rotation: [old, new])", plural)
			} else {
				for j, item := range v.Content {
					if item.Kind != yaml.ScalarNode {
						f.probs.Errorf(f.nodePos(item), "each item of %s must be a single value", plural)
						continue
					}
					out = append(out, Secret(item.Value))
					at = append(at, f.nodePos(item))
					f.warnLiteral(key, plural, j+1, item)
				}
			}
		}
	}
	if v := f.scalarNode(key + "_file"); v != nil {
		path := v.Value
		if !strings.HasPrefix(path, "/") && f.dir != "" {
			path = f.dir + "/" + path
		}
		b, err := os.ReadFile(path)
		switch {
		case err != nil && f.probs.moot[f.nodePos(v)]:
			// The path holds a stand-in for an unset variable
			// (Options.StandIn, say ${CREDENTIALS_DIRECTORY}): so does
			// the secret.
			out = append(out, Secret(StandInValue(key+"_file")))
			at = append(at, f.nodePos(v))
		case err != nil:
			f.probs.Errorf(f.nodePos(v), "%s_file: cannot read the secret: %v", key, trimPathErr(err))
		default:
			out = append(out, Secret(strings.TrimRight(string(b), "\r\n")))
			at = append(at, f.nodePos(v))
		}
	}
	kept := out[:0]
	for i, s := range out {
		if strings.TrimSpace(string(s)) != "" {
			kept = append(kept, s)
		} else if why != "" && !f.probs.hasAt(at[i]) {
			// (An unset ${VAR} was reported here already; this is its echo.)
			f.probs.Errorf(at[i], "%s is empty: %s", key, why)
		}
	}
	return kept
}

// Prefixes reads a list of CIDRs (a bare address counts as a single host).
func (f *Fields) Prefixes(key string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range f.ScalarList(key) {
		p, err := ParsePrefix(s.Value)
		if err != nil {
			f.probs.Errorf(s.Pos, "%s: %v", key, err)
			continue
		}
		out = append(out, p)
	}
	return out
}

// ParsePrefix parses a CIDR or a single address.
func ParsePrefix(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return p, fmt.Errorf("%q is not a CIDR such as 203.0.113.0/24", s)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not an IP address or CIDR", s)
	}
	return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
}

// Done reports every key that no accessor declared, with a suggestion.
func (f *Fields) Done() {
	if f.node == nil || f.node.Kind != yaml.MappingNode {
		return
	}
	for i := 0; i+1 < len(f.node.Content); i += 2 {
		k := f.node.Content[i]
		if slices.Contains(f.known, k.Value) {
			continue
		}
		hint := DidYouMean(k.Value, f.known)
		if hint == "" {
			known := slices.Clone(f.known)
			slices.Sort(known)
			hint = " (known fields: " + strings.Join(known, ", ") + ")"
		}
		f.probs.Errorf(f.nodePos(k), "unknown field %q%s", k.Value, hint)
	}
}

func dirOf(file string) string {
	if i := strings.LastIndexByte(file, '/'); i >= 0 {
		return file[:i]
	}
	return ""
}

func trimPathErr(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return fmt.Errorf("%s: %v", pe.Path, pe.Err)
	}
	return err
}
