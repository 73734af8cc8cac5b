package transport

import (
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

func newProtoStore() *ProtobufSerialiser[*structpb.Struct, *wrapperspb.StringValue] {
	return Protobuf[*structpb.Struct, *wrapperspb.StringValue]()
}

func TestProtobufRoundTrip(t *testing.T) {
	s := newProtoStore()
	model, err := structpb.NewStruct(map[string]any{"count": 3.0, "name": "x", "tags": []any{"a", true, nil}})
	if err != nil {
		t.Fatal(err)
	}
	msgs := []*wrapperspb.StringValue{wrapperspb.String("hello é😀"), wrapperspb.String(""), {}}
	for _, format := range formats {
		b, err := s.EncodeModel(model, format)
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.DecodeModel(b, format)
		if err != nil {
			t.Fatalf("%v: DecodeModel(%q): %v", format, b, err)
		}
		if !proto.Equal(got, model) {
			t.Errorf("%v: got %v, want %v", format, got, model)
		}
		for _, msg := range msgs {
			b, err := s.EncodeMessage(msg, format)
			if err != nil {
				t.Fatal(err)
			}
			if b == nil {
				t.Errorf("%v: EncodeMessage returned nil bytes", format)
			}
			got, err := s.DecodeMessage(b, format)
			if err != nil {
				t.Fatalf("%v: DecodeMessage(%q): %v", format, b, err)
			}
			if !proto.Equal(got, msg) {
				t.Errorf("%v: got %v, want %v", format, got, msg)
			}
		}
	}
}

func TestProtobufEnvelope(t *testing.T) {
	s := newProtoStore()
	b, err := s.EncodeMessage(wrapperspb.String("hi"), FormatJSON)
	if err != nil || string(b) != `"hi"` {
		t.Fatalf("JSON = %s, %v", b, err)
	}
	b, err = s.EncodeModel(&structpb.Struct{Fields: map[string]*structpb.Value{"a": structpb.NewNumberValue(1)}}, FormatJSON)
	if err != nil || string(b) != `{"a":1}` {
		t.Fatalf("JSON model = %s, %v", b, err)
	}
	// An empty message is an empty, non-nil payload, which the MessagePack
	// envelope carries.
	for _, format := range formats {
		p, err := s.EncodeMessage(&wrapperspb.StringValue{}, format)
		if err != nil {
			t.Fatal(err)
		}
		frame, err := Encode(Frame{Type: TypeClientMessage, Payload: p}, format)
		if err != nil {
			t.Fatalf("%v: Encode: %v", format, err)
		}
		f, err := Decode(frame, format)
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.DecodeMessage(f.Payload, format)
		if err != nil || got.GetValue() != "" {
			t.Errorf("%v: got %v, %v", format, got, err)
		}
	}
}

func TestProtobufErrors(t *testing.T) {
	s := newProtoStore()
	tests := []struct {
		name   string
		decode func() error
		reason string
	}{
		{"json wrong type", func() error { _, err := s.DecodeMessage([]byte(`5`), FormatJSON); return err }, "payload"},
		{"json invalid", func() error { _, err := s.DecodeModel([]byte(`{"a":`), FormatJSON); return err }, "state"},
		{"json trailing", func() error { _, err := s.DecodeMessage([]byte(`"a" "b"`), FormatJSON); return err }, "payload"},
		{"binary invalid", func() error { _, err := s.DecodeMessage([]byte{0x0a, 0x05, 'a'}, FormatMsgPack); return err }, "payload"},
		{"binary bad utf8", func() error { _, err := s.DecodeMessage([]byte{0x0a, 0x01, 0xff}, FormatMsgPack); return err }, "payload"},
		{"unknown format", func() error { _, err := s.DecodeMessage(nil, 0); return err }, "unknown format"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkBadPayload(t, tc.decode(), tc.reason)
		})
	}
	func() {
		defer func() {
			if r := recover(); r == nil {
				t.Error("Protobuf[proto.Message, ...] did not panic")
			}
		}()
		Protobuf[proto.Message, *wrapperspb.StringValue]()
	}()
}
