package engine

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// DecodeJSON decodes one JSON document. Objects become map[string]any,
// arrays []any, and numbers Decimal, so that no amount ever passes through
// float64. A number a Decimal cannot hold exactly (more than 19 significant
// digits, such as an 18-decimal token amount, or 1e400) becomes a
// BigNumber, which keeps its text. Trailing data after the document is an
// error.
//
// Strings in the result of a small document may share memory with one
// copy of it, which then lives as long as any of them.
func DecodeJSON(b []byte) (any, error) {
	if v, ok := decodeFast(b); ok {
		return v, nil
	}
	return decodeStd(b)
}

// decodeStd is DecodeJSON by encoding/json: the reference for what a
// document means, and the decoder of every document the fast path leaves
// (all invalid ones among them, so that errors read as they always have).
func decodeStd(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, jsonError(b, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("unexpected data after the JSON document")
	}
	return convertNumbers(v), nil
}

// DecodeObject decodes a JSON object (see DecodeJSON).
func DecodeObject(b []byte) (map[string]any, error) {
	v, err := DecodeJSON(b)
	if err != nil {
		return nil, err
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("the payload must be a JSON object, not %s", typeName(v))
	}
	return m, nil
}

// jsonError turns encoding/json's errors into a sentence with a byte offset.
func jsonError(b []byte, err error) error {
	var se *json.SyntaxError
	switch {
	case errors.As(err, &se):
		return fmt.Errorf("invalid JSON at byte %d: %s", se.Offset, se.Error())
	case errors.Is(err, io.EOF) && len(bytes.TrimSpace(b)) == 0:
		return errors.New("empty body: expected a JSON object")
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		return errors.New("invalid JSON: the body ends in the middle of the document (truncated?)")
	}
	return fmt.Errorf("invalid JSON: %v", err)
}

func convertNumbers(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			t[k] = convertNumbers(e)
		}
		return t
	case []any:
		for i, e := range t {
			t[i] = convertNumbers(e)
		}
		return t
	case json.Number:
		return numberValue(string(t))
	}
	return v
}

// numberValue converts the text of a JSON number: a Decimal when one holds
// it exactly, else a BigNumber keeping the text.
func numberValue(text string) any {
	if d, err := ParseDecimal(text); err == nil {
		return d
	}
	return BigNumber{text}
}

// EncodeJSON encodes a value that may hold Decimals (written as plain JSON
// numbers). HTML characters are not escaped: the output goes to machines.
func EncodeJSON(v any) ([]byte, error) {
	if b, ok := encodeFast(v); ok {
		return b, nil
	}
	return encodeStd(v)
}

// encodeStd is EncodeJSON by encoding/json, for values the fast path
// leaves to it, and the reference the fast path is tested against.
func encodeStd(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case Decimal, BigNumber, float64, int, int64:
		return "a number"
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}
