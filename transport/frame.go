package transport

import "fmt"

// FrameType names one kind of envelope of PROTOCOL.md.
type FrameType uint8

// The frame types. Their wire names are those of lily's transport.Protocol
// plus this project's extensions (Synced, Error).
const (
	// TypeClientMessage carries one message of the store from a client
	// ("client_message"): Payload, and optionally ID.
	TypeClientMessage FrameType = iota + 1
	// TypeResync asks for the state after AfterSequence ("resync"); Delta and
	// Epoch ask for a delta instead of a snapshot.
	TypeResync
	// TypeAcknowledge tells the sender the Sequence its message got
	// ("acknowledge"), echoing the client's ID when it sent one.
	TypeAcknowledge
	// TypeServerMessage carries a message applied for another client
	// ("server_message"): Sequence and Payload.
	TypeServerMessage
	// TypeSnapshot carries the whole model at Sequence ("snapshot"): State, Epoch.
	TypeSnapshot
	// TypePush carries an ephemeral message with no sequence ("push"): Payload.
	TypePush
	// TypeSynced ends a delta resync ("synced"): Sequence, Epoch.
	TypeSynced
	// TypeError reports bad input or a refusal ("error"): Code, Reason, ID.
	TypeError
)

var frameTypeNames = [...]string{
	TypeClientMessage: "client_message",
	TypeResync:        "resync",
	TypeAcknowledge:   "acknowledge",
	TypeServerMessage: "server_message",
	TypeSnapshot:      "snapshot",
	TypePush:          "push",
	TypeSynced:        "synced",
	TypeError:         "error",
}

// String returns the frame type's wire name, such as "client_message".
func (t FrameType) String() string {
	if t > 0 && int(t) < len(frameTypeNames) {
		return frameTypeNames[t]
	}
	return fmt.Sprintf("FrameType(%d)", uint8(t))
}

// ParseFrameType returns the frame type with the given wire name.
func ParseFrameType(name string) (FrameType, bool) {
	for t, n := range frameTypeNames {
		if n != "" && n == name {
			return FrameType(t), true
		}
	}
	return 0, false
}

// Frame is one envelope of PROTOCOL.md, in either direction. Type says which
// fields are meaningful; the others are zero. A zero ID means "absent".
//
// Payload and State hold the serialiser's encoding of a message or a model in
// the envelope's format: JSON text in a JSON envelope (embedded as a JSON
// value, not a string), and the serialiser's MessagePack bytes (carried as a
// bin value) in a MessagePack envelope.
type Frame struct {
	Type          FrameType
	ID            uint64    // client_message, acknowledge, error: the client's message id; 0 = none
	Sequence      uint64    // acknowledge, server_message, snapshot, synced
	AfterSequence uint64    // resync: last sequence the client applied; 0 = none
	Delta         bool      // resync: a delta is acceptable
	Epoch         string    // resync, snapshot, synced: the history the sequence belongs to
	Payload       []byte    // client_message, server_message, push
	State         []byte    // snapshot
	Code          ErrorCode // error
	Reason        string    // error: a human-readable explanation
}

// Format is an envelope encoding. A server answers each client in the format
// of the last frame that client sent (JSON until it sends one).
type Format uint8

const (
	// FormatJSON is the JSON envelope, sent in WebSocket text frames.
	FormatJSON Format = iota + 1
	// FormatMsgPack is the MessagePack envelope, sent in binary frames.
	FormatMsgPack
)

// String returns "json" or "msgpack".
func (f Format) String() string {
	switch f {
	case FormatJSON:
		return "json"
	case FormatMsgPack:
		return "msgpack"
	}
	return fmt.Sprintf("Format(%d)", uint8(f))
}

// DetectFormat tells which envelope format data is in: JSON when its first
// byte that is not white space is '{', MessagePack otherwise.
func DetectFormat(data []byte) Format {
	for _, b := range data {
		switch b {
		case ' ', '\t', '\n', '\r':
			continue
		case '{':
			return FormatJSON
		}
		return FormatMsgPack
	}
	return FormatJSON
}

// PeekType returns the type of an encoded frame without decoding the rest
// of it when the frame starts the way Encode writes one ("type" first);
// otherwise it decodes the frame. It returns 0 for a frame that cannot be
// decoded.
func PeekType(data []byte) FrameType {
	if name, ok := peekTypeName(data); ok {
		if t, ok := ParseFrameType(name); ok {
			return t
		}
	}
	f, err := Decode(data, DetectFormat(data))
	if err != nil {
		return 0
	}
	return f.Type
}

// peekTypeName returns the type name of a frame laid out as Encode writes
// it: JSON {"type":"NAME" or a MessagePack fixmap whose first key is the
// fixstr "type" and whose first value is a fixstr.
func peekTypeName(data []byte) (string, bool) {
	const jsonPrefix = `{"type":"`
	if len(data) > len(jsonPrefix) && string(data[:len(jsonPrefix)]) == jsonPrefix {
		rest := data[len(jsonPrefix):]
		for i, b := range rest {
			if b == '"' {
				return string(rest[:i]), true
			}
			if b == '\\' || i > 16 {
				break
			}
		}
		return "", false
	}
	// fixmap, fixstr "type", fixstr value.
	if len(data) < 7 || data[0]&0xf0 != 0x80 || string(data[1:6]) != "\xa4type" || data[6]&0xe0 != 0xa0 {
		return "", false
	}
	n := int(data[6] & 0x1f)
	if len(data) < 7+n {
		return "", false
	}
	return string(data[7 : 7+n]), true
}
