package transport_test

import (
	"fmt"

	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/lily-go/lily/transport"
)

// The messages and model of a counter store.

type Msg interface{ isMsg() }

type Increment struct{}

type Add struct{ N int }

func (Increment) isMsg() {}
func (Add) isMsg()       {}

type Model struct {
	Count int
	Name  string
}

func ExampleEncode() {
	frame := transport.Frame{
		Type:     transport.TypeServerMessage,
		Sequence: 7,
		Payload:  []byte(`{"_":"Add","0":5}`),
	}
	b, err := transport.Encode(frame, transport.FormatJSON)
	if err != nil {
		panic(err)
	}
	fmt.Println(string(b))

	b, _ = transport.Encode(transport.Frame{Type: transport.TypeAcknowledge, Sequence: 0, ID: 3}, transport.FormatJSON)
	fmt.Println(string(b))
	// Output:
	// {"type":"server_message","sequence":7,"payload":{"_":"Add","0":5}}
	// {"type":"acknowledge","sequence":0,"id":3}
}

func ExampleDecode() {
	data := []byte(`{"type":"client_message","id":1,"payload":{"_":"Increment"},"extra":"ignored"}`)
	frame, err := transport.Decode(data, transport.DetectFormat(data))
	if err != nil {
		panic(err)
	}
	fmt.Println(frame.Type, frame.ID, string(frame.Payload))

	_, err = transport.Decode([]byte(`{"type":"acknowledge","sequence":-1}`), transport.FormatJSON)
	fmt.Println(err)
	// Output:
	// client_message 1 {"_":"Increment"}
	// transport: bad_frame: sequence must be a non-negative integer, got -1
}

func ExampleAutomatic() {
	s := transport.Automatic[Model, Msg](Increment{}, Add{})

	b, _ := s.EncodeMessage(Add{N: 5}, transport.FormatJSON)
	fmt.Println(string(b))
	b, _ = s.EncodeMessage(Increment{}, transport.FormatJSON)
	fmt.Println(string(b))
	b, _ = s.EncodeModel(Model{Count: 3, Name: "x"}, transport.FormatJSON)
	fmt.Println(string(b))

	msg, _ := s.DecodeMessage([]byte(`{"_":"Add","0":2}`), transport.FormatJSON)
	fmt.Printf("%#v\n", msg)
	_, err := s.DecodeMessage([]byte(`{"_":"Add","0":"two"}`), transport.FormatJSON)
	fmt.Println(err)
	// Output:
	// {"_":"Add","0":5}
	// {"_":"Increment"}
	// {"_":"Model","0":3,"1":"x"}
	// transport_test.Add{N:2}
	// transport: bad_payload: payload.0: expected integer, got string
}

func ExampleJSON() {
	s := transport.JSON[Model, Msg](Increment{}, Add{})

	b, _ := s.EncodeMessage(Add{N: 5}, transport.FormatJSON)
	fmt.Println(string(b))
	b, _ = s.EncodeModel(Model{Count: 3, Name: "x"}, transport.FormatJSON)
	fmt.Println(string(b))

	msg, _ := s.DecodeMessage([]byte(`{"Increment":{}}`), transport.FormatJSON)
	fmt.Printf("%#v\n", msg)
	// Output:
	// {"Add":{"N":5}}
	// {"Count":3,"Name":"x"}
	// transport_test.Increment{}
}

func ExampleProtobuf() {
	s := transport.Protobuf[*wrapperspb.Int64Value, *wrapperspb.StringValue]()

	b, _ := s.EncodeMessage(wrapperspb.String("hello"), transport.FormatJSON)
	fmt.Println(string(b))
	b, _ = s.EncodeMessage(wrapperspb.String("hello"), transport.FormatMsgPack)
	fmt.Printf("%x\n", b)

	msg, _ := s.DecodeMessage(b, transport.FormatMsgPack)
	fmt.Println(msg.GetValue())
	// Output:
	// "hello"
	// 0a0568656c6c6f
	// hello
}
