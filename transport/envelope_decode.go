package transport

import (
	"bytes"
	"strconv"
)

// fieldRule tells whether a frame type reads a field.
type fieldRule uint8

const (
	ignored fieldRule = iota
	optional
	required
)

// frameRules lists, for each frame type, the fields Decode reads. The
// others are ignored, as unknown fields are.
var frameRules = [...][numFields]fieldRule{
	TypeClientMessage: {fieldPayload: required, fieldMsgID: optional},
	TypeResync:        {fieldAfterSequence: optional, fieldDelta: optional, fieldEpoch: optional},
	TypeAcknowledge:   {fieldSequence: required, fieldMsgID: optional},
	TypeServerMessage: {fieldSequence: required, fieldPayload: required},
	TypeSnapshot:      {fieldSequence: required, fieldState: required, fieldEpoch: optional},
	TypePush:          {fieldPayload: required},
	TypeSynced:        {fieldSequence: required, fieldEpoch: optional},
	TypeError:         {fieldCode: required, fieldReason: optional, fieldMsgID: optional},
}

// frameSource gives the values of an envelope's fields, in either format:
// exactly one of its pointers is set. (A struct rather than an interface, so
// that the sources stay on the stack.) Each getter returns ok == false when
// the field is absent or null.
type frameSource struct {
	json *jsonFrame
	mp   *msgPackFrame
}

func (s frameSource) uintField(f fieldID) (uint64, bool, error) {
	if s.json != nil {
		return s.json.uintField(f)
	}
	return s.mp.uintField(f)
}

func (s frameSource) boolField(f fieldID) (bool, bool, error) {
	if s.json != nil {
		return s.json.boolField(f)
	}
	return s.mp.boolField(f)
}

func (s frameSource) stringField(f fieldID) (string, bool, error) {
	if s.json != nil {
		return s.json.stringField(f)
	}
	return s.mp.stringField(f)
}

// bodyField returns a copy of a payload or state.
func (s frameSource) bodyField(f fieldID) ([]byte, bool, error) {
	if s.json != nil {
		return s.json.bodyField(f)
	}
	return s.mp.bodyField(f)
}

// Decode decodes one envelope in the given format.
//
// Decode is strict: it fails, with a *Error whose Code is CodeBadFrame, on
// data that is not one JSON object (or one MessagePack map) with nothing
// after it, a missing, non-string or unknown "type", a missing required
// field of that type (client_message: payload; server_message: sequence and
// payload; snapshot: sequence and state; push: payload; acknowledge and
// synced: sequence; error: code), a field of the wrong kind, a number that
// is negative, fractional or beyond uint64, or an explicit id of 0 on a
// client_message. A field that is null counts as absent. Unknown fields, and
// fields that the frame's type does not have, are ignored. Decode never
// panics.
//
// In FormatJSON, Payload and State are copies of the JSON text of those
// values; in FormatMsgPack, copies of the bin values' bytes. A resync's
// after_sequence defaults to 0.
func Decode(data []byte, format Format) (Frame, error) {
	switch format {
	case FormatJSON:
		return decodeJSONFrame(data)
	case FormatMsgPack:
		return decodeMsgPackFrame(data)
	}
	return Frame{}, Errorf(CodeBadFrame, "unknown format %v", format)
}

func badFrame(format string, args ...any) *Error {
	return Errorf(CodeBadFrame, format, args...)
}

// buildFrame reads the fields of a frame of type t from src.
func buildFrame(t FrameType, src frameSource) (Frame, error) {
	f := Frame{Type: t}
	rules := &frameRules[t]
	for id := fieldMsgID; id < numFields; id++ {
		rule := rules[id]
		if rule == ignored {
			continue
		}
		var ok bool
		var err error
		switch id {
		case fieldMsgID:
			f.ID, ok, err = src.uintField(id)
			if err == nil && ok && f.ID == 0 && t == TypeClientMessage {
				return Frame{}, badFrame("id must be at least 1")
			}
		case fieldSequence:
			f.Sequence, ok, err = src.uintField(id)
		case fieldAfterSequence:
			f.AfterSequence, ok, err = src.uintField(id)
		case fieldDelta:
			f.Delta, ok, err = src.boolField(id)
		case fieldEpoch:
			f.Epoch, ok, err = src.stringField(id)
		case fieldPayload:
			f.Payload, ok, err = src.bodyField(id)
		case fieldState:
			f.State, ok, err = src.bodyField(id)
		case fieldCode:
			var code string
			code, ok, err = src.stringField(id)
			ok = ok && code != ""
			f.Code = ErrorCode(code)
		case fieldReason:
			f.Reason, ok, err = src.stringField(id)
		}
		if err != nil {
			return Frame{}, err
		}
		if !ok && rule == required {
			return Frame{}, badFrame("%v: missing %s", t, fieldNames[id])
		}
	}
	return f, nil
}

// parseType interprets the type field's value, without allocating in the
// common case.
func parseType(name []byte) (FrameType, error) {
	t, known := ParseFrameType(string(name))
	if !known {
		return 0, badFrame("unknown frame type %q", truncate(string(name)))
	}
	return t, nil
}

// truncate shortens s for an error message.
func truncate(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}

// uintError reports a field that is not a non-negative integer.
func uintError(f fieldID, got string) *Error {
	return badFrame("%s must be a non-negative integer, got %s", fieldNames[f], truncate(got))
}

// jsonFrame is the frameSource of a JSON envelope: the span of each known
// field's value.
type jsonFrame struct {
	data  []byte
	spans [numFields]struct{ start, end int }
}

func decodeJSONFrame(data []byte) (Frame, error) {
	var jf jsonFrame
	jf.data = data
	s := jsonScanner{data: data}
	k, err := s.peek()
	if err != nil {
		if err == errJSONEnd {
			return Frame{}, badFrame("empty frame")
		}
		return Frame{}, badFrame("invalid JSON: %v", err)
	}
	if k != jsonObject {
		return Frame{}, badFrame("frame is not a JSON object (got %v)", k)
	}
	if err := jf.scan(&s); err != nil {
		return Frame{}, badFrame("invalid JSON: %v", err)
	}
	if err := s.end(); err != nil {
		return Frame{}, badFrame("trailing data after the frame")
	}
	t, err := jf.frameType()
	if err != nil {
		return Frame{}, err
	}
	return buildFrame(t, frameSource{json: &jf})
}

// scan reads the object, recording the span of each known field (the last
// one wins when a key repeats).
func (jf *jsonFrame) scan(s *jsonScanner) error {
	s.pos++ // '{'
	s.depth++
	s.ws()
	if s.pos < len(s.data) && s.data[s.pos] == '}' {
		s.pos++
		return nil
	}
	for {
		s.ws()
		if s.pos >= len(s.data) {
			return errJSONEnd
		}
		if s.data[s.pos] != '"' {
			return s.syntaxError()
		}
		start, end, complex, err := s.stringSpan()
		if err != nil {
			return err
		}
		key := s.data[start:end]
		if complex {
			k, err := decodeJSONString(s.data[start-1:end+1], true)
			if err != nil {
				return err
			}
			key = []byte(k)
		}
		if err := s.consume(':'); err != nil {
			return err
		}
		vstart, vend, err := s.skipValue()
		if err != nil {
			return err
		}
		if id, ok := lookupField(key); ok {
			jf.spans[id].start, jf.spans[id].end = vstart, vend
		}
		s.ws()
		if s.pos >= len(s.data) {
			return errJSONEnd
		}
		switch s.data[s.pos] {
		case ',':
			s.pos++
		case '}':
			s.pos++
			return nil
		default:
			return s.syntaxError()
		}
	}
}

// value returns the text of a field's value, or nil when it is absent or
// null.
func (jf *jsonFrame) value(f fieldID) []byte {
	sp := jf.spans[f]
	if sp.end == 0 || jf.data[sp.start] == 'n' {
		return nil
	}
	return jf.data[sp.start:sp.end]
}

func (jf *jsonFrame) frameType() (FrameType, error) {
	v := jf.value(fieldType)
	if v == nil {
		return 0, badFrame("missing type")
	}
	if bytes.IndexByte(v, '\\') < 0 && v[0] == '"' {
		return parseType(v[1 : len(v)-1])
	}
	name, _, err := jf.stringField(fieldType)
	if err != nil {
		return 0, err
	}
	return parseType([]byte(name))
}

func (jf *jsonFrame) uintField(f fieldID) (uint64, bool, error) {
	v := jf.value(f)
	if v == nil {
		return 0, false, nil
	}
	k := kindOfJSON(v[0])
	if k != jsonNumber {
		return 0, false, uintError(f, k.String())
	}
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false, uintError(f, string(v))
		}
	}
	n, err := strconv.ParseUint(string(v), 10, 64)
	if err != nil {
		return 0, false, badFrame("%s is beyond the range of uint64, got %s", fieldNames[f], truncate(string(v)))
	}
	return n, true, nil
}

func (jf *jsonFrame) boolField(f fieldID) (bool, bool, error) {
	v := jf.value(f)
	if v == nil {
		return false, false, nil
	}
	if k := kindOfJSON(v[0]); k != jsonBool {
		return false, false, badFrame("%s must be a boolean, got %v", fieldNames[f], k)
	}
	return v[0] == 't', true, nil
}

func (jf *jsonFrame) stringField(f fieldID) (string, bool, error) {
	v := jf.value(f)
	if v == nil {
		return "", false, nil
	}
	if k := kindOfJSON(v[0]); k != jsonString {
		return "", false, badFrame("%s must be a string, got %v", fieldNames[f], k)
	}
	complex := false
	for _, c := range v {
		if c == '\\' || c >= 0x80 {
			complex = true
			break
		}
	}
	s, err := decodeJSONString(v, complex)
	if err != nil {
		return "", false, badFrame("%s: %v", fieldNames[f], err)
	}
	return s, true, nil
}

func (jf *jsonFrame) bodyField(f fieldID) ([]byte, bool, error) {
	v := jf.value(f)
	if v == nil {
		return nil, false, nil
	}
	return append([]byte(nil), v...), true, nil
}

// msgPackFrame is the frameSource of a MessagePack envelope: the offset of
// each known field's value.
type msgPackFrame struct {
	m   *mpReader
	pos [numFields]int // 0: absent (a value never starts at offset 0)
}

func decodeMsgPackFrame(data []byte) (Frame, error) {
	m := getMPReader(data)
	defer m.put()
	mf := msgPackFrame{m: m}
	_, k, err := m.peek()
	if err != nil {
		if len(data) == 0 {
			return Frame{}, badFrame("empty frame")
		}
		return Frame{}, badFrame("invalid MessagePack: %v", err)
	}
	if k != mpMap {
		return Frame{}, badFrame("frame is not a MessagePack map (got %v)", k)
	}
	if err := mf.scan(); err != nil {
		return Frame{}, err
	}
	if m.remaining() != 0 {
		return Frame{}, badFrame("trailing data after the frame")
	}
	t, err := mf.frameType()
	if err != nil {
		return Frame{}, err
	}
	return buildFrame(t, frameSource{mp: &mf})
}

// scan reads the map, recording the offset of each known field's value (the
// last one wins when a key repeats) and checking the others are well formed.
func (mf *msgPackFrame) scan() error {
	m := mf.m
	n, err := m.readMapLen()
	if err != nil {
		return badFrame("invalid MessagePack: %v", err)
	}
	for range n {
		key, err := m.readStrBytes()
		if err != nil {
			if _, ok := err.(*wrongKind); ok {
				return badFrame("frame keys must be strings, %v", err)
			}
			return badFrame("invalid MessagePack: %v", err)
		}
		id, known := lookupField(key)
		if known {
			mf.pos[id] = m.pos()
		}
		if err := m.skip(); err != nil {
			return badFrame("invalid MessagePack: %v", err)
		}
	}
	return nil
}

// at moves to a field's value, telling whether it is present and not nil.
func (mf *msgPackFrame) at(f fieldID) bool {
	p := mf.pos[f]
	if p == 0 {
		return false
	}
	mf.m.seek(p)
	_, k, _ := mf.m.peek() // scan checked the value
	return k != mpNil
}

func (mf *msgPackFrame) frameType() (FrameType, error) {
	if !mf.at(fieldType) {
		return 0, badFrame("missing type")
	}
	name, err := mf.m.readStrBytes()
	if err != nil {
		return 0, badFrame("type must be a string, %v", err)
	}
	return parseType(name)
}

func (mf *msgPackFrame) uintField(f fieldID) (uint64, bool, error) {
	if !mf.at(f) {
		return 0, false, nil
	}
	neg, i, u, err := mf.m.readInteger()
	switch {
	case err != nil:
		if wk, ok := err.(*wrongKind); ok {
			return 0, false, uintError(f, wk.got)
		}
		return 0, false, badFrame("%s: %v", fieldNames[f], err)
	case neg:
		return 0, false, uintError(f, strconv.FormatInt(i, 10))
	}
	return u, true, nil
}

func (mf *msgPackFrame) boolField(f fieldID) (bool, bool, error) {
	if !mf.at(f) {
		return false, false, nil
	}
	b, err := mf.m.readBool()
	if err != nil {
		return false, false, badFrame("%s must be a boolean, %v", fieldNames[f], err)
	}
	return b, true, nil
}

func (mf *msgPackFrame) stringField(f fieldID) (string, bool, error) {
	if !mf.at(f) {
		return "", false, nil
	}
	s, err := mf.m.readString()
	if err != nil {
		return "", false, badFrame("%s must be a string, %v", fieldNames[f], err)
	}
	return s, true, nil
}

func (mf *msgPackFrame) bodyField(f fieldID) ([]byte, bool, error) {
	if !mf.at(f) {
		return nil, false, nil
	}
	b, err := mf.m.readBin()
	if err != nil {
		return nil, false, badFrame("%s must be a bin value, %v", fieldNames[f], err)
	}
	return b, true, nil
}
