package transport

import (
	"encoding/json"
	"reflect"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// formatOf picks the format of a fuzz input.
func formatOf(msgpack bool) Format {
	if msgpack {
		return FormatMsgPack
	}
	return FormatJSON
}

func FuzzDecode(f *testing.F) {
	for _, tc := range frameCases {
		for _, format := range formats {
			b, err := Encode(tc.frame, format)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b, format == FormatMsgPack)
		}
	}
	for _, in := range []string{
		`{"id":2,"payload":{"a":[1]},"type":"client_message"}`,
		`{"type":"acknowledge","x":{"y":[1,{"z":null}]},"sequence":3}`,
		`{"type":"resync","after_sequence":null,"delta":true,"epoch":"\u00e9\ud83d\ude00"}`,
		`{"type":"acknowledge","sequence":-1}`, `{"type":"push","payload":1} x`, `[]`, ``, `{"type":"error","code":"x","reason":"a\ufffd"}`,
	} {
		f.Add([]byte(in), false)
	}
	f.Add([]byte{0x82, 0xa4, 't', 'y', 'p', 'e', 0xa4, 'p', 'u', 's', 'h', 0xa7, 'p', 'a', 'y', 'l', 'o', 'a', 'd', 0xc4, 0x00}, true)
	f.Add([]byte{0xdf, 0xff, 0xff, 0xff, 0xff}, true)
	f.Fuzz(func(t *testing.T, data []byte, msgpack bool) {
		format := formatOf(msgpack)
		peeked := PeekType(data) // never panics
		frame, err := Decode(data, format)
		if err == nil && DetectFormat(data) == format && peeked != frame.Type {
			t.Fatalf("PeekType = %v, Decode says %v", peeked, frame.Type)
		}
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("Decode error %T is not a *Error: %v", err, err)
			}
			return
		}
		if format == FormatJSON && !json.Valid(data) {
			t.Fatalf("Decode accepted invalid JSON %q", data)
		}
		b, err := Encode(frame, format)
		if err != nil {
			t.Fatalf("Encode(%+v) of a decoded frame: %v", frame, err)
		}
		if got := PeekType(b); got != frame.Type {
			t.Fatalf("PeekType of an encoded %v frame = %v", frame.Type, got)
		}
		again, err := Decode(b, format)
		if err != nil {
			t.Fatalf("Decode(%q) of an encoded frame: %v", b, err)
		}
		if !reflect.DeepEqual(again, frame) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", again, frame)
		}
	})
}

// FuzzAutomatic decodes messages and models of a store with every kind of
// value the automatic format has.
func FuzzAutomatic(f *testing.F) {
	msgs := Automatic[Team, Msg](Increment{}, Add{}, SetName{}, &Rename{}, Batch{})
	models := Automatic[Team, Msg]()
	opts := Automatic[Opts, Floats]()
	seeds := []func(Format) ([]byte, error){
		func(fm Format) ([]byte, error) { return msgs.EncodeMessage(Add{N: 5}, fm) },
		func(fm Format) ([]byte, error) { return msgs.EncodeMessage(Increment{}, fm) },
		func(fm Format) ([]byte, error) {
			return msgs.EncodeMessage(Batch{Msgs: []Msg{Add{N: 1}, &Rename{To: "r"}, nil}, First: SetName{Name: "é"}}, fm)
		},
		func(fm Format) ([]byte, error) {
			return models.EncodeModel(Team{Name: "t", Members: []Person{{Name: "a", Age: 3}}, Backup: &Person{},
				Tags: map[string]int{"a": 1}, Scores: map[int]float64{-1: 1.5}, Flags: map[bool]string{true: "x"},
				Grid: [3]int{1, 2, 3}, Bytes: []byte{1}, Nested: [][]int{{1}}}, fm)
		},
		func(fm Format) ([]byte, error) { return opts.EncodeModel(Opts{P: ptr(1), PP: ptr(ptr("s"))}, fm) },
		func(fm Format) ([]byte, error) { return opts.EncodeMessage(Floats{F32: 3, F64: -1e300}, fm) },
	}
	for _, seed := range seeds {
		for _, format := range formats {
			b, err := seed(format)
			if err != nil {
				f.Fatal(err)
			}
			for kind := range uint8(4) {
				f.Add(b, format == FormatMsgPack, kind)
			}
		}
	}
	f.Fuzz(func(t *testing.T, data []byte, msgpack bool, kind uint8) {
		format := formatOf(msgpack)
		switch kind % 4 {
		case 0:
			checkAutomatic(t, data, format, msgs.DecodeMessage, msgs.EncodeMessage)
		case 1:
			checkAutomatic(t, data, format, models.DecodeModel, models.EncodeModel)
		case 2:
			checkAutomatic(t, data, format, opts.DecodeModel, opts.EncodeModel)
		case 3:
			checkAutomatic(t, data, format, opts.DecodeMessage, opts.EncodeMessage)
		}
	})
}

// checkAutomatic decodes data; when that succeeds, the value must encode,
// and decode again to an equal value.
func checkAutomatic[T any](t *testing.T, data []byte, format Format,
	decode func([]byte, Format) (T, error), encode func(T, Format) ([]byte, error)) {
	v, err := decode(data, format)
	if err != nil {
		if e, ok := err.(*Error); !ok || e.Code != CodeBadPayload {
			t.Fatalf("decode error is not a bad_payload *Error: %v", err)
		}
		return
	}
	if format == FormatJSON && !json.Valid(data) {
		t.Fatalf("decode accepted invalid JSON %q", data)
	}
	b, err := encode(v, format)
	if err != nil {
		t.Fatalf("encode(%#v) of a decoded value: %v", v, err)
	}
	again, err := decode(b, format)
	if err != nil {
		t.Fatalf("decode(%q) of an encoded value: %v", b, err)
	}
	if !reflect.DeepEqual(again, v) {
		t.Fatalf("round trip:\n got %#v\nwant %#v", again, v)
	}
}

func FuzzJSONSerialiser(f *testing.F) {
	s := newJSONStore()
	for _, format := range formats {
		for _, m := range []Msg{Add{N: 5}, Increment{}, &Rename{To: "x"}, SetName{Name: "n", Force: true}, nil} {
			b, err := s.EncodeMessage(m, format)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b, format == FormatMsgPack, false)
		}
		b, err := s.EncodeModel(Profile{Name: "a", Age: 3, Tags: []string{"t"}, Extra: map[string]int{"x": 1}}, format)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, format == FormatMsgPack, true)
	}
	f.Fuzz(func(t *testing.T, data []byte, msgpack, model bool) {
		format := formatOf(msgpack)
		if model {
			checkAutomatic(t, data, format, s.DecodeModel, s.EncodeModel)
		} else {
			checkAutomatic(t, data, format, s.DecodeMessage, s.EncodeMessage)
		}
	})
}

func FuzzProtobuf(f *testing.F) {
	s := newProtoStore()
	model, _ := structpb.NewStruct(map[string]any{"a": 1.0, "b": []any{"x", true, nil}, "c": map[string]any{"d": "e"}})
	for _, format := range formats {
		b, err := s.EncodeModel(model, format)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, format == FormatMsgPack, true)
		b, err = s.EncodeMessage(wrapperspb.String("hi"), format)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, format == FormatMsgPack, false)
	}
	f.Fuzz(func(t *testing.T, data []byte, msgpack, isModel bool) {
		format := formatOf(msgpack)
		var m, again proto.Message
		var err error
		if isModel {
			m, err = s.DecodeModel(data, format)
		} else {
			m, err = s.DecodeMessage(data, format)
		}
		if err != nil {
			if e, ok := err.(*Error); !ok || e.Code != CodeBadPayload {
				t.Fatalf("decode error is not a bad_payload *Error: %v", err)
			}
			return
		}
		var b []byte
		if isModel {
			b, err = s.EncodeModel(m.(*structpb.Struct), format)
		} else {
			b, err = s.EncodeMessage(m.(*wrapperspb.StringValue), format)
		}
		if err != nil {
			t.Fatalf("encode of a decoded value: %v", err)
		}
		if isModel {
			again, err = s.DecodeModel(b, format)
		} else {
			again, err = s.DecodeMessage(b, format)
		}
		if err != nil {
			t.Fatalf("decode(%q) of an encoded value: %v", b, err)
		}
		if !proto.Equal(again, m) {
			t.Fatalf("round trip: got %v, want %v", again, m)
		}
	})
}

// FuzzJSONScanner checks the hand-written JSON validator against
// encoding/json.
func FuzzJSONScanner(f *testing.F) {
	for _, s := range []string{
		`{"a":[1,-2.5e+3,true,false,null,"\u00e9\n"]}`, ` [ ] `, `{}`, `"\ud83d\ude00"`, `-0`, `01`, `1.`, `.5`,
		`[1,]`, `{"a":1,}`, `{"a" 1}`, `[1}`, `"a\x"`, "\"\x01\"", `nul`, `tru`, `1e`, `-`, `"\u12"`, "\"\xff\"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		err := validJSONValue(data)
		if valid := json.Valid(data); valid != (err == nil) {
			t.Fatalf("validJSONValue(%q) = %v, json.Valid = %v", data, err, valid)
		}
	})
}
