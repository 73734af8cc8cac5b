package transport

import "fmt"

// ErrorCode is the code of an error frame (PROTOCOL.md).
type ErrorCode string

// The error codes of PROTOCOL.md.
const (
	CodeBadFrame     ErrorCode = "bad_frame"     // the envelope could not be decoded
	CodeBadPayload   ErrorCode = "bad_payload"   // the serialiser could not decode the payload
	CodeRejected     ErrorCode = "rejected"      // the update function panicked or the validator refused
	CodeUnauthorized ErrorCode = "unauthorized"  // authentication failed or the client may not do this
	CodeTooLarge     ErrorCode = "too_large"     // a frame over the size limit
	CodeOverloaded   ErrorCode = "overloaded"    // the server sheds load
	CodeUnknownStore ErrorCode = "unknown_store" // no store of that kind
	CodeInternal     ErrorCode = "internal"      // a fault on the server's side
)

// Error is a protocol error: it becomes an error frame with its Code and
// Reason. Check for it with errors.As.
type Error struct {
	Code   ErrorCode
	Reason string
}

// Error returns "transport: CODE: REASON".
func (e *Error) Error() string {
	return "transport: " + string(e.Code) + ": " + e.Reason
}

// Errorf returns an *Error with the given code and a formatted reason.
func Errorf(code ErrorCode, format string, args ...any) *Error {
	return &Error{Code: code, Reason: fmt.Sprintf(format, args...)}
}
