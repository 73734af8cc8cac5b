package server_test

import (
	"errors"
	"sync"
	"testing"

	"github.com/lily-go/lily/internal/testutil"
	"github.com/lily-go/lily/store"
	"github.com/lily-go/lily/transport"
)

// The counter app of the tests.

type Counter struct{ Count int }

type CounterMsg interface{ isCounterMsg() }

type Increment struct{}
type Add struct{ N int }
type Boom struct{} // the update function panics on it

func (Increment) isCounterMsg() {}
func (Add) isCounterMsg()       {}
func (Boom) isCounterMsg()      {}

func updateCounter(m Counter, msg CounterMsg) Counter {
	switch msg := msg.(type) {
	case Increment:
		m.Count++
	case Add:
		m.Count += msg.N
	case Boom:
		panic("boom")
	}
	return m
}

func counterStore() store.Store[Counter, CounterMsg] {
	return store.New(Counter{}, updateCounter)
}

func counterSerialiser() transport.Serialiser[Counter, CounterMsg] {
	return transport.Automatic[Counter, CounterMsg](Increment{}, Add{}, Boom{})
}

// recorder is an in-process client: its send function decodes and keeps
// every frame it is given.
type recorder struct {
	tb     testing.TB
	mu     sync.Mutex
	frames []transport.Frame // guarded by mu
	cursor int               // guarded by mu; the next frame next returns
}

func newRecorder(tb testing.TB) *recorder { return &recorder{tb: tb} }

func (r *recorder) send(b []byte) {
	f, err := transport.Decode(b, transport.DetectFormat(b))
	if err != nil {
		r.tb.Errorf("client got an undecodable frame %q: %v", b, err)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.frames = append(r.frames, f)
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.frames)
}

// next waits for the next frame and returns it.
func (r *recorder) next() transport.Frame {
	r.tb.Helper()
	testutil.Eventually(r.tb, func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		return len(r.frames) > r.cursor
	}, "no frame came")
	r.mu.Lock()
	defer r.mu.Unlock()
	f := r.frames[r.cursor]
	r.cursor++
	return f
}

// skip makes next return only frames that arrive after this call.
func (r *recorder) skip() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cursor = len(r.frames)
}

// nextOfType waits for the next frame of one of the given types, skipping
// others.
func (r *recorder) nextOfType(types ...transport.FrameType) transport.Frame {
	r.tb.Helper()
	for {
		f := r.next()
		for _, t := range types {
			if f.Type == t {
				return f
			}
		}
	}
}

// all returns a copy of every frame received so far.
func (r *recorder) all() []transport.Frame {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]transport.Frame(nil), r.frames...)
}

func encode(tb testing.TB, f transport.Frame, format transport.Format) []byte {
	tb.Helper()
	b, err := transport.Encode(f, format)
	if err != nil {
		tb.Fatalf("encode %v: %v", f.Type, err)
	}
	return b
}

// clientMessage encodes a client_message carrying msg.
func clientMessage[M, Msg any](tb testing.TB, ser transport.Serialiser[M, Msg], msg Msg, id uint64, format transport.Format) []byte {
	tb.Helper()
	payload, err := ser.EncodeMessage(msg, format)
	if err != nil {
		tb.Fatalf("encode message: %v", err)
	}
	return encode(tb, transport.Frame{Type: transport.TypeClientMessage, ID: id, Payload: payload}, format)
}

func resync(tb testing.TB, format transport.Format) []byte {
	return encode(tb, transport.Frame{Type: transport.TypeResync}, format)
}

func wantType(tb testing.TB, f transport.Frame, want transport.FrameType) {
	tb.Helper()
	if f.Type != want {
		tb.Fatalf("got a %v frame (%+v), want %v", f.Type, f, want)
	}
}

func wantAck(tb testing.TB, f transport.Frame, seq, id uint64) {
	tb.Helper()
	wantType(tb, f, transport.TypeAcknowledge)
	if f.Sequence != seq || f.ID != id {
		tb.Fatalf("got acknowledge sequence %d id %d, want sequence %d id %d", f.Sequence, f.ID, seq, id)
	}
}

func wantError(tb testing.TB, f transport.Frame, code transport.ErrorCode) {
	tb.Helper()
	wantType(tb, f, transport.TypeError)
	if f.Code != code {
		tb.Fatalf("got error code %q (%s), want %q", f.Code, f.Reason, code)
	}
}

func isBadPayload(err error) bool {
	var te *transport.Error
	return errors.As(err, &te) && te.Code == transport.CodeBadPayload
}
