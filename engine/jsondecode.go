package engine

import (
	"sync"
	"unicode/utf16"
	"unicode/utf8"
)

// The listener decodes every webhook body, and encoding/json with UseNumber
// followed by a pass turning json.Numbers into Decimals was a tenth of its
// CPU: a json.Number string per number, a string per key, maps grown one
// key at a time. fastDecoder builds the same values in one pass, for the
// documents webhooks actually send. It gives up (ok false) on anything
// unusual: a syntax error, invalid UTF-8, an escaped surrogate that is not
// a valid pair, deep nesting. DecodeJSON then decodes with encoding/json as
// before, so errors, replacement characters and limits stay exactly what
// they were, and the fast path only has to agree with encoding/json on the
// documents it accepts (FuzzDecodeJSONDifferential checks that it does).

// fastMaxDepth is how deep the fast path nests before leaving the document
// to encoding/json (which refuses beyond 10,000). Webhooks nest a few levels.
const fastMaxDepth = 500

// shareLimit is the largest document whose strings share one copy of it:
// one allocation instead of one per key and value. A string kept from the
// payload keeps that copy alive, which is fine for a webhook of a few KiB
// but not for one string out of a megabyte.
const shareLimit = 64 << 10

type keyValue struct {
	key   string
	value any
}

type fastDecoder struct {
	data []byte
	// text is string(data) when the document is small enough to share, so
	// that an unescaped string is a substring of it; "" otherwise.
	text  string
	pos   int
	depth int
	// kvs and items are stacks of the members of the objects and arrays
	// being decoded: a container is built once its size is known, at its
	// closing bracket, so a map is allocated at its final size.
	kvs   []keyValue
	items []any
}

var fastDecoders = sync.Pool{New: func() any { return new(fastDecoder) }}

// decodeFast decodes one JSON document, or reports ok false when the
// document should be left to encoding/json.
func decodeFast(b []byte) (v any, ok bool) {
	d := fastDecoders.Get().(*fastDecoder)
	d.data, d.pos, d.depth = b, 0, 0
	if len(b) <= shareLimit {
		d.text = string(b)
	}
	v, ok = d.value()
	if ok {
		d.skipSpace()
		ok = d.pos == len(d.data)
	}
	// After a give-up the stacks still hold members; clear them so that a
	// pooled decoder keeps no payload alive, and drop stacks grown by an
	// unusually large document.
	clear(d.kvs)
	clear(d.items)
	d.kvs, d.items = d.kvs[:0], d.items[:0]
	if cap(d.kvs) > 1024 {
		d.kvs = nil
	}
	if cap(d.items) > 1024 {
		d.items = nil
	}
	d.data, d.text = nil, ""
	fastDecoders.Put(d)
	if !ok {
		return nil, false
	}
	return v, true
}

func (d *fastDecoder) skipSpace() {
	for d.pos < len(d.data) {
		switch d.data[d.pos] {
		case ' ', '\t', '\n', '\r':
			d.pos++
		default:
			return
		}
	}
}

func (d *fastDecoder) value() (any, bool) {
	d.skipSpace()
	if d.pos >= len(d.data) {
		return nil, false
	}
	switch c := d.data[d.pos]; c {
	case '{':
		return d.object()
	case '[':
		return d.array()
	case '"':
		s, ok := d.string()
		if !ok {
			return nil, false
		}
		return s, true
	case 't':
		return true, d.literal("true")
	case 'f':
		return false, d.literal("false")
	case 'n':
		return nil, d.literal("null")
	default:
		if c == '-' || (c >= '0' && c <= '9') {
			return d.number()
		}
	}
	return nil, false
}

func (d *fastDecoder) literal(word string) bool {
	if len(d.data)-d.pos < len(word) || string(d.data[d.pos:d.pos+len(word)]) != word {
		return false
	}
	d.pos += len(word)
	return true
}

func (d *fastDecoder) object() (any, bool) {
	if d.depth++; d.depth > fastMaxDepth {
		return nil, false
	}
	d.pos++ // {
	base := len(d.kvs)
	d.skipSpace()
	if d.pos < len(d.data) && d.data[d.pos] == '}' {
		d.pos++
		d.depth--
		return map[string]any{}, true
	}
	for {
		d.skipSpace()
		if d.pos >= len(d.data) || d.data[d.pos] != '"' {
			return nil, false
		}
		key, ok := d.string()
		if !ok {
			return nil, false
		}
		d.skipSpace()
		if d.pos >= len(d.data) || d.data[d.pos] != ':' {
			return nil, false
		}
		d.pos++
		v, ok := d.value()
		if !ok {
			return nil, false
		}
		d.kvs = append(d.kvs, keyValue{key, v})
		more, ok := d.separator('}')
		if !ok {
			return nil, false
		}
		if !more {
			break
		}
	}
	members := d.kvs[base:]
	m := make(map[string]any, len(members))
	// In document order, so that of duplicate keys the last one wins, as
	// with encoding/json.
	for _, kv := range members {
		m[kv.key] = kv.value
	}
	clear(members)
	d.kvs = d.kvs[:base]
	d.depth--
	return m, true
}

// separator consumes what follows a member or an element: ',' (more
// follow) or close (the end); anything else is not ok.
func (d *fastDecoder) separator(close byte) (more, ok bool) {
	d.skipSpace()
	if d.pos >= len(d.data) {
		return false, false
	}
	c := d.data[d.pos]
	d.pos++
	switch c {
	case ',':
		return true, true
	case close:
		return false, true
	}
	return false, false
}

func (d *fastDecoder) array() (any, bool) {
	if d.depth++; d.depth > fastMaxDepth {
		return nil, false
	}
	d.pos++ // [
	base := len(d.items)
	d.skipSpace()
	if d.pos < len(d.data) && d.data[d.pos] == ']' {
		d.pos++
		d.depth--
		return []any{}, true
	}
	for {
		v, ok := d.value()
		if !ok {
			return nil, false
		}
		d.items = append(d.items, v)
		more, ok := d.separator(']')
		if !ok {
			return nil, false
		}
		if !more {
			break
		}
	}
	elems := d.items[base:]
	l := make([]any, len(elems))
	copy(l, elems)
	clear(elems)
	d.items = d.items[:base]
	d.depth--
	return l, true
}

// number scans a number by the JSON grammar and converts its text as
// encoding/json's path does (numberValue).
func (d *fastDecoder) number() (any, bool) {
	start := d.pos
	p, b := d.pos, d.data
	if p < len(b) && b[p] == '-' {
		p++
	}
	switch {
	case p < len(b) && b[p] == '0':
		p++
	case p < len(b) && b[p] >= '1' && b[p] <= '9':
		for p < len(b) && b[p] >= '0' && b[p] <= '9' {
			p++
		}
	default:
		return nil, false
	}
	if p < len(b) && b[p] == '.' {
		p++
		if p >= len(b) || b[p] < '0' || b[p] > '9' {
			return nil, false
		}
		for p < len(b) && b[p] >= '0' && b[p] <= '9' {
			p++
		}
	}
	if p < len(b) && (b[p] == 'e' || b[p] == 'E') {
		p++
		if p < len(b) && (b[p] == '+' || b[p] == '-') {
			p++
		}
		if p >= len(b) || b[p] < '0' || b[p] > '9' {
			return nil, false
		}
		for p < len(b) && b[p] >= '0' && b[p] <= '9' {
			p++
		}
	}
	d.pos = p
	text := d.substring(start, p)
	return numberValue(text), true
}

// substring returns data[i:j] as a string, sharing the document's copy
// when there is one.
func (d *fastDecoder) substring(i, j int) string {
	if d.text != "" {
		return d.text[i:j]
	}
	return string(d.data[i:j])
}

// string decodes the string starting at the opening quote at d.pos.
func (d *fastDecoder) string() (string, bool) {
	start := d.pos + 1
	b := d.data
	ascii := true
	for p := start; p < len(b); p++ {
		switch c := b[p]; {
		case c == '"':
			if !ascii && !utf8.Valid(b[start:p]) {
				// encoding/json replaces invalid bytes with U+FFFD.
				return "", false
			}
			d.pos = p + 1
			return d.substring(start, p), true
		case c == '\\':
			return d.escapedString(start, p)
		case c < 0x20:
			return "", false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return "", false
}

// escapedString decodes a string with escapes; esc is the first backslash.
func (d *fastDecoder) escapedString(start, esc int) (string, bool) {
	b := d.data
	out := make([]byte, 0, esc-start+16)
	out = append(out, b[start:esc]...)
	p := esc
	for p < len(b) {
		c := b[p]
		switch {
		case c == '"':
			if !utf8.Valid(out) {
				return "", false
			}
			d.pos = p + 1
			return string(out), true
		case c < 0x20:
			return "", false
		case c != '\\':
			out = append(out, c)
			p++
			continue
		}
		if p+1 >= len(b) {
			return "", false
		}
		switch e := b[p+1]; e {
		case '"', '\\', '/':
			out = append(out, e)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, ok := hex4(b, p+2)
			if !ok {
				return "", false
			}
			p += 6
			if utf16.IsSurrogate(r) {
				// Only a valid pair; encoding/json's handling of a lone
				// half (U+FFFD, and what it consumes) is left to it.
				if p+1 >= len(b) || b[p] != '\\' || b[p+1] != 'u' {
					return "", false
				}
				r2, ok := hex4(b, p+2)
				if !ok {
					return "", false
				}
				r = utf16.DecodeRune(r, r2)
				if r == utf8.RuneError {
					return "", false
				}
				p += 6
			}
			out = utf8.AppendRune(out, r)
			continue
		default:
			return "", false
		}
		p += 2
	}
	return "", false
}

// hex4 reads the four hex digits of a \u escape at b[i:].
func hex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}
