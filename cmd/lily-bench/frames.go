package main

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"strconv"

	"github.com/lily-go/lily/transport"
)

// inFrame is what the bench needs from a frame the server sent.
type inFrame struct {
	typ   transport.FrameType
	seq   uint64 // acknowledge, server_message, snapshot
	id    uint64 // acknowledge, error: the client's message id (0 = none)
	code  string // error
	state []byte // snapshot; a copy only when the frame was fully decoded
}

// Fast paths. The server writes acknowledge and server_message frames, the
// bulk of the traffic, in one fixed shape (transport.AppendEncode): "type"
// first, then "sequence", then "id" or "payload". parseFrame reads those
// shapes with a few comparisons and no allocation; any other frame, or a
// frame that differs from them in any way, goes through transport.Decode,
// so parsing stays correct for whatever a valid server sends.
var (
	jsonAckPrefix = []byte(`{"type":"acknowledge","sequence":`)
	jsonMsgPrefix = []byte(`{"type":"server_message","sequence":`)
	jsonIDKey     = []byte(`,"id":`)
	jsonPayKey    = []byte(`,"payload":`)

	mpTypeKey   = []byte("\xa4type")
	mpAck       = []byte("\xabacknowledge\xa8sequence")
	mpMsg       = []byte("\xaeserver_message\xa8sequence")
	mpIDKey     = []byte("\xa2id")
	mpPayloadKy = []byte("\xa7payload")
)

// parseFrame reads a frame from the server. With full set it always uses
// transport.Decode (the slow, strict path), else only when the fast path
// does not apply. The returned state, when set, does not alias data.
func parseFrame(data []byte, full bool) (inFrame, error) {
	format := transport.DetectFormat(data)
	if !full {
		var f inFrame
		var ok bool
		if format == transport.FormatJSON {
			f, ok = fastJSON(data)
		} else {
			f, ok = fastMsgPack(data)
		}
		if ok {
			return f, nil
		}
	}
	fr, err := transport.Decode(data, format)
	if err != nil {
		return inFrame{}, err
	}
	return inFrame{typ: fr.Type, seq: fr.Sequence, id: fr.ID, code: string(fr.Code), state: fr.State}, nil
}

// fastJSON parses the canonical acknowledge and server_message shapes.
func fastJSON(data []byte) (inFrame, bool) {
	var f inFrame
	var rest []byte
	switch {
	case bytes.HasPrefix(data, jsonAckPrefix):
		f.typ, rest = transport.TypeAcknowledge, data[len(jsonAckPrefix):]
	case bytes.HasPrefix(data, jsonMsgPrefix):
		f.typ, rest = transport.TypeServerMessage, data[len(jsonMsgPrefix):]
	default:
		return f, false
	}
	seq, rest, ok := jsonUint(rest)
	if !ok {
		return f, false
	}
	f.seq = seq
	if f.typ == transport.TypeAcknowledge {
		if bytes.HasPrefix(rest, jsonIDKey) {
			f.id, rest, ok = jsonUint(rest[len(jsonIDKey):])
			if !ok {
				return f, false
			}
		}
		return f, len(rest) == 1 && rest[0] == '}'
	}
	// server_message: the payload is not needed; its presence and the
	// closing brace are checked, its content is the server's business.
	return f, bytes.HasPrefix(rest, jsonPayKey) && len(rest) > len(jsonPayKey)+1 && rest[len(rest)-1] == '}'
}

// jsonUint reads a JSON unsigned integer with no leading zero (other than
// "0" itself) that fits in a uint64.
func jsonUint(b []byte) (uint64, []byte, bool) {
	n := 0
	for n < len(b) && b[n] >= '0' && b[n] <= '9' {
		n++
	}
	if n == 0 || n > 20 || (n > 1 && b[0] == '0') {
		return 0, b, false
	}
	if n < len(b) && (b[n] == '.' || b[n] == 'e' || b[n] == 'E') {
		return 0, b, false
	}
	var v uint64
	for _, c := range b[:n] {
		d := uint64(c - '0')
		if v > (math.MaxUint64-d)/10 {
			return 0, b, false // beyond uint64
		}
		v = v*10 + d
	}
	return v, b[n:], true
}

// fastMsgPack parses the canonical acknowledge and server_message shapes:
// a fixmap whose first key is "type", then "sequence", then "id" (ack) or
// a bin "payload" (server_message).
func fastMsgPack(data []byte) (inFrame, bool) {
	var f inFrame
	if len(data) < 1 || data[0]&0xf0 != 0x80 || !bytes.HasPrefix(data[1:], mpTypeKey) {
		return f, false
	}
	n := int(data[0] & 0x0f)
	rest := data[1+len(mpTypeKey):]
	switch {
	case bytes.HasPrefix(rest, mpAck):
		f.typ, rest = transport.TypeAcknowledge, rest[len(mpAck):]
	case bytes.HasPrefix(rest, mpMsg):
		f.typ, rest = transport.TypeServerMessage, rest[len(mpMsg):]
	default:
		return f, false
	}
	seq, rest, ok := mpUint(rest)
	if !ok {
		return f, false
	}
	f.seq = seq
	if f.typ == transport.TypeAcknowledge {
		switch {
		case n == 2 && len(rest) == 0:
			return f, true
		case n == 3 && bytes.HasPrefix(rest, mpIDKey):
			f.id, rest, ok = mpUint(rest[len(mpIDKey):])
			return f, ok && len(rest) == 0
		}
		return f, false
	}
	if n != 3 || !bytes.HasPrefix(rest, mpPayloadKy) {
		return f, false
	}
	size, rest, ok := mpBinLen(rest[len(mpPayloadKy):])
	return f, ok && uint64(len(rest)) == size
}

// mpUint reads a MessagePack integer that is not negative.
func mpUint(b []byte) (uint64, []byte, bool) {
	if len(b) == 0 {
		return 0, b, false
	}
	c := b[0]
	switch {
	case c <= 0x7f:
		return uint64(c), b[1:], true
	case c == 0xcc && len(b) >= 2:
		return uint64(b[1]), b[2:], true
	case c == 0xcd && len(b) >= 3:
		return uint64(binary.BigEndian.Uint16(b[1:])), b[3:], true
	case c == 0xce && len(b) >= 5:
		return uint64(binary.BigEndian.Uint32(b[1:])), b[5:], true
	case c == 0xcf && len(b) >= 9:
		return binary.BigEndian.Uint64(b[1:]), b[9:], true
	}
	return 0, b, false // signed encodings and anything else: slow path
}

// mpBinLen reads the header of a MessagePack bin value.
func mpBinLen(b []byte) (uint64, []byte, bool) {
	if len(b) == 0 {
		return 0, b, false
	}
	switch c := b[0]; {
	case c == 0xc4 && len(b) >= 2:
		return uint64(b[1]), b[2:], true
	case c == 0xc5 && len(b) >= 3:
		return uint64(binary.BigEndian.Uint16(b[1:])), b[3:], true
	case c == 0xc6 && len(b) >= 5:
		return uint64(binary.BigEndian.Uint32(b[1:])), b[5:], true
	}
	return 0, b, false
}

// messageEncoder builds client_message frames for one sender without
// going through transport.AppendEncode for each one: the envelope up to
// the id is computed once (by transport.Encode, so it is exactly the
// transport's format), and each frame appends the id and the end.
type messageEncoder struct {
	format transport.Format
	prefix []byte
}

// newMessageEncoder returns an encoder of client_message frames carrying
// payload (the serialiser's encoding in format).
func newMessageEncoder(payload []byte, format transport.Format) (*messageEncoder, error) {
	b, err := transport.Encode(transport.Frame{Type: transport.TypeClientMessage, Payload: payload}, format)
	if err != nil {
		return nil, err
	}
	switch format {
	case transport.FormatJSON:
		// {"type":"client_message","payload":P} -> {"type":"client_message","payload":P,"id":
		if len(b) == 0 || b[len(b)-1] != '}' {
			return nil, fmt.Errorf("unexpected client_message encoding %q", b)
		}
		b = append(b[:len(b)-1], `,"id":`...)
	case transport.FormatMsgPack:
		// fixmap(2){type, payload} -> fixmap(3){type, payload, id:
		if len(b) == 0 || b[0] != 0x82 {
			return nil, fmt.Errorf("unexpected client_message encoding % x", b)
		}
		b[0] = 0x83
		b = append(b, mpIDKey...)
	}
	return &messageEncoder{format: format, prefix: b}, nil
}

// appendFrame appends the client_message frame with the given id (>= 1).
func (e *messageEncoder) appendFrame(dst []byte, id uint64) []byte {
	dst = append(dst, e.prefix...)
	if e.format == transport.FormatJSON {
		dst = strconv.AppendUint(dst, id, 10)
		return append(dst, '}')
	}
	switch {
	case id <= 0x7f:
		return append(dst, byte(id))
	case id <= 0xff:
		return append(dst, 0xcc, byte(id))
	case id <= 0xffff:
		return binary.BigEndian.AppendUint16(append(dst, 0xcd), uint16(id))
	case id <= 0xffffffff:
		return binary.BigEndian.AppendUint32(append(dst, 0xce), uint32(id))
	}
	return binary.BigEndian.AppendUint64(append(dst, 0xcf), id)
}
