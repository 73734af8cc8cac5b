package server

import "errors"

var (
	// ErrStopped is returned by calls that need an answer from a server that
	// was stopped.
	ErrStopped = errors.New("server: stopped")
	// ErrNoSerialiser is returned by Start when the serialiser is nil.
	ErrNoSerialiser = errors.New("server: no serialiser")
)

// ErrUnknownKind is returned by Registry.Connect for a kind it does not serve.
var ErrUnknownKind = errors.New("server: unknown store kind")
