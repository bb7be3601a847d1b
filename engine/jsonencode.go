package engine

import (
	"slices"
	"strings"
	"sync"
	"unicode/utf8"
)

// Every accepted webhook's normalized payload is encoded for the journal,
// and encoding/json spends most of that on reflection and on sorting keys
// through reflect.Values. appendFast writes the values a decoded payload is
// made of (objects, lists, strings, Decimals, BigNumbers, booleans, null) directly, byte
// for byte as encoding/json with SetEscapeHTML(false) does; anything else
// (a float64, a struct, a []string built by an action)
// makes EncodeJSON encode the whole value with encoding/json instead.
// FuzzEncodeJSONDifferential checks the two agree.

// fastMaxEncodeDepth bounds recursion; deeper values (or a map that holds
// itself, which encoding/json reports as an error) go to encoding/json.
const fastMaxEncodeDepth = 500

type fastEncoder struct {
	buf []byte
	// members is a stack of the members of the objects being written,
	// sorted by key in place.
	members []keyValue
}

var fastEncoders = sync.Pool{New: func() any { return &fastEncoder{buf: make([]byte, 0, 1024)} }}

// encodeFast returns v's encoding, or ok false when v holds a value it
// leaves to encoding/json.
func encodeFast(v any) ([]byte, bool) {
	e := fastEncoders.Get().(*fastEncoder)
	ok := e.value(v, 0)
	var out []byte
	if ok {
		// The pooled buffer is reused; the caller gets an exact copy.
		out = slices.Clone(e.buf)
	}
	e.buf = e.buf[:0]
	clear(e.members)
	e.members = e.members[:0]
	if cap(e.buf) <= 64<<10 && cap(e.members) <= 1024 {
		fastEncoders.Put(e)
	}
	return out, ok
}

func (e *fastEncoder) value(v any, depth int) bool {
	switch x := v.(type) {
	case nil:
		e.buf = append(e.buf, "null"...)
	case string:
		e.buf = appendJSONString(e.buf, x)
	case Decimal:
		// The text MarshalJSON gives, without its allocation.
		e.buf, _ = x.d.AppendText(e.buf)
	case BigNumber:
		if x.text == "" {
			return false // encoding/json reports the error
		}
		e.buf = append(e.buf, x.text...)
	case bool:
		if x {
			e.buf = append(e.buf, "true"...)
		} else {
			e.buf = append(e.buf, "false"...)
		}
	case map[string]any:
		if x == nil {
			e.buf = append(e.buf, "null"...)
			return true
		}
		if depth >= fastMaxEncodeDepth {
			return false
		}
		return e.object(x, depth+1)
	case []any:
		if x == nil {
			e.buf = append(e.buf, "null"...)
			return true
		}
		if depth >= fastMaxEncodeDepth {
			return false
		}
		e.buf = append(e.buf, '[')
		for i, el := range x {
			if i > 0 {
				e.buf = append(e.buf, ',')
			}
			if !e.value(el, depth+1) {
				return false
			}
		}
		e.buf = append(e.buf, ']')
	default:
		return false
	}
	return true
}

// object writes m with its keys in byte order, as encoding/json does.
func (e *fastEncoder) object(m map[string]any, depth int) bool {
	base := len(e.members)
	for k, v := range m {
		e.members = append(e.members, keyValue{k, v})
	}
	members := e.members[base:]
	slices.SortFunc(members, func(a, b keyValue) int { return strings.Compare(a.key, b.key) })
	e.buf = append(e.buf, '{')
	for i, kv := range members {
		if i > 0 {
			e.buf = append(e.buf, ',')
		}
		e.buf = appendJSONString(e.buf, kv.key)
		e.buf = append(e.buf, ':')
		if !e.value(kv.value, depth) {
			return false
		}
	}
	e.buf = append(e.buf, '}')
	clear(members)
	e.members = e.members[:base]
	return true
}

const hexDigits = "0123456789abcdef"

// appendJSONString quotes s as encoding/json does without HTML escaping:
// quote and backslash escaped, control characters as \n-style or \u00XX
// escapes, invalid UTF-8 as \ufffd, and U+2028 and U+2029 (line breaks to
// JavaScript) as \u2028 and \u2029; everything else is copied.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
