package actors

import "sync"

// Sink delivers frames to one client, in order. It runs on the client's
// child actor, one call at a time; it may block (the client's outbox absorbs
// what the store produces meanwhile). It must not modify or keep the frames
// slice after it returns; the frames themselves are immutable and shared with
// other clients, so it may keep those. A non-nil error means the client is
// gone: its child stops and the store forgets the connection.
//
// A call with nil frames tells the connection that the store let it go (the
// store stopped, restarts, cannot serve, or cut the client off): the
// connection should close so that its client reconnects and resyncs.
type Sink func(frames [][]byte) error

// frameKind says what an outbox may do with a queued frame.
type frameKind uint8

const (
	// kindReliable frames (errors, snapshots, acknowledgements of messages
	// without an id) are never dropped.
	kindReliable frameKind = iota
	// kindDroppable frames (server_message) are dropped when the outbox
	// overflows; a snapshot replaces them.
	kindDroppable
	// kindAck frames acknowledge a message with an id. A client's messages
	// are handled in id order, so an acknowledgement of id N also tells
	// that every earlier id was handled: once the outbox has overflowed,
	// only the newest queued one is kept.
	kindAck
)

type queuedFrame struct {
	data []byte
	kind frameKind
}

// pushResult tells the store what a push did.
type pushResult uint8

const (
	pushQueued    pushResult = iota // the frame is queued
	pushScheduled                   // queued, and the child must be told to drain
	pushDropped                     // dropped: the outbox is closed or overflowed
	pushCutOff                      // even reliable frames exceed the limit: cut the client off
)

// outbox is a client's bounded queue of encoded frames. The store actor
// pushes (never blocking); the client's child actor drains into the Sink.
// It is bounded in bytes: when a push would exceed the limit, the outbox
// overflows: the queued server messages are dropped and the queued
// acknowledgements collapse into the newest one, and so do later ones until
// the store pushes a snapshot, which the child asks for once everything
// still queued has been written. Only when the frames that cannot be dropped
// (errors, acknowledgements without an id) alone exceed the limit is the
// client cut off.
type outbox struct {
	limit int

	mu sync.Mutex
	// guarded by mu
	queue      []queuedFrame
	spare      []queuedFrame // the last drained batch, reused
	bytes      int
	scheduled  bool // the child has been told to drain and has not yet found the queue empty
	overflowed bool // droppable frames are being dropped until a snapshot
	resyncSent bool // the child asked the store for the snapshot
	finishing  bool // once drained, the connection is let go
	closed     bool
	letGo      bool // closed by the store, not by the connection: tell the connection
}

func newOutbox(limit int) *outbox {
	return &outbox{limit: limit}
}

// push queues a frame.
func (o *outbox) push(data []byte, kind frameKind) pushResult {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed || o.finishing || (o.overflowed && kind == kindDroppable) {
		return pushDropped
	}
	if !o.overflowed && o.bytes+len(data) > o.limit {
		o.overflowLocked()
		if kind == kindDroppable {
			return o.schedule(pushDropped)
		}
	}
	if o.overflowed && kind == kindAck {
		o.dropKind(kindAck)
	}
	if o.bytes+len(data) > o.limit && o.bytes > 0 {
		return pushCutOff
	}
	return o.append(data, kind)
}

// overflow drops the queued droppable frames and every later one until a
// snapshot is pushed, as if the outbox had overflowed.
func (o *outbox) overflow() pushResult {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return pushDropped
	}
	o.overflowLocked()
	return o.schedule(pushDropped)
}

func (o *outbox) overflowLocked() {
	newestAck := -1
	for i, f := range o.queue {
		if f.kind == kindAck {
			newestAck = i
		}
	}
	kept := o.queue[:0]
	bytes := 0
	for i, f := range o.queue {
		if f.kind == kindDroppable || (f.kind == kindAck && i != newestAck) {
			continue
		}
		kept = append(kept, f)
		bytes += len(f.data)
	}
	clear(o.queue[len(kept):])
	o.queue = kept
	o.bytes = bytes
	o.overflowed = true
}

// schedule makes sure the child will drain (and so, after an overflow, ask
// for its snapshot): it returns pushScheduled when the child must be told.
func (o *outbox) schedule(otherwise pushResult) pushResult {
	if o.scheduled {
		return otherwise
	}
	o.scheduled = true
	return pushScheduled
}

// pushSnapshot queues a snapshot that ends an overflow: droppable frames
// are accepted again after it.
func (o *outbox) pushSnapshot(data []byte) pushResult {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return pushDropped
	}
	o.overflowed = false
	o.resyncSent = false
	return o.append(data, kindReliable)
}

func (o *outbox) append(data []byte, kind frameKind) pushResult {
	o.queue = append(o.queue, queuedFrame{data: data, kind: kind})
	o.bytes += len(data)
	return o.schedule(pushQueued)
}

// dropKind removes the queued frames of one kind. Caller holds mu.
func (o *outbox) dropKind(kind frameKind) {
	kept := o.queue[:0]
	bytes := 0
	for _, f := range o.queue {
		if f.kind != kind {
			kept = append(kept, f)
			bytes += len(f.data)
		}
	}
	clear(o.queue[len(kept):])
	o.queue = kept
	o.bytes = bytes
}

// drainAction tells the child what to do once its outbox is empty.
type drainAction uint8

const (
	drainIdle   drainAction = iota // nothing: wait for the next push
	drainResync                    // ask the store for a snapshot (after an overflow)
	drainFinish                    // let the connection go and stop (after finish)
)

// take returns everything queued, in order, and empties the queue. When the
// queue is already empty it returns nil, clears scheduled (the next push
// schedules a drain again) and says what the child must do next. The
// returned slice is valid until the next take.
func (o *outbox) take(dst [][]byte) (frames [][]byte, next drainAction) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.queue) == 0 || o.closed {
		o.scheduled = false
		switch {
		case o.closed:
			return nil, drainIdle
		case o.finishing:
			o.closed, o.letGo = true, true
			return nil, drainFinish
		case o.overflowed && !o.resyncSent:
			o.resyncSent = true
			return nil, drainResync
		}
		return nil, drainIdle
	}
	for _, f := range o.queue {
		dst = append(dst, f.data)
	}
	batch := o.queue
	o.queue = o.spare[:0]
	clear(batch)
	o.spare = batch
	o.bytes = 0
	return dst, drainIdle
}

// finish refuses further frames and, once what is queued has been
// written, has the child let the connection go. It reports whether the
// child must be told to drain.
func (o *outbox) finish() pushResult {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return pushDropped
	}
	o.finishing = true
	return o.schedule(pushQueued)
}

// lettingGo reports whether the store closed the outbox to let the
// connection go.
func (o *outbox) lettingGo() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.letGo
}

// close drops what is queued and refuses further frames. letGo says the
// store dropped the connection (rather than the connection leaving).
func (o *outbox) close(letGo bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.closed {
		o.letGo = letGo
	}
	o.closed = true
	o.queue = nil
	o.spare = nil
	o.bytes = 0
}
