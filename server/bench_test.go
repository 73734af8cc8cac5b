package server_test

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/lily-go/lily/server"
	"github.com/lily-go/lily/store"
	"github.com/lily-go/lily/transport"
)

// window is how many messages a benchmark keeps in flight before it waits
// for acknowledgements: enough to keep the store busy, few enough that the
// outboxes never overflow.
const window = 256

// BenchmarkApply measures messages per second through one store whose
// clients are in-process send functions: one client sends, every other
// client receives each message. "actor" is the server package; "mutex" is
// the same logic run under one mutex on the caller's goroutine, as a
// reference for what the actor layer costs.
func BenchmarkApply(b *testing.B) {
	for _, clients := range []int{1, 10, 100} {
		b.Run(fmt.Sprintf("actor/clients=%d", clients), func(b *testing.B) {
			benchmarkActor(b, clients)
		})
		b.Run(fmt.Sprintf("mutex/clients=%d", clients), func(b *testing.B) {
			benchmarkMutex(b, clients)
		})
	}
}

func benchmarkActor(b *testing.B, clients int) {
	srv, err := server.StartWithConfig(counterStore(), counterSerialiser(), server.Config{OutboxBytes: 64 << 20})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Stop()
	var acked, delivered atomic.Int64
	srv.Connect("sender", func([]byte) { acked.Add(1) })
	for i := 1; i < clients; i++ {
		srv.Connect(fmt.Sprint("client-", i), func([]byte) { delivered.Add(1) })
	}
	frame := clientMessage(b, counterSerialiser(), CounterMsg(Increment{}), 0, transport.FormatJSON)
	b.ReportAllocs()
	sent := int64(0)
	for b.Loop() {
		srv.Incoming("sender", frame)
		sent++
		for sent-acked.Load() > window {
			runtime.Gosched()
		}
	}
	b.ReportMetric(float64(sent)/b.Elapsed().Seconds(), "msgs/s")
	for acked.Load() < sent || delivered.Load() < sent*int64(clients-1) {
		runtime.Gosched()
	}
}

// mutexStore is the reference: the same decode, apply, number, acknowledge
// and broadcast, on the caller's goroutine under one mutex, with no
// outboxes.
type mutexStore[M, Msg any] struct {
	st  store.Store[M, Msg]
	ser transport.Serialiser[M, Msg]

	mu       sync.Mutex
	model    M                       // guarded by mu
	sequence uint64                  // guarded by mu
	clients  map[string]func([]byte) // guarded by mu
}

func (s *mutexStore[M, Msg]) incoming(clientID string, data []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	format := transport.DetectFormat(data)
	f, err := transport.Decode(data, format)
	if err != nil {
		return
	}
	msg, err := s.ser.DecodeMessage(f.Payload, format)
	if err != nil {
		return
	}
	next, err := s.st.Apply(s.model, msg)
	if err != nil {
		return
	}
	s.model = next
	s.sequence++
	ack, _ := transport.Encode(transport.Frame{Type: transport.TypeAcknowledge, Sequence: s.sequence, ID: f.ID}, format)
	s.clients[clientID](ack)
	payload, _ := s.ser.EncodeMessage(msg, format)
	frame, _ := transport.Encode(transport.Frame{Type: transport.TypeServerMessage, Sequence: s.sequence, Payload: payload}, format)
	for id, send := range s.clients {
		if id != clientID {
			send(frame)
		}
	}
}

func benchmarkMutex(b *testing.B, clients int) {
	s := &mutexStore[Counter, CounterMsg]{st: counterStore(), ser: counterSerialiser(), clients: map[string]func([]byte){}}
	var acked, delivered atomic.Int64
	s.clients["sender"] = func([]byte) { acked.Add(1) }
	for i := 1; i < clients; i++ {
		s.clients[fmt.Sprint("client-", i)] = func([]byte) { delivered.Add(1) }
	}
	frame := clientMessage(b, counterSerialiser(), CounterMsg(Increment{}), 0, transport.FormatJSON)
	b.ReportAllocs()
	sent := 0
	for b.Loop() {
		s.incoming("sender", frame)
		sent++
	}
	b.ReportMetric(float64(sent)/b.Elapsed().Seconds(), "msgs/s")
}
