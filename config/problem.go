// Package config reads payramd's rules.yaml: it parses YAML into nodes so that
// every problem carries file:line:col, expands ${VAR} references, merges
// include files, and reports every problem in one pass.
//
// The package knows the shape of the common sections (server, sources,
// actions, rules, tests). Provider- and action-specific fields are left as
// *Fields, which the provider or action decodes itself: the code that uses a
// field is the code that declares it, and Fields turns every access into a
// declaration so that unknown keys can be reported with a "did you mean".
package config

import (
	"fmt"
	"sort"
	"strings"
)

// Pos is a position in a config file. Line and Col are 1-based; zero means unknown.
type Pos struct {
	File string
	Line int
	Col  int
}

func (p Pos) String() string {
	switch {
	case p.Line == 0:
		return p.File
	case p.Col == 0:
		return fmt.Sprintf("%s:%d", p.File, p.Line)
	}
	return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Col)
}

// Problem is one error or warning found in a config, at a position.
type Problem struct {
	Pos     Pos
	Msg     string
	Warning bool
	// UnsetVar names the environment variable whose absence this error is
	// about; "" for every other problem. An admin client run from a shell
	// without the service's variables tells these apart.
	UnsetVar string
}

func (p Problem) String() string {
	if p.Warning {
		return p.Pos.String() + ": warning: " + p.Msg
	}
	return p.Pos.String() + ": " + p.Msg
}

// Problems collects errors and warnings. The zero value is ready to use.
type Problems struct {
	List []Problem
	// moot holds the positions of values read as a stand-in for an unset
	// variable (Options.StandIn): an error there is about the stand-in,
	// not the service's value, so it is not recorded.
	moot map[Pos]bool
}

// Errorf records an error at pos.
func (ps *Problems) Errorf(pos Pos, format string, args ...any) {
	if ps.moot[pos] {
		return
	}
	ps.List = append(ps.List, Problem{Pos: pos, Msg: fmt.Sprintf(format, args...)})
}

// unsetVar records the error that environment variable name is not set.
func (ps *Problems) unsetVar(pos Pos, name, msg string) {
	if ps.moot[pos] {
		return
	}
	ps.List = append(ps.List, Problem{Pos: pos, Msg: msg, UnsetVar: name})
}

// Warnf records a warning at pos. Warnings never make a config invalid.
func (ps *Problems) Warnf(pos Pos, format string, args ...any) {
	ps.List = append(ps.List, Problem{Pos: pos, Msg: fmt.Sprintf(format, args...), Warning: true})
}

// Add appends problems found elsewhere.
func (ps *Problems) Add(other ...Problem) { ps.List = append(ps.List, other...) }

// HasErrorAt reports whether an error was already recorded at pos, so that a
// later check can stay quiet about a consequence of it.
func (ps *Problems) HasErrorAt(pos Pos) bool { return ps.hasAt(pos) }

// HasErrors reports whether any problem is an error rather than a warning.
func (ps *Problems) HasErrors() bool {
	for _, p := range ps.List {
		if !p.Warning {
			return true
		}
	}
	return false
}

// Sort orders problems by file, line and column, errors before warnings at
// the same place, so output reads top to bottom like the file.
func (ps *Problems) Sort() {
	sort.SliceStable(ps.List, func(i, j int) bool {
		a, b := ps.List[i].Pos, ps.List[j].Pos
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Col < b.Col
	})
}

// Err returns nil when there is no error (warnings alone are fine), else an
// *Error holding every problem.
func (ps *Problems) Err() error {
	if !ps.HasErrors() {
		return nil
	}
	ps.Sort()
	return &Error{Problems: append([]Problem(nil), ps.List...)}
}

// Error is an invalid configuration: one line per problem, file:line:col first.
type Error struct {
	Problems []Problem
}

func (e *Error) Error() string {
	var b strings.Builder
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(p.String())
	}
	return b.String()
}

// Suggest returns the candidate closest to word, or "" when none is close
// enough to be a likely typo.
func Suggest(word string, candidates []string) string {
	best, bestDist := "", 0
	lw := strings.ToLower(word)
	for _, c := range candidates {
		d := editDistance(lw, strings.ToLower(c))
		limit := max(1, min(3, len(c)/3))
		if d <= limit && (best == "" || d < bestDist) {
			best, bestDist = c, d
		}
	}
	return best
}

// DidYouMean formats a suggestion as a sentence suffix, or "".
func DidYouMean(word string, candidates []string) string {
	if s := Suggest(word, candidates); s != "" {
		return fmt.Sprintf(" (did you mean %q?)", s)
	}
	return ""
}

// editDistance is the Damerau (optimal string alignment) distance, so a
// swapped pair of letters counts as one typo.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev2 := make([]int, len(rb)+1)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(rb)]
}
