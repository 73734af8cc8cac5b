package transport

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"sync"

	"github.com/vmihailenco/msgpack/v5"
)

// JSONSerialiser is a Serialiser built on encoding/json and, for
// MessagePack, on github.com/vmihailenco/msgpack/v5 with the json struct
// tags, built by JSON. It is safe for concurrent use.
type JSONSerialiser[M, Msg any] struct {
	reg     *registry
	model   reflect.Type
	message reflect.Type
}

// JSON returns a Serialiser for apps that do not need lily compatibility:
// values are written by encoding/json, with their field names and json
// tags.
//
// When M or Msg is an interface type, its values are externally tagged: a
// one-key object whose key is the type name of the dynamic value, as
// {"Add":{"N":5}}, decoded through variants, example values as for
// Automatic (Add{} decodes as an Add, &Add{} as an *Add); a nil interface is
// null. Only M and Msg themselves are tagged: interface-typed fields inside
// them follow encoding/json's own rules. When M or Msg is a concrete type,
// the encoding is plain encoding/json.
//
// In FormatMsgPack the same shapes are written in MessagePack, with the json
// tags naming the fields.
//
// JSON panics, like Automatic, on invalid variants.
func JSON[M, Msg any](variants ...any) *JSONSerialiser[M, Msg] {
	return &JSONSerialiser[M, Msg]{
		reg:     newRegistry("JSON", nil, variants),
		model:   reflect.TypeFor[M](),
		message: reflect.TypeFor[Msg](),
	}
}

// EncodeMessage encodes msg. Errors are *Error values with CodeInternal.
func (s *JSONSerialiser[M, Msg]) EncodeMessage(msg Msg, format Format) ([]byte, error) {
	return s.encode(reflect.ValueOf(&msg).Elem(), "payload", format)
}

// DecodeMessage decodes a message. Errors are *Error values with
// CodeBadPayload.
func (s *JSONSerialiser[M, Msg]) DecodeMessage(data []byte, format Format) (Msg, error) {
	var msg Msg
	if err := s.decode(data, reflect.ValueOf(&msg).Elem(), "payload", format); err != nil {
		var zero Msg
		return zero, err
	}
	return msg, nil
}

// EncodeModel encodes model, like EncodeMessage.
func (s *JSONSerialiser[M, Msg]) EncodeModel(model M, format Format) ([]byte, error) {
	return s.encode(reflect.ValueOf(&model).Elem(), "state", format)
}

// DecodeModel decodes a model, like DecodeMessage.
func (s *JSONSerialiser[M, Msg]) DecodeModel(data []byte, format Format) (M, error) {
	var model M
	if err := s.decode(data, reflect.ValueOf(&model).Elem(), "state", format); err != nil {
		var zero M
		return zero, err
	}
	return model, nil
}

// jsonMsgPackEncoders are msgpack encoders that name fields by json tags.
var jsonMsgPackEncoders = sync.Pool{New: func() any {
	e := new(mpEncoder)
	e.enc = msgpack.NewEncoder(&e.w)
	e.enc.SetCustomStructTag("json")
	return e
}}

// encode writes v, a settable value of type M or Msg.
func (s *JSONSerialiser[M, Msg]) encode(v reflect.Value, root string, format Format) ([]byte, error) {
	var name string // the variant's name when v is an interface
	if v.Kind() == reflect.Interface {
		if v.IsNil() {
			return s.encodeNil(format, root)
		}
		vr := s.reg.byType[v.Elem().Type()]
		if vr == nil {
			return nil, Errorf(CodeInternal, "%s: %v is not a registered variant", root, v.Elem().Type())
		}
		name = vr.name
		v = v.Elem()
	}
	switch format {
	case FormatJSON:
		body, err := json.Marshal(v.Interface())
		if err != nil {
			return nil, Errorf(CodeInternal, "%s: %v", root, err)
		}
		if name == "" {
			return body, nil
		}
		out := make([]byte, 0, len(body)+len(name)+5)
		out = append(appendJSONString(append(out, '{'), name), ':')
		out = append(out, body...)
		return append(out, '}'), nil
	case FormatMsgPack:
		e := jsonMsgPackEncoders.Get().(*mpEncoder)
		e.w.buf = make([]byte, 0, 64)
		if name != "" {
			_ = e.enc.EncodeMapLen(1)
			_ = e.enc.EncodeString(name)
		}
		err := e.enc.EncodeValue(v)
		out := e.w.buf
		e.w.buf = nil
		jsonMsgPackEncoders.Put(e)
		if err != nil {
			return nil, Errorf(CodeInternal, "%s: %v", root, err)
		}
		return out, nil
	}
	return nil, Errorf(CodeInternal, "%s: unknown format %v", root, format)
}

func (s *JSONSerialiser[M, Msg]) encodeNil(format Format, root string) ([]byte, error) {
	switch format {
	case FormatJSON:
		return []byte("null"), nil
	case FormatMsgPack:
		return []byte{mpNilCode}, nil
	}
	return nil, Errorf(CodeInternal, "%s: unknown format %v", root, format)
}

// decode reads data into v, a settable zero value of type M or Msg.
func (s *JSONSerialiser[M, Msg]) decode(data []byte, v reflect.Value, root string, format Format) error {
	switch format {
	case FormatJSON:
		return s.decodeJSON(data, v, root)
	case FormatMsgPack:
		return s.decodeMsgPack(data, v, root)
	}
	return Errorf(CodeBadPayload, "%s: unknown format %v", root, format)
}

func (s *JSONSerialiser[M, Msg]) decodeJSON(data []byte, v reflect.Value, root string) error {
	if v.Kind() != reflect.Interface {
		if err := json.Unmarshal(data, v.Addr().Interface()); err != nil {
			return Errorf(CodeBadPayload, "%s: %v", root, err)
		}
		return nil
	}
	if isJSONNull(data) && validJSONValue(data) == nil {
		return nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(data, &obj); err != nil {
		return Errorf(CodeBadPayload, "%s: expected an object {\"Variant\": value}: %v", root, err)
	}
	if len(obj) != 1 {
		return Errorf(CodeBadPayload, "%s: expected an object with one key, the variant name, got %d keys", root, len(obj))
	}
	for name, raw := range obj {
		target, set, err := s.variantTarget(name, v, root)
		if err != nil {
			return err
		}
		if err := json.Unmarshal(raw, target.Interface()); err != nil {
			return Errorf(CodeBadPayload, "%s.%s: %v", root, truncate(name), err)
		}
		set()
	}
	return nil
}

// variantTarget returns a pointer to a new value of the variant called name
// and a function that stores it into v, an interface.
func (s *JSONSerialiser[M, Msg]) variantTarget(name string, v reflect.Value, root string) (reflect.Value, func(), error) {
	vr, t, err := s.reg.lookup(name, v.Type())
	if err != nil {
		return reflect.Value{}, nil, Errorf(CodeBadPayload, "%s: %v", root, err)
	}
	st := vr.typ
	if st.Kind() == reflect.Pointer {
		st = st.Elem()
	}
	target := reflect.New(st)
	set := func() {
		if t.Kind() == reflect.Pointer {
			v.Set(target)
		} else {
			v.Set(target.Elem())
		}
	}
	return target, set, nil
}

func (s *JSONSerialiser[M, Msg]) decodeMsgPack(data []byte, v reflect.Value, root string) (err error) {
	// Check the structure first: every length fits in data and the nesting
	// is bounded, so the library cannot be made to allocate wildly.
	m := getMPReader(data)
	err = m.skip()
	if err == nil && m.remaining() != 0 {
		err = fmt.Errorf("trailing data after the value")
	}
	m.put()
	if err != nil {
		return Errorf(CodeBadPayload, "%s: invalid MessagePack: %v", root, err)
	}
	defer func() {
		if r := recover(); r != nil {
			err = Errorf(CodeBadPayload, "%s: %v", root, r)
		}
	}()
	dec := msgpack.NewDecoder(bytes.NewReader(data))
	dec.SetCustomStructTag("json")
	if v.Kind() != reflect.Interface {
		if err := dec.DecodeValue(v); err != nil {
			return Errorf(CodeBadPayload, "%s: %v", root, err)
		}
		return nil
	}
	if len(data) == 1 && data[0] == mpNilCode {
		return nil
	}
	n, err := dec.DecodeMapLen()
	if err != nil || n != 1 {
		return Errorf(CodeBadPayload, "%s: expected a map with one key, the variant name", root)
	}
	name, err := dec.DecodeString()
	if err != nil {
		return Errorf(CodeBadPayload, "%s: expected a map with one key, the variant name: %v", root, err)
	}
	target, set, err := s.variantTarget(name, v, root)
	if err != nil {
		return err
	}
	if err := dec.DecodeValue(target.Elem()); err != nil {
		return Errorf(CodeBadPayload, "%s.%s: %v", root, truncate(name), err)
	}
	set()
	return nil
}
