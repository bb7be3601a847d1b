package engine

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/parser"
	"github.com/expr-lang/expr/vm"
	"github.com/payramd/payramd/config"
)

// Kind is the type of a known payload field.
type Kind int

// Field kinds a provider can declare.
const (
	KindAny Kind = iota
	KindString
	KindDecimal
	KindInt
	KindBool
	KindObject
	KindList
)

// Schema lists a provider's known payload fields. It types amounts for the
// checker (so amount > "5" is refused at load) and lets check suggest the
// right name for a misspelt field.
type Schema map[string]Kind

// Rule is one compiled rule.
type Rule struct {
	Name    string
	Index   int
	Pos     config.Pos
	Sources []string // empty: any source
	Actions []string
	When    string
	OncePer string

	when    *vm.Program
	oncePer *vm.Program
	req     *requirement
	// fast is the condition's fast form (nil: it has none); fastIndexed
	// leaves out the conjunct the index has already checked.
	fast, fastIndexed fastExpr
}

// requirement is an equality the rule cannot match without, found in its
// top-level conjunction (status == "FILLED" && ...): the index uses it to
// skip the rule for events that do not satisfy it.
type requirement struct {
	field  string // payload field, or meta.type / meta.source / meta.provider
	values []string
	alts   []*requirement // every requirement found, before the index chooses
}

// RuleSet is every enabled rule of a config, compiled and indexed. It is
// immutable and safe for concurrent use.
type RuleSet struct {
	Rules   []*Rule
	bySrc   map[string]*ruleIndex
	anySrc  *ruleIndex // for events from a source the config does not name
	vmPool  sync.Pool
	compile compileMode
	// memoSlots is how many subexpressions the fast forms share.
	memoSlots int
}

type ruleIndex struct {
	always []int32
	fields []fieldIndex
}

type fieldIndex struct {
	field string
	byVal map[string][]int32
}

// CompileOptions says what the compiler knows about each source.
type CompileOptions struct {
	// Schemas maps a source name to its provider's field schema (absent:
	// fields unknown).
	Schemas map[string]Schema
	// Sources lists every configured source name (for the index).
	Sources []string

	mode compileMode
}

// Compile compiles every enabled rule of cfg. Problems (with positions) are
// added to probs; the result is nil when there is an error.
func Compile(rules []*config.Rule, opt CompileOptions, probs *config.Problems) *RuleSet {
	rs := &RuleSet{compile: opt.mode}
	ok := true
	for _, r := range rules {
		if !r.Enabled {
			continue
		}
		cr := &Rule{Name: r.Name, Index: len(rs.Rules), Pos: r.Pos, Sources: r.Sources, Actions: r.Do}
		schema, known := schemaFor(r.Sources, opt)
		env := envFor(schema)
		if r.When == nil {
			ok = false // the config loader reported the missing when:
		} else if strings.TrimSpace(r.When.Value) == "" {
			probs.Errorf(r.Pos, "rule %q has no when: write a condition such as status == \"FILLED\" (or when: true to match every event)", r.Name)
			ok = false
		} else {
			cr.When = r.When.Value
			prog, err := compileExpr(r.When.Value, env, opt.mode, true)
			if err != nil {
				reportExprError(probs, r.When, 1, 1, err)
				ok = false
			} else {
				cr.when = prog
				if r.When.Comment != "" && r.When.Style == 0 {
					probs.Warnf(r.When.Pos, "everything after ` %s` is a YAML comment, not part of the condition; if it belongs to it, put the whole condition in quotes", strings.TrimSpace(r.When.Comment))
				}
				if known != nil {
					warnUnknownFields(r.When, known, probs)
				}
				cr.req = findRequirement(r.When.Value)
			}
		}
		if r.OncePer != nil {
			cr.OncePer = r.OncePer.Value
			prog, err := compileExpr(r.OncePer.Value, env, opt.mode, false)
			if err != nil {
				reportExprError(probs, r.OncePer, 1, 1, err)
				ok = false
			} else {
				cr.oncePer = prog
				if known != nil {
					warnUnknownFields(r.OncePer, known, probs)
				}
			}
		}
		rs.Rules = append(rs.Rules, cr)
	}
	if !ok {
		return nil
	}
	rs.buildIndex(opt.Sources)
	if opt.mode == decimalMode { // the fast forms know Decimals, not float64s
		fc := newFastCompiler()
		for _, r := range rs.Rules {
			fc.compile(r.when, nil)
		}
		fc.counting = false
		for _, r := range rs.Rules {
			r.fast = fc.compile(r.when, nil)
			r.fastIndexed = r.fast
			if r.req != nil {
				r.fastIndexed = fc.compile(r.when, r.req)
			}
		}
		rs.memoSlots = len(fc.slots)
	}
	return rs
}

// schemaFor returns the schema shared by every source a rule can see, or
// nil when they differ or are unknown.
func schemaFor(sources []string, opt CompileOptions) (Schema, []string) {
	names := sources
	if len(names) == 0 {
		names = opt.Sources
	}
	if len(names) == 0 {
		return nil, nil
	}
	var s Schema
	for i, n := range names {
		sc, ok := opt.Schemas[n]
		if !ok || sc == nil {
			return nil, nil
		}
		if i == 0 {
			s = sc
		} else if !sameSchema(s, sc) {
			return nil, nil
		}
	}
	known := make([]string, 0, len(s))
	for k := range s {
		known = append(known, k)
	}
	sort.Strings(known)
	return s, known
}

func sameSchema(a, b Schema) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// envFor builds the typed sample environment. Only decimal fields are typed:
// a typed string field that is absent at run time would make == fail instead
// of being false, so other fields stay unknown.
func envFor(s Schema) map[string]any {
	env := genericEnv()
	for k, kind := range s {
		if kind == KindDecimal {
			env[k] = Decimal{}
		}
	}
	return env
}

// identCollector gathers top-level identifiers a condition reads.
type identCollector struct {
	idents  []*ast.IdentifierNode
	lets    []string
	callees []ast.Node // money in money(x) is a function, not a field
}

func (c *identCollector) Visit(n *ast.Node) {
	switch x := (*n).(type) {
	case *ast.IdentifierNode:
		c.idents = append(c.idents, x)
	case *ast.VariableDeclaratorNode:
		c.lets = append(c.lets, x.Name)
	case *ast.CallNode:
		c.callees = append(c.callees, x.Callee)
	}
}

// warnUnknownFields warns about identifiers no payload of the provider has.
func warnUnknownFields(s *config.Scalar, known []string, probs *config.Problems) {
	for _, u := range unknownFields(s.Value, known) {
		line, col := lineCol(s.Value, u.from)
		probs.Warnf(s.At(line, col), "no %s payload has a field %q, so it will always be nil%s", "known", u.name, config.DidYouMean(u.name, known))
	}
}

// unknownField is a name an expression reads that no payload has, at
// character offset from in the expression.
type unknownField struct {
	name string
	from int
}

// unknownFields lists the top-level names code reads that are not in known
// (payload, meta, let variables, $env and function names are fine).
func unknownFields(code string, known []string) []unknownField {
	tree, err := parser.Parse(code)
	if err != nil {
		return nil
	}
	c := &identCollector{}
	ast.Walk(&tree.Node, c)
	var out []unknownField
	for _, id := range c.idents {
		name := id.Value
		if name == "payload" || name == "meta" || slices.Contains(known, name) || slices.Contains(c.lets, name) || strings.HasPrefix(name, "$") || slices.Contains(c.callees, ast.Node(id)) {
			continue
		}
		out = append(out, unknownField{name: name, from: id.Location().From})
	}
	return out
}

// KnownFields are the payload fields of the events of sources (every
// source when empty), as rules and templates see them; nil when some
// source's provider has no fixed fields (hmac, stripe …), so that nothing
// can be called unknown.
func KnownFields(sources []string, opt CompileOptions) []string {
	_, known := schemaFor(sources, opt)
	return known
}

// findRequirement looks for field == "literal" or field in ["a", "b"] among
// the top-level && operands of a condition.
func findRequirement(code string) *requirement {
	tree, err := parser.Parse(code)
	if err != nil {
		return nil
	}
	var reqs []*requirement
	var walk func(n ast.Node)
	walk = func(n ast.Node) {
		b, ok := n.(*ast.BinaryNode)
		if !ok {
			return
		}
		switch b.Operator {
		case "&&", "and":
			walk(b.Left)
			walk(b.Right)
		case "==":
			if f, v, ok := fieldEquality(b); ok {
				reqs = append(reqs, &requirement{field: f, values: []string{v}})
			}
		case "in":
			f, ok := fieldName(b.Left)
			arr, isArr := b.Right.(*ast.ArrayNode)
			if !ok || !isArr || len(arr.Nodes) == 0 {
				return
			}
			var vals []string
			for _, e := range arr.Nodes {
				s, ok := e.(*ast.StringNode)
				if !ok {
					return
				}
				vals = append(vals, s.Value)
			}
			reqs = append(reqs, &requirement{field: f, values: vals})
		}
	}
	walk(tree.Node)
	if len(reqs) == 0 {
		return nil
	}
	// Prefer the narrowest requirement; buildIndex may choose again with
	// knowledge of all rules.
	best := reqs[0]
	for _, r := range reqs[1:] {
		if len(r.values) < len(best.values) {
			best = r
		}
	}
	return &requirement{field: best.field, values: best.values, alts: reqs}
}

// fieldEquality recognizes field == "literal" and "literal" == field, b
// being an == node.
func fieldEquality(b *ast.BinaryNode) (field, value string, ok bool) {
	if f, ok := fieldName(b.Left); ok {
		if s, ok := b.Right.(*ast.StringNode); ok {
			return f, s.Value, true
		}
	} else if f, ok := fieldName(b.Right); ok {
		if s, ok := b.Left.(*ast.StringNode); ok {
			return f, s.Value, true
		}
	}
	return "", "", false
}

// fieldName recognizes a top-level payload field or meta.type/source/provider.
func fieldName(n ast.Node) (string, bool) {
	switch x := n.(type) {
	case *ast.IdentifierNode:
		// payload, meta and $env are not payload fields (a payload key
		// named "$env" must not make a rule look indexed on it).
		if x.Value == "payload" || x.Value == "meta" || strings.HasPrefix(x.Value, "$") {
			return "", false
		}
		return x.Value, true
	case *ast.MemberNode:
		base, ok := x.Node.(*ast.IdentifierNode)
		prop, ok2 := x.Property.(*ast.StringNode)
		if !ok || !ok2 || x.Optional {
			return "", false
		}
		if base.Value == "meta" && (prop.Value == "type" || prop.Value == "source" || prop.Value == "provider") {
			return "meta." + prop.Value, true
		}
	}
	return "", false
}

func (rs *RuleSet) buildIndex(sources []string) {
	// Choose, per rule, the requirement on the field with the most distinct
	// values across all rules: it splits the rules finest.
	distinct := map[string]map[string]bool{}
	for _, r := range rs.Rules {
		if r.req == nil {
			continue
		}
		for _, alt := range r.req.alts {
			if distinct[alt.field] == nil {
				distinct[alt.field] = map[string]bool{}
			}
			for _, v := range alt.values {
				distinct[alt.field][v] = true
			}
		}
	}
	for _, r := range rs.Rules {
		if r.req == nil {
			continue
		}
		best := r.req.alts[0]
		for _, alt := range r.req.alts[1:] {
			if len(distinct[alt.field]) > len(distinct[best.field]) ||
				(len(distinct[alt.field]) == len(distinct[best.field]) && len(alt.values) < len(best.values)) {
				best = alt
			}
		}
		r.req = &requirement{field: best.field, values: best.values}
	}
	build := func(source string) *ruleIndex {
		idx := &ruleIndex{}
		for _, r := range rs.Rules {
			if len(r.Sources) > 0 && !slices.Contains(r.Sources, source) {
				continue
			}
			if r.req == nil {
				idx.always = append(idx.always, int32(r.Index))
				continue
			}
			var fi *fieldIndex
			for i := range idx.fields {
				if idx.fields[i].field == r.req.field {
					fi = &idx.fields[i]
				}
			}
			if fi == nil {
				idx.fields = append(idx.fields, fieldIndex{field: r.req.field, byVal: map[string][]int32{}})
				fi = &idx.fields[len(idx.fields)-1]
			}
			for _, v := range r.req.values {
				fi.byVal[v] = append(fi.byVal[v], int32(r.Index))
			}
		}
		return idx
	}
	rs.bySrc = make(map[string]*ruleIndex, len(sources))
	for _, s := range sources {
		rs.bySrc[s] = build(s)
	}
	rs.anySrc = build("")
}

// Result is the outcome of one rule for one event.
type Result struct {
	Rule    *Rule
	Matched bool
	// Err is a run-time error (nil - 5, a division by zero): the rule did
	// not match.
	Err error
	// OnceKey is the rendered once_per value when the rule has one.
	OnceKey string
	HasOnce bool
}

// ErrOnceNil is returned when once_per evaluates to nil: firing once per
// "nothing" would silence the rule for every later event.
var ErrOnceNil = errors.New("once_per evaluated to nil (missing field?)")

// candidates returns the indices of the rules that may match ev, in file order.
func (rs *RuleSet) candidates(ev *Event, buf []int32) []int32 {
	idx := rs.bySrc[ev.Source]
	if idx == nil {
		idx = rs.anySrc
	}
	buf = append(buf[:0], idx.always...)
	n := len(buf)
	for i := range idx.fields {
		fi := &idx.fields[i]
		var val string
		switch fi.field {
		case "meta.type":
			val = ev.Type
		case "meta.source":
			val = ev.Source
		case "meta.provider":
			val = ev.Provider
		default:
			s, ok := ev.Payload[fi.field].(string)
			if !ok {
				continue
			}
			val = s
		}
		buf = append(buf, fi.byVal[val]...)
	}
	if len(buf) > n || len(idx.fields) > 1 {
		slices.Sort(buf)
		buf = slices.Compact(buf)
	}
	return buf
}

// Evaluate runs the rules that can match ev, in file order, and returns
// those that matched or failed. With all set, it returns a result for every
// rule (for payramd test), evaluating every rule without the index.
func (rs *RuleSet) Evaluate(ev *Event, all bool) []Result {
	st := evalState{rs: rs, ev: ev}
	if rs.memoSlots > 0 {
		st.memo = memoPool.Get().(*fmemo)
		st.memo.done, st.memo.ok = 0, 0
	}
	defer st.release()
	var out []Result
	if all {
		out = make([]Result, 0, len(rs.Rules))
		for _, r := range rs.Rules {
			out = append(out, rs.evalRule(&st, r, r.fast))
		}
		return out
	}
	var buf [64]int32
	for _, i := range rs.candidates(ev, buf[:0]) {
		r := rs.Rules[i]
		res := rs.evalRule(&st, r, r.fastIndexed)
		if res.Matched || res.Err != nil {
			out = append(out, res)
		}
	}
	return out
}

// evalState is what running rules on one event needs from expr's VM: the
// variables map and a VM, both taken on first use only, since most rules
// have a fast form that needs neither.
type evalState struct {
	rs   *RuleSet
	ev   *Event
	env  map[string]any
	m    *vm.VM
	memo *fmemo // the fast forms' shared subexpressions; nil when none are
}

func (st *evalState) vm() (*vm.VM, map[string]any) {
	if st.m != nil {
		return st.m, st.env
	}
	// The variables map is the same size for every event, and building one
	// per event (a map of a dozen entries is several allocations) was a
	// visible share of the listener's rule time, so maps are reused. Each
	// is filled before the first rule runs and only read while they run,
	// and nothing returned refers to it.
	st.env, _ = envPool.Get().(map[string]any)
	if st.env == nil {
		st.env = make(map[string]any, len(st.ev.Payload)+2)
	}
	st.ev.fillEnv(st.env)
	st.m, _ = st.rs.vmPool.Get().(*vm.VM)
	if st.m == nil {
		st.m = &vm.VM{}
	}
	return st.m, st.env
}

// release returns what Evaluate took: the memo, and the VM and variables
// when a rule needed them.
func (st *evalState) release() {
	if st.memo != nil {
		clear(st.memo.vals[:st.rs.memoSlots]) // keep no payload strings alive
		memoPool.Put(st.memo)
	}
	if st.m == nil {
		return
	}
	clear(st.env)
	if len(st.ev.Payload) <= maxPooledEnv {
		envPool.Put(st.env)
	}
	st.rs.vmPool.Put(st.m)
}

// memoPool holds the fast forms' per-event memos (1.5 KiB each).
var memoPool = sync.Pool{New: func() any { return new(fmemo) }}

// envPool holds cleared variable maps for Evaluate. A map keeps the
// capacity of its largest event, so one from an unusually large payload is
// not kept.
var envPool sync.Pool

const maxPooledEnv = 256

// evalRule runs one rule: its condition's fast form when it has one and
// that can decide, else the compiled program on expr's VM.
func (rs *RuleSet) evalRule(st *evalState, r *Rule, fast fastExpr) Result {
	res := Result{Rule: r}
	if len(r.Sources) > 0 && !slices.Contains(r.Sources, st.ev.Source) {
		return res
	}
	decided := false
	if fast != nil {
		if v, ok := fast(st.ev, st.memo); ok {
			if !v.b {
				return res
			}
			decided = true
		}
	}
	if !decided {
		m, env := st.vm()
		v, err := m.Run(r.when, env)
		if err != nil {
			res.Err = errors.New(cleanRunError(err))
			return res
		}
		if matched, _ := v.(bool); !matched {
			return res
		}
	}
	if r.oncePer != nil {
		res.HasOnce = true
		m, env := st.vm()
		kv, err := m.Run(r.oncePer, env)
		if err != nil {
			res.Err = fmt.Errorf("once_per: %s", cleanRunError(err))
			return res
		}
		if kv == nil {
			res.Err = ErrOnceNil
			return res
		}
		key, err := FormatValue(kv)
		if err != nil {
			res.Err = fmt.Errorf("once_per: %v", err)
			return res
		}
		res.OnceKey = key
	}
	res.Matched = true
	return res
}
