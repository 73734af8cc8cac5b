package transport

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// pathError is an encoding or decoding failure on its way up: each level
// it passes adds its key, so that the path costs nothing unless there is an
// error.
type pathError struct {
	keys []string // innermost first
	msg  string
}

func (e *pathError) Error() string { return e.msg }

// badPayload turns an error of decode into the *Error of a payload under
// root, such as "payload.0.1: expected integer, got string".
func badPayload(root string, err error) *Error {
	return located(CodeBadPayload, root, err)
}

// located returns an *Error whose reason is err located under root.
func located(code ErrorCode, root string, err error) *Error {
	var pe *pathError
	if !errors.As(err, &pe) {
		return Errorf(code, "%s: %v", root, err)
	}
	var sb strings.Builder
	sb.WriteString(root)
	for i := len(pe.keys) - 1; i >= 0; i-- {
		sb.WriteByte('.')
		sb.WriteString(pe.keys[i])
	}
	sb.WriteString(": ")
	sb.WriteString(pe.msg)
	return &Error{Code: code, Reason: sb.String()}
}

// fail starts a pathError from err, the message of a source or a sink.
func fail(err error) error {
	return &pathError{msg: err.Error()}
}

// failf starts a pathError with a formatted message.
func failf(format string, args ...any) error {
	return &pathError{msg: fmt.Sprintf(format, args...)}
}

// at records that err happened under key.
func at(err error, key string) error {
	if de, ok := err.(*pathError); ok {
		de.keys = append(de.keys, key)
	}
	return err
}

// atIndex records that err happened under index i.
func atIndex(err error, i int) error {
	return at(err, strconv.Itoa(i))
}
