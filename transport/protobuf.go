package transport

import (
	"bytes"
	"encoding/json"
	"fmt"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// ProtobufSerialiser is a Serialiser of Protocol Buffers messages, built by
// Protobuf. It is safe for concurrent use.
type ProtobufSerialiser[M proto.Message, Msg proto.Message] struct {
	model   protoreflect.MessageType
	message protoreflect.MessageType
}

// Protobuf returns a Serialiser for models and messages that are generated
// Protocol Buffers messages (pointer types such as *pb.Counter).
//
// In FormatMsgPack the bytes are the binary encoding (deterministic; an
// empty message is an empty, non-nil slice), carried in the envelope's bin
// value; in FormatJSON they are the canonical protojson encoding, compacted,
// embedded in the envelope as JSON. Decoding ignores unknown fields in both.
//
// Protobuf panics when M or Msg is not a concrete message type (for example
// proto.Message itself).
func Protobuf[M proto.Message, Msg proto.Message]() *ProtobufSerialiser[M, Msg] {
	return &ProtobufSerialiser[M, Msg]{
		model:   messageType[M](),
		message: messageType[Msg](),
	}
}

// messageType returns the message type of T, a generated message pointer.
func messageType[T proto.Message]() protoreflect.MessageType {
	var zero T
	if any(zero) == nil {
		panic(fmt.Sprintf("transport: Protobuf: %T is not a concrete message type", zero))
	}
	// Generated messages support ProtoReflect on a nil pointer.
	return zero.ProtoReflect().Type()
}

var (
	protoMarshal     = proto.MarshalOptions{Deterministic: true}
	protoUnmarshal   = proto.UnmarshalOptions{DiscardUnknown: true}
	protoJSONMarshal = protojson.MarshalOptions{}
	protoJSONDecode  = protojson.UnmarshalOptions{DiscardUnknown: true}
)

// EncodeMessage encodes msg. Errors are *Error values with CodeInternal.
func (s *ProtobufSerialiser[M, Msg]) EncodeMessage(msg Msg, format Format) ([]byte, error) {
	return protoEncode(msg, "payload", format)
}

// DecodeMessage decodes a message. Errors are *Error values with
// CodeBadPayload.
func (s *ProtobufSerialiser[M, Msg]) DecodeMessage(data []byte, format Format) (Msg, error) {
	msg := s.message.New().Interface().(Msg)
	if err := protoDecode(data, msg, "payload", format); err != nil {
		var zero Msg
		return zero, err
	}
	return msg, nil
}

// EncodeModel encodes model, like EncodeMessage.
func (s *ProtobufSerialiser[M, Msg]) EncodeModel(model M, format Format) ([]byte, error) {
	return protoEncode(model, "state", format)
}

// DecodeModel decodes a model, like DecodeMessage.
func (s *ProtobufSerialiser[M, Msg]) DecodeModel(data []byte, format Format) (M, error) {
	model := s.model.New().Interface().(M)
	if err := protoDecode(data, model, "state", format); err != nil {
		var zero M
		return zero, err
	}
	return model, nil
}

func protoEncode(m proto.Message, root string, format Format) ([]byte, error) {
	switch format {
	case FormatJSON:
		b, err := protoJSONMarshal.Marshal(m)
		if err != nil {
			return nil, Errorf(CodeInternal, "%s: %v", root, err)
		}
		// protojson varies its white space on purpose; compact it so that
		// the bytes are stable.
		var out bytes.Buffer
		if err := json.Compact(&out, b); err != nil {
			return nil, Errorf(CodeInternal, "%s: %v", root, err)
		}
		return out.Bytes(), nil
	case FormatMsgPack:
		b, err := protoMarshal.Marshal(m)
		if err != nil {
			return nil, Errorf(CodeInternal, "%s: %v", root, err)
		}
		if b == nil {
			b = []byte{}
		}
		return b, nil
	}
	return nil, Errorf(CodeInternal, "%s: unknown format %v", root, format)
}

func protoDecode(data []byte, m proto.Message, root string, format Format) error {
	var err error
	switch format {
	case FormatJSON:
		err = protoJSONDecode.Unmarshal(data, m)
	case FormatMsgPack:
		err = protoUnmarshal.Unmarshal(data, m)
	default:
		err = fmt.Errorf("unknown format %v", format)
	}
	if err != nil {
		return Errorf(CodeBadPayload, "%s: %v", root, err)
	}
	return nil
}
