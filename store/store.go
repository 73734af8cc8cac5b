// Package store holds lily's store: an initial model and the update function
// that applies one message to a model. It does no I/O and starts no
// goroutines; the server package runs a store inside an actor.
//
// A Store is a value: copy it freely. The update function must be pure in the
// sense lily expects (the same model and message give the same result) because
// clients run it too, optimistically, on their local copy of the model.
package store

import (
	"errors"
	"fmt"
	"runtime/debug"
)

// ErrRejected is wrapped by every error Apply returns: the message was
// refused and the model is unchanged.
var ErrRejected = errors.New("store: message rejected")

// Store is lily's store: an initial model and an update function.
// It mirrors lily's store.Store(model, message).
type Store[M, Msg any] struct {
	initial  M
	update   func(M, Msg) M
	validate func(M, Msg) error
}

// New returns a store with the given initial model and update function.
// It mirrors lily's store.new(initial, with: update).
func New[M, Msg any](initial M, update func(model M, msg Msg) M) Store[M, Msg] {
	return Store[M, Msg]{initial: initial, update: update}
}

// WithValidator returns a copy of the store that first asks validate whether
// msg may be applied to model; a non-nil error rejects the message (clients
// get an error frame with code "rejected" and the error's text).
func (s Store[M, Msg]) WithValidator(validate func(model M, msg Msg) error) Store[M, Msg] {
	s.validate = validate
	return s
}

// Initial returns the initial model.
func (s Store[M, Msg]) Initial() M { return s.initial }

// Apply applies msg to model and returns the next model. A panic in the
// update function (or the validator) and a validator's refusal are returned
// as an error wrapping ErrRejected; the model passed in is then the one to
// keep. Apply never panics.
func (s Store[M, Msg]) Apply(model M, msg Msg) (next M, err error) {
	defer func() {
		if r := recover(); r != nil {
			next = model
			err = &PanicError{Value: r, Stack: debug.Stack()}
		}
	}()
	if s.validate != nil {
		if verr := s.validate(model, msg); verr != nil {
			return model, fmt.Errorf("%w: %w", ErrRejected, verr)
		}
	}
	if s.update == nil {
		return model, fmt.Errorf("%w: store has no update function", ErrRejected)
	}
	return s.update(model, msg), nil
}

// PanicError reports a panic in the update function or the validator.
// It wraps ErrRejected.
type PanicError struct {
	Value any    // what was passed to panic
	Stack []byte // the panicking goroutine's stack
}

// Error returns "store: message rejected: update panicked: VALUE".
func (e *PanicError) Error() string {
	return fmt.Sprintf("%v: update panicked: %v", ErrRejected, e.Value)
}

// Unwrap returns ErrRejected.
func (e *PanicError) Unwrap() error { return ErrRejected }
