package gateway

import (
	"encoding/binary"

	"github.com/gorilla/websocket"
)

// The gateway writes server-to-client WebSocket frames itself (RFC 6455,
// unmasked, unfragmented, no compression) so that every frame queued for a
// connection goes out in one writev system call. Reading stays with
// gorilla/websocket.

// maxHeaderLen is the longest frame header a server writes.
const maxHeaderLen = 10

// appendHeader appends the header of one final frame of the given opcode
// and payload length.
func appendHeader(dst []byte, opcode int, n int) []byte {
	b0 := byte(0x80 | opcode) // FIN + opcode
	switch {
	case n < 126:
		return append(dst, b0, byte(n))
	case n <= 0xFFFF:
		return append(dst, b0, 126, byte(n>>8), byte(n))
	default:
		dst = append(dst, b0, 127)
		return binary.BigEndian.AppendUint64(dst, uint64(n))
	}
}

// opcodeFor returns the frame type PROTOCOL.md asks for: text for a JSON
// envelope, binary for a MessagePack one.
func opcodeFor(frame []byte) int {
	if len(frame) > 0 && frame[0] == '{' {
		return websocket.TextMessage
	}
	return websocket.BinaryMessage
}
