// Package transport is the wire layer of lily: the envelopes that carry a
// store's messages and models over a WebSocket (PROTOCOL.md), and the
// serialisers that turn those messages and models into bytes.
//
// # Frames and formats
//
// Every WebSocket message is one envelope, a Frame. Its Type says which
// fields it has: a client sends client_message (a message to apply) and
// resync (a request for the state); the server answers with acknowledge,
// server_message (a message applied for another client), snapshot (the whole
// model), push, synced and error. Encode and Decode turn frames into bytes
// and back in one of two formats: FormatJSON, a JSON object sent in text
// frames, and FormatMsgPack, a MessagePack map with the same keys sent in
// binary frames. DetectFormat tells them apart.
//
// The message or model inside a frame (Payload, State) is produced by a
// Serialiser, in the same format as the envelope: in JSON it is one JSON
// value embedded as is, in MessagePack the serialiser's bytes are carried in
// a bin value. Three serialisers are provided:
//
//   - Automatic: lily's automatic format, which a Gleam client of lily reads
//     and writes without any code of its own.
//   - JSON: plain encoding/json, for Go-only or JavaScript clients.
//   - Protobuf: generated Protocol Buffers messages.
//
// Decoding is strict and never panics: a bad envelope is a *Error with
// CodeBadFrame, a bad payload a *Error with CodeBadPayload, ready to become
// an error frame.
//
// # Concurrency
//
// Everything in the package is safe for concurrent use: Encode and Decode
// are plain functions, and serialisers hold only what their constructors
// worked out. A server can encode a broadcast once and send the same bytes
// to every client.
//
// # The automatic format
//
// Automatic writes Go values as lily writes Gleam values. In JSON:
//
//   - A struct is a constructor: {"_":"TypeName","0":field0,"1":field1,...},
//     with its exported fields in declaration order (unexported fields are
//     left out) and the keys in that order. A struct with no exported fields
//     is {"_":"TypeName"}, so Increment{} is {"_":"Increment"} and
//     Add{N: 5} is {"_":"Add","0":5}. Decoding checks that "_" names the
//     expected type, and that every field is there, once, and nothing else.
//     Types whose state is unexported, such as time.Time, are empty
//     constructors: give models exported fields instead.
//   - Strings are strings; booleans are booleans.
//   - Integers of every size are JSON integers; decoding rejects fractions
//     and values out of the range of the Go type.
//   - Floats always have a decimal point or an exponent (3.0, not 3, so that
//     Gleam sees a Float; 1.0e+21); NaN and infinities cannot be encoded.
//   - Slices and arrays are arrays; a nil slice is [], and [] decodes as a
//     nil slice. []byte is an array of integers like any other slice.
//   - Pointers are options: nil is {"_":"None"} and a pointer to x is
//     {"_":"Some","0":x}.
//   - Maps are arrays of [key, value] pairs sorted by key (keys must be
//     strings, integers or booleans); an empty array decodes as a nil map.
//   - An interface-typed value (Msg itself when it is an interface, or a
//     field anywhere) is written as the constructor of its dynamic type,
//     which must be one of the variants given to Automatic; a nil interface
//     is null. Decoding looks the name up among the variants and checks the
//     result implements the interface. A pointer held in an interface is
//     transparent: a variant registered as &Add{} is written as the Add
//     constructor and decoded as an *Add.
//
// In MessagePack the shapes are the same: a constructor is a map with the
// string keys "_", "0", "1", ..., arrays are arrays, integers are the
// smallest MessagePack integer that holds them, floats are float64.
//
// # Example
//
//	type Msg interface{ isMsg() }
//	type Increment struct{}
//	type Add struct{ N int }
//	type Model struct{ Count int }
//
//	s := transport.Automatic[Model, Msg](Increment{}, Add{})
//	payload, _ := s.EncodeMessage(Add{N: 5}, transport.FormatJSON) // {"_":"Add","0":5}
//	frame, _ := transport.Encode(transport.Frame{
//		Type:     transport.TypeServerMessage,
//		Sequence: 7,
//		Payload:  payload,
//	}, transport.FormatJSON)
//	// frame is {"type":"server_message","sequence":7,"payload":{"_":"Add","0":5}}
package transport
