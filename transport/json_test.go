package transport

import (
	"reflect"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

type Profile struct {
	Name    string         `json:"name"`
	Age     int            `json:"age,omitempty"`
	Tags    []string       `json:"tags"`
	Extra   map[string]int `json:"extra,omitempty"`
	Skipped string         `json:"-"`
	Plain   bool
}

func newJSONStore() *JSONSerialiser[Profile, Msg] {
	return JSON[Profile, Msg](Increment{}, Add{}, SetName{}, &Rename{})
}

func TestJSONSerialiserExact(t *testing.T) {
	s := newJSONStore()
	tests := []struct {
		name string
		msg  Msg
		want string
	}{
		{"value variant", Add{N: 5}, `{"Add":{"N":5}}`},
		{"empty variant", Increment{}, `{"Increment":{}}`},
		{"pointer variant", &Rename{To: "x"}, `{"Rename":{"To":"x"}}`},
		{"nil", nil, `null`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := s.EncodeMessage(tc.msg, FormatJSON)
			if err != nil || string(b) != tc.want {
				t.Errorf("EncodeMessage = %s, %v; want %s", b, err, tc.want)
			}
		})
	}
	b, err := s.EncodeModel(Profile{Name: "a", Tags: []string{"t"}, Skipped: "s"}, FormatJSON)
	if want := `{"name":"a","tags":["t"],"Plain":false}`; err != nil || string(b) != want {
		t.Errorf("EncodeModel = %s, %v; want %s", b, err, want)
	}
	b, err = s.EncodeModel(Profile{Name: "a"}, FormatMsgPack)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := msgpack.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if m["name"] != "a" || m["Plain"] != false || len(m) != 3 {
		t.Errorf("msgpack model uses the json tags: got %#v", m)
	}
	b, err = s.EncodeMessage(Add{N: 5}, FormatMsgPack)
	if err != nil {
		t.Fatal(err)
	}
	m = nil
	if err := msgpack.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if add, ok := m["Add"].(map[string]any); !ok || len(m) != 1 || add["N"] != int8(5) {
		t.Errorf("msgpack message is externally tagged: got %#v", m)
	}
}

func TestJSONSerialiserRoundTrip(t *testing.T) {
	s := newJSONStore()
	models := []Profile{{}, {Name: "é\"😀", Age: -3, Tags: []string{"a", ""}, Extra: map[string]int{"x": 1}, Plain: true}}
	msgs := []Msg{Increment{}, Add{N: -7}, SetName{Name: "n", Force: true}, &Rename{To: "t"}, nil}
	for _, format := range formats {
		for _, want := range models {
			b, err := s.EncodeModel(want, format)
			if err != nil {
				t.Fatal(err)
			}
			got, err := s.DecodeModel(b, format)
			if err != nil {
				t.Fatalf("%v: DecodeModel(%q): %v", format, b, err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%v: got %#v, want %#v", format, got, want)
			}
		}
		for _, want := range msgs {
			b, err := s.EncodeMessage(want, format)
			if err != nil {
				t.Fatal(err)
			}
			got, err := s.DecodeMessage(b, format)
			if err != nil {
				t.Fatalf("%v: DecodeMessage(%q): %v", format, b, err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%v: got %#v, want %#v", format, got, want)
			}
		}
	}
	// Concrete message types are plain encoding/json.
	c := JSON[[]int, Add]()
	for _, format := range formats {
		b, err := c.EncodeMessage(Add{N: 1}, format)
		if err != nil {
			t.Fatal(err)
		}
		if format == FormatJSON && string(b) != `{"N":1}` {
			t.Errorf("concrete message = %s", b)
		}
		if got, err := c.DecodeMessage(b, format); err != nil || got != (Add{N: 1}) {
			t.Errorf("%v: got %#v, %v", format, got, err)
		}
		b, _ = c.EncodeModel([]int{1, 2}, format)
		if got, err := c.DecodeModel(b, format); err != nil || !reflect.DeepEqual(got, []int{1, 2}) {
			t.Errorf("%v: got %#v, %v", format, got, err)
		}
	}
}

func TestJSONSerialiserErrors(t *testing.T) {
	s := newJSONStore()
	narrow := JSON[Profile, Msg](Person{})
	mpOf := func(v any) []byte {
		b, err := msgpack.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tests := []struct {
		name   string
		decode func() error
		reason string
	}{
		{"not json", func() error { _, err := s.DecodeMessage([]byte(`{"Add":`), FormatJSON); return err }, "payload"},
		{"not an object", func() error { _, err := s.DecodeMessage([]byte(`[1]`), FormatJSON); return err }, `expected an object {"Variant": value}`},
		{"two keys", func() error { _, err := s.DecodeMessage([]byte(`{"Add":{},"Increment":{}}`), FormatJSON); return err }, "one key"},
		{"no keys", func() error { _, err := s.DecodeMessage([]byte(`{}`), FormatJSON); return err }, "one key"},
		{"unknown variant", func() error { _, err := s.DecodeMessage([]byte(`{"Nope":{}}`), FormatJSON); return err }, `unknown constructor "Nope"`},
		{"not implementing", func() error { _, err := narrow.DecodeMessage([]byte(`{"Person":{}}`), FormatJSON); return err }, "does not implement"},
		{"wrong field type", func() error { _, err := s.DecodeMessage([]byte(`{"Add":{"N":"x"}}`), FormatJSON); return err }, "payload.Add"},
		{"model wrong type", func() error { _, err := s.DecodeModel([]byte(`{"name":5}`), FormatJSON); return err }, "state"},
		{"model trailing data", func() error { _, err := s.DecodeModel([]byte(`{} {}`), FormatJSON); return err }, "state"},
		{"msgpack truncated", func() error {
			b := mpOf(map[string]any{"Add": map[string]any{"N": 1}})
			_, err := s.DecodeMessage(b[:len(b)-1], FormatMsgPack)
			return err
		}, "invalid MessagePack"},
		{"msgpack trailing", func() error { _, err := s.DecodeModel(append(mpOf(Profile{}), 1), FormatMsgPack); return err }, "trailing data"},
		{"msgpack unknown variant", func() error { _, err := s.DecodeMessage(mpOf(map[string]any{"Nope": 1}), FormatMsgPack); return err }, "unknown constructor"},
		{"msgpack two keys", func() error {
			_, err := s.DecodeMessage(mpOf(map[string]any{"Add": 1, "Increment": 2}), FormatMsgPack)
			return err
		}, "one key"},
		{"msgpack wrong type", func() error {
			_, err := s.DecodeMessage(mpOf(map[string]any{"Add": map[string]any{"N": "x"}}), FormatMsgPack)
			return err
		}, "payload.Add"},
		{"msgpack model wrong type", func() error { _, err := s.DecodeModel(mpOf("x"), FormatMsgPack); return err }, "state"},
		{"msgpack huge bin", func() error { _, err := s.DecodeModel([]byte{0xc6, 0x7f, 0xff, 0xff, 0xff}, FormatMsgPack); return err }, "invalid MessagePack"},
		{"unknown format", func() error { _, err := s.DecodeModel([]byte(`{}`), 0); return err }, "unknown format"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkBadPayload(t, tc.decode(), tc.reason)
		})
	}
	if _, err := s.EncodeMessage(Unregistered{}, FormatJSON); err == nil || !strings.Contains(err.Error(), "not a registered variant") {
		t.Errorf("EncodeMessage(unregistered) error = %v", err)
	}
	func() {
		defer func() {
			if r := recover(); r == nil {
				t.Error("JSON with a duplicate variant did not panic")
			}
		}()
		JSON[Profile, Msg](Add{}, Add{})
	}()
}
