package transport

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

// frameCases are valid frames of every type; each round-trips in both
// formats.
var frameCases = []struct {
	name  string
	frame Frame
}{
	{"client_message", Frame{Type: TypeClientMessage, Payload: []byte(`{"_":"Add","0":5}`)}},
	{"client_message with id", Frame{Type: TypeClientMessage, ID: 7, Payload: []byte(`[1,2,{"a":null}]`)}},
	{"client_message scalar payload", Frame{Type: TypeClientMessage, ID: 1<<64 - 1, Payload: []byte(`"x"`)}},
	{"resync", Frame{Type: TypeResync}},
	{"resync delta", Frame{Type: TypeResync, AfterSequence: 42, Delta: true, Epoch: "epoch-1"}},
	{"acknowledge zero", Frame{Type: TypeAcknowledge}},
	{"acknowledge with id", Frame{Type: TypeAcknowledge, Sequence: 12, ID: 3}},
	{"server_message", Frame{Type: TypeServerMessage, Sequence: 1<<64 - 1, Payload: []byte(`{"_":"Increment"}`)}},
	{"snapshot", Frame{Type: TypeSnapshot, State: []byte(`{"_":"Model","0":3,"1":"x"}`)}},
	{"snapshot with epoch", Frame{Type: TypeSnapshot, Sequence: 9, State: []byte(`1.5e3`), Epoch: "é\"\\\n"}},
	{"push", Frame{Type: TypePush, Payload: []byte(`true`)}},
	{"synced", Frame{Type: TypeSynced, Sequence: 5, Epoch: "e"}},
	{"synced empty epoch", Frame{Type: TypeSynced}},
	{"error", Frame{Type: TypeError, Code: CodeBadFrame, Reason: "bad \"frame\"\n\u2028😀\x01"}},
	{"error with id", Frame{Type: TypeError, Code: "custom_code", ID: 4}},
}

func TestRoundTrip(t *testing.T) {
	for _, format := range []Format{FormatJSON, FormatMsgPack} {
		for _, tc := range frameCases {
			t.Run(format.String()+"/"+tc.name, func(t *testing.T) {
				b, err := Encode(tc.frame, format)
				if err != nil {
					t.Fatalf("Encode: %v", err)
				}
				if got := DetectFormat(b); got != format {
					t.Errorf("DetectFormat = %v", got)
				}
				got, err := Decode(b, format)
				if err != nil {
					t.Fatalf("Decode(%q): %v", b, err)
				}
				if !reflect.DeepEqual(got, tc.frame) {
					t.Errorf("round trip:\n got %+v\nwant %+v", got, tc.frame)
				}
			})
		}
	}
}

func TestAppendEncode(t *testing.T) {
	dst := []byte("prefix")
	f := Frame{Type: TypePush, Payload: []byte(`1`)}
	for _, format := range []Format{FormatJSON, FormatMsgPack} {
		b, err := AppendEncode(dst, f, format)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(b, dst) {
			t.Fatalf("%v: lost the prefix: %q", format, b)
		}
		want, _ := Encode(f, format)
		if !bytes.Equal(b[len(dst):], want) {
			t.Errorf("%v: appended %q, want %q", format, b[len(dst):], want)
		}
		if b, err := AppendEncode(dst, Frame{Type: TypePush}, format); err == nil || string(b) != "prefix" {
			t.Errorf("%v: on error got %q, %v; want dst unchanged and an error", format, b, err)
		}
	}
}

func TestEncodeJSONExact(t *testing.T) {
	tests := []struct {
		name  string
		frame Frame
		want  string
	}{
		{"acknowledge", Frame{Type: TypeAcknowledge, ID: 3}, `{"type":"acknowledge","sequence":0,"id":3}`},
		{"acknowledge no id", Frame{Type: TypeAcknowledge, Sequence: 8}, `{"type":"acknowledge","sequence":8}`},
		{"client_message", Frame{Type: TypeClientMessage, ID: 2, Payload: []byte(`{"_":"Add","0":5}`)},
			`{"type":"client_message","payload":{"_":"Add","0":5},"id":2}`},
		{"resync", Frame{Type: TypeResync}, `{"type":"resync","after_sequence":0}`},
		{"resync delta", Frame{Type: TypeResync, AfterSequence: 4, Delta: true, Epoch: "e1"},
			`{"type":"resync","after_sequence":4,"delta":true,"epoch":"e1"}`},
		{"server_message", Frame{Type: TypeServerMessage, Sequence: 7, Payload: []byte(`{"_":"Increment"}`)},
			`{"type":"server_message","sequence":7,"payload":{"_":"Increment"}}`},
		{"snapshot", Frame{Type: TypeSnapshot, State: []byte(`{"_":"Model","0":3,"1":"x"}`)},
			`{"type":"snapshot","sequence":0,"state":{"_":"Model","0":3,"1":"x"}}`},
		{"snapshot epoch", Frame{Type: TypeSnapshot, Sequence: 1, State: []byte(`[]`), Epoch: "e"},
			`{"type":"snapshot","sequence":1,"state":[],"epoch":"e"}`},
		{"push", Frame{Type: TypePush, Payload: []byte(`"hi"`)}, `{"type":"push","payload":"hi"}`},
		{"synced", Frame{Type: TypeSynced, Sequence: 9}, `{"type":"synced","sequence":9,"epoch":""}`},
		{"error", Frame{Type: TypeError, Code: CodeRejected, Reason: "a \"b\"\n\x01\u2028<>"},
			`{"type":"error","code":"rejected","reason":"a \"b\"\n\u0001\u2028<>"}`},
		{"error invalid utf8", Frame{Type: TypeError, Code: CodeInternal, Reason: "x\xffy", ID: 1},
			`{"type":"error","code":"internal","reason":"x\ufffdy","id":1}`},
		{"ignores other fields", Frame{Type: TypePush, Payload: []byte(`1`), ID: 5, Sequence: 6, Epoch: "e", State: []byte(`2`)},
			`{"type":"push","payload":1}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := Encode(tc.frame, FormatJSON)
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != tc.want {
				t.Errorf("got  %s\nwant %s", b, tc.want)
			}
		})
	}
}

func TestEncodeMsgPackExact(t *testing.T) {
	b, err := Encode(Frame{Type: TypeAcknowledge, ID: 3}, FormatMsgPack)
	if err != nil {
		t.Fatal(err)
	}
	want := []byte("\x83\xa4type\xabacknowledge\xa8sequence\x00\xa2id\x03")
	if !bytes.Equal(b, want) {
		t.Errorf("got %x, want %x", b, want)
	}
	// The payload is a bin value holding the serialiser's bytes.
	b, _ = Encode(Frame{Type: TypePush, Payload: []byte{0x81, 0xa1, '_', 0xa1, 'X'}}, FormatMsgPack)
	var m map[string]any
	if err := msgpack.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if p, ok := m["payload"].([]byte); !ok || !bytes.Equal(p, []byte{0x81, 0xa1, '_', 0xa1, 'X'}) {
		t.Errorf("payload = %#v, want the bin value", m["payload"])
	}
	// An empty, non-nil payload is an empty bin.
	f := Frame{Type: TypeClientMessage, Payload: []byte{}}
	b, err = Encode(f, FormatMsgPack)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := Decode(b, FormatMsgPack); err != nil || !reflect.DeepEqual(got, f) {
		t.Errorf("empty payload: got %+v, %v", got, err)
	}
}

func TestEncodeErrors(t *testing.T) {
	tests := []struct {
		name   string
		frame  Frame
		format Format
	}{
		{"zero type", Frame{}, FormatJSON},
		{"unknown type", Frame{Type: 99, Payload: []byte(`1`)}, FormatMsgPack},
		{"unknown format", Frame{Type: TypeAcknowledge}, 0},
		{"missing payload json", Frame{Type: TypeClientMessage}, FormatJSON},
		{"missing payload msgpack", Frame{Type: TypeServerMessage}, FormatMsgPack},
		{"empty payload json", Frame{Type: TypePush, Payload: []byte{}}, FormatJSON},
		{"invalid payload", Frame{Type: TypePush, Payload: []byte(`{"a":}`)}, FormatJSON},
		{"two values", Frame{Type: TypePush, Payload: []byte(`1 2`)}, FormatJSON},
		{"null payload", Frame{Type: TypePush, Payload: []byte(` null `)}, FormatJSON},
		{"missing state", Frame{Type: TypeSnapshot}, FormatJSON},
		{"missing state msgpack", Frame{Type: TypeSnapshot}, FormatMsgPack},
		{"invalid state", Frame{Type: TypeSnapshot, State: []byte(`{`)}, FormatJSON},
		{"empty code", Frame{Type: TypeError}, FormatJSON},
		{"empty code msgpack", Frame{Type: TypeError, Reason: "x"}, FormatMsgPack},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Encode(tc.frame, tc.format)
			var e *Error
			if !errors.As(err, &e) || e.Code != CodeInternal {
				t.Fatalf("Encode error = %v, want a *Error with CodeInternal", err)
			}
		})
	}
}

func TestDecodeJSONLenient(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want Frame
	}{
		{"any key order", `{"id":2,"payload":{"a":[1]},"type":"client_message"}`,
			Frame{Type: TypeClientMessage, ID: 2, Payload: []byte(`{"a":[1]}`)}},
		{"white space", " \n{ \"type\" : \"push\" ,\t\"payload\" : [ 1 , 2 ] }\r\n",
			Frame{Type: TypePush, Payload: []byte(`[ 1 , 2 ]`)}},
		{"unknown fields", `{"type":"acknowledge","x":{"y":[1,{"z":null}]},"sequence":3,"w":"\u00e9"}`,
			Frame{Type: TypeAcknowledge, Sequence: 3}},
		{"fields of other types ignored", `{"type":"push","payload":1,"sequence":"x","id":-1,"delta":5}`,
			Frame{Type: TypePush, Payload: []byte(`1`)}},
		{"null optional fields", `{"type":"resync","after_sequence":null,"delta":null,"epoch":null}`,
			Frame{Type: TypeResync}},
		{"resync defaults", `{"type":"resync"}`, Frame{Type: TypeResync}},
		{"escaped type and key", `{"\u0074ype":"sync\u0065d","sequence":1}`, Frame{Type: TypeSynced, Sequence: 1}},
		{"acknowledge id 0", `{"type":"acknowledge","sequence":1,"id":0}`, Frame{Type: TypeAcknowledge, Sequence: 1}},
		{"last duplicate wins", `{"type":"push","payload":1,"payload":2}`, Frame{Type: TypePush, Payload: []byte(`2`)}},
		{"max uint64", `{"type":"synced","sequence":18446744073709551615,"epoch":"e"}`,
			Frame{Type: TypeSynced, Sequence: 1<<64 - 1, Epoch: "e"}},
		{"escapes in strings", `{"type":"error","code":"x","reason":"a\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00"}`,
			Frame{Type: TypeError, Code: "x", Reason: "a\"\\/\b\f\n\r\té😀"}},
		{"invalid utf8 replaced", "{\"type\":\"error\",\"code\":\"x\",\"reason\":\"a\xffb\"}",
			Frame{Type: TypeError, Code: "x", Reason: "a\ufffdb"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Decode([]byte(tc.in), FormatJSON)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestDecodeCopiesPayload(t *testing.T) {
	for _, format := range []Format{FormatJSON, FormatMsgPack} {
		b, _ := Encode(Frame{Type: TypePush, Payload: []byte(`[1,2,3]`)}, format)
		f, err := Decode(b, format)
		if err != nil {
			t.Fatal(err)
		}
		for i := range b {
			b[i] = 'x'
		}
		if string(f.Payload) != `[1,2,3]` {
			t.Errorf("%v: payload changed with the input: %q", format, f.Payload)
		}
	}
}

func TestDecodeJSONErrors(t *testing.T) {
	deep := `{"type":"push","payload":1,"x":` + strings.Repeat("[", maxDepth+1) + strings.Repeat("]", maxDepth+1) + `}`
	tests := []struct {
		name, in, reason string
	}{
		{"empty", ``, "empty frame"},
		{"blank", " \n ", "empty frame"},
		{"not json", `hello`, "invalid JSON"},
		{"single quotes", `{'type':'push'}`, "invalid JSON"},
		{"truncated", `{"type":"push","payload":`, "invalid JSON"},
		{"truncated string", `{"type":"pu`, "invalid JSON"},
		{"missing value", `{"type":"push","payload":}`, "invalid JSON"},
		{"trailing comma", `{"type":"push","payload":1,}`, "invalid JSON"},
		{"bad literal", `{"type":"push","payload":nul}`, "invalid JSON"},
		{"bad number", `{"type":"push","payload":01}`, "invalid JSON"},
		{"bad number 2", `{"type":"push","payload":1.}`, "invalid JSON"},
		{"bad escape", `{"type":"push\x"}`, "invalid JSON"},
		{"bad unicode escape", `{"type":"push\u12G4"}`, "invalid JSON"},
		{"control char", "{\"type\":\"pu\nsh\"}", "invalid JSON"},
		{"too deep", deep, "invalid JSON"},
		{"array", `[{"type":"push"}]`, "not a JSON object"},
		{"string", `"push"`, "not a JSON object"},
		{"null", `null`, "not a JSON object"},
		{"number", `12`, "not a JSON object"},
		{"missing type", `{}`, "missing type"},
		{"missing type 2", `{"payload":1}`, "missing type"},
		{"null type", `{"type":null,"payload":1}`, "missing type"},
		{"number type", `{"type":1}`, "type must be a string"},
		{"object type", `{"type":{"a":1}}`, "type must be a string"},
		{"unknown type", `{"type":"foo"}`, `unknown frame type "foo"`},
		{"wrong case type", `{"type":"Push","payload":1}`, `unknown frame type "Push"`},
		{"client_message no payload", `{"type":"client_message","id":1}`, "missing payload"},
		{"client_message null payload", `{"type":"client_message","payload":null}`, "missing payload"},
		{"server_message no sequence", `{"type":"server_message","payload":1}`, "missing sequence"},
		{"server_message no payload", `{"type":"server_message","sequence":1}`, "missing payload"},
		{"snapshot no state", `{"type":"snapshot","sequence":1}`, "missing state"},
		{"snapshot no sequence", `{"type":"snapshot","state":{}}`, "missing sequence"},
		{"push no payload", `{"type":"push"}`, "missing payload"},
		{"acknowledge no sequence", `{"type":"acknowledge","id":1}`, "missing sequence"},
		{"synced no sequence", `{"type":"synced","epoch":"e"}`, "missing sequence"},
		{"error no code", `{"type":"error","reason":"r"}`, "missing code"},
		{"error empty code", `{"type":"error","code":""}`, "missing code"},
		{"negative", `{"type":"acknowledge","sequence":-1}`, "sequence must be a non-negative integer, got -1"},
		{"negative zero", `{"type":"acknowledge","sequence":-0}`, "sequence must be a non-negative integer"},
		{"fraction", `{"type":"acknowledge","sequence":1.5}`, "sequence must be a non-negative integer, got 1.5"},
		{"exponent", `{"type":"acknowledge","sequence":1e3}`, "sequence must be a non-negative integer"},
		{"integral float", `{"type":"acknowledge","sequence":3.0}`, "sequence must be a non-negative integer"},
		{"beyond uint64", `{"type":"acknowledge","sequence":18446744073709551616}`, "beyond the range of uint64"},
		{"string sequence", `{"type":"acknowledge","sequence":"1"}`, "sequence must be a non-negative integer, got string"},
		{"bool after_sequence", `{"type":"resync","after_sequence":true}`, "after_sequence must be a non-negative integer, got boolean"},
		{"id zero", `{"type":"client_message","payload":1,"id":0}`, "id must be at least 1"},
		{"negative id", `{"type":"client_message","payload":1,"id":-2}`, "id must be a non-negative integer"},
		{"string id", `{"type":"error","code":"x","id":"1"}`, "id must be a non-negative integer"},
		{"string delta", `{"type":"resync","delta":"yes"}`, "delta must be a boolean, got string"},
		{"number epoch", `{"type":"resync","epoch":5}`, "epoch must be a string, got number"},
		{"number code", `{"type":"error","code":5}`, "code must be a string"},
		{"bool reason", `{"type":"error","code":"x","reason":true}`, "reason must be a string"},
		{"trailing garbage", `{"type":"push","payload":1} x`, "trailing data"},
		{"two objects", `{"type":"push","payload":1}{"type":"push","payload":1}`, "trailing data"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode([]byte(tc.in), FormatJSON)
			checkBadFrame(t, err, tc.reason)
		})
	}
}

func checkBadFrame(t *testing.T, err error, reason string) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) || e.Code != CodeBadFrame {
		t.Fatalf("error = %v, want a *Error with CodeBadFrame", err)
	}
	if !strings.Contains(e.Reason, reason) {
		t.Errorf("reason %q does not contain %q", e.Reason, reason)
	}
}

// mp encodes values as MessagePack one after the other; a map[string]any
// argument is written with its keys in the order of keys.
func mp(t *testing.T, values ...any) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	for _, v := range values {
		if err := enc.Encode(v); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

// mpObj encodes a map with its entries in order: key, value, key, value...
func mpObj(t *testing.T, kv ...any) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	if err := enc.EncodeMapLen(len(kv) / 2); err != nil {
		t.Fatal(err)
	}
	for _, v := range kv {
		if err := enc.Encode(v); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

func TestDecodeMsgPackLenient(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want Frame
	}{
		{"any key order", mpObj(t, "id", 2, "payload", []byte("p"), "type", "client_message"),
			Frame{Type: TypeClientMessage, ID: 2, Payload: []byte("p")}},
		{"unknown fields of every kind", mpObj(t,
			"type", "acknowledge",
			"a", map[string]any{"x": []any{1, "y", nil, 1.5, true}},
			"b", msgpack.RawMessage{0xd4, 0x01, 0x02}, // fixext1
			"c", msgpack.RawMessage{0xc7, 0x02, 0x05, 0x01, 0x02}, // ext8
			"sequence", 3,
			"d", []byte("bin"),
		), Frame{Type: TypeAcknowledge, Sequence: 3}},
		{"signed encodings", mpObj(t, "type", "acknowledge", "sequence", int64(300), "id", int8(5)),
			Frame{Type: TypeAcknowledge, Sequence: 300, ID: 5}},
		{"max uint64", mpObj(t, "type", "server_message", "sequence", uint64(1<<64-1), "payload", []byte{}),
			Frame{Type: TypeServerMessage, Sequence: 1<<64 - 1, Payload: []byte{}}},
		{"nil optional fields", mpObj(t, "type", "resync", "after_sequence", nil, "delta", nil, "epoch", nil),
			Frame{Type: TypeResync}},
		{"fields of other types ignored", mpObj(t, "type", "push", "payload", []byte("x"), "sequence", "s"),
			Frame{Type: TypePush, Payload: []byte("x")}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Decode(tc.in, FormatMsgPack)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestDecodeMsgPackErrors(t *testing.T) {
	valid := mpObj(t, "type", "push", "payload", []byte("x"))
	hugeBin := append(mpObj(t, "type", "push")[:0:0], 0x82, 0xa4, 't', 'y', 'p', 'e', 0xa4, 'p', 'u', 's', 'h',
		0xa7, 'p', 'a', 'y', 'l', 'o', 'a', 'd', 0xc6, 0x7f, 0xff, 0xff, 0xff)
	deep := append([]byte{0x83, 0xa4, 't', 'y', 'p', 'e', 0xa4, 'p', 'u', 's', 'h', 0xa1, 'x'},
		bytes.Repeat([]byte{0x91}, maxDepth+1)...)
	deep = append(deep, 0x01, 0xa7, 'p', 'a', 'y', 'l', 'o', 'a', 'd', 0xc4, 0x00)
	tests := []struct {
		name   string
		in     []byte
		reason string
	}{
		{"empty", nil, "empty frame"},
		{"array", mp(t, []any{"type", "push"}), "not a MessagePack map (got array)"},
		{"string", mp(t, "push"), "not a MessagePack map"},
		{"nil", mp(t, nil), "not a MessagePack map"},
		{"invalid code", []byte{0xc1}, "invalid MessagePack"},
		{"truncated", valid[:len(valid)-1], "invalid MessagePack"},
		{"truncated header", []byte{0xdf, 0x00}, "invalid MessagePack"},
		{"huge map", []byte{0xdf, 0xff, 0xff, 0xff, 0xff}, "invalid MessagePack"},
		{"huge bin", hugeBin, "invalid MessagePack"},
		{"too deep", deep, "invalid MessagePack"},
		{"trailing byte", append(append([]byte{}, valid...), 0x00), "trailing data"},
		{"two maps", append(append([]byte{}, valid...), valid...), "trailing data"},
		{"integer key", mpObj(t, "type", "push", 1, "x", "payload", []byte("x")), "keys must be strings"},
		{"missing type", mpObj(t, "payload", []byte("x")), "missing type"},
		{"nil type", mpObj(t, "type", nil, "payload", []byte("x")), "missing type"},
		{"int type", mpObj(t, "type", 1), "type must be a string, got integer"},
		{"bin type", mpObj(t, "type", []byte("push")), "type must be a string, got bin"},
		{"unknown type", mpObj(t, "type", "foo"), `unknown frame type "foo"`},
		{"missing payload", mpObj(t, "type", "client_message"), "missing payload"},
		{"nil payload", mpObj(t, "type", "client_message", "payload", nil), "missing payload"},
		{"string payload", mpObj(t, "type", "push", "payload", "x"), "payload must be a bin value, got string"},
		{"map payload", mpObj(t, "type", "push", "payload", map[string]any{}), "payload must be a bin value, got map"},
		{"missing state", mpObj(t, "type", "snapshot", "sequence", 1), "missing state"},
		{"missing sequence", mpObj(t, "type", "synced"), "missing sequence"},
		{"missing code", mpObj(t, "type", "error"), "missing code"},
		{"negative sequence", mpObj(t, "type", "acknowledge", "sequence", -1), "sequence must be a non-negative integer, got -1"},
		{"negative int64", mpObj(t, "type", "acknowledge", "sequence", int64(-1<<40)), "non-negative integer"},
		{"float sequence", mpObj(t, "type", "acknowledge", "sequence", 1.0), "sequence must be a non-negative integer, got float"},
		{"string sequence", mpObj(t, "type", "acknowledge", "sequence", "1"), "got string"},
		{"id zero", mpObj(t, "type", "client_message", "payload", []byte("x"), "id", 0), "id must be at least 1"},
		{"string delta", mpObj(t, "type", "resync", "delta", "yes"), "delta must be a boolean, got string"},
		{"int epoch", mpObj(t, "type", "synced", "sequence", 1, "epoch", 1), "epoch must be a string, got integer"},
		{"bin code", mpObj(t, "type", "error", "code", []byte("x")), "code must be a string"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode(tc.in, FormatMsgPack)
			checkBadFrame(t, err, tc.reason)
		})
	}
}

func TestDecodeUnknownFormat(t *testing.T) {
	_, err := Decode([]byte(`{"type":"push","payload":1}`), 0)
	checkBadFrame(t, err, "unknown format")
}

func BenchmarkEncode(b *testing.B) {
	f := Frame{Type: TypeServerMessage, Sequence: 123456, Payload: []byte(`{"_":"Add","0":5}`)}
	for _, format := range []Format{FormatJSON, FormatMsgPack} {
		b.Run(format.String(), func(b *testing.B) {
			b.ReportAllocs()
			buf := make([]byte, 0, 256)
			for b.Loop() {
				var err error
				buf, err = AppendEncode(buf[:0], f, format)
				if err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(format.String()+"/alloc", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Encode(f, format); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkDecode(b *testing.B) {
	f := Frame{Type: TypeClientMessage, ID: 42, Payload: []byte(`{"_":"Add","0":5}`)}
	for _, format := range []Format{FormatJSON, FormatMsgPack} {
		data, err := Encode(f, format)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(format.String(), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if _, err := Decode(data, format); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func TestPeekType(t *testing.T) {
	frames := []Frame{
		{Type: TypeAcknowledge, Sequence: 3, ID: 9},
		{Type: TypeServerMessage, Sequence: 4, Payload: []byte(`{"_":"Add","0":5}`)},
		{Type: TypeSnapshot, Sequence: 4, State: []byte(`{"n":1}`), Epoch: "e"},
		{Type: TypeSynced, Sequence: 4, Epoch: "e"},
		{Type: TypeError, Code: CodeRejected, Reason: "no", ID: 2},
		{Type: TypePush, Payload: []byte(`1`)},
		{Type: TypeClientMessage, Payload: []byte(`1`), ID: 1},
		{Type: TypeResync, AfterSequence: 2, Delta: true, Epoch: "e"},
	}
	for _, f := range frames {
		for _, format := range []Format{FormatJSON, FormatMsgPack} {
			payload := f
			if format == FormatMsgPack {
				payload.Payload, payload.State = []byte{0x01}, []byte{0x02}
			}
			b, err := Encode(payload, format)
			if err != nil {
				t.Fatal(err)
			}
			if got := PeekType(b); got != f.Type {
				t.Errorf("PeekType(%v %v) = %v", f.Type, format, got)
			}
		}
	}
	// Frames laid out differently are decoded.
	for in, want := range map[string]FrameType{
		`{"id":2,"type":"client_message","payload":1}`: TypeClientMessage,
		` {"type":"resync","after_sequence":0}`:        TypeResync,
		`{"type":"nonsense"}`:                          0,
		`{"type":"acknowl`:                             0,
		``:                                             0,
	} {
		if got := PeekType([]byte(in)); got != want {
			t.Errorf("PeekType(%q) = %v, want %v", in, got, want)
		}
	}
}
