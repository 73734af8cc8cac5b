package client

import (
	"fmt"
	"sync"
	"sync/atomic"
)

// ConnState is the state of a client's connection.
type ConnState uint8

const (
	// Connecting: the first connection is being opened.
	Connecting ConnState = iota
	// Connected: a connection is open. The model may still be catching up
	// (the answer to the resync the client sends on every connection).
	Connected
	// Reconnecting: the connection was lost; the client waits for its
	// backoff delay, then dials again. Send still works (offline editing).
	Reconnecting
	// Closed: the client stopped, by Close or because the server refused
	// it for good (see Client.Err). Send returns ErrClosed.
	Closed
)

// String returns "connecting", "connected", "reconnecting" or "closed".
func (s ConnState) String() string {
	switch s {
	case Connecting:
		return "connecting"
	case Connected:
		return "connected"
	case Reconnecting:
		return "reconnecting"
	case Closed:
		return "closed"
	}
	return fmt.Sprintf("ConnState(%d)", uint8(s))
}

// Change is what a subscriber is told: the client's state after a change of
// the local model, the confirmed model, the pending messages or the
// connection state, or a reported error.
type Change[M any] struct {
	// Model is the local model: the confirmed model with the pending
	// messages applied.
	Model M
	// Sequence is the sequence of the confirmed model.
	Sequence uint64
	// Pending is the number of messages not acknowledged yet.
	Pending int
	// State is the connection state.
	State ConnState
	// Err, when not nil, says what went wrong: a *MessageError for a
	// message the server refused (and the client dropped), a
	// *transport.Error for another error frame of the server, the reason
	// a connection was lost (with State Reconnecting) or the reason the
	// client gave up (with State Closed).
	Err error
}

// event is one delivery: a change for every subscriber (or for one, when
// the subscriber has just subscribed), or a push.
type event[M, Msg any] struct {
	change *Change[M]
	only   *subscriber[M] // when set, the change goes to this subscriber only
	push   *Msg
}

type subscriber[M any] struct {
	fn     func(Change[M])
	active atomic.Bool // false once unsubscribed
}

type pushSubscriber[Msg any] struct {
	fn     func(Msg)
	active atomic.Bool // false once unsubscribed
}

// delivery runs the callbacks on one goroutine, in order, with no lock of
// the client held. Producers enqueue under the client's mu, so events keep
// the order of the changes.
type delivery[M, Msg any] struct {
	wake chan struct{} // capacity 1: events are waiting
	done chan struct{} // closed when the goroutine has returned

	mu sync.Mutex
	// guarded by mu
	queue   []event[M, Msg]
	subs    []*subscriber[M]       // in subscription order; copied on write
	pushes  []*pushSubscriber[Msg] // in subscription order; copied on write
	stopped bool                   // no more events; the goroutine returns once queue is empty
}

func newDelivery[M, Msg any]() *delivery[M, Msg] {
	return &delivery[M, Msg]{
		wake: make(chan struct{}, 1),
		done: make(chan struct{}),
	}
}

func (d *delivery[M, Msg]) enqueue(ev event[M, Msg]) {
	d.mu.Lock()
	if d.stopped {
		d.mu.Unlock()
		return
	}
	d.queue = append(d.queue, ev)
	d.mu.Unlock()
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// stop lets the goroutine return once it has delivered what is queued.
func (d *delivery[M, Msg]) stop() {
	d.mu.Lock()
	d.stopped = true
	d.mu.Unlock()
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

func (d *delivery[M, Msg]) run() {
	defer close(d.done)
	var batch []event[M, Msg]
	for range d.wake {
		for {
			d.mu.Lock()
			batch, d.queue = d.queue, batch[:0]
			stopped := d.stopped
			subs, pushes := d.subs, d.pushes
			d.mu.Unlock()
			if len(batch) == 0 {
				if stopped {
					return
				}
				break
			}
			for i := range batch {
				ev := &batch[i]
				switch {
				case ev.only != nil:
					if ev.only.active.Load() {
						ev.only.fn(*ev.change)
					}
				case ev.change != nil:
					for _, s := range subs {
						if s.active.Load() {
							s.fn(*ev.change)
						}
					}
				case ev.push != nil:
					for _, s := range pushes {
						if s.active.Load() {
							s.fn(*ev.push)
						}
					}
				}
				*ev = event[M, Msg]{}
			}
		}
	}
}

// hasSubscribers reports whether any change subscriber is registered.
func (d *delivery[M, Msg]) hasSubscribers() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.subs) > 0
}

// addSubscriber adds s; the caller enqueues its first change.
func (d *delivery[M, Msg]) addSubscriber(s *subscriber[M]) {
	s.active.Store(true)
	d.mu.Lock()
	defer d.mu.Unlock()
	d.subs = append(d.subs[:len(d.subs):len(d.subs)], s)
}

func (d *delivery[M, Msg]) removeSubscriber(s *subscriber[M]) {
	s.active.Store(false)
	d.mu.Lock()
	defer d.mu.Unlock()
	d.subs = without(d.subs, s)
}

func (d *delivery[M, Msg]) addPushSubscriber(s *pushSubscriber[Msg]) {
	s.active.Store(true)
	d.mu.Lock()
	defer d.mu.Unlock()
	d.pushes = append(d.pushes[:len(d.pushes):len(d.pushes)], s)
}

func (d *delivery[M, Msg]) removePushSubscriber(s *pushSubscriber[Msg]) {
	s.active.Store(false)
	d.mu.Lock()
	defer d.mu.Unlock()
	d.pushes = without(d.pushes, s)
}

// without returns a new slice holding the elements of list but x.
func without[T comparable](list []T, x T) []T {
	out := make([]T, 0, len(list))
	for _, y := range list {
		if y != x {
			out = append(out, y)
		}
	}
	return out
}
