package transport

import (
	"bytes"
	"fmt"
	"strconv"
)

// fieldID names one envelope field.
type fieldID uint8

const (
	fieldType fieldID = iota
	fieldMsgID
	fieldSequence
	fieldAfterSequence
	fieldDelta
	fieldEpoch
	fieldPayload
	fieldState
	fieldCode
	fieldReason
	numFields
)

var fieldNames = [numFields]string{
	fieldType:          "type",
	fieldMsgID:         "id",
	fieldSequence:      "sequence",
	fieldAfterSequence: "after_sequence",
	fieldDelta:         "delta",
	fieldEpoch:         "epoch",
	fieldPayload:       "payload",
	fieldState:         "state",
	fieldCode:          "code",
	fieldReason:        "reason",
}

// lookupField returns the field a key names; other keys are ignored.
func lookupField(key []byte) (fieldID, bool) {
	switch string(key) {
	case "type":
		return fieldType, true
	case "id":
		return fieldMsgID, true
	case "sequence":
		return fieldSequence, true
	case "after_sequence":
		return fieldAfterSequence, true
	case "delta":
		return fieldDelta, true
	case "epoch":
		return fieldEpoch, true
	case "payload":
		return fieldPayload, true
	case "state":
		return fieldState, true
	case "code":
		return fieldCode, true
	case "reason":
		return fieldReason, true
	}
	return 0, false
}

// Encode returns the envelope of f in the given format; see AppendEncode.
func Encode(f Frame, format Format) ([]byte, error) {
	// Room for the keys, the numbers and the values, escapes aside.
	size := 96 + len(f.Payload) + len(f.State) + len(f.Epoch) + len(f.Code) + len(f.Reason)
	b, err := AppendEncode(make([]byte, 0, size), f, format)
	if err != nil {
		return nil, err
	}
	return b, nil
}

// AppendEncode appends the envelope of f in the given format to dst and
// returns the extended slice; on error it returns dst unchanged.
//
// Only the fields of f's type are written, in a fixed order with "type"
// first:
//
//	client_message  type, payload, id?
//	resync          type, after_sequence, delta?, epoch?
//	acknowledge     type, sequence, id?
//	server_message  type, sequence, payload
//	snapshot        type, sequence, state, epoch?
//	push            type, payload
//	synced          type, sequence, epoch
//	error           type, code, reason, id?
//
// A field marked ? is written only when it is not zero; the others are
// always written, zero or not. In FormatJSON, Payload and State must each be
// one JSON value (not null), embedded as is; in FormatMsgPack they must not
// be nil, and are written as bin values (an empty, non-nil slice is an empty
// bin). A Code must not be empty.
//
// The error, for an unknown type or format or a missing or invalid field, is
// a *Error with CodeInternal: a frame that cannot be encoded is the
// sender's fault.
func AppendEncode(dst []byte, f Frame, format Format) ([]byte, error) {
	if err := checkEncodable(f, format); err != nil {
		return dst, err
	}
	switch format {
	case FormatJSON:
		return appendJSONFrame(dst, f), nil
	case FormatMsgPack:
		return appendMsgPackFrame(dst, f), nil
	}
	return dst, Errorf(CodeInternal, "encode: unknown format %v", format)
}

// checkEncodable validates f before anything is written.
func checkEncodable(f Frame, format Format) *Error {
	if format != FormatJSON && format != FormatMsgPack {
		return Errorf(CodeInternal, "encode: unknown format %v", format)
	}
	var err error
	switch f.Type {
	case TypeClientMessage, TypeServerMessage, TypePush:
		err = checkBody(f.Payload, format)
		if err != nil {
			err = fmt.Errorf("payload: %w", err)
		}
	case TypeSnapshot:
		err = checkBody(f.State, format)
		if err != nil {
			err = fmt.Errorf("state: %w", err)
		}
	case TypeError:
		if f.Code == "" {
			err = fmt.Errorf("missing code")
		}
	case TypeResync, TypeAcknowledge, TypeSynced:
	default:
		return Errorf(CodeInternal, "encode: unknown frame type %v", f.Type)
	}
	if err != nil {
		return Errorf(CodeInternal, "encode %v: %v", f.Type, err)
	}
	return nil
}

// checkBody validates a payload or state for the format.
func checkBody(b []byte, format Format) error {
	if format == FormatMsgPack {
		if b == nil {
			return fmt.Errorf("missing")
		}
		return nil
	}
	if len(b) == 0 {
		return fmt.Errorf("missing")
	}
	if err := validJSONValue(b); err != nil {
		return fmt.Errorf("not a JSON value: %w", err)
	}
	if isJSONNull(b) {
		return fmt.Errorf("is null")
	}
	return nil
}

// isJSONNull reports whether a valid JSON value is null.
func isJSONNull(b []byte) bool {
	t := bytes.TrimLeft(b, " \t\r\n")
	return len(t) >= 4 && string(t[:4]) == "null"
}

// appendJSONFrame writes a checked frame as JSON.
func appendJSONFrame(dst []byte, f Frame) []byte {
	dst = append(dst, `{"type":"`...)
	dst = append(dst, f.Type.String()...)
	dst = append(dst, '"')
	switch f.Type {
	case TypeClientMessage:
		dst = appendJSONRaw(dst, "payload", f.Payload)
		dst = appendJSONID(dst, f.ID)
	case TypeResync:
		dst = appendJSONUint(dst, "after_sequence", f.AfterSequence)
		if f.Delta {
			dst = append(dst, `,"delta":true`...)
		}
		if f.Epoch != "" {
			dst = appendJSONStringField(dst, "epoch", f.Epoch)
		}
	case TypeAcknowledge:
		dst = appendJSONUint(dst, "sequence", f.Sequence)
		dst = appendJSONID(dst, f.ID)
	case TypeServerMessage:
		dst = appendJSONUint(dst, "sequence", f.Sequence)
		dst = appendJSONRaw(dst, "payload", f.Payload)
	case TypeSnapshot:
		dst = appendJSONUint(dst, "sequence", f.Sequence)
		dst = appendJSONRaw(dst, "state", f.State)
		if f.Epoch != "" {
			dst = appendJSONStringField(dst, "epoch", f.Epoch)
		}
	case TypePush:
		dst = appendJSONRaw(dst, "payload", f.Payload)
	case TypeSynced:
		dst = appendJSONUint(dst, "sequence", f.Sequence)
		dst = appendJSONStringField(dst, "epoch", f.Epoch)
	case TypeError:
		dst = appendJSONStringField(dst, "code", string(f.Code))
		dst = appendJSONStringField(dst, "reason", f.Reason)
		dst = appendJSONID(dst, f.ID)
	}
	return append(dst, '}')
}

func appendJSONKey(dst []byte, key string) []byte {
	dst = append(dst, ',', '"')
	dst = append(dst, key...)
	return append(dst, '"', ':')
}

func appendJSONUint(dst []byte, key string, v uint64) []byte {
	return strconv.AppendUint(appendJSONKey(dst, key), v, 10)
}

func appendJSONID(dst []byte, id uint64) []byte {
	if id == 0 {
		return dst
	}
	return appendJSONUint(dst, "id", id)
}

func appendJSONStringField(dst []byte, key, v string) []byte {
	return appendJSONString(appendJSONKey(dst, key), v)
}

func appendJSONRaw(dst []byte, key string, raw []byte) []byte {
	return append(appendJSONKey(dst, key), raw...)
}

// appendMsgPackFrame writes a checked frame as MessagePack. The encoder
// appends to memory, so it cannot fail.
func appendMsgPackFrame(dst []byte, f Frame) []byte {
	e := getMPEncoder(dst)
	enc := e.enc
	n := 1
	switch f.Type {
	case TypeClientMessage, TypeAcknowledge:
		n += 1 + b2i(f.ID != 0)
	case TypeResync:
		n += 1 + b2i(f.Delta) + b2i(f.Epoch != "")
	case TypeServerMessage, TypeSynced:
		n += 2
	case TypeSnapshot:
		n += 2 + b2i(f.Epoch != "")
	case TypePush:
		n++
	case TypeError:
		n += 2 + b2i(f.ID != 0)
	}
	_ = enc.EncodeMapLen(n)
	_ = enc.EncodeString("type")
	_ = enc.EncodeString(f.Type.String())
	uintField := func(key string, v uint64) {
		_ = enc.EncodeString(key)
		_ = enc.EncodeUint(v)
	}
	stringField := func(key, v string) {
		_ = enc.EncodeString(key)
		_ = enc.EncodeString(v)
	}
	binField := func(key string, v []byte) {
		_ = enc.EncodeString(key)
		_ = enc.EncodeBytes(v)
	}
	switch f.Type {
	case TypeClientMessage:
		binField("payload", f.Payload)
		if f.ID != 0 {
			uintField("id", f.ID)
		}
	case TypeResync:
		uintField("after_sequence", f.AfterSequence)
		if f.Delta {
			_ = enc.EncodeString("delta")
			_ = enc.EncodeBool(true)
		}
		if f.Epoch != "" {
			stringField("epoch", f.Epoch)
		}
	case TypeAcknowledge:
		uintField("sequence", f.Sequence)
		if f.ID != 0 {
			uintField("id", f.ID)
		}
	case TypeServerMessage:
		uintField("sequence", f.Sequence)
		binField("payload", f.Payload)
	case TypeSnapshot:
		uintField("sequence", f.Sequence)
		binField("state", f.State)
		if f.Epoch != "" {
			stringField("epoch", f.Epoch)
		}
	case TypePush:
		binField("payload", f.Payload)
	case TypeSynced:
		uintField("sequence", f.Sequence)
		stringField("epoch", f.Epoch)
	case TypeError:
		stringField("code", string(f.Code))
		stringField("reason", f.Reason)
		if f.ID != 0 {
			uintField("id", f.ID)
		}
	}
	return e.put()
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
