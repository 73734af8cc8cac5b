package server_test

import (
	"errors"
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
	*testutil.FrameLog
	tb testing.TB
}

func newRecorder(tb testing.TB) *recorder {
	return &recorder{FrameLog: testutil.NewFrameLog(tb), tb: tb}
}

func (r *recorder) send(b []byte) {
	f, err := transport.Decode(b, transport.DetectFormat(b))
	if err != nil {
		r.tb.Errorf("client got an undecodable frame %q: %v", b, err)
		return
	}
	r.Add(f)
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
