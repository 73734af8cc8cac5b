package client

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/lily-go/lily/transport"
)

// ErrClosed is returned by Send, Flush and Connect once the client is
// closed, by Close or because it gave up reconnecting.
var ErrClosed = errors.New("client: closed")

// ErrUnknownStore is wrapped by the error of a client that gave up because
// the server has no store of that kind: an HTTP 404 before the upgrade or a
// close with 4404 after it (PROTOCOL.md). The client does not retry.
var ErrUnknownStore = errors.New("client: unknown store")

// CloseUnknownStore is PROTOCOL.md's close code for a store of a kind that
// does not exist.
const CloseUnknownStore = 4404

// HandshakeError reports a server that refused the WebSocket upgrade with
// an HTTP status. Statuses 400, 401, 403 and 404 are permanent: the client
// gives up (404 wraps ErrUnknownStore). Others (such as 503 from a node that
// is shutting down) are retried.
type HandshakeError struct {
	StatusCode int    // the HTTP status, such as 404
	Body       string // the start of the response body, for the logs
}

// Error returns "client: handshake: STATUS: BODY".
func (e *HandshakeError) Error() string {
	s := fmt.Sprintf("client: handshake: %d %s", e.StatusCode, http.StatusText(e.StatusCode))
	if e.Body != "" {
		s += ": " + e.Body
	}
	return s
}

// Unwrap returns ErrUnknownStore for a 404 and nil otherwise.
func (e *HandshakeError) Unwrap() error {
	if e.StatusCode == http.StatusNotFound {
		return ErrUnknownStore
	}
	return nil
}

// permanent reports whether the status means that retrying cannot help.
func (e *HandshakeError) permanent() bool {
	switch e.StatusCode {
	case http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound:
		return true
	}
	return false
}

// MessageError reports a message that the client dropped from its pending
// messages because the server answered it with an error frame (rejected,
// bad_payload, ...): the server did not apply it, and the local model no
// longer includes it. Subscribers get it in Change.Err.
type MessageError struct {
	ID      uint64           // the message's id
	Message any              // the message, of the client's Msg type
	Err     *transport.Error // the code and reason the server gave
}

// Error returns "client: message ID dropped: transport: CODE: REASON".
func (e *MessageError) Error() string {
	return fmt.Sprintf("client: message %d dropped: %v", e.ID, e.Err)
}

// Unwrap returns the server's *transport.Error.
func (e *MessageError) Unwrap() error { return e.Err }
