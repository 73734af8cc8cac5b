package transport

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"
)

// maxDepth bounds the nesting of arrays and objects (or MessagePack arrays
// and maps) that the decoders accept, as encoding/json does, so that hostile
// input cannot exhaust the stack.
const maxDepth = 10000

// jsonScanner reads one JSON text from data, validating it as it goes
// (RFC 8259; like encoding/json, invalid UTF-8 inside strings is accepted
// and becomes U+FFFD when a string is decoded).
type jsonScanner struct {
	data  []byte
	pos   int
	depth int
}

// errJSONEnd is returned when the text ends in the middle of a value.
var errJSONEnd = errors.New("unexpected end of JSON input")

// jsonKind classifies the value that starts with byte c.
type jsonKind uint8

const (
	jsonInvalid jsonKind = iota
	jsonNull
	jsonBool
	jsonNumber
	jsonString
	jsonArray
	jsonObject
)

func (k jsonKind) String() string {
	switch k {
	case jsonNull:
		return "null"
	case jsonBool:
		return "boolean"
	case jsonNumber:
		return "number"
	case jsonString:
		return "string"
	case jsonArray:
		return "array"
	case jsonObject:
		return "object"
	}
	return "invalid value"
}

func kindOfJSON(c byte) jsonKind {
	switch {
	case c == 'n':
		return jsonNull
	case c == 't' || c == 'f':
		return jsonBool
	case c == '-' || (c >= '0' && c <= '9'):
		return jsonNumber
	case c == '"':
		return jsonString
	case c == '[':
		return jsonArray
	case c == '{':
		return jsonObject
	}
	return jsonInvalid
}

// ws skips white space.
func (s *jsonScanner) ws() {
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

// peek skips white space and returns the kind of the next value.
func (s *jsonScanner) peek() (jsonKind, error) {
	s.ws()
	if s.pos >= len(s.data) {
		return jsonInvalid, errJSONEnd
	}
	k := kindOfJSON(s.data[s.pos])
	if k == jsonInvalid {
		return k, s.syntaxError()
	}
	return k, nil
}

func (s *jsonScanner) syntaxError() error {
	if s.pos >= len(s.data) {
		return errJSONEnd
	}
	return fmt.Errorf("invalid character %s at offset %d", quoteByte(s.data[s.pos]), s.pos)
}

func quoteByte(c byte) string {
	if c >= 0x20 && c < 0x7f {
		return fmt.Sprintf("%q", rune(c))
	}
	return fmt.Sprintf("0x%02x", c)
}

// consume skips white space and then expects byte c.
func (s *jsonScanner) consume(c byte) error {
	s.ws()
	if s.pos < len(s.data) && s.data[s.pos] == c {
		s.pos++
		return nil
	}
	return s.syntaxError()
}

// end checks that only white space is left.
func (s *jsonScanner) end() error {
	s.ws()
	if s.pos != len(s.data) {
		return fmt.Errorf("trailing data at offset %d", s.pos)
	}
	return nil
}

// skipValue validates and skips one value, returning its span.
func (s *jsonScanner) skipValue() (start, end int, err error) {
	k, err := s.peek()
	if err != nil {
		return 0, 0, err
	}
	start = s.pos
	switch k {
	case jsonNull:
		err = s.literal("null")
	case jsonBool:
		if s.data[s.pos] == 't' {
			err = s.literal("true")
		} else {
			err = s.literal("false")
		}
	case jsonNumber:
		_, _, err = s.number()
	case jsonString:
		_, _, _, err = s.stringSpan()
	case jsonArray:
		err = s.skipContainer(']')
	case jsonObject:
		err = s.skipContainer('}')
	}
	return start, s.pos, err
}

func (s *jsonScanner) literal(lit string) error {
	for i := 0; i < len(lit); i++ {
		if s.pos >= len(s.data) {
			return errJSONEnd
		}
		if s.data[s.pos] != lit[i] {
			return s.syntaxError()
		}
		s.pos++
	}
	return nil
}

// skipContainer skips an array or an object, the scanner being on its
// opening bracket.
func (s *jsonScanner) skipContainer(closing byte) error {
	if err := s.enter(); err != nil {
		return err
	}
	s.pos++ // '[' or '{'
	s.ws()
	if s.pos < len(s.data) && s.data[s.pos] == closing {
		s.pos++
		s.depth--
		return nil
	}
	for {
		if closing == '}' {
			s.ws()
			if s.pos >= len(s.data) || s.data[s.pos] != '"' {
				return s.syntaxError()
			}
			if _, _, _, err := s.stringSpan(); err != nil {
				return err
			}
			if err := s.consume(':'); err != nil {
				return err
			}
		}
		if _, _, err := s.skipValue(); err != nil {
			return err
		}
		s.ws()
		if s.pos >= len(s.data) {
			return errJSONEnd
		}
		switch s.data[s.pos] {
		case ',':
			s.pos++
		case closing:
			s.pos++
			s.depth--
			return nil
		default:
			return s.syntaxError()
		}
	}
}

func (s *jsonScanner) enter() error {
	s.depth++
	if s.depth > maxDepth {
		return fmt.Errorf("exceeded max depth of %d", maxDepth)
	}
	return nil
}

// number validates and skips a number, returning its text and whether it is
// written as an integer (no fraction, no exponent).
func (s *jsonScanner) number() (lit []byte, integer bool, err error) {
	d := s.data
	start := s.pos
	i := s.pos
	if i < len(d) && d[i] == '-' {
		i++
	}
	switch {
	case i >= len(d):
		s.pos = i
		return nil, false, errJSONEnd
	case d[i] == '0':
		i++
	case d[i] >= '1' && d[i] <= '9':
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
	default:
		s.pos = i
		return nil, false, s.syntaxError()
	}
	integer = true
	if i < len(d) && d[i] == '.' {
		integer = false
		i++
		j := i
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
		if i == j {
			s.pos = i
			return nil, false, s.syntaxError()
		}
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		integer = false
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		j := i
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
		if i == j {
			s.pos = i
			return nil, false, s.syntaxError()
		}
	}
	s.pos = i
	return d[start:i], integer, nil
}

// stringSpan validates and skips a string, returning the span of its
// contents (without quotes) and whether it needs unescaping (it has escapes
// or bytes that are not ASCII).
func (s *jsonScanner) stringSpan() (start, end int, complex bool, err error) {
	d := s.data
	s.pos++ // opening quote
	start = s.pos
	for i := s.pos; i < len(d); {
		c := d[i]
		switch {
		case c == '"':
			s.pos = i + 1
			return start, i, complex, nil
		case c == '\\':
			complex = true
			if i+1 >= len(d) {
				s.pos = len(d)
				return 0, 0, false, errJSONEnd
			}
			switch d[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if len(d)-i < 6 {
					s.pos = len(d)
					return 0, 0, false, errJSONEnd
				}
				for _, h := range d[i+2 : i+6] {
					if !isHex(h) {
						return 0, 0, false, fmt.Errorf("invalid escape in string at offset %d", i)
					}
				}
				i += 6
			default:
				return 0, 0, false, fmt.Errorf("invalid escape in string at offset %d", i)
			}
		case c < 0x20:
			s.pos = i
			return 0, 0, false, fmt.Errorf("invalid control character 0x%02x in string at offset %d", c, i)
		default:
			if c >= utf8.RuneSelf {
				complex = true
			}
			i++
		}
	}
	s.pos = len(d)
	return 0, 0, false, errJSONEnd
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

// readString validates, skips and decodes a string.
func (s *jsonScanner) readString() (string, error) {
	start, end, complex, err := s.stringSpan()
	if err != nil {
		return "", err
	}
	return decodeJSONString(s.data[start-1:end+1], complex)
}

// decodeJSONString decodes a validated string token (quotes included).
func decodeJSONString(tok []byte, complex bool) (string, error) {
	body := tok[1 : len(tok)-1]
	if !complex {
		return string(body), nil
	}
	if utf8.Valid(body) && bytes.IndexByte(body, '\\') < 0 {
		return string(body), nil
	}
	var out string
	if err := json.Unmarshal(tok, &out); err != nil {
		return "", err
	}
	return out, nil
}

// validJSONValue reports whether b is exactly one JSON value, optionally
// surrounded by white space.
func validJSONValue(b []byte) error {
	s := jsonScanner{data: b}
	if _, _, err := s.skipValue(); err != nil {
		return err
	}
	return s.end()
}
