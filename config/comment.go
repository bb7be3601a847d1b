package config

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// A ` #` in an unquoted YAML value starts a comment: `text: Order #{{ id }}
// paid` is the text "Order" with the comment "#{{ id }} paid". Comments on
// values are legal and common (`level: info  # verbose`), so payramd only
// warns when the comment looks like the rest of the value:
//
//   - it holds a placeholder's {{, in any field: nobody writes {{ in a note;
//   - in a template field (text, message, url, a header, a command item …),
//     its # is directly followed by something other than a space or another
//     # (`Order #123`, `#{{`, `#payments`): a note is written `# note`.
//
// `# note`, `#   note` and `## note` stay silent.

// cutComment describes a plain value's line comment for the warning: where
// its # is, and the value as written up to the end of the comment.
type cutComment struct {
	at      Pos
	prefix  string // what precedes the value on its line ("text: ", "- "), "" when unknown
	written string // the value and its comment as written
}

// CommentLooksCut reports whether comment, a line comment found after an
// unquoted value, looks like the rest of the value rather than a note.
// template says whether the value is a template (placeholders are filled
// in), where # directly followed by text is taken as part of it.
func CommentLooksCut(comment string, template bool) bool {
	c := strings.TrimSpace(comment)
	if !strings.HasPrefix(c, "#") {
		return false
	}
	if strings.Contains(c, "{{") {
		return true
	}
	if !template || len(c) < 2 {
		return false
	}
	return c[1] != ' ' && c[1] != '\t' && c[1] != '#'
}

// WarnCutByComment warns when s is an unquoted value whose line comment
// looks like the rest of the value (see CommentLooksCut). A value is
// warned about once, however many checks look at it.
func (s *Scalar) WarnCutByComment(probs *Problems, template bool) {
	if s == nil || s.Style != 0 || !CommentLooksCut(s.Comment, template) {
		return
	}
	// The value is shown as written: what a ${VAR} in it expands to is
	// often a secret, and warnings are printed and logged.
	value := s.asWritten()
	c := s.cut
	if c == nil {
		// Read without the file's text: assume the comment follows the
		// value on its line after one space.
		c = &cutComment{
			at:      Pos{File: s.Pos.File, Line: s.Pos.Line, Col: s.Pos.Col + utf8.RuneCountInString(value) + 1},
			written: value + " " + strings.TrimSpace(s.Comment),
		}
		if s.Pos.Col == 0 {
			c.at = s.Pos
		}
	}
	comment := strings.TrimSpace(s.Comment)
	msg := fmt.Sprintf("YAML reads an unquoted ` #` as the start of a comment, so this value is %q and %q is not part of it; if it belongs to the value, quote the whole value: %s%s",
		value, comment, c.prefix, yamlQuote(c.written))
	if s.Sensitive {
		msg = "YAML reads an unquoted ` #` as the start of a comment, so this value ends before it and the rest of the line is not part of it; if it belongs to the value, put the whole value in quotes (the value is not shown: it may be a secret)"
	}
	probs.warnOnce(c.at, msg)
}

// sensitiveKey reports whether a value under key may be a secret or hold
// one (a URL's token or password), so that a warning must not quote it.
// It is broader than the actions' idea of a credential header, so that
// the loader never quotes what an action's check would not.
func sensitiveKey(key string) bool {
	k := strings.ToLower(key)
	for _, w := range []string{"url", "secret", "pass", "token", "auth", "key", "cookie"} {
		if strings.Contains(k, w) {
			return true
		}
	}
	return false
}

// warnOnce is Warnf for a warning that more than one check may find.
func (ps *Problems) warnOnce(pos Pos, msg string) {
	for _, p := range ps.List {
		if p.Warning && p.Pos == pos && p.Msg == msg {
			return
		}
	}
	ps.List = append(ps.List, Problem{Pos: pos, Msg: msg, Warning: true})
}

// asWritten is the value as written in the file, with its ${VAR}
// references rather than what they expanded to.
func (s *Scalar) asWritten() string {
	if s.exp != nil {
		return s.exp.src
	}
	return s.Value
}

// measureCut finds, in the file's lines, the # of the line comment of the
// plain value n, written as value, and the text written before and with
// the value.
func measureCut(file string, lines []string, n *yaml.Node, value string) *cutComment {
	if n.LineComment == "" || n.Line < 1 || n.Line > len(lines) {
		return nil
	}
	first := lines[n.Line-1]
	start := byteOffset(first, 1, n.Column)
	// A plain value spans lines without a comment between them; the
	// comment is after the value on its first line or on a later one.
	for li := n.Line - 1; li < len(lines) && li < n.Line+strings.Count(value, " ")+1; li++ {
		from := 0
		if li == n.Line-1 {
			from = start
		}
		i := commentStart(lines[li], from)
		if i < 0 {
			continue
		}
		c := &cutComment{at: Pos{File: file, Line: li + 1, Col: utf8.RuneCountInString(lines[li][:i]) + 1}}
		if li == n.Line-1 {
			c.prefix = strings.TrimLeft(first[:start], " ")
			c.written = strings.TrimRight(first[start:], " \t\r")
		} else {
			c.written = value + " " + strings.TrimSpace(n.LineComment)
		}
		return c
	}
	return nil
}

// commentStart is the byte offset of the first # at or after from that
// starts a comment (is preceded by a space or tab), or -1.
func commentStart(line string, from int) int {
	for i := max(from, 1); i < len(line); i++ {
		if line[i] == '#' && (line[i-1] == ' ' || line[i-1] == '\t') {
			return i
		}
	}
	return -1
}

// yamlQuote writes s as a quoted YAML value: double quotes when that needs
// no escape, else single quotes (a ' inside is doubled).
func yamlQuote(s string) string {
	if !strings.ContainsAny(s, `"\`) {
		return `"` + s + `"`
	}
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

// checkComments warns about unquoted values cut short by a comment that
// holds a placeholder ({{), anywhere in the file, and about a key whose
// whole value YAML read as a comment (`channel: #payments`). Template
// fields are checked again, with the stricter rule, when they compile.
// when: has its own warning (engine).
func (l *loader) checkComments(path string, n *yaml.Node) {
	f := l.fields(path, nil)
	var walk func(n *yaml.Node, key string)
	walk = func(n *yaml.Node, key string) {
		switch n.Kind {
		case yaml.ScalarNode:
			if n.Tag != "!!null" && key != "when" {
				sc := f.scalar(n)
				sc.Sensitive = sensitiveKey(key)
				sc.WarnCutByComment(l.probs, false)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				if v.Kind == yaml.ScalarNode && v.Tag == "!!null" && v.Style == 0 && k.LineComment != "" && v.Line == k.Line {
					l.emptyByComment(path, k)
				}
				walk(v, k.Value)
			}
		default:
			for _, c := range n.Content {
				walk(c, key)
			}
		}
	}
	walk(n, "")
}

// emptyByComment warns about `key: #text`, a key whose value YAML read as
// a comment, when the comment looks like a value.
func (l *loader) emptyByComment(path string, k *yaml.Node) {
	comment := strings.TrimSpace(k.LineComment)
	if !CommentLooksCut(comment, true) {
		return
	}
	at := Pos{File: path, Line: k.Line, Col: k.Column}
	if lines := l.lines[path]; k.Line <= len(lines) {
		line := lines[k.Line-1]
		if i := commentStart(line, byteOffset(line, 1, k.Column)); i >= 0 {
			at.Col = utf8.RuneCountInString(line[:i]) + 1
		}
	}
	l.probs.warnOnce(at, fmt.Sprintf("YAML reads an unquoted ` #` as the start of a comment, so %s: has no value and %q is not part of it; if it belongs to the value, quote it: %s: %s",
		k.Value, comment, k.Value, yamlQuote(comment)))
}
