package transport

import (
	"fmt"
	"reflect"
)

// AutomaticSerialiser is the Serialiser of lily's automatic format, built by
// Automatic. It is safe for concurrent use.
type AutomaticSerialiser[M, Msg any] struct {
	reg     *registry
	model   *typeInfo
	message *typeInfo
}

// Automatic returns the Serialiser of lily's automatic format for models of
// type M and messages of type Msg, which a Gleam client of lily can read and
// write. The package documentation describes the format.
//
// variants are example values of the types that interface-typed values may
// hold (Msg itself when it is an interface, and interface fields anywhere
// inside M or Msg): Increment{} registers the constructor "Increment",
// decoded as an Increment; &Add{} registers "Add", decoded as an *Add. An
// interface-typed value whose dynamic type is not registered cannot be
// encoded.
//
// Like regexp.MustCompile, Automatic panics when the types cannot work: a
// variant that is nil, not a struct or a pointer to one, or anonymous; two
// variants with the same type name; or a type reachable from M, Msg or the
// variants that the format cannot carry (channels, functions, complex
// numbers, anonymous structs, maps whose keys are not strings, integers or
// booleans).
func Automatic[M, Msg any](variants ...any) *AutomaticSerialiser[M, Msg] {
	b := &typeBuilder{infos: make(map[reflect.Type]*typeInfo)}
	s := &AutomaticSerialiser[M, Msg]{reg: newRegistry("Automatic", b, variants)}
	var err error
	if s.model, err = b.info(reflect.TypeFor[M]()); err != nil {
		panic(fmt.Sprintf("transport: Automatic: model type: %v", err))
	}
	if s.message, err = b.info(reflect.TypeFor[Msg]()); err != nil {
		panic(fmt.Sprintf("transport: Automatic: message type: %v", err))
	}
	return s
}

// EncodeMessage encodes msg in the automatic format. Encode errors (a value
// the format cannot carry, such as NaN, or an unregistered variant) are
// *Error values with CodeInternal.
func (s *AutomaticSerialiser[M, Msg]) EncodeMessage(msg Msg, format Format) ([]byte, error) {
	return s.encode(reflect.ValueOf(&msg).Elem(), s.message, "payload", format)
}

// DecodeMessage decodes a message written in the automatic format. Errors
// are *Error values with CodeBadPayload that name the path of the bad value,
// such as "payload.0.1: expected integer, got string".
func (s *AutomaticSerialiser[M, Msg]) DecodeMessage(data []byte, format Format) (Msg, error) {
	var msg Msg
	err := s.decode(data, reflect.ValueOf(&msg).Elem(), s.message, "payload", format)
	if err != nil {
		var zero Msg
		return zero, err
	}
	return msg, nil
}

// EncodeModel encodes model in the automatic format, like EncodeMessage.
func (s *AutomaticSerialiser[M, Msg]) EncodeModel(model M, format Format) ([]byte, error) {
	return s.encode(reflect.ValueOf(&model).Elem(), s.model, "state", format)
}

// DecodeModel decodes a model written in the automatic format, like
// DecodeMessage; error paths start with "state".
func (s *AutomaticSerialiser[M, Msg]) DecodeModel(data []byte, format Format) (M, error) {
	var model M
	err := s.decode(data, reflect.ValueOf(&model).Elem(), s.model, "state", format)
	if err != nil {
		var zero M
		return zero, err
	}
	return model, nil
}

func (s *AutomaticSerialiser[M, Msg]) encode(v reflect.Value, ti *typeInfo, root string, format Format) ([]byte, error) {
	switch format {
	case FormatJSON:
		out := jsonSink{buf: make([]byte, 0, 64)}
		e := encoder{reg: s.reg, out: &out}
		if err := e.value(v, ti); err != nil {
			return nil, located(CodeInternal, root, err)
		}
		return out.buf, nil
	case FormatMsgPack:
		me := getMPEncoder(make([]byte, 0, 64))
		e := encoder{reg: s.reg, out: msgpackSink{enc: me.enc}}
		err := e.value(v, ti)
		b := me.put()
		if err != nil {
			return nil, located(CodeInternal, root, err)
		}
		return b, nil
	}
	return nil, Errorf(CodeInternal, "%s: unknown format %v", root, format)
}

func (s *AutomaticSerialiser[M, Msg]) decode(data []byte, v reflect.Value, ti *typeInfo, root string, format Format) error {
	var src source
	switch format {
	case FormatJSON:
		src = &jsonSource{s: jsonScanner{data: data}}
	case FormatMsgPack:
		m := getMPReader(data)
		defer m.put()
		src = msgpackSource{m: m}
	default:
		return Errorf(CodeBadPayload, "%s: unknown format %v", root, format)
	}
	d := decoder{reg: s.reg, src: src}
	if err := d.value(v, ti); err != nil {
		return badPayload(root, err)
	}
	if err := src.end(); err != nil {
		return badPayload(root, err)
	}
	return nil
}
