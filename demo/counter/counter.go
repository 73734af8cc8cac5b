// Package counter is the "counter" demo kind of lilyd: a model holding one
// number and four messages. It doubles as the smallest complete lily app:
// a store and the automatic serialiser.
package counter

import "github.com/lily-go/lily/store"

// Counter is the model.
type Counter struct {
	Count int
}

// Msg is a counter message: Increment, Decrement, Add or Reset.
type Msg interface{ isCounterMsg() }

// Increment adds one.
type Increment struct{}

// Decrement subtracts one.
type Decrement struct{}

// Add adds N (which may be negative).
type Add struct {
	N int
}

// Reset sets the count back to zero.
type Reset struct{}

func (Increment) isCounterMsg() {}
func (Decrement) isCounterMsg() {}
func (Add) isCounterMsg()       {}
func (Reset) isCounterMsg()     {}

// Variants lists the message types, for transport.Automatic.
var Variants = []any{Increment{}, Decrement{}, Add{}, Reset{}}

// Update applies one message.
func Update(model Counter, msg Msg) Counter {
	switch msg := msg.(type) {
	case Increment:
		model.Count++
	case Decrement:
		model.Count--
	case Add:
		model.Count += msg.N
	case Reset:
		model.Count = 0
	}
	return model
}

// Store returns the counter store, starting at zero.
func Store() store.Store[Counter, Msg] {
	return store.New(Counter{}, Update)
}
