package server_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lily-go/lily/actors"
	"github.com/lily-go/lily/internal/testutil"
	"github.com/lily-go/lily/journal"
	"github.com/lily-go/lily/journal/memjournal"
	"github.com/lily-go/lily/journal/pebblejournal"
	"github.com/lily-go/lily/server"
	"github.com/lily-go/lily/transport"
)

func openPebble(tb testing.TB, dir string) *pebblejournal.Journal {
	tb.Helper()
	j, err := pebblejournal.Open(dir, pebblejournal.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = j.Close() })
	return j
}

// sinkRecorder is a recorder connected with ConnectSink: it also notes
// when the store lets the connection go.
type sinkRecorder struct {
	*recorder
	letGo atomic.Int32
}

func connectSink[M, Msg any](tb testing.TB, srv *server.Server[M, Msg], clientID string) *sinkRecorder {
	r := &sinkRecorder{recorder: newRecorder(tb)}
	srv.ConnectSink(clientID, 0, func(frames [][]byte) error {
		if frames == nil {
			r.letGo.Add(1)
			return nil
		}
		for _, f := range frames {
			r.send(f)
		}
		return nil
	})
	return r
}

func TestRestartFromTheJournal(t *testing.T) {
	for _, name := range []string{"memory", "pebble"} {
		t.Run(name, func(t *testing.T) {
			var j journal.Journal = memjournal.New()
			if name == "pebble" {
				j = openPebble(t, t.TempDir())
			}
			cfg := server.Config{Name: "counter/restart", Journal: j, SnapshotEvery: 10}
			srv := start(t, counterStore(), counterSerialiser(), cfg)
			alice := newRecorder(t)
			srv.Connect("alice", alice.send)
			for id := uint64(1); id <= 25; id++ {
				srv.Incoming("alice", clientMessage(t, counterSerialiser(), CounterMsg(Add{N: 2}), id, transport.FormatJSON))
			}
			testutil.Eventually(t, func() bool { return testutil.LastAck(alice.Frames()) == 25 }, "not all acknowledged")
			_, _, epoch, _ := srv.State(context.Background())
			srv.Stop()

			again := start(t, counterStore(), counterSerialiser(), cfg)
			m, seq, epoch2, err := again.State(context.Background())
			if err != nil || m.Count != 50 || seq != 25 || epoch2 != epoch {
				t.Fatalf("after a restart: count %d at %d epoch %q (%v), want 50 at 25 epoch %q", m.Count, seq, epoch2, err, epoch)
			}
			alice = newRecorder(t)
			again.Connect("alice", alice.send)
			// Resent after the restart: acknowledged again, not applied.
			again.Incoming("alice", clientMessage(t, counterSerialiser(), CounterMsg(Add{N: 2}), 25, transport.FormatJSON))
			wantAck(t, alice.Next(), 25, 25)
			again.Incoming("alice", clientMessage(t, counterSerialiser(), CounterMsg(Add{N: 2}), 20, transport.FormatJSON))
			wantAck(t, alice.Next(), 0, 20)
			// New messages continue the sequence.
			again.Incoming("alice", clientMessage(t, counterSerialiser(), CounterMsg(Add{N: 2}), 26, transport.FormatJSON))
			wantAck(t, alice.Next(), 26, 26)
			if m, seq := state(t, again); m.Count != 52 || seq != 26 {
				t.Fatalf("count %d at %d, want 52 at 26", m.Count, seq)
			}
			if info, _ := j.Open(context.Background(), "counter/restart"); info.Snapshot == nil || info.Snapshot.Sequence < 10 { // group commit decides where, past 10
				t.Fatalf("no snapshot every 10 messages: %+v", info.Snapshot)
			}
		})
	}
}

// gatedJournal holds every Append until the test lets it go, and logs
// events in one order shared with the clients.
type gatedJournal struct {
	journal.Journal
	gate    chan struct{} // receive to let one Append through
	entered chan int      // the number of records of each Append entered
	events  *eventLog
}

type eventLog struct {
	mu     sync.Mutex
	events []string
}

func (l *eventLog) add(e string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, e)
}

func (l *eventLog) index(e string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, x := range l.events {
		if x == e {
			return i
		}
	}
	return -1
}

func (g *gatedJournal) Append(ctx context.Context, store string, records []journal.Record) error {
	g.entered <- len(records)
	<-g.gate
	err := g.Journal.Append(ctx, store, records)
	g.events.add(fmt.Sprint("durable ", records[len(records)-1].Sequence))
	return err
}

func TestAcknowledgedOnlyWhenDurableAndGroupCommitted(t *testing.T) {
	events := &eventLog{}
	j := &gatedJournal{Journal: memjournal.New(), gate: make(chan struct{}), entered: make(chan int, 100), events: events}
	srv := start(t, counterStore(), counterSerialiser(), server.Config{Name: "counter/gated", Journal: j})
	var acks atomic.Int32
	srv.Connect("alice", func(b []byte) {
		f, _ := transport.Decode(b, transport.FormatJSON)
		events.add(fmt.Sprint("ack ", f.Sequence))
		acks.Add(1)
	})
	for id := uint64(1); id <= 100; id++ {
		srv.Incoming("alice", clientMessage(t, counterSerialiser(), CounterMsg(Increment{}), id, transport.FormatJSON))
	}
	if n := <-j.entered; n != 1 {
		t.Fatalf("the first write holds %d records, want the first message alone", n)
	}
	// While that write is held, the other 99 messages are applied and
	// wait; State answers after them.
	go func() { j.gate <- struct{}{} }()
	if n := <-j.entered; n != 99 {
		t.Fatalf("the second write holds %d records, want the 99 that arrived meanwhile (group commit)", n)
	}
	j.gate <- struct{}{}
	testutil.Eventually(t, func() bool { return acks.Load() == 100 }, "acknowledgements: %d of 100", acks.Load())
	for _, seq := range []int{1, 2, 100} {
		durable, acked := events.index(fmt.Sprint("durable ", map[bool]int{true: 1, false: 100}[seq == 1])), events.index(fmt.Sprint("ack ", seq))
		if durable < 0 || acked < durable {
			t.Fatalf("message %d was acknowledged (event %d) before it was durable (event %d): %v", seq, acked, durable, events.events)
		}
	}
}

// failingJournal fails the appends it is told to.
type failingJournal struct {
	journal.Journal
	fail atomic.Int32 // how many appends to fail
}

func (f *failingJournal) Append(ctx context.Context, store string, records []journal.Record) error {
	if f.fail.Add(-1) >= 0 {
		return errors.New("disk on fire")
	}
	return f.Journal.Append(ctx, store, records)
}

func TestFailedWriteRestartsFromTheJournal(t *testing.T) {
	j := &failingJournal{Journal: memjournal.New()}
	srv := start(t, counterStore(), counterSerialiser(), server.Config{Name: "counter/fail", Journal: j})
	alice := connectSink(t, srv, "alice")
	srv.Incoming("alice", clientMessage(t, counterSerialiser(), CounterMsg(Add{N: 1}), 1, transport.FormatJSON))
	wantAck(t, alice.Next(), 1, 1)

	j.fail.Store(1)
	srv.Incoming("alice", clientMessage(t, counterSerialiser(), CounterMsg(Add{N: 10}), 2, transport.FormatJSON))
	testutil.Eventually(t, func() bool { return alice.letGo.Load() == 1 }, "the client was not let go after the failed write")
	if n := alice.Count(); n != 1 {
		t.Fatalf("a message whose write failed was answered: %+v", alice.Frames())
	}
	// The store came back from the journal; the client reconnects and
	// sends again what it has not seen acknowledged.
	if m, seq := state(t, srv); m.Count != 1 || seq != 1 {
		t.Fatalf("after the failed write: count %d at %d, want 1 at 1", m.Count, seq)
	}
	alice = connectSink(t, srv, "alice")
	srv.Incoming("alice", clientMessage(t, counterSerialiser(), CounterMsg(Add{N: 10}), 2, transport.FormatJSON))
	wantAck(t, alice.Next(), 2, 2)
	if m, _ := state(t, srv); m.Count != 11 {
		t.Fatalf("count %d, want 11", m.Count)
	}
}

// panickyObserver panics on the apply it is told to: a fault inside the
// store actor.
type panickyObserver struct{ panicAt atomic.Int32 }

func (p *panickyObserver) ObserveApply(time.Duration) {
	if p.panicAt.Add(-1) == 0 {
		panic("injected fault")
	}
}
func (p *panickyObserver) CountError(string) {}

func TestStoreActorCrashRestartsFromTheJournal(t *testing.T) {
	obs := &panickyObserver{}
	obs.panicAt.Store(1000)
	srv := start(t, counterStore(), counterSerialiser(), server.Config{Name: "counter/crash", Journal: memjournal.New(), Observer: obs})
	hooked := make(chan int, 100)
	srv.OnMessage(func(_ CounterMsg, m Counter, _ string) { hooked <- m.Count })
	alice := connectSink(t, srv, "alice")
	for id := uint64(1); id <= 5; id++ {
		srv.Incoming("alice", clientMessage(t, counterSerialiser(), CounterMsg(Increment{}), id, transport.FormatJSON))
		wantAck(t, alice.Next(), id, id)
	}
	obs.panicAt.Store(1) // the next apply crashes the actor
	srv.Incoming("alice", clientMessage(t, counterSerialiser(), CounterMsg(Increment{}), 6, transport.FormatJSON))
	testutil.Eventually(t, func() bool { return alice.letGo.Load() == 1 }, "the client was not let go when the store crashed")
	if m, seq := state(t, srv); m.Count < 5 || seq < 5 || uint64(m.Count) != seq {
		t.Fatalf("after the crash: count %d at %d, want everything acknowledged kept", m.Count, seq)
	}
	alice = connectSink(t, srv, "alice")
	srv.Incoming("alice", clientMessage(t, counterSerialiser(), CounterMsg(Increment{}), 6, transport.FormatJSON))
	f := alice.Next()
	wantType(t, f, transport.TypeAcknowledge)
	if m, seq := state(t, srv); m.Count != 6 || seq != 6 {
		t.Fatalf("count %d at %d, want message 6 applied exactly once", m.Count, seq)
	}
	// The hook survived the restart. (Message 6 may have been written just
	// before the crash: then its hook never ran, like any side effect a
	// crash interrupts.)
	srv.Incoming("alice", clientMessage(t, counterSerialiser(), CounterMsg(Increment{}), 7, transport.FormatJSON))
	testutil.Eventually(t, func() bool {
		for {
			select {
			case count := <-hooked:
				if count == 7 {
					return true
				}
			default:
				return false
			}
		}
	}, "the hook did not run after the restart")
}

func TestDeltaResync(t *testing.T) {
	j := memjournal.New()
	srv := start(t, counterStore(), counterSerialiser(), server.Config{Name: "counter/delta", Journal: j, SnapshotEvery: 20, Retention: 5})
	alice := newRecorder(t)
	srv.Connect("alice", alice.send)
	for id := uint64(1); id <= 12; id++ {
		srv.Incoming("alice", clientMessage(t, counterSerialiser(), CounterMsg(Add{N: int(id)}), id, transport.FormatJSON))
	}
	testutil.Eventually(t, func() bool { return testutil.LastAck(alice.Frames()) == 12 }, "not all acknowledged")
	_, _, epoch, _ := srv.State(context.Background())
	bob := newRecorder(t)
	srv.Connect("bob", bob.send)

	srv.Incoming("bob", encode(t, transport.Frame{Type: transport.TypeResync, AfterSequence: 9, Delta: true, Epoch: epoch}, transport.FormatJSON))
	for seq := uint64(10); seq <= 12; seq++ {
		f := bob.Next()
		if f.Type != transport.TypeServerMessage || f.Sequence != seq {
			t.Fatalf("delta frame %+v, want server_message %d", f, seq)
		}
		if msg, err := counterSerialiser().DecodeMessage(f.Payload, transport.FormatJSON); err != nil || msg != CounterMsg(Add{N: int(seq)}) {
			t.Fatalf("delta message %d is %v (%v)", seq, msg, err)
		}
	}
	if f := bob.Next(); f.Type != transport.TypeSynced || f.Sequence != 12 || f.Epoch != epoch {
		t.Fatalf("after the delta: %+v, want synced 12", f)
	}

	cases := []struct {
		name  string
		frame transport.Frame
	}{
		{"another epoch", transport.Frame{Type: transport.TypeResync, AfterSequence: 9, Delta: true, Epoch: "other"}},
		{"no delta asked", transport.Frame{Type: transport.TypeResync, AfterSequence: 9}},
		{"ahead of the store", transport.Frame{Type: transport.TypeResync, AfterSequence: 99, Delta: true, Epoch: epoch}},
	}
	for _, tc := range cases {
		srv.Incoming("bob", encode(t, tc.frame, transport.FormatJSON))
		if f := bob.Next(); f.Type != transport.TypeSnapshot || f.Sequence != 12 {
			t.Fatalf("%s: %+v, want a snapshot at 12", tc.name, f)
		}
	}
	// Past the retention: 20 messages make a snapshot, which trims all
	// but the last 5.
	for id := uint64(13); id <= 25; id++ {
		srv.Incoming("alice", clientMessage(t, counterSerialiser(), CounterMsg(Increment{}), id, transport.FormatJSON))
	}
	testutil.Eventually(t, func() bool { return testutil.LastAck(alice.Frames()) == 25 }, "not all acknowledged")
	testutil.Eventually(t, func() bool {
		info, _ := j.Open(context.Background(), "counter/delta")
		return info.Snapshot != nil && info.Snapshot.Sequence >= 20
	}, "no snapshot after 20 messages")
	bob.Skip()
	srv.Incoming("bob", encode(t, transport.Frame{Type: transport.TypeResync, AfterSequence: 3, Delta: true, Epoch: epoch}, transport.FormatJSON))
	if f := bob.NextOf(transport.TypeSnapshot, transport.TypeSynced); f.Type != transport.TypeSnapshot || f.Sequence != 25 {
		t.Fatalf("a delta past the retention: %+v, want a snapshot at 25", f)
	}
}

func TestRegistryPassivatesAndReactivates(t *testing.T) {
	j := memjournal.New()
	registry, err := server.NewRegistry(server.Config{Journal: j, PassivateAfter: 50 * time.Millisecond},
		actors.NewKind("counter", counterStore(), counterSerialiser()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(registry.Stop)
	rec := newRecorder(t)
	sink := func(frames [][]byte) error {
		for _, f := range frames {
			rec.send(f)
		}
		return nil
	}
	incoming, disconnect, err := registry.Connect(context.Background(), "counter", "idle", "alice", sink)
	if err != nil {
		t.Fatal(err)
	}
	for id := uint64(1); id <= 3; id++ {
		incoming(clientMessage(t, counterSerialiser(), CounterMsg(Add{N: 5}), id, transport.FormatJSON))
	}
	testutil.Eventually(t, func() bool { return testutil.LastAck(rec.Frames()) == 3 }, "not acknowledged")
	disconnect()
	testutil.Eventually(t, func() bool { return registry.Stores() == 0 }, "the idle store did not passivate")
	if info, _ := j.Open(context.Background(), "counter/idle"); info.Snapshot == nil || info.Snapshot.Sequence != 3 {
		t.Fatalf("no snapshot when passivating: %+v", info.Snapshot)
	}

	rec2 := newRecorder(t)
	incoming, disconnect, err = registry.Connect(context.Background(), "counter", "idle", "alice", func(frames [][]byte) error {
		for _, f := range frames {
			rec2.send(f)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer disconnect()
	incoming(encode(t, transport.Frame{Type: transport.TypeResync}, transport.FormatJSON))
	snap := rec2.Next()
	m, _ := counterSerialiser().DecodeModel(snap.State, transport.FormatJSON)
	if snap.Type != transport.TypeSnapshot || snap.Sequence != 3 || m.Count != 15 {
		t.Fatalf("after reactivation: %+v (count %d), want count 15 at 3", snap, m.Count)
	}
	incoming(clientMessage(t, counterSerialiser(), CounterMsg(Add{N: 5}), 3, transport.FormatJSON))
	wantAck(t, rec2.Next(), 3, 3) // still remembered: not applied again
}

func TestCorruptJournalIsReportedForThatStoreOnly(t *testing.T) {
	j := memjournal.New()
	// A record whose payload no serialiser can decode.
	if err := j.Append(context.Background(), "counter/bad", []journal.Record{{Sequence: 1, ClientID: "x", Payload: []byte{0xc1}}}); err != nil {
		t.Fatal(err)
	}
	registry, err := server.NewRegistry(server.Config{Journal: j}, actors.NewKind("counter", counterStore(), counterSerialiser()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(registry.Stop)
	var letGo atomic.Int32
	rec := newRecorder(t)
	_, disconnect, err := registry.Connect(context.Background(), "counter", "bad", "alice", func(frames [][]byte) error {
		if frames == nil {
			letGo.Add(1)
		}
		for _, f := range frames {
			rec.send(f)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer disconnect()
	f := rec.Next()
	if f.Type != transport.TypeError || f.Code != transport.CodeInternal || !strings.Contains(f.Reason, "counter/bad") || !strings.Contains(f.Reason, "record 1") {
		t.Fatalf("got %+v, want an internal error naming the store and the record", f)
	}
	testutil.Eventually(t, func() bool { return letGo.Load() == 1 }, "the connection to a store that cannot load was not let go")

	good := newRecorder(t)
	incoming, disconnectGood, err := registry.Connect(context.Background(), "counter", "good", "alice", func(frames [][]byte) error {
		for _, f := range frames {
			good.send(f)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer disconnectGood()
	incoming(clientMessage(t, counterSerialiser(), CounterMsg(Increment{}), 1, transport.FormatJSON))
	wantAck(t, good.Next(), 1, 1)
}
