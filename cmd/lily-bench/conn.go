package main

import (
	"errors"
	"fmt"
	"io"
	"math/bits"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/lily-go/lily/transport"
)

// seqRing maps a store's sequences to the send time of the message that got
// them, so that every receiver can work out a delivery latency without a
// timestamp in the payload: the sender's reader publishes (sequence, send
// time) when the acknowledge arrives, receivers look the sequence up. It is
// a ring indexed by sequence: old entries are overwritten, so memory stays
// fixed, and a receiver more than len(slots) sequences behind finds its
// entry evicted (counted as unresolved).
//
// Each slot is a tiny seqlock: publish clears the sequence, writes the time,
// then the sequence; lookup reads the sequence, the time and the sequence
// again. Readers never see a torn entry. Two publishes to one slot at once
// (two acks exactly len(slots) sequences apart, read at the same instant)
// could mix, which the ring's size makes practically impossible.
type seqRing struct {
	mask  uint64
	slots []ringSlot
	gen   atomic.Uint64 // publishes so far, so receivers know when to retry
}

type ringSlot struct {
	seq atomic.Uint64 // 0 = empty or being written
	at  atomic.Int64  // send time, in run nanoseconds
}

// lookupResult says what a lookup found.
type lookupResult uint8

const (
	lookupFound   lookupResult = iota
	lookupPending              // not published yet: the ack has not arrived
	lookupEvicted              // overwritten by a later sequence
)

// newSeqRing returns a ring of size slots, rounded up to a power of two.
func newSeqRing(size int) *seqRing {
	n := 1 << bits.Len(uint(max(size, 2)-1))
	return &seqRing{mask: uint64(n - 1), slots: make([]ringSlot, n)}
}

// publish records the send time of the message that got sequence seq.
func (r *seqRing) publish(seq uint64, at int64) {
	s := &r.slots[seq&r.mask]
	s.seq.Store(0)
	s.at.Store(at)
	s.seq.Store(seq)
	r.gen.Add(1)
}

// lookup returns the send time of sequence seq.
func (r *seqRing) lookup(seq uint64) (int64, lookupResult) {
	s := &r.slots[seq&r.mask]
	got := s.seq.Load()
	if got != seq {
		if got > seq {
			return 0, lookupEvicted
		}
		return 0, lookupPending
	}
	at := s.at.Load()
	if s.seq.Load() != seq {
		return 0, lookupEvicted
	}
	return at, lookupFound
}

// parkedReceipt is a server_message whose sequence's send time was not
// known yet when it arrived.
type parkedReceipt struct {
	seq uint64
	at  int64 // receipt time, in run nanoseconds
}

// maxParked bounds one connection's parked receipts; beyond it the oldest
// is given up (counted as unresolved).
const maxParked = 4096

// snapInfo is a snapshot a client asked for.
type snapInfo struct {
	seq   uint64
	state []byte
}

// benchConn is one WebSocket client. Its reader goroutine owns the socket's
// read side and everything marked "reader"; its sender goroutine (if it
// sends) owns the data writes. The run's own goroutine writes the resync
// frames only while no sender goroutine runs (before they start and after
// they have stopped), so there is never more than one writer; close frames
// go through WriteControl, which gorilla allows concurrently.
type benchConn struct {
	run      *loadRun
	store    *storeState
	clientID string
	url      string
	sender   bool

	ws         *websocket.Conn // nil when the dial failed
	readerDone chan struct{}   // closed when the reader has returned
	closing    atomic.Bool     // the bench is closing the connection itself

	// Sender side. sent is written by the sender goroutine, done by the
	// reader (acks and refusals complete ids in order).
	sendTimes []atomic.Int64 // send time by id & sendMask, in run nanoseconds
	sendMask  uint64
	sent      atomic.Uint64 // highest id sent
	done      atomic.Uint64 // highest id acknowledged or refused
	wake      chan struct{} // reader -> sender: an id completed (capacity 1)
	stalls    atomic.Uint64 // open loop: waits because max-inflight was reached

	// Reader side.
	tracker        seqTracker      // reader
	parked         []parkedReceipt // reader
	parkedGen      uint64          // reader: ring generation of the last sweep
	buf            []byte          // reader: the frame being read
	lastSeq        atomic.Uint64   // mirror of tracker.last, for the drain wait
	resyncs        atomic.Int32    // resyncs sent and not answered yet
	snaps          chan snapInfo   // answers to those resyncs
	acked          atomic.Uint64   // acknowledges with a sequence, all phases
	ackedWin       atomic.Uint64   // ... received inside the measurement window
	refused        atomic.Uint64   // error frames answering one of our messages
	deliveries     atomic.Uint64   // server_message frames, all phases
	delivWin       atomic.Uint64   // ... received inside the measurement window
	unresolved     atomic.Uint64   // deliveries whose send time could not be found
	overflows      atomic.Uint64   // snapshots the client did not ask for
	violations     int             // set by the reader when it returns
	firstViolation string          // set by the reader when it returns

	final finalSnap // the answer to the final resync; set by the run's goroutine
}

// messageType is the WebSocket message type of the run's format.
func messageType(f transport.Format) int {
	if f == transport.FormatMsgPack {
		return websocket.BinaryMessage
	}
	return websocket.TextMessage
}

// readLoop reads frames until the connection ends. It runs in its own
// goroutine, one per connection.
func (c *benchConn) readLoop() {
	r := c.run
	defer close(c.readerDone)
	defer func() {
		c.unresolved.Add(uint64(len(c.parked))) // their acks never came
		c.parked = nil
		c.violations, c.firstViolation = c.tracker.finish()
	}()
	for {
		_, rd, err := c.ws.NextReader()
		if err == nil {
			c.buf, err = readInto(c.buf[:0], rd)
		}
		if err != nil {
			c.readFailed(err)
			return
		}
		now := r.now()
		f, err := parseFrame(c.buf, r.cfg.fullDecode)
		if err != nil {
			r.countError("undecodable_server_frame")
			continue
		}
		switch f.typ {
		case transport.TypeAcknowledge:
			c.onAck(f, now)
		case transport.TypeServerMessage:
			c.onDelivery(f.seq, now)
		case transport.TypeSnapshot:
			c.onSnapshot(f)
		case transport.TypeError:
			r.countError("error_frame:" + f.code)
			if f.id > 0 && c.sender {
				c.refused.Add(1)
				c.complete(f.id)
			}
		default:
			r.countError("unexpected_frame:" + f.typ.String())
		}
		if len(c.parked) > 0 {
			c.sweepParked()
		}
		if cap(c.buf) > maxKeptBuffer {
			c.buf = nil // a big snapshot: do not keep its buffer for small frames
		}
	}
}

// maxKeptBuffer bounds the read buffer a connection keeps between frames.
const maxKeptBuffer = 64 << 10

// readInto reads one message into buf, growing it as needed, so that a
// connection reuses one buffer for all its frames.
func readInto(buf []byte, rd io.Reader) ([]byte, error) {
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := rd.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

// readFailed classifies the end of a connection that the bench did not
// close itself.
func (c *benchConn) readFailed(err error) {
	if c.closing.Load() {
		return
	}
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		c.run.countError(fmt.Sprintf("close_%d", ce.Code))
		return
	}
	c.run.countError("connection_lost")
	c.run.note("connection %s lost: %v", c.clientID, err)
}

func (c *benchConn) onAck(f inFrame, now int64) {
	r := c.run
	c.tracker.sequenced(f.seq)
	c.lastSeq.Store(c.tracker.last)
	if f.seq == 0 {
		// Only a repeated id is acknowledged with 0, and the bench never
		// repeats one.
		r.countError("ack_sequence_0")
	} else {
		c.acked.Add(1)
		c.store.noteSeq(f.seq)
	}
	if f.id == 0 || !c.sender {
		r.countError("ack_without_id")
		return
	}
	sentAt := c.sendTimes[f.id&c.sendMask].Load()
	if f.seq != 0 {
		c.store.ring.publish(f.seq, sentAt)
	}
	if r.inWindow(now) {
		c.ackedWin.Add(1)
		if sentAt >= r.mStart.Load() {
			r.ackHist.record(time.Duration(now - sentAt))
		}
	}
	c.complete(f.id)
}

// complete marks id as answered and wakes the sender.
func (c *benchConn) complete(id uint64) {
	c.done.Store(id)
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

func (c *benchConn) onDelivery(seq uint64, now int64) {
	r := c.run
	c.tracker.sequenced(seq)
	c.lastSeq.Store(c.tracker.last)
	c.deliveries.Add(1)
	if r.inWindow(now) {
		c.delivWin.Add(1)
	}
	sentAt, res := c.store.ring.lookup(seq)
	switch res {
	case lookupFound:
		r.recordDelivery(sentAt, now)
	case lookupEvicted:
		c.unresolved.Add(1)
	case lookupPending:
		if len(c.parked) == maxParked {
			c.parked = c.parked[1:]
			c.unresolved.Add(1)
		}
		c.parked = append(c.parked, parkedReceipt{seq: seq, at: now})
	}
}

// sweepParked resolves parked receipts whose acks have arrived since.
func (c *benchConn) sweepParked() {
	gen := c.store.ring.gen.Load()
	if gen == c.parkedGen {
		return
	}
	c.parkedGen = gen
	kept := c.parked[:0]
	for _, p := range c.parked {
		sentAt, res := c.store.ring.lookup(p.seq)
		switch res {
		case lookupFound:
			c.run.recordDelivery(sentAt, p.at)
		case lookupEvicted:
			c.unresolved.Add(1)
		case lookupPending:
			kept = append(kept, p)
		}
	}
	c.parked = kept
}

func (c *benchConn) onSnapshot(f inFrame) {
	solicited := false
	for {
		n := c.resyncs.Load()
		if n <= 0 {
			break
		}
		if c.resyncs.CompareAndSwap(n, n-1) {
			solicited = true
			break
		}
	}
	c.tracker.snapshot(f.seq, solicited)
	c.lastSeq.Store(c.tracker.last)
	if !solicited {
		c.overflows.Add(1)
		return
	}
	select {
	case c.snaps <- snapInfo{seq: f.seq, state: f.state}:
	default: // nobody waits for more than the channel holds
	}
}

// sendResync sends a resync frame. Only the run's goroutine calls it, while
// no sender goroutine runs.
func (c *benchConn) sendResync() error {
	frame, err := transport.Encode(transport.Frame{Type: transport.TypeResync, AfterSequence: c.lastSeq.Load()}, c.run.cfg.format)
	if err != nil {
		return err
	}
	c.resyncs.Add(1)
	_ = c.ws.SetWriteDeadline(time.Now().Add(c.run.cfg.drain))
	err = c.ws.WriteMessage(messageType(c.run.cfg.format), frame)
	_ = c.ws.SetWriteDeadline(time.Time{})
	if err != nil {
		c.resyncs.Add(-1)
	}
	return err
}

// alive reports whether the connection is open and its reader running.
func (c *benchConn) alive() bool {
	if c.ws == nil {
		return false
	}
	select {
	case <-c.readerDone:
		return false
	default:
		return true
	}
}

// sendLoop sends messages until the run stops it or the connection ends:
// in a closed loop (rate 0) the next as soon as the previous is answered,
// otherwise on a fixed schedule starting after phase. It runs in the
// sender's own goroutine.
func (c *benchConn) sendLoop(enc *messageEncoder, rate float64, maxInflight uint64, phase time.Duration) {
	r := c.run
	mt := messageType(r.cfg.format)
	var buf []byte
	var id uint64
	// wait blocks until an id completes; false when the sender must stop.
	wait := func() bool {
		select {
		case <-c.wake:
			return true
		case <-r.stop:
		case <-c.readerDone:
		}
		return false
	}
	var timer *time.Timer
	var interval time.Duration
	var next time.Time
	if rate > 0 {
		interval = time.Duration(float64(time.Second) / rate)
		next = time.Now().Add(phase)
		timer = time.NewTimer(phase)
		defer timer.Stop()
	}
	for {
		if rate > 0 {
			select {
			case <-timer.C:
			case <-r.stop:
				return
			case <-c.readerDone:
				return
			}
			for id-c.done.Load() >= maxInflight {
				c.stalls.Add(1)
				if !wait() {
					return
				}
			}
		} else {
			select {
			case <-r.stop:
				return
			case <-c.readerDone:
				return
			default:
			}
		}
		id++
		buf = enc.appendFrame(buf[:0], id)
		c.sendTimes[id&c.sendMask].Store(r.now())
		if err := c.ws.WriteMessage(mt, buf); err != nil {
			if !r.stopped() && !c.closing.Load() {
				r.countError("write_failed")
				r.note("connection %s: write: %v", c.clientID, err)
			}
			return
		}
		c.sent.Store(id)
		if rate > 0 {
			next = next.Add(interval)
			timer.Reset(time.Until(next))
			continue
		}
		for c.done.Load() < id {
			if !wait() {
				return
			}
		}
	}
}
