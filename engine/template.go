package engine

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/vm"
	"github.com/payramd/payramd/config"
)

// Template is a string with {{ expr }} placeholders, compiled once at load.
// Numbers render as plain decimals, nil as empty, maps and lists as JSON.
type Template struct {
	src   string
	parts []tmplPart
	at    *config.Scalar // where src is in the config, for warnings
}

type tmplPart struct {
	lit  string
	prog *vm.Program // nil for a literal part
	code string
	// name is set when the placeholder is a bare variable name, as most
	// are ({{ reference_id }}): Render then reads it from the environment
	// directly instead of starting expr's VM, which gives the same value.
	name string
	off  int // byte offset of the placeholder's "{{" in src
	end  int // byte offset just after its "}}"
}

// codeOff is the byte offset in src of the placeholder's expression, as
// written (after "{{", before its spaces are trimmed).
func (p *tmplPart) codeOff() int { return p.off + 2 }

// CompileTemplate compiles s. Problems (with file:line:col) go to probs and
// the result is nil when there are errors. An unquoted value whose YAML
// comment looks like the rest of it (`Order #{{ id }}`) is warned about.
func CompileTemplate(s *config.Scalar, probs *config.Problems) *Template {
	if s == nil {
		return &Template{}
	}
	s.WarnCutByComment(probs, true)
	t := &Template{src: s.Value, at: s}
	ok := true
	rest, off := s.Value, 0
	for {
		i := strings.Index(rest, "{{")
		if i < 0 {
			if rest != "" {
				t.parts = append(t.parts, tmplPart{lit: rest})
			}
			break
		}
		if i > 0 {
			t.parts = append(t.parts, tmplPart{lit: rest[:i]})
		}
		j := closingBraces(rest[i+2:])
		if j < 0 {
			probs.Errorf(s.AtOffset(off+i), "placeholder opened with {{ is never closed with }}")
			return nil
		}
		code := rest[i+2 : i+2+j]
		if strings.TrimSpace(code) == "" {
			probs.Errorf(s.AtOffset(off+i), "empty placeholder {{ }}: put an expression inside, such as {{ reference_id }}")
			ok = false
		} else {
			prog, err := compileValue(code, nil)
			if err != nil {
				line, col := lineCol(s.Value, utf8.RuneCountInString(s.Value[:off+i+2]))
				reportExprError(probs, s, line, col, err)
				ok = false
			}
			t.parts = append(t.parts, tmplPart{prog: prog, code: strings.TrimSpace(code), name: bareName(prog), off: off + i, end: off + i + 2 + j + 2})
		}
		adv := i + 2 + j + 2
		rest, off = rest[adv:], off+adv
	}
	if !ok {
		return nil
	}
	return t
}

// bareName returns the variable a placeholder's program only reads, or ""
// when it does anything else. Names starting with $ are expr's own ($env is
// the whole environment), not variables.
func bareName(prog *vm.Program) string {
	if prog == nil {
		return ""
	}
	id, ok := prog.Node().(*ast.IdentifierNode)
	if !ok || strings.HasPrefix(id.Value, "$") {
		return ""
	}
	return id.Value
}

// closingBraces finds the "}}" that ends a placeholder, skipping string
// literals so that {{ "}}" }} works.
func closingBraces(s string) int {
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == '\\' {
				i++
			} else if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'' || c == '`':
			quote = c
		case c == '}' && i+1 < len(s) && s[i+1] == '}':
			return i
		}
	}
	return -1
}

// lineCol converts an offset in s counted in characters (runes), as expr
// counts them, to a 1-based line and column.
func lineCol(s string, off int) (int, int) {
	line, col, n := 1, 1, 0
	for _, r := range s {
		if n == off {
			break
		}
		n++
		if r == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
	}
	return line, col
}

// Placeholder is one {{ }} of a template, for checks that depend on where
// in the text it sits (a value inserted into a URL's path, say).
type Placeholder struct {
	Offset int    // byte offset of its "{{" in Source()
	End    int    // byte offset just after its "}}"
	Code   string // the expression inside, trimmed
	// Func is the function the expression calls last, "urlpath" in
	// {{ urlpath(order_id) }}; "" when its outermost node is not a call.
	Func string
	// Constant is true for a literal, {{ "v2" }}: nothing from the event.
	Constant bool
	// ConfigOnly is true when the expression reads nothing from the event
	// but meta.source and meta.provider, names the config itself gives
	// ({{ lower(meta.source) }}); also true for a constant.
	ConfigOnly bool
}

// Placeholders lists the template's placeholders in order.
func (t *Template) Placeholders() []Placeholder {
	if t == nil {
		return nil
	}
	var ps []Placeholder
	for _, p := range t.parts {
		if p.prog == nil {
			continue
		}
		ph := Placeholder{Offset: p.off, End: p.end, Code: p.code, ConfigOnly: readsOnlyConfig(p.prog.Node())}
		switch n := p.prog.Node().(type) {
		case *ast.CallNode:
			if id, ok := n.Callee.(*ast.IdentifierNode); ok {
				ph.Func = id.Value
			}
		case *ast.StringNode, *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode, *ast.ConstantNode, *ast.NilNode:
			ph.Constant = true
		}
		ps = append(ps, ph)
	}
	return ps
}

// readsOnlyConfig reports whether an expression reads no variable but
// meta.source and meta.provider: every identifier in it is a function being
// called or the meta of such a member access.
func readsOnlyConfig(n ast.Node) bool {
	var v configVisitor
	ast.Walk(&n, &v)
	for _, id := range v.idents {
		if !v.allowed[id] {
			return false
		}
	}
	return true
}

// configVisitor collects a tree's identifiers and those that are allowed.
// ast.Walk visits children first, so the decision waits for the whole walk.
type configVisitor struct {
	idents  []*ast.IdentifierNode
	allowed map[*ast.IdentifierNode]bool
}

func (v *configVisitor) allow(n ast.Node) {
	if id, ok := n.(*ast.IdentifierNode); ok {
		if v.allowed == nil {
			v.allowed = map[*ast.IdentifierNode]bool{}
		}
		v.allowed[id] = true
	}
}

func (v *configVisitor) Visit(node *ast.Node) {
	switch n := (*node).(type) {
	case *ast.IdentifierNode:
		v.idents = append(v.idents, n)
	case *ast.CallNode:
		v.allow(n.Callee)
	case *ast.MemberNode:
		base, ok := n.Node.(*ast.IdentifierNode)
		prop, isStr := n.Property.(*ast.StringNode)
		if ok && isStr && base.Value == "meta" && (prop.Value == "source" || prop.Value == "provider") {
			v.allow(base)
		}
	}
}

// Literals returns the template's own text around its placeholders:
// Literals()[i] is the text before placeholder i, and the last element the
// text after the last placeholder, so there is one more than
// Placeholders(). Checks that read where a placeholder sits (in a URL's
// host, in a Slack link) read these, never the placeholders' code.
func (t *Template) Literals() []string {
	if t == nil {
		return []string{""}
	}
	ps := t.Placeholders()
	out := make([]string, 0, len(ps)+1)
	pos := 0
	for _, p := range ps {
		out = append(out, t.src[pos:p.Offset])
		pos = p.End
	}
	return append(out, t.src[pos:])
}

// Source is the template text as written.
func (t *Template) Source() string { return t.src }

// WarnUnknownFields warns, as check does for a rule's when:, about every
// name a placeholder reads that no payload has: known are the fields of
// the events that reach the template (KnownFields; nil when not known, and
// nothing is said). {{ custmer_email }} renders empty, and a function given
// it ({{ urlpath(invoice_Id) }}) fails every job.
func (t *Template) WarnUnknownFields(known []string, probs *config.Problems) {
	if t == nil || t.at == nil || known == nil {
		return
	}
	for i := range t.parts {
		p := &t.parts[i]
		if p.prog == nil {
			continue
		}
		code := t.src[p.codeOff() : p.end-2]
		for _, u := range unknownFields(code, known) {
			runes := []rune(code) // expr counts characters
			at := p.codeOff() + len(string(runes[:min(u.from, len(runes))]))
			probs.Warnf(t.at.AtOffset(at), "no known payload has a field %q, so {{ }} gives nil here: an empty value, or a failed job where a function needs one%s", u.name, config.DidYouMean(u.name, known))
		}
	}
}

// IsConstant reports whether the template has no placeholder.
func (t *Template) IsConstant() bool {
	for _, p := range t.parts {
		if p.prog != nil {
			return false
		}
	}
	return true
}

// Render evaluates the placeholders against env (see Event.Env).
func (t *Template) Render(env map[string]any) (string, error) {
	return t.RenderEscaped(env, nil)
}

// RenderEscaped is Render with escape applied to every placeholder's value
// (i is the placeholder's index in Placeholders), and never to the
// template's own text: a Slack message escapes the event's < > & so that a
// customer's name cannot ping a channel or show a disguised link, while the
// merchant's own <!here> still works.
func (t *Template) RenderEscaped(env map[string]any, escape func(i int, s string) string) (string, error) {
	if t == nil {
		return "", nil
	}
	if len(t.parts) == 1 && t.parts[0].prog == nil {
		return t.parts[0].lit, nil
	}
	var b strings.Builder
	var machine vm.VM
	i := -1 // the placeholder's index
	for _, p := range t.parts {
		if p.prog == nil {
			b.WriteString(p.lit)
			continue
		}
		i++
		var v any
		if p.name != "" {
			v = env[p.name] // a missing name is nil, as on the VM
		} else {
			var err error
			if v, err = machine.Run(p.prog, env); err != nil {
				return "", fmt.Errorf("{{ %s }}: %s", p.code, cleanRunError(err))
			}
		}
		s, err := FormatValue(v)
		if err != nil {
			return "", fmt.Errorf("{{ %s }}: %v", p.code, err)
		}
		if escape != nil {
			s = escape(i, s)
		}
		b.WriteString(s)
	}
	return b.String(), nil
}

// FormatValue renders a value for a template: strings as they are, numbers
// in plain decimal notation, nil as empty, maps and lists as JSON.
func FormatValue(v any) (string, error) {
	switch x := v.(type) {
	case nil:
		return "", nil
	case string:
		return x, nil
	case Decimal:
		return x.String(), nil
	case BigNumber:
		return x.text, nil // every digit, as received
	case bool, int, int64, int32, uint, uint64:
		return fmt.Sprint(x), nil
	case float64:
		d, err := DecimalFromFloat(x)
		if err != nil {
			if math.IsNaN(x) || math.IsInf(x, 0) {
				return "", err
			}
			// float(x) of a large number; it still renders.
			return strconv.FormatFloat(x, 'f', -1, 64), nil
		}
		return d.String(), nil
	case time.Time:
		// RFC 3339, as toJSON and the admin API write times, not Go's
		// "2026-11-23 12:00:00.123 +0000 UTC", which no ERP parses.
		return x.Format(time.RFC3339Nano), nil
	case fmt.Stringer:
		return x.String(), nil
	}
	b, err := EncodeJSON(v)
	if err != nil {
		return "", err
	}
	return string(b), nil
}
