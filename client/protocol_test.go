package client_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/lily-go/lily/client"
	"github.com/lily-go/lily/demo/counter"
	"github.com/lily-go/lily/internal/testutil"
	"github.com/lily-go/lily/transport"
)

// These tests play the server's part frame by frame, for the cases the
// in-memory server does not produce on demand: gaps, delta resyncs,
// acknowledgements with sequence 0, pushes, close 4404.

func waitModel(t *testing.T, c *client.Client[counter.Counter, counter.Msg], local, confirmed int, seq uint64) {
	t.Helper()
	testutil.Eventually(t, func() bool {
		m, s := c.Confirmed()
		return c.Model().Count == local && m.Count == confirmed && s == seq
	}, "want local %d, confirmed %d at seq %d; have %v", local, confirmed, seq, modelsOf{c})
}

// modelsOf formats a client's models when the message is printed.
type modelsOf struct {
	c *client.Client[counter.Counter, counter.Msg]
}

func (m modelsOf) String() string {
	confirmed, seq := m.c.Confirmed()
	return fmt.Sprintf("local %d, confirmed %d at seq %d, %d pending", m.c.Model().Count, confirmed.Count, seq, m.c.Pending())
}

func TestGapResyncsWithDelta(t *testing.T) {
	f := newFakeServer(t)
	c, fc := connectFake(t, f, 5, 5, "e1", client.Options{})
	waitModel(t, c, 5, 5, 5)

	fc.serverMessage(6, counter.Increment{})
	waitModel(t, c, 6, 6, 6)
	fc.serverMessage(8, counter.Increment{}) // 7 is missing
	r := fc.expect(transport.TypeResync)
	if r.AfterSequence != 6 || !r.Delta || r.Epoch != "e1" {
		t.Fatalf("resync %+v, want a delta after 6 in epoch e1", r)
	}
	fc.serverMessage(6, counter.Increment{}) // already applied: ignored
	fc.serverMessage(7, counter.Add{N: 10})
	fc.serverMessage(8, counter.Increment{})
	fc.write(transport.Frame{Type: transport.TypeSynced, Sequence: 8, Epoch: "e1"})
	waitModel(t, c, 17, 17, 8)
	flush(t, c)
}

func TestSyncedAtAnotherSequenceAsksForSnapshot(t *testing.T) {
	f := newFakeServer(t)
	c, fc := connectFake(t, f, 1, 1, "e1", client.Options{})
	fc.serverMessage(3, counter.Increment{})
	fc.expect(transport.TypeResync)
	fc.write(transport.Frame{Type: transport.TypeSynced, Sequence: 3, Epoch: "e1"}) // but 2 and 3 never came
	r := fc.expect(transport.TypeResync)
	if r.AfterSequence != 1 || r.Delta {
		t.Fatalf("resync %+v, want a snapshot after 1", r)
	}
	fc.snapshot(3, 9, "e1")
	waitModel(t, c, 9, 9, 3)
}

func TestAcknowledgementWithSequenceZero(t *testing.T) {
	f := newFakeServer(t)
	c, fc := connectFake(t, f, 0, 0, "e", client.Options{})
	send(t, c, counter.Add{N: 5})
	m := fc.expect(transport.TypeClientMessage)
	fc.write(transport.Frame{Type: transport.TypeAcknowledge, Sequence: 0, ID: m.ID})
	r := fc.expect(transport.TypeResync)
	if r.AfterSequence != 0 || !r.Delta || r.Epoch != "e" {
		t.Fatalf("resync %+v, want a delta after 0 in epoch e", r)
	}
	// Applied by the server, at an unknown sequence: no longer pending,
	// still in the local model until the resync answers.
	testutil.Eventually(t, func() bool { return c.Pending() == 0 }, "acknowledged message still pending")
	if got := c.Model().Count; got != 5 {
		t.Fatalf("local count %d while resyncing, want 5", got)
	}
	fc.snapshot(4, 12, "e")
	waitModel(t, c, 12, 12, 4)
	flush(t, c)
}

func TestSnapshotRebasesPendingMessages(t *testing.T) {
	f := newFakeServer(t)
	c, fc := connectFake(t, f, 0, 0, "e", client.Options{})
	send(t, c, counter.Increment{})
	m := fc.expect(transport.TypeClientMessage)
	fc.serverMessage(1, counter.Add{N: 10}) // another client's, before ours
	waitModel(t, c, 11, 10, 1)
	fc.snapshot(10, 100, "e") // as after an outbox overflow
	waitModel(t, c, 101, 100, 10)
	fc.write(transport.Frame{Type: transport.TypeAcknowledge, Sequence: 11, ID: m.ID})
	waitModel(t, c, 101, 101, 11)
	if c.Pending() != 0 {
		t.Fatalf("%d pending after the acknowledgement", c.Pending())
	}
}

func TestResendOnReconnect(t *testing.T) {
	f := newFakeServer(t)
	c, fc := connectFake(t, f, 0, 0, "e", client.Options{})
	send(t, c, counter.Increment{}, counter.Add{N: 2})
	first := fc.expect(transport.TypeClientMessage)
	second := fc.expect(transport.TypeClientMessage)
	if second.ID <= first.ID {
		t.Fatalf("ids %d then %d, want increasing", first.ID, second.ID)
	}
	_ = fc.ws.Close() // the connection drops before any acknowledgement

	fc2 := f.accept(t)
	if m := fc2.expect(transport.TypeClientMessage); m.ID != first.ID || string(m.Payload) != string(first.Payload) {
		t.Fatalf("first resent message %+v, want %+v", m, first)
	}
	if m := fc2.expect(transport.TypeClientMessage); m.ID != second.ID {
		t.Fatalf("second resent message %+v, want id %d", m, second.ID)
	}
	if r := fc2.expect(transport.TypeResync); r.AfterSequence != 0 || !r.Delta || r.Epoch != "e" {
		t.Fatalf("resync %+v, want a delta after 0 in epoch e", r)
	}
	fc2.write(transport.Frame{Type: transport.TypeAcknowledge, Sequence: 1, ID: first.ID})
	fc2.write(transport.Frame{Type: transport.TypeAcknowledge, Sequence: 2, ID: second.ID})
	fc2.write(transport.Frame{Type: transport.TypeSynced, Sequence: 2, Epoch: "e"})
	waitModel(t, c, 3, 3, 2)
	flush(t, c)
}

func TestPushAndErrors(t *testing.T) {
	f := newFakeServer(t)
	c, fc := connectFake(t, f, 0, 0, "e", client.Options{})
	pushes := make(chan counter.Msg, 1)
	defer c.OnPush(func(m counter.Msg) { pushes <- m })()
	errs := make(chan error, 4)
	defer c.Subscribe(func(ch client.Change[counter.Counter]) {
		if ch.Err != nil {
			errs <- ch.Err
		}
	})()

	payload, _ := counterSerialiser().EncodeMessage(counter.Add{N: 3}, transport.FormatJSON)
	fc.write(transport.Frame{Type: transport.TypePush, Payload: payload})
	select {
	case m := <-pushes:
		if m != (counter.Add{N: 3}) {
			t.Fatalf("push %#v", m)
		}
	case <-time.After(testutil.DefaultWait):
		t.Fatal("no push")
	}

	fc.write(transport.Frame{Type: transport.TypeError, Code: transport.CodeOverloaded, Reason: "busy"})
	select {
	case err := <-errs:
		var te *transport.Error
		if !errors.As(err, &te) || te.Code != transport.CodeOverloaded {
			t.Fatalf("error %v, want the overloaded error frame", err)
		}
	case <-time.After(testutil.DefaultWait):
		t.Fatal("error frame not reported")
	}
	if c.Model().Count != 0 {
		t.Fatalf("a push changed the model: %+v", c.Model())
	}
}

func TestCloseUnknownStoreGivesUp(t *testing.T) {
	f := newFakeServer(t)
	c, fc := connectFake(t, f, 0, 0, "e", client.Options{})
	send(t, c, counter.Increment{})
	fc.expect(transport.TypeClientMessage)
	_ = fc.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(client.CloseUnknownStore, "unknown store kind"), time.Now().Add(time.Second))
	select {
	case <-c.Done():
	case <-time.After(testutil.DefaultWait):
		t.Fatal("the client did not give up")
	}
	if c.State() != client.Closed || !errors.Is(c.Err(), client.ErrUnknownStore) {
		t.Fatalf("state %v, err %v; want closed with ErrUnknownStore", c.State(), c.Err())
	}
	if err := c.Send(counter.Increment{}); !errors.Is(err, client.ErrClosed) {
		t.Fatalf("send after giving up: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	noClientGoroutines(t)
}

func TestCloseSendsNormalClosure(t *testing.T) {
	f := newFakeServer(t)
	c, fc := connectFake(t, f, 0, 0, "e", client.Options{})
	closed := make(chan error, 1)
	go func() { closed <- c.Close() }()
	_ = fc.ws.SetReadDeadline(time.Now().Add(testutil.DefaultWait))
	_, _, err := fc.ws.ReadMessage() // gorilla answers the close frame
	if !websocket.IsCloseError(err, websocket.CloseNormalClosure) {
		t.Fatalf("the server read %v, want a close frame with 1000", err)
	}
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(testutil.DefaultWait):
		t.Fatal("Close did not return")
	}
	if c.State() != client.Closed {
		t.Fatalf("state %v after Close", c.State())
	}
}
