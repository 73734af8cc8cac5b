package transport

import (
	"bytes"
	"errors"
	"math"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

// The test store: a model and messages of several kinds.

type Msg interface{ isMsg() }

type Increment struct{}

type Add struct{ N int }

type SetName struct {
	Name  string
	Force bool
}

// Rename is a pointer variant: only *Rename is a Msg.
type Rename struct{ To string }

// Batch holds messages: interface values nested in a struct.
type Batch struct {
	Msgs  []Msg
	First Msg
	Any   any
}

func (Increment) isMsg() {}
func (Add) isMsg()       {}
func (SetName) isMsg()   {}
func (*Rename) isMsg()   {}
func (Batch) isMsg()     {}

type Model struct {
	Count  int
	Name   string
	hidden int //nolint:unused // unexported fields are left out
}

type Person struct {
	Name string
	Age  uint8
}

type Team struct {
	Name    string
	Lead    Person
	Members []Person
	Backup  *Person
	Tags    map[string]int
	Scores  map[int]float64
	Flags   map[bool]string
	Grid    [3]int
	Bytes   []byte
	Labels  []string
	Nested  [][]int
	Active  bool
}

type Ints struct {
	I   int
	I8  int8
	I16 int16
	I32 int32
	I64 int64
	U   uint
	U8  uint8
	U16 uint16
	U32 uint32
	U64 uint64
	UP  uintptr
}

type Floats struct {
	F32 float32
	F64 float64
}

type Opts struct {
	P     *int
	PS    *Person
	PP    **string
	PNone *Person
	PList *[]int
}

// Tree and Node are recursive types.
type Tree struct {
	Value    int
	Children []Tree
}

type Node struct {
	Value int
	Next  *Node
}

// Named scalar types keep their kind.
type Celsius float64
type Level int8
type Names []string

type Named struct {
	Temp   Celsius
	Level  Level
	Names  Names
	ByName map[Level]Celsius
}

var formats = []Format{FormatJSON, FormatMsgPack}

func newStore() *AutomaticSerialiser[Model, Msg] {
	return Automatic[Model, Msg](Increment{}, Add{}, SetName{}, &Rename{}, Batch{})
}

func TestAutomaticLilyExamples(t *testing.T) {
	s := newStore()
	msgs := []struct {
		msg  Msg
		want string
	}{
		{Increment{}, `{"_":"Increment"}`},
		{Add{N: 5}, `{"_":"Add","0":5}`},
		{SetName{Name: "x", Force: true}, `{"_":"SetName","0":"x","1":true}`},
		{&Rename{To: "y"}, `{"_":"Rename","0":"y"}`},
		{nil, `null`},
	}
	for _, tc := range msgs {
		b, err := s.EncodeMessage(tc.msg, FormatJSON)
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != tc.want {
			t.Errorf("EncodeMessage(%#v) = %s, want %s", tc.msg, b, tc.want)
		}
	}
	b, err := s.EncodeModel(Model{Count: 3, Name: "x", hidden: 9}, FormatJSON)
	if err != nil || string(b) != `{"_":"Model","0":3,"1":"x"}` {
		t.Errorf("EncodeModel = %s, %v", b, err)
	}
	opt := Automatic[*int, *int]()
	if b, _ := opt.EncodeModel(nil, FormatJSON); string(b) != `{"_":"None"}` {
		t.Errorf("nil pointer = %s", b)
	}
	three := 3
	if b, _ := opt.EncodeModel(&three, FormatJSON); string(b) != `{"_":"Some","0":3}` {
		t.Errorf("pointer to 3 = %s", b)
	}
}

func TestAutomaticExactJSON(t *testing.T) {
	tests := []struct {
		name string
		v    any
		want string
	}{
		{"floats", Floats{F32: 3, F64: 3}, `{"_":"Floats","0":3.0,"1":3.0}`},
		{"float fractions", Floats{F32: 0.1, F64: -2.5}, `{"_":"Floats","0":0.1,"1":-2.5}`},
		{"float exponents", Floats{F32: 1e30, F64: 1.5e-7}, `{"_":"Floats","0":1.0e+30,"1":1.5e-07}`},
		{"float zero", Floats{}, `{"_":"Floats","0":0.0,"1":0.0}`},
		{"maps sorted", Team{Tags: map[string]int{"b": 2, "a": 1, "": 0}, Scores: map[int]float64{10: 1, -1: 2}, Flags: map[bool]string{true: "t", false: "f"}},
			`{"_":"Team","0":"","1":{"_":"Person","0":"","1":0},"2":[],"3":{"_":"None"},` +
				`"4":[["",0],["a",1],["b",2]],"5":[[-1,2.0],[10,1.0]],"6":[[false,"f"],[true,"t"]],` +
				`"7":[0,0,0],"8":[],"9":[],"10":[],"11":false}`},
		{"bytes", Team{Bytes: []byte{0, 255}, Grid: [3]int{1, 2, 3}},
			`{"_":"Team","0":"","1":{"_":"Person","0":"","1":0},"2":[],"3":{"_":"None"},"4":[],"5":[],"6":[],"7":[1,2,3],"8":[0,255],"9":[],"10":[],"11":false}`},
		{"options", Opts{P: ptr(3), PS: &Person{Name: "p"}, PP: ptr(ptr("s"))},
			`{"_":"Opts","0":{"_":"Some","0":3},"1":{"_":"Some","0":{"_":"Person","0":"p","1":0}},` +
				`"2":{"_":"Some","0":{"_":"Some","0":"s"}},"3":{"_":"None"},"4":{"_":"None"}}`},
		{"strings", Person{Name: "é\"\\\n\t\x01\u2028😀"}, `{"_":"Person","0":"é\"\\\n\t\u0001\u2028😀","1":0}`},
		{"interfaces", Batch{Msgs: []Msg{Add{N: 1}, &Rename{To: "r"}, nil}, First: Increment{}},
			`{"_":"Batch","0":[{"_":"Add","0":1},{"_":"Rename","0":"r"},null],"1":{"_":"Increment"},"2":null}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Encode through a serialiser whose model is the concrete type.
			b, err := encodeAs(tc.v, FormatJSON)
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != tc.want {
				t.Errorf("got  %s\nwant %s", b, tc.want)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

// encodeAs encodes v through an Automatic serialiser whose model type is
// v's dynamic type, with the test variants.
func encodeAs(v any, format Format) ([]byte, error) {
	switch v := v.(type) {
	case Floats:
		return Automatic[Floats, Msg]().EncodeModel(v, format)
	case Team:
		return Automatic[Team, Msg]().EncodeModel(v, format)
	case Opts:
		return Automatic[Opts, Msg]().EncodeModel(v, format)
	case Person:
		return Automatic[Person, Msg]().EncodeModel(v, format)
	case Batch:
		return newStore().EncodeMessage(v, format)
	}
	panic("encodeAs: unexpected type")
}

// roundTrip encodes v as a model of type T in both formats, decodes it
// and compares.
func roundTrip[T any](t *testing.T, s *AutomaticSerialiser[T, Msg], v T) {
	t.Helper()
	for _, format := range formats {
		b, err := s.EncodeModel(v, format)
		if err != nil {
			t.Fatalf("%v: EncodeModel: %v", format, err)
		}
		got, err := s.DecodeModel(b, format)
		if err != nil {
			t.Fatalf("%v: DecodeModel(%q): %v", format, b, err)
		}
		if !reflect.DeepEqual(got, v) {
			t.Errorf("%v: round trip:\n got %#v\nwant %#v", format, got, v)
		}
	}
}

func TestAutomaticRoundTrip(t *testing.T) {
	variants := []any{Increment{}, Add{}, SetName{}, &Rename{}, Batch{}}
	t.Run("model", func(t *testing.T) {
		roundTrip(t, Automatic[Model, Msg](variants...), Model{Count: -3, Name: "x"})
	})
	t.Run("nested structs, slices, maps", func(t *testing.T) {
		roundTrip(t, Automatic[Team, Msg](variants...), Team{
			Name:    "team",
			Lead:    Person{Name: "lead", Age: 40},
			Members: []Person{{Name: "a", Age: 1}, {Name: "b", Age: 255}},
			Backup:  &Person{Name: "backup"},
			Tags:    map[string]int{"x": 1, "y": -2},
			Scores:  map[int]float64{1: 0.5, -7: 1e300},
			Flags:   map[bool]string{true: "yes"},
			Grid:    [3]int{7, 8, 9},
			Bytes:   []byte("bytes\x00\xff"),
			Labels:  []string{"", "l"},
			Nested:  [][]int{{1}, nil, {2, 3}},
			Active:  true,
		})
		roundTrip(t, Automatic[Team, Msg](variants...), Team{})
	})
	t.Run("unicode strings", func(t *testing.T) {
		s := Automatic[Person, Msg](variants...)
		for _, name := range []string{"", "plain", "é日本😀", "quote\" backslash\\ slash/", "ctl\x00\x01\x1f\n\r\t\b\f", "\u2028\u2029", "<html>&"} {
			roundTrip(t, s, Person{Name: name})
		}
	})
	t.Run("integers", func(t *testing.T) {
		s := Automatic[Ints, Msg](variants...)
		roundTrip(t, s, Ints{})
		roundTrip(t, s, Ints{
			I: math.MaxInt64, I8: math.MaxInt8, I16: math.MaxInt16, I32: math.MaxInt32, I64: math.MaxInt64,
			U: math.MaxUint64, U8: math.MaxUint8, U16: math.MaxUint16, U32: math.MaxUint32, U64: math.MaxUint64, UP: math.MaxUint64,
		})
		roundTrip(t, s, Ints{I: math.MinInt64, I8: math.MinInt8, I16: math.MinInt16, I32: math.MinInt32, I64: math.MinInt64})
		roundTrip(t, s, Ints{I: -1, I8: -1, I16: -200, I32: -70000, I64: -1 << 40, U: 1, U8: 128, U16: 300, U32: 70000, U64: 1 << 40})
	})
	t.Run("floats", func(t *testing.T) {
		s := Automatic[Floats, Msg](variants...)
		for _, f := range []Floats{
			{}, {F32: 3, F64: 3}, {F32: 0.1, F64: 0.1}, {F32: -1.5, F64: -1e-300},
			{F32: math.MaxFloat32, F64: math.MaxFloat64}, {F32: math.SmallestNonzeroFloat32, F64: math.SmallestNonzeroFloat64},
			{F32: 1e21, F64: 123456789.125}, {F64: float64(math.Copysign(0, -1))},
		} {
			roundTrip(t, s, f)
		}
	})
	t.Run("bools", func(t *testing.T) {
		s := Automatic[SetName, Msg](variants...)
		roundTrip(t, s, SetName{Force: true})
		roundTrip(t, s, SetName{Force: false})
	})
	t.Run("options", func(t *testing.T) {
		s := Automatic[Opts, Msg](variants...)
		roundTrip(t, s, Opts{})
		roundTrip(t, s, Opts{P: ptr(0), PS: &Person{Name: "p", Age: 3}, PP: ptr(ptr("")), PList: &[]int{1}})
		roundTrip(t, s, Opts{PP: new(*string)})
	})
	t.Run("named types", func(t *testing.T) {
		roundTrip(t, Automatic[Named, Msg](), Named{Temp: 21.5, Level: -3, Names: Names{"a"}, ByName: map[Level]Celsius{1: 2}})
	})
	t.Run("recursive", func(t *testing.T) {
		roundTrip(t, Automatic[Tree, Msg](), Tree{Value: 1, Children: []Tree{{Value: 2}, {Value: 3, Children: []Tree{{Value: 4}}}}})
		roundTrip(t, Automatic[Node, Msg](), Node{Value: 1, Next: &Node{Value: 2, Next: &Node{Value: 3}}})
	})
	t.Run("interface fields", func(t *testing.T) {
		roundTrip(t, Automatic[Batch, Msg](variants...), Batch{
			Msgs:  []Msg{Add{N: 1}, Increment{}, &Rename{To: "r"}, nil, Batch{First: Add{N: 2}}},
			First: SetName{Name: "n"},
			Any:   Add{N: 3},
		})
	})
	t.Run("deep recursion", func(t *testing.T) {
		n := &Node{}
		for i := range 2000 {
			n = &Node{Value: i, Next: n}
		}
		roundTrip(t, Automatic[Node, Msg](), *n)
	})
}

func TestAutomaticInterfaceMessages(t *testing.T) {
	s := newStore()
	msgs := []Msg{Increment{}, Add{N: -5}, SetName{Name: "n", Force: true}, &Rename{To: "t"}, nil,
		Batch{Msgs: []Msg{Add{N: 1}, &Rename{}}, Any: SetName{}}}
	for _, format := range formats {
		for _, m := range msgs {
			b, err := s.EncodeMessage(m, format)
			if err != nil {
				t.Fatalf("%v: EncodeMessage(%#v): %v", format, m, err)
			}
			got, err := s.DecodeMessage(b, format)
			if err != nil {
				t.Fatalf("%v: DecodeMessage(%q): %v", format, b, err)
			}
			if !reflect.DeepEqual(got, m) {
				t.Errorf("%v: got %#v, want %#v", format, got, m)
			}
		}
	}
	// A value variant held by pointer encodes the same and decodes as the
	// registered value form.
	b, err := s.EncodeMessage(Msg(&Add{N: 2}), FormatJSON)
	if err != nil || string(b) != `{"_":"Add","0":2}` {
		t.Fatalf("pointer to a value variant: %s, %v", b, err)
	}
	if got, _ := s.DecodeMessage(b, FormatJSON); got != (Add{N: 2}) {
		t.Errorf("decoded %#v", got)
	}
}

func TestAutomaticMsgPackShape(t *testing.T) {
	s := newStore()
	b, err := s.EncodeMessage(Add{N: 5}, FormatMsgPack)
	if err != nil {
		t.Fatal(err)
	}
	want := []byte("\x82\xa1_\xa3Add\xa10\x05")
	if !bytes.Equal(b, want) {
		t.Errorf("got %x, want %x", b, want)
	}
	b, err = Automatic[Floats, Msg]().EncodeModel(Floats{F32: 1.5, F64: 2}, FormatMsgPack)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := msgpack.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if m["_"] != "Floats" || m["0"] != 1.5 || m["1"] != 2.0 {
		t.Errorf("decoded %#v; want float64 values", m)
	}
	// Other key orders decode too.
	b, _ = msgpack.Marshal(map[string]any{"0": 7, "_": "Add"})
	if got, err := s.DecodeMessage(b, FormatMsgPack); err != nil || got != (Add{N: 7}) {
		t.Errorf("got %#v, %v", got, err)
	}
}

func TestAutomaticDecodeErrors(t *testing.T) {
	store := newStore()
	ints := Automatic[Ints, Msg]()
	floats := Automatic[Floats, Msg]()
	team := Automatic[Team, Msg]()
	opts := Automatic[Opts, Msg]()
	narrow := Automatic[Model, Msg](Increment{}, Person{}) // Person is not a Msg
	// intsJSON is the zero Ints in JSON with one field's value replaced.
	intsJSON := func(field, value string) string {
		keys := map[string]int{"I": 0, "I8": 1, "I16": 2, "I32": 3, "I64": 4, "U": 5, "U8": 6, "U16": 7, "U32": 8, "U64": 9, "UP": 10}
		b, _ := ints.EncodeModel(Ints{}, FormatJSON)
		key := `"` + strconv.Itoa(keys[field]) + `":`
		return strings.Replace(string(b), key+"0", key+value, 1)
	}
	tests := []struct {
		name   string
		decode func() error
		reason string
	}{
		{"unknown constructor", msgJSON(store, `{"_":"Nope"}`), `payload: unknown constructor "Nope"`},
		{"not a variant of the interface", msgJSON(narrow, `{"_":"Person","0":"p","1":1}`), "does not implement"},
		{"wrong constructor for a struct", modelJSON(store, `{"_":"Other","0":1,"1":"x"}`), `state: expected constructor "Model", got "Other"`},
		{"missing name", modelJSON(store, `{"0":1,"1":"x"}`), `missing constructor name "_"`},
		{"missing name in interface", msgJSON(store, `{"0":1}`), `missing constructor name "_"`},
		{"non-string name", msgJSON(store, `{"_":5}`), "payload._: expected string, got number"},
		{"missing field", msgJSON(store, `{"_":"Add"}`), "missing field 0 of Add"},
		{"missing second field", modelJSON(store, `{"_":"Model","0":1}`), "missing field 1 of Model"},
		{"extra field", msgJSON(store, `{"_":"Add","0":1,"1":2}`), `unexpected key "1"`},
		{"non-positional key", msgJSON(store, `{"_":"Add","0":1,"n":2}`), `unexpected key "n"`},
		{"leading zero key", msgJSON(store, `{"_":"Add","00":1}`), `unexpected key "00"`},
		{"duplicate field", msgJSON(store, `{"_":"Add","0":1,"0":2}`), `duplicate key "0"`},
		{"duplicate name", msgJSON(store, `{"_":"Add","_":"Add","0":1}`), `duplicate key "_"`},
		{"wrong type", msgJSON(store, `{"_":"Add","0":"5"}`), "payload.0: expected integer, got string"},
		{"wrong type nested", modelJSON(team, `{"_":"Team","0":"","1":{"_":"Person","0":"","1":"x"}}`), "state.1.1: expected integer, got string"},
		{"wrong type in slice", msgJSON(store, `{"_":"Batch","0":[{"_":"Add","0":1},{"_":"Add","0":true}],"1":null,"2":null}`), "payload.0.1.0: expected integer, got boolean"},
		{"string not bool", msgJSON(store, `{"_":"SetName","0":"x","1":"true"}`), "payload.1: expected boolean, got string"},
		{"number not string", msgJSON(store, `{"_":"SetName","0":1,"1":true}`), "payload.0: expected string, got number"},
		{"array not struct", msgJSON(store, `[1]`), "payload: expected a constructor object, got array"},
		{"int8 overflow", modelJSON(ints, intsJSON("I8", "300")), "state.1: integer 300 out of range for int8"},
		{"int8 underflow", modelJSON(ints, intsJSON("I8", "-129")), "out of range for int8"},
		{"uint negative", modelJSON(ints, intsJSON("U8", "-1")), "state.6: integer -1 out of range for uint8"},
		{"uint64 overflow", modelJSON(ints, intsJSON("U64", "18446744073709551616")), "out of range for uint64"},
		{"int64 overflow", modelJSON(ints, intsJSON("I64", "9223372036854775808")), "out of range for int64"},
		{"fraction into int", modelJSON(ints, intsJSON("I", "1.5")), "state.0: expected integer, got float 1.5"},
		{"float syntax into int", modelJSON(ints, intsJSON("I", "3.0")), "expected integer, got float 3.0"},
		{"exponent into int", modelJSON(ints, intsJSON("I", "1e2")), "expected integer, got float"},
		{"float32 overflow", modelJSON(floats, `{"_":"Floats","0":1e39,"1":0.0}`), "state.0: number 1e39 out of range for float32"},
		{"float64 overflow", modelJSON(floats, `{"_":"Floats","0":1.0,"1":1e400}`), "out of range for float64"},
		{"string into float", modelJSON(floats, `{"_":"Floats","0":"1","1":0.0}`), "expected float, got string"},
		{"bad option name", modelJSON(opts, `{"_":"Opts","0":{"_":"Maybe"},"1":{"_":"None"},"2":{"_":"None"},"3":{"_":"None"},"4":{"_":"None"}}`), `expected constructor "Some" or "None", got "Maybe"`},
		{"option null", modelJSON(opts, `{"_":"Opts","0":null,"1":{"_":"None"},"2":{"_":"None"},"3":{"_":"None"},"4":{"_":"None"}}`), "state.0: expected a constructor object, got null"},
		{"some without value", modelJSON(opts, `{"_":"Opts","0":{"_":"Some"},"1":{"_":"None"},"2":{"_":"None"},"3":{"_":"None"},"4":{"_":"None"}}`), "missing field 0 of Some"},
		{"none with value", modelJSON(opts, `{"_":"Opts","0":{"_":"None","0":1},"1":{"_":"None"},"2":{"_":"None"},"3":{"_":"None"},"4":{"_":"None"}}`), `unexpected key "0"`},
		{"array too short", modelJSON(team, teamWith(`"7":[1,2]`)), "state.7: expected 3 elements, got 2"},
		{"array too long", modelJSON(team, teamWith(`"7":[1,2,3,4]`)), "state.7: expected 3 elements, got more"},
		{"map pair too short", modelJSON(team, teamWith(`"4":[["a"]]`)), "state.4.0: expected a [key, value] pair, got 1 elements"},
		{"map pair too long", modelJSON(team, teamWith(`"4":[["a",1,2]]`)), "state.4.0: expected a [key, value] pair, got more elements"},
		{"map not pairs", modelJSON(team, teamWith(`"4":{"a":1}`)), "state.4: expected an array of [key, value] pairs, got object"},
		{"duplicate map key", modelJSON(team, teamWith(`"4":[["a",1],["a",2]]`)), "state.4.1: duplicate map key"},
		{"map key type", modelJSON(team, teamWith(`"5":[["a",1.0]]`)), "state.5.0.0: expected integer, got string"},
		{"not json", msgJSON(store, `{"_":"Add","0":`), "unexpected end of JSON input"},
		{"garbage", msgJSON(store, `hello`), "invalid character"},
		{"empty", msgJSON(store, ``), "unexpected end"},
		{"trailing data", msgJSON(store, `{"_":"Add","0":1} {}`), "trailing data"},
		{"invalid json inside", msgJSON(store, `{"_":"Add","0":1,}`), "invalid character"},
		{"mismatched brackets", msgJSON(store, `{"_":"Batch","0":[{"_":"Increment"}},"1":null,"2":null}`), "invalid character"},
		{"mismatched braces", msgJSON(store, `{"_":"Add","0":1]`), "invalid character"},
		{"missing comma", msgJSON(store, `{"_":"Add" "0":1}`), "invalid character"},
		{"truncated msgpack", func() error {
			b, _ := store.EncodeMessage(SetName{Name: "abc"}, FormatMsgPack)
			_, err := store.DecodeMessage(b[:len(b)-2], FormatMsgPack)
			return err
		}, "unexpected end of MessagePack data"},
		{"msgpack trailing data", func() error {
			b, _ := store.EncodeMessage(Increment{}, FormatMsgPack)
			_, err := store.DecodeMessage(append(b, 0), FormatMsgPack)
			return err
		}, "trailing data"},
		{"msgpack wrong type", msgPack(store, map[string]any{"_": "Add", "0": "x"}), "payload.0: expected integer, got string"},
		{"msgpack float into int", msgPack(store, map[string]any{"_": "Add", "0": 1.0}), "payload.0: expected integer, got float"},
		{"msgpack int overflow", modelPack(ints, "1", 300), "state.1: integer 300 out of range for int8"},
		{"msgpack uint negative", modelPack(ints, "9", -1), "state.9: integer -1 out of range for uint64"},
		{"msgpack int64 overflow", modelPack(ints, "4", uint64(math.MaxUint64)), "out of range for int64"},
		{"msgpack NaN", modelPack(floats, "1", math.NaN()), "state.1: expected a finite float"},
		{"msgpack float32 overflow", modelPack(floats, "0", 1e300), "out of range for float32"},
		{"msgpack unknown constructor", msgPack(store, map[string]any{"_": "Nope"}), `unknown constructor "Nope"`},
		{"msgpack not a map", msgPack(store, []any{"_", "Add"}), "payload: expected a constructor object, got array"},
		{"msgpack integer key", func() error {
			b := []byte{0x82, 0xa1, '_', 0xa3, 'A', 'd', 'd', 0x00, 0x01}
			_, err := store.DecodeMessage(b, FormatMsgPack)
			return err
		}, "expected string key, got integer"},
		{"msgpack huge array", func() error {
			_, err := team.DecodeModel([]byte{0xdd, 0x7f, 0xff, 0xff, 0xff}, FormatMsgPack)
			return err
		}, "expected a Team constructor object, got array"},
		{"msgpack huge string", func() error {
			b := []byte{0x82, 0xa1, '_', 0xdb, 0x7f, 0xff, 0xff, 0xff}
			_, err := store.DecodeMessage(b, FormatMsgPack)
			return err
		}, "unexpected end of MessagePack data"},
		{"unknown format", func() error { _, err := store.DecodeMessage([]byte(`null`), 0); return err }, "unknown format"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkBadPayload(t, tc.decode(), tc.reason)
		})
	}
	t.Run("deep nesting", func(t *testing.T) {
		s := Automatic[Node, Msg]()
		in := strings.Repeat(`{"_":"Node","0":1,"1":{"_":"Some","0":`, maxDepth) + `{"_":"Node","0":1,"1":{"_":"None"}}` + strings.Repeat(`}}`, maxDepth)
		_, err := s.DecodeModel([]byte(in), FormatJSON)
		checkBadPayload(t, err, "nested more than")
	})
}

// teamWith returns a valid Team in JSON with one field replaced.
func teamWith(field string) string {
	b, _ := Automatic[Team, Msg]().EncodeModel(Team{}, FormatJSON)
	key := field[:strings.Index(field, ":")+1]
	s := string(b)
	i := strings.Index(s, key)
	j := i + len(key)
	// The zero Team's values are [], [0,0,0] or {"_":"None"}: find their end.
	depth := 0
	for k := j; k < len(s); k++ {
		switch s[k] {
		case '[', '{':
			depth++
		case ']', '}':
			depth--
		}
		if depth == 0 {
			return s[:i] + field + s[k+1:]
		}
	}
	panic("teamWith: bad field")
}

func msgJSON[M any](s *AutomaticSerialiser[M, Msg], in string) func() error {
	return func() error { _, err := s.DecodeMessage([]byte(in), FormatJSON); return err }
}

func modelJSON[M any](s *AutomaticSerialiser[M, Msg], in string) func() error {
	return func() error { _, err := s.DecodeModel([]byte(in), FormatJSON); return err }
}

func msgPack[M any](s *AutomaticSerialiser[M, Msg], v any) func() error {
	return func() error {
		b, err := msgpack.Marshal(v)
		if err != nil {
			return err
		}
		_, err = s.DecodeMessage(b, FormatMsgPack)
		return err
	}
}

// modelPack encodes the zero model with one field replaced by value.
func modelPack[M any](s *AutomaticSerialiser[M, Msg], key string, value any) func() error {
	return func() error {
		var zero M
		b, err := s.EncodeModel(zero, FormatMsgPack)
		if err != nil {
			return err
		}
		var m map[string]any
		if err := msgpack.Unmarshal(b, &m); err != nil {
			return err
		}
		m[key] = value
		if b, err = msgpack.Marshal(m); err != nil {
			return err
		}
		_, err = s.DecodeModel(b, FormatMsgPack)
		return err
	}
}

func checkBadPayload(t *testing.T, err error, reason string) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) || e.Code != CodeBadPayload {
		t.Fatalf("error = %v, want a *Error with CodeBadPayload", err)
	}
	if !strings.Contains(e.Reason, reason) {
		t.Errorf("reason %q does not contain %q", e.Reason, reason)
	}
}

type Unregistered struct{}

func (Unregistered) isMsg() {}

func TestAutomaticEncodeErrors(t *testing.T) {
	s := newStore()
	cyclic := &Node{Value: 1}
	cyclic.Next = cyclic
	tests := []struct {
		name   string
		encode func() error
		reason string
	}{
		{"NaN", func() error {
			_, err := Automatic[Floats, Msg]().EncodeModel(Floats{F64: math.NaN()}, FormatJSON)
			return err
		}, "state.1: NaN and infinities cannot be encoded"},
		{"Inf msgpack", func() error {
			_, err := Automatic[Floats, Msg]().EncodeModel(Floats{F32: float32(math.Inf(-1))}, FormatMsgPack)
			return err
		}, "state.0: NaN"},
		{"unregistered variant", func() error {
			_, err := s.EncodeMessage(Unregistered{}, FormatJSON)
			return err
		}, "transport.Unregistered is not a registered variant"},
		{"unregistered nested", func() error {
			_, err := s.EncodeMessage(Batch{Msgs: []Msg{Increment{}, Unregistered{}}}, FormatMsgPack)
			return err
		}, "payload.0.1: transport.Unregistered is not a registered variant"},
		{"cyclic value", func() error {
			_, err := Automatic[Node, Msg]().EncodeModel(*cyclic, FormatJSON)
			return err
		}, "cyclic"},
		{"unknown format", func() error {
			_, err := s.EncodeMessage(Increment{}, 9)
			return err
		}, "unknown format"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.encode()
			var e *Error
			if !errors.As(err, &e) || e.Code != CodeInternal {
				t.Fatalf("error = %v, want a *Error with CodeInternal", err)
			}
			if !strings.Contains(e.Reason, tc.reason) {
				t.Errorf("reason %q does not contain %q", e.Reason, tc.reason)
			}
		})
	}
}

type withChan struct{ C chan int }

func TestAutomaticPanicsOnInvalidVariants(t *testing.T) {
	tests := []struct {
		name  string
		build func()
		want  string
	}{
		{"nil", func() { Automatic[Model, Msg](nil) }, "variant 0 is nil"},
		{"not a struct", func() { Automatic[Model, Msg](Add{}, 5) }, "variant 1 (int) is not a struct"},
		{"pointer to non-struct", func() { Automatic[Model, Msg](new(int)) }, "is not a struct"},
		{"duplicate", func() { Automatic[Model, Msg](Add{}, &Add{}) }, `same name "Add"`},
		{"anonymous", func() { Automatic[Model, Msg](struct{ A int }{}) }, "has no type name"},
		{"unsupported field", func() { Automatic[Model, Msg](withChan{}) }, "unsupported kind chan"},
		{"unsupported model", func() { Automatic[func(), Msg]() }, "model type"},
		{"unsupported message", func() { Automatic[Model, map[float64]int]() }, "map keys"},
		{"complex", func() { Automatic[complex128, Msg]() }, "unsupported kind complex128"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				r := recover()
				msg, _ := r.(string)
				if !strings.Contains(msg, tc.want) {
					t.Errorf("panic %v, want one containing %q", r, tc.want)
				}
			}()
			tc.build()
		})
	}
}

func TestAutomaticConcurrent(t *testing.T) {
	s := newStore()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				format := formats[(g+i)%2]
				m := Batch{Msgs: []Msg{Add{N: i}, &Rename{To: "x"}}, First: SetName{Name: "n"}}
				b, err := s.EncodeMessage(m, format)
				if err != nil {
					t.Error(err)
					return
				}
				got, err := s.DecodeMessage(b, format)
				if err != nil || !reflect.DeepEqual(got, Msg(m)) {
					t.Errorf("got %#v, %v", got, err)
					return
				}
				f, _ := Encode(Frame{Type: TypeServerMessage, Sequence: uint64(i), Payload: b}, format)
				if _, err := Decode(f, format); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func BenchmarkAutomatic(b *testing.B) {
	s := newStore()
	msg := Msg(SetName{Name: "alice", Force: true})
	for _, format := range formats {
		b.Run(format.String(), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				data, err := s.EncodeMessage(msg, format)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := s.DecodeMessage(data, format); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
