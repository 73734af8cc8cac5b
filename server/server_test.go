package server_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"go.uber.org/goleak"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/lily-go/lily/actors"
	"github.com/lily-go/lily/internal/testutil"
	"github.com/lily-go/lily/server"
	"github.com/lily-go/lily/store"
	"github.com/lily-go/lily/transport"
)

var formats = []transport.Format{transport.FormatJSON, transport.FormatMsgPack}

func start[M, Msg any](tb testing.TB, st store.Store[M, Msg], ser transport.Serialiser[M, Msg], cfg server.Config) *server.Server[M, Msg] {
	tb.Helper()
	srv, err := server.StartWithConfig(st, ser, cfg)
	if err != nil {
		tb.Fatalf("start: %v", err)
	}
	tb.Cleanup(srv.Stop)
	return srv
}

func state[M, Msg any](tb testing.TB, srv *server.Server[M, Msg]) (M, uint64) {
	tb.Helper()
	m, seq, _, err := srv.State(context.Background())
	if err != nil {
		tb.Fatalf("state: %v", err)
	}
	return m, seq
}

// exchange runs one message through a server with two clients: the sender
// gets an acknowledge, the other client a server_message, and a resync a
// snapshot of the new model.
func exchange[M, Msg any](t *testing.T, st store.Store[M, Msg], ser transport.Serialiser[M, Msg], msg Msg, want M, equal func(a, b M) bool, format transport.Format) {
	srv := start(t, st, ser, server.Config{})
	alice, bob := newRecorder(t), newRecorder(t)
	srv.Connect("alice", alice.send)
	srv.Connect("bob", bob.send)
	srv.Incoming("bob", resync(t, format)) // bob now speaks format
	wantType(t, bob.Next(), transport.TypeSnapshot)

	srv.Incoming("alice", clientMessage(t, ser, msg, 1, format))
	wantAck(t, alice.Next(), 1, 1)

	got := bob.Next()
	wantType(t, got, transport.TypeServerMessage)
	if got.Sequence != 1 {
		t.Fatalf("server_message sequence %d, want 1", got.Sequence)
	}
	if _, err := ser.DecodeMessage(got.Payload, format); err != nil {
		t.Fatalf("server_message payload does not decode: %v", err)
	}

	srv.Incoming("bob", resync(t, format))
	snap := bob.Next()
	wantType(t, snap, transport.TypeSnapshot)
	if snap.Sequence != 1 || snap.Epoch == "" {
		t.Fatalf("snapshot sequence %d epoch %q, want 1 and an epoch", snap.Sequence, snap.Epoch)
	}
	model, err := ser.DecodeModel(snap.State, format)
	if err != nil {
		t.Fatalf("snapshot state does not decode: %v", err)
	}
	if !equal(model, want) {
		t.Fatalf("snapshot model %v, want %v", model, want)
	}
}

func TestExchange(t *testing.T) {
	pbStore := store.New(wrapperspb.Int64(0), func(m *wrapperspb.Int64Value, add *wrapperspb.Int64Value) *wrapperspb.Int64Value {
		return wrapperspb.Int64(m.GetValue() + add.GetValue())
	})
	for _, format := range formats {
		t.Run("automatic/"+format.String(), func(t *testing.T) {
			exchange(t, counterStore(), counterSerialiser(), CounterMsg(Add{N: 5}), Counter{Count: 5},
				func(a, b Counter) bool { return a == b }, format)
		})
		t.Run("json/"+format.String(), func(t *testing.T) {
			exchange(t, counterStore(), transport.JSON[Counter, CounterMsg](Increment{}, Add{}, Boom{}), CounterMsg(Add{N: 5}), Counter{Count: 5},
				func(a, b Counter) bool { return a == b }, format)
		})
		t.Run("protobuf/"+format.String(), func(t *testing.T) {
			exchange(t, pbStore, transport.Protobuf[*wrapperspb.Int64Value, *wrapperspb.Int64Value](), wrapperspb.Int64(5), wrapperspb.Int64(5),
				func(a, b *wrapperspb.Int64Value) bool { return proto.Equal(a, b) }, format)
		})
	}
}

func TestAnswersInTheClientsFormat(t *testing.T) {
	srv := start(t, counterStore(), counterSerialiser(), server.Config{})
	ser := counterSerialiser()
	alice := newRecorder(t)
	var raw [][]byte
	var mu sync.Mutex
	srv.Connect("alice", func(b []byte) {
		mu.Lock()
		raw = append(raw, b)
		mu.Unlock()
		alice.send(b)
	})
	srv.Incoming("alice", clientMessage(t, ser, CounterMsg(Increment{}), 1, transport.FormatMsgPack))
	wantAck(t, alice.Next(), 1, 1)
	srv.Incoming("alice", clientMessage(t, ser, CounterMsg(Increment{}), 2, transport.FormatJSON))
	wantAck(t, alice.Next(), 2, 2)
	mu.Lock()
	defer mu.Unlock()
	if transport.DetectFormat(raw[0]) != transport.FormatMsgPack || transport.DetectFormat(raw[1]) != transport.FormatJSON {
		t.Fatalf("answers were not in the format of the client's last frame: %q", raw)
	}
}

func TestExactlyOnce(t *testing.T) {
	srv := start(t, counterStore(), counterSerialiser(), server.Config{})
	ser := counterSerialiser()
	alice := newRecorder(t)
	srv.Connect("alice", alice.send)
	for id := uint64(1); id <= 3; id++ {
		srv.Incoming("alice", clientMessage(t, ser, CounterMsg(Increment{}), id, transport.FormatJSON))
		wantAck(t, alice.Next(), id, id)
	}
	// The connection drops and comes back; the client resends what it has
	// not seen acknowledged, and one message it had.
	srv.Disconnect("alice")
	alice = newRecorder(t)
	srv.Connect("alice", alice.send)
	srv.Incoming("alice", clientMessage(t, ser, CounterMsg(Increment{}), 3, transport.FormatJSON))
	wantAck(t, alice.Next(), 3, 3) // the last applied id: its own sequence
	srv.Incoming("alice", clientMessage(t, ser, CounterMsg(Increment{}), 2, transport.FormatJSON))
	wantAck(t, alice.Next(), 0, 2) // older: applied, sequence no longer known
	srv.Incoming("alice", clientMessage(t, ser, CounterMsg(Increment{}), 4, transport.FormatJSON))
	wantAck(t, alice.Next(), 4, 4)
	// Messages without an id are always applied.
	srv.Incoming("alice", clientMessage(t, ser, CounterMsg(Increment{}), 0, transport.FormatJSON))
	wantAck(t, alice.Next(), 5, 0)
	if m, seq := state(t, srv); m.Count != 5 || seq != 5 {
		t.Fatalf("model %+v at sequence %d, want count 5 at 5", m, seq)
	}
}

func TestBadInput(t *testing.T) {
	ser := counterSerialiser()
	for _, format := range formats {
		cases := []struct {
			name string
			data []byte
			code transport.ErrorCode
		}{
			{"garbage", []byte("\xc1\x00garbage"), transport.CodeBadFrame},
			{"not an object", []byte(`[1,2,3]`), transport.CodeBadFrame},
			{"wrong shape", []byte(`{"type":"client_message","payload":5,"id":"x"}`), transport.CodeBadFrame},
			{"unknown frame type", []byte(`{"type":"hello"}`), transport.CodeBadFrame},
			{"server frame from a client", encode(t, transport.Frame{Type: transport.TypeAcknowledge, Sequence: 1}, format), transport.CodeBadFrame},
			{"unknown constructor", encode(t, transport.Frame{Type: transport.TypeClientMessage, Payload: []byte(`{"_":"Explode"}`)}, transport.FormatJSON), transport.CodeBadPayload},
			{"payload of the wrong shape", encode(t, transport.Frame{Type: transport.TypeClientMessage, Payload: []byte(`{"_":"Add","0":"five"}`)}, transport.FormatJSON), transport.CodeBadPayload},
			{"update panics", clientMessage(t, ser, CounterMsg(Boom{}), 7, format), transport.CodeRejected},
		}
		for _, tc := range cases {
			t.Run(format.String()+"/"+tc.name, func(t *testing.T) {
				srv := start(t, counterStore(), ser, server.Config{})
				alice, bob := newRecorder(t), newRecorder(t)
				srv.Connect("alice", alice.send)
				srv.Connect("bob", bob.send)
				srv.Incoming("alice", clientMessage(t, ser, CounterMsg(Increment{}), 1, format))
				wantAck(t, alice.Next(), 1, 1)

				srv.Incoming("alice", tc.data)
				wantError(t, alice.Next(), tc.code)

				// Nothing changed, no sequence was used, and the store serves on.
				if m, seq := state(t, srv); m.Count != 1 || seq != 1 {
					t.Fatalf("after bad input: model %+v at sequence %d, want count 1 at 1", m, seq)
				}
				srv.Incoming("alice", clientMessage(t, ser, CounterMsg(Increment{}), 8, format))
				wantAck(t, alice.Next(), 2, 8)
				for _, f := range bob.Frames() {
					if f.Type != transport.TypeServerMessage {
						t.Fatalf("the other client got a %v frame", f.Type)
					}
				}
			})
		}
	}
}

func TestRejectedCarriesTheID(t *testing.T) {
	srv := start(t, counterStore(), counterSerialiser(), server.Config{})
	alice := newRecorder(t)
	srv.Connect("alice", alice.send)
	srv.Incoming("alice", clientMessage(t, counterSerialiser(), CounterMsg(Boom{}), 9, transport.FormatJSON))
	f := alice.Next()
	wantError(t, f, transport.CodeRejected)
	if f.ID != 9 || !strings.Contains(f.Reason, "boom") {
		t.Fatalf("rejected error %+v, want id 9 and the panic's text", f)
	}
}

func TestValidatorRejects(t *testing.T) {
	st := counterStore().WithValidator(func(m Counter, msg CounterMsg) error {
		if add, ok := msg.(Add); ok && add.N < 0 {
			return fmt.Errorf("cannot add %d", add.N)
		}
		return nil
	})
	srv := start(t, st, counterSerialiser(), server.Config{})
	alice := newRecorder(t)
	srv.Connect("alice", alice.send)
	srv.Incoming("alice", clientMessage(t, counterSerialiser(), CounterMsg(Add{N: -1}), 1, transport.FormatJSON))
	f := alice.Next()
	wantError(t, f, transport.CodeRejected)
	if !strings.Contains(f.Reason, "cannot add -1") {
		t.Fatalf("reason %q does not say why", f.Reason)
	}
	if _, seq := state(t, srv); seq != 0 {
		t.Fatalf("sequence %d after a refused message, want 0", seq)
	}
}

func TestHookRunsAfterApply(t *testing.T) {
	srv := start(t, counterStore(), counterSerialiser(), server.Config{})
	type call struct {
		msg      CounterMsg
		model    Counter
		clientID string
	}
	var mu sync.Mutex
	var calls []call
	srv.OnMessage(func(msg CounterMsg, model Counter, clientID string) {
		mu.Lock()
		defer mu.Unlock()
		calls = append(calls, call{msg, model, clientID})
	})
	var second atomic.Int32
	srv.OnMessage(func(CounterMsg, Counter, string) { second.Add(1) })
	srv.Incoming("alice", clientMessage(t, counterSerialiser(), CounterMsg(Add{N: 2}), 1, transport.FormatJSON))
	srv.Incoming("bob", clientMessage(t, counterSerialiser(), CounterMsg(Boom{}), 1, transport.FormatJSON))
	srv.Incoming("bob", clientMessage(t, counterSerialiser(), CounterMsg(Increment{}), 2, transport.FormatJSON))
	testutil.Eventually(t, func() bool { return second.Load() == 2 }, "second hook ran %d times, want 2", second.Load())
	mu.Lock()
	defer mu.Unlock()
	want := []call{{Add{N: 2}, Counter{2}, "alice"}, {Increment{}, Counter{3}, "bob"}}
	if fmt.Sprint(calls) != fmt.Sprint(want) {
		t.Fatalf("hook calls %v, want %v", calls, want)
	}
}

func TestHookPanicKeepsServing(t *testing.T) {
	var logs bytes.Buffer
	srv := start(t, counterStore(), counterSerialiser(), server.Config{Logger: slog.New(slog.NewTextHandler(&lockedWriter{w: &logs}, nil))})
	srv.OnMessage(func(CounterMsg, Counter, string) { panic("hook failed") })
	alice := newRecorder(t)
	srv.Connect("alice", alice.send)
	for id := uint64(1); id <= 3; id++ {
		srv.Incoming("alice", clientMessage(t, counterSerialiser(), CounterMsg(Increment{}), id, transport.FormatJSON))
		wantAck(t, alice.Next(), id, id)
	}
	if m, seq := state(t, srv); m.Count != 3 || seq != 3 {
		t.Fatalf("model %+v at %d, want 3 at 3", m, seq)
	}
	srv.Stop()
	if !strings.Contains(logs.String(), "hook failed") {
		t.Fatalf("the hook's panic was not logged: %s", logs.String())
	}
}

func TestSendPanicStopsOnlyThatClient(t *testing.T) {
	srv := start(t, counterStore(), counterSerialiser(), server.Config{})
	var panics atomic.Int32
	srv.Connect("carol", func([]byte) {
		panics.Add(1)
		panic("socket exploded")
	})
	alice, bob := newRecorder(t), newRecorder(t)
	srv.Connect("alice", alice.send)
	srv.Connect("bob", bob.send)
	for id := uint64(1); id <= 20; id++ {
		srv.Incoming("alice", clientMessage(t, counterSerialiser(), CounterMsg(Increment{}), id, transport.FormatJSON))
	}
	for id := uint64(1); id <= 20; id++ {
		wantAck(t, alice.Next(), id, id)
		f := bob.Next()
		wantType(t, f, transport.TypeServerMessage)
		if f.Sequence != id {
			t.Fatalf("bob got sequence %d, want %d", f.Sequence, id)
		}
	}
	if n := panics.Load(); n != 1 {
		t.Fatalf("carol's send was called %d times after it panicked, want once in all", n)
	}
}

func TestReconnectReplacesTheOldConnection(t *testing.T) {
	srv := start(t, counterStore(), counterSerialiser(), server.Config{})
	old, fresh, bob := newRecorder(t), newRecorder(t), newRecorder(t)
	srv.Connect("alice", old.send)
	srv.Connect("bob", bob.send)
	srv.Incoming("bob", clientMessage(t, counterSerialiser(), CounterMsg(Increment{}), 1, transport.FormatJSON))
	wantType(t, old.Next(), transport.TypeServerMessage)
	srv.Connect("alice", fresh.send)
	srv.Incoming("bob", clientMessage(t, counterSerialiser(), CounterMsg(Increment{}), 2, transport.FormatJSON))
	f := fresh.Next()
	if f.Type != transport.TypeServerMessage || f.Sequence != 2 {
		t.Fatalf("new connection got %+v, want server_message 2", f)
	}
	state(t, srv) // everything before has been processed
	if n := old.Count(); n != 1 {
		t.Fatalf("the replaced connection got %d frames, want 1", n)
	}
}

func TestDisconnectedClientGetsNothing(t *testing.T) {
	srv := start(t, counterStore(), counterSerialiser(), server.Config{})
	alice, bob := newRecorder(t), newRecorder(t)
	srv.Connect("alice", alice.send)
	srv.Connect("bob", bob.send)
	srv.Disconnect("alice")
	srv.Incoming("bob", clientMessage(t, counterSerialiser(), CounterMsg(Increment{}), 1, transport.FormatJSON))
	wantAck(t, bob.Next(), 1, 1)
	state(t, srv)
	if n := alice.Count(); n != 0 {
		t.Fatalf("a disconnected client got %d frames", n)
	}
}

// checkConsistent replays what a client received: server messages must
// follow each other without gaps, and a snapshot may replace them.
func checkConsistent(tb testing.TB, frames []transport.Frame) (last uint64) {
	tb.Helper()
	for i, f := range frames {
		switch f.Type {
		case transport.TypeServerMessage, transport.TypeAcknowledge:
			if f.Sequence != last+1 {
				tb.Fatalf("frame %d: %v sequence %d after %d", i, f.Type, f.Sequence, last)
			}
			last = f.Sequence
		case transport.TypeSnapshot:
			if f.Sequence < last {
				tb.Fatalf("frame %d: snapshot at %d goes back from %d", i, f.Sequence, last)
			}
			last = f.Sequence
		default:
			tb.Fatalf("frame %d: unexpected %v", i, f.Type)
		}
	}
	return last
}

func TestSlowClientGetsASnapshot(t *testing.T) {
	srv := start(t, counterStore(), counterSerialiser(), server.Config{OutboxBytes: 2048})
	gate := make(chan struct{})
	var once sync.Once
	slow := newRecorder(t)
	srv.Connect("slow", func(b []byte) {
		once.Do(func() { <-gate }) // the first write blocks until the gate opens
		slow.send(b)
	})
	fast := newRecorder(t)
	srv.Connect("fast", fast.send)

	// Messages come from a client that is not connected, so the only
	// frames are server messages, which the outboxes may drop.
	const n = 2000
	for id := uint64(1); id <= n; id++ {
		srv.Incoming("writer", clientMessage(t, counterSerialiser(), CounterMsg(Increment{}), id, transport.FormatJSON))
	}
	// The store serves everyone while the slow client is stuck.
	if _, seq := state(t, srv); seq != n {
		t.Fatalf("store at sequence %d, want %d", seq, n)
	}
	testutil.Eventually(t, func() bool {
		frames := fast.Frames()
		return len(frames) > 0 && frames[len(frames)-1].Sequence == n
	}, "the fast client did not reach sequence %d", n)
	checkConsistent(t, fast.Frames())
	close(gate)

	// It may get an older snapshot first (asked for during the flood, and
	// held by the blocked write): wait for the one that brings it to n.
	testutil.Eventually(t, func() bool {
		frames := slow.Frames()
		return len(frames) > 0 && frames[len(frames)-1].Type == transport.TypeSnapshot && frames[len(frames)-1].Sequence == n
	}, "the slow client got no snapshot of sequence %d", n)
	frames := slow.Frames()
	if len(frames) > n/2 {
		t.Fatalf("the slow client got %d frames: its outbox was not bounded", len(frames))
	}
	if last := checkConsistent(t, frames); last != n {
		t.Fatalf("the slow client is at sequence %d, want %d", last, n)
	}
	snap := frames[len(frames)-1]
	if m, err := counterSerialiser().DecodeModel(snap.State, transport.FormatJSON); err != nil || m.Count != n {
		t.Fatalf("snapshot model %+v (%v), want count %d", m, err, n)
	}
	// It follows live updates again.
	slow.Skip()
	srv.Incoming("writer", clientMessage(t, counterSerialiser(), CounterMsg(Increment{}), n+1, transport.FormatJSON))
	f := slow.Next()
	for f.Type != transport.TypeServerMessage {
		f = slow.Next()
	}
	if f.Sequence != n+1 {
		t.Fatalf("after the snapshot the slow client got sequence %d, want %d", f.Sequence, n+1)
	}
}

type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func TestAutoLogMessages(t *testing.T) {
	var logs bytes.Buffer
	srv := start(t, counterStore(), counterSerialiser(), server.Config{Name: "demo", Logger: slog.New(slog.NewTextHandler(&lockedWriter{w: &logs}, nil))})
	if got := srv.AutoLogMessages(slog.LevelInfo); got != srv {
		t.Fatal("AutoLogMessages did not return its server")
	}
	srv.Incoming("alice", clientMessage(t, counterSerialiser(), CounterMsg(Add{N: 42}), 1, transport.FormatJSON))
	state(t, srv)
	srv.Stop()
	line := logs.String()
	for _, want := range []string{"level=INFO", "store=demo", "client_id=alice", "42"} {
		if !strings.Contains(line, want) {
			t.Fatalf("log %q lacks %q", line, want)
		}
	}
}

func TestStopThenEverythingIsANoOp(t *testing.T) {
	srv, err := server.Start(counterStore(), counterSerialiser())
	if err != nil {
		t.Fatal(err)
	}
	alice := newRecorder(t)
	srv.Connect("alice", alice.send)
	srv.Stop()
	srv.Stop()
	srv.Connect("bob", newRecorder(t).send)
	srv.Incoming("alice", clientMessage(t, counterSerialiser(), CounterMsg(Increment{}), 1, transport.FormatJSON))
	srv.Disconnect("alice")
	srv.OnMessage(func(CounterMsg, Counter, string) { t.Error("hook ran after stop") })
	srv.AutoLogMessages(slog.LevelInfo)
	if _, _, _, err := srv.State(context.Background()); err != server.ErrStopped {
		t.Fatalf("State after Stop: %v, want ErrStopped", err)
	}
	if n := alice.Count(); n != 0 {
		t.Fatalf("got %d frames after stop", n)
	}
}

func TestStartRejectsBadArguments(t *testing.T) {
	if _, err := server.Start[Counter, CounterMsg](counterStore(), nil); err == nil {
		t.Fatal("Start with a nil serialiser succeeded")
	}
	if _, err := server.StartWithConfig(counterStore(), counterSerialiser(), server.Config{OutboxBytes: -1}); err == nil || !strings.Contains(err.Error(), "OutboxBytes") {
		t.Fatalf("negative OutboxBytes: %v, want an error naming the field", err)
	}
}

func TestGenerateClientID(t *testing.T) {
	valid := regexp.MustCompile(`^[0-9a-f]{32}$`)
	seen := map[string]bool{}
	for range 1000 {
		id := server.GenerateClientID()
		if !valid.MatchString(id) {
			t.Fatalf("client id %q is not 32 hex characters", id)
		}
		if seen[id] {
			t.Fatalf("client id %q repeated", id)
		}
		seen[id] = true
	}
}

func TestConcurrentClients(t *testing.T) {
	const clients, perClient = 50, 1000
	srv := start(t, counterStore(), counterSerialiser(), server.Config{OutboxBytes: 64 << 20})
	type tally struct {
		mu      sync.Mutex
		last    uint64 // last sequence seen, acknowledged or broadcast
		acks    map[uint64]int
		frames  int
		failure string
	}
	tallies := make([]*tally, clients)
	for i := range clients {
		tl := &tally{acks: map[uint64]int{}}
		tallies[i] = tl
		srv.Connect(fmt.Sprint("client-", i), func(b []byte) {
			f, err := transport.Decode(b, transport.FormatJSON)
			tl.mu.Lock()
			defer tl.mu.Unlock()
			tl.frames++
			switch {
			case err != nil:
				tl.failure = err.Error()
			case f.Sequence != tl.last+1 && tl.failure == "":
				tl.failure = fmt.Sprintf("%v sequence %d after %d", f.Type, f.Sequence, tl.last)
			case f.Type == transport.TypeAcknowledge:
				tl.acks[f.ID]++
			}
			tl.last = f.Sequence
		})
	}
	ser := counterSerialiser()
	payload := clientMessage(t, ser, CounterMsg(Increment{}), 0, transport.FormatJSON)
	_ = payload
	var wg sync.WaitGroup
	for i := range clients {
		wg.Go(func() {
			for id := uint64(1); id <= perClient; id++ {
				srv.Incoming(fmt.Sprint("client-", i), clientMessage(t, ser, CounterMsg(Increment{}), id, transport.FormatJSON))
			}
		})
	}
	wg.Wait()
	const total = clients * perClient
	testutil.Eventually(t, func() bool {
		for _, tl := range tallies {
			tl.mu.Lock()
			n := tl.frames
			tl.mu.Unlock()
			if n < total {
				return false
			}
		}
		return true
	}, "not every client got every sequence")
	if m, seq := state(t, srv); m.Count != total || seq != total {
		t.Fatalf("model %+v at %d, want %d", m, seq, total)
	}
	for i, tl := range tallies {
		tl.mu.Lock()
		if tl.failure != "" {
			t.Errorf("client %d: %s", i, tl.failure)
		}
		if tl.frames != total || tl.last != total {
			t.Errorf("client %d: %d frames, last sequence %d, want %d", i, tl.frames, tl.last, total)
		}
		for id := uint64(1); id <= perClient; id++ {
			if tl.acks[id] != 1 {
				t.Errorf("client %d: message %d acknowledged %d times", i, id, tl.acks[id])
				break
			}
		}
		tl.mu.Unlock()
	}
}

func TestManyServersStopWithoutLeaks(t *testing.T) {
	// Start and stop one server first so the shared actor system exists.
	first, err := server.Start(counterStore(), counterSerialiser())
	if err != nil {
		t.Fatal(err)
	}
	first.Stop()
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())

	const n = 1000
	servers := make([]*server.Server[Counter, CounterMsg], n)
	recorders := make([]*recorder, n)
	for i := range servers {
		srv, err := server.Start(counterStore(), counterSerialiser())
		if err != nil {
			t.Fatal(err)
		}
		servers[i] = srv
		recorders[i] = newRecorder(t)
		srv.Connect("alice", recorders[i].send)
		srv.Connect("bob", newRecorder(t).send)
		srv.Incoming("alice", clientMessage(t, counterSerialiser(), CounterMsg(Add{N: i}), 1, transport.FormatJSON))
	}
	for i, srv := range servers {
		wantAck(t, recorders[i].Next(), 1, 1)
		if m, _ := state(t, srv); m.Count != i {
			t.Fatalf("server %d: count %d", i, m.Count)
		}
	}
	for _, srv := range servers {
		srv.Stop()
	}
}

// sinkOf adapts a recorder to a Sink, counting let-go calls (nil frames).
func sinkOf(r *recorder, letGo *atomic.Int32) actors.Sink {
	return func(frames [][]byte) error {
		if frames == nil {
			letGo.Add(1)
			return nil
		}
		for _, f := range frames {
			r.send(f)
		}
		return nil
	}
}

// An Attach repeated with the same connection id (a cluster node attaching
// its connection again) keeps the attached connection; another connection
// id replaces it.
func TestAttachWithTheSameConnectionIDKeepsTheConnection(t *testing.T) {
	srv := start(t, counterStore(), counterSerialiser(), server.Config{})
	first, again, fresh, bob := newRecorder(t), newRecorder(t), newRecorder(t), newRecorder(t)
	var firstLetGo, againLetGo, freshLetGo atomic.Int32
	srv.ConnectSink("alice", 7, sinkOf(first, &firstLetGo))
	srv.ConnectSink("alice", 7, sinkOf(again, &againLetGo))
	srv.Connect("bob", bob.send)
	srv.Incoming("bob", clientMessage(t, counterSerialiser(), CounterMsg(Increment{}), 1, transport.FormatJSON))
	if f := first.Next(); f.Type != transport.TypeServerMessage || f.Sequence != 1 {
		t.Fatalf("the attached connection got %+v, want server_message 1", f)
	}
	srv.ConnectSink("alice", 8, sinkOf(fresh, &freshLetGo))
	srv.Incoming("bob", clientMessage(t, counterSerialiser(), CounterMsg(Increment{}), 2, transport.FormatJSON))
	if f := fresh.Next(); f.Type != transport.TypeServerMessage || f.Sequence != 2 {
		t.Fatalf("the new connection got %+v, want server_message 2", f)
	}
	state(t, srv)
	testutil.Eventually(t, func() bool { return firstLetGo.Load() == 1 }, "the replaced connection was not let go")
	if again.Count() != 0 || againLetGo.Load() != 0 || first.Count() != 1 {
		t.Fatalf("repeated attach: %d frames and %d let-go calls, first connection %d frames", again.Count(), againLetGo.Load(), first.Count())
	}
}
