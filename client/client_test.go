package client_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/lily-go/lily/client"
	"github.com/lily-go/lily/demo/counter"
	"github.com/lily-go/lily/demo/todo"
	"github.com/lily-go/lily/internal/testutil"
	"github.com/lily-go/lily/store"
	"github.com/lily-go/lily/transport"
)

func TestClientsConverge(t *testing.T) {
	reg := newRegistry(t)
	n := startNode(t, reg, nil)
	url := storeURL(n.addr(), "counter", "converge")

	const clients, sends = 20, 50
	cs := make([]*client.Client[counter.Counter, counter.Msg], clients)
	for i := range cs {
		format := transport.FormatJSON
		if i%2 == 1 {
			format = transport.FormatMsgPack // both envelope formats share the store
		}
		cs[i] = connectCounter(t, url, client.Options{Format: format})
	}
	var wg sync.WaitGroup
	for _, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range sends {
				if err := c.Send(counter.Increment{}); err != nil {
					t.Errorf("send: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	for _, c := range cs {
		waitCount(t, c, clients*sends)
	}
	for _, c := range cs {
		model, seq := c.Confirmed()
		if model.Count != clients*sends || seq != clients*sends {
			t.Errorf("client %s: confirmed %+v at seq %d, want count and seq %d", c.ClientID(), model, seq, clients*sends)
		}
	}
}

func TestManyStoresConverge(t *testing.T) {
	reg := newRegistry(t)
	n := startNode(t, reg, nil)
	const stores, perStore, sends = 100, 5, 2
	var wg sync.WaitGroup
	all := make([][]*client.Client[counter.Counter, counter.Msg], stores)
	for s := range stores {
		url := storeURL(n.addr(), "counter", fmt.Sprintf("s%d", s))
		for range perStore {
			all[s] = append(all[s], connectCounter(t, url, client.Options{}))
		}
		for _, c := range all[s] {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range sends {
					if err := c.Send(counter.Increment{}); err != nil {
						t.Errorf("send: %v", err)
					}
				}
			}()
		}
	}
	wg.Wait()
	for _, cs := range all {
		for _, c := range cs {
			waitCount(t, c, perStore*sends)
		}
	}
}

func TestLateClientGetsSnapshot(t *testing.T) {
	reg := newRegistry(t)
	n := startNode(t, reg, nil)
	url := storeURL(n.addr(), "counter", "late")
	early := connectCounter(t, url, client.Options{})
	send(t, early, counter.Add{N: 40}, counter.Increment{}, counter.Increment{})
	flush(t, early)

	late := connectCounter(t, url, client.Options{})
	model, seq := late.Confirmed()
	if model.Count != 42 || seq != 3 || late.Model().Count != 42 {
		t.Fatalf("late client: confirmed %+v at seq %d, local %+v; want 42 at seq 3", model, seq, late.Model())
	}
}

// listenAgain listens on addr again, once the old listener's port is free.
func listenAgain(t *testing.T, addr string) net.Listener {
	t.Helper()
	var ln net.Listener
	testutil.Eventually(t, func() bool {
		var err error
		ln, err = net.Listen("tcp", addr)
		return err == nil
	}, "listen on %s again", addr)
	return ln
}

func TestOfflineEditing(t *testing.T) {
	reg := newRegistry(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	first := startNode(t, reg, ln)
	url := storeURL(addr, "counter", "offline")
	c := connectCounter(t, url, client.Options{})
	send(t, c, counter.Add{N: 10})
	flush(t, c)

	first.stop() // closes the socket with 1001
	testutil.Eventually(t, func() bool { return c.State() == client.Reconnecting }, "client notices the server left")
	for range 5 {
		send(t, c, counter.Increment{})
	}
	if got := c.Model().Count; got != 15 || c.Pending() != 5 {
		t.Fatalf("offline: local count %d with %d pending, want 15 with 5", got, c.Pending())
	}
	if model, _ := c.Confirmed(); model.Count != 10 {
		t.Fatalf("offline: confirmed %+v, want 10", model)
	}

	startNode(t, reg, listenAgain(t, addr)) // the same store lives on in reg
	waitCount(t, c, 15)
	flush(t, c)
	if c.State() != client.Connected {
		t.Fatalf("state %v after reconnecting", c.State())
	}
	reader := connectCounter(t, url, client.Options{})
	if model, seq := reader.Confirmed(); model.Count != 15 || seq != 6 {
		t.Fatalf("server: %+v at seq %d, want 15 at seq 6 (each edit applied once)", model, seq)
	}
}

func TestLostAcknowledgement(t *testing.T) {
	reg := newRegistry(t)
	n := startNode(t, reg, nil)
	proxy := testutil.NewProxy(t, n.addr())
	a := connectCounter(t, storeURL(proxy.Addr(), "counter", "lost"), client.Options{})
	b := connectCounter(t, storeURL(n.addr(), "counter", "lost"), client.Options{})
	send(t, a, counter.Increment{})
	flush(t, a)
	waitCount(t, b, 1)

	proxy.DropDownstream()
	send(t, a, counter.Add{N: 10})
	waitCount(t, b, 11) // the server applied it; the acknowledgement is lost
	if a.Pending() != 1 || a.Model().Count != 11 {
		t.Fatalf("before the cut: %d pending, local %+v; want 1 pending and 11", a.Pending(), a.Model())
	}
	accepted := proxy.Accepted()
	proxy.CutAll()
	proxy.RestoreDownstream()

	waitCount(t, a, 11)
	flush(t, a)
	if proxy.Accepted() <= accepted {
		t.Fatal("the client did not reconnect through the proxy")
	}
	if model, seq := a.Confirmed(); model.Count != 11 || seq != 2 {
		t.Fatalf("client: confirmed %+v at seq %d, want 11 at seq 2 (applied once)", model, seq)
	}
	send(t, a, counter.Increment{})
	waitCount(t, b, 12)
	if model, seq := b.Confirmed(); model.Count != 12 || seq != 3 {
		t.Fatalf("server: %+v at seq %d, want 12 at seq 3", model, seq)
	}
}

func TestRestartWithPendingStore(t *testing.T) {
	reg := newRegistry(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	first := startNode(t, reg, ln)
	url := storeURL(addr, "counter", "restart")
	path := t.TempDir() + "/pending.json"

	c1 := connectCounter(t, url, client.Options{PendingStore: client.FilePendingStore(path)})
	id := c1.ClientID()
	send(t, c1, counter.Add{N: 10})
	flush(t, c1)
	first.stop()
	testutil.Eventually(t, func() bool { return c1.State() == client.Reconnecting }, "client notices the server left")
	send(t, c1, counter.Increment{}, counter.Increment{}, counter.Add{N: 5})
	if err := c1.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	saved, err := client.FilePendingStore(path).Load()
	if err != nil {
		t.Fatal(err)
	}
	if saved.ClientID != id || len(saved.Pending) != 3 {
		t.Fatalf("saved state: client id %q with %d pending, want %q with 3", saved.ClientID, len(saved.Pending), id)
	}

	startNode(t, reg, listenAgain(t, addr))
	c2 := connectCounter(t, url, client.Options{PendingStore: client.FilePendingStore(path)})
	if c2.ClientID() != id {
		t.Fatalf("restarted client id %q, want %q", c2.ClientID(), id)
	}
	waitCount(t, c2, 17)
	flush(t, c2)
	reader := connectCounter(t, url, client.Options{})
	if model, seq := reader.Confirmed(); model.Count != 17 || seq != 4 {
		t.Fatalf("server: %+v at seq %d, want 17 at seq 4", model, seq)
	}
	if err := c2.Close(); err != nil {
		t.Fatal(err)
	}
	if saved, err = client.FilePendingStore(path).Load(); err != nil || len(saved.Pending) != 0 {
		t.Fatalf("after the acknowledgements: %d pending saved (err %v), want 0", len(saved.Pending), err)
	}
}

// A client process that dies after the server applied its message but
// before the acknowledgement came back resends it after the restart; the
// server acknowledges it without applying it again.
func TestRestartAfterLostAcknowledgement(t *testing.T) {
	reg := newRegistry(t)
	n := startNode(t, reg, nil)
	proxy := testutil.NewProxy(t, n.addr())
	path := t.TempDir() + "/pending.json"
	reader := connectCounter(t, storeURL(n.addr(), "counter", "restart-lost"), client.Options{})

	c1 := connectCounter(t, storeURL(proxy.Addr(), "counter", "restart-lost"), client.Options{PendingStore: client.FilePendingStore(path)})
	proxy.DropDownstream()
	send(t, c1, counter.Add{N: 7})
	waitCount(t, reader, 7)
	if err := c1.Close(); err != nil {
		t.Fatal(err)
	}

	c2 := connectCounter(t, storeURL(n.addr(), "counter", "restart-lost"), client.Options{PendingStore: client.FilePendingStore(path)})
	waitCount(t, c2, 7)
	flush(t, c2)
	send(t, c2, counter.Increment{})
	waitCount(t, reader, 8)
	if model, seq := reader.Confirmed(); model.Count != 8 || seq != 2 {
		t.Fatalf("server: %+v at seq %d, want 8 at seq 2", model, seq)
	}
}

func TestRejectedMessage(t *testing.T) {
	reg := newRegistry(t)
	n := startNode(t, reg, nil)
	url := storeURL(n.addr(), "todo", "rejected")
	ctx, cancel := context.WithTimeout(context.Background(), testutil.DefaultWait)
	defer cancel()

	// The server's store refuses empty titles; this client's does not, so
	// it applies the message optimistically and the server's refusal
	// takes it back.
	lax := store.New(todo.Model{}, todo.Update)
	c, err := client.Connect(ctx, url, lax, todoSerialiser(), client.Options{Backoff: fast})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var mu sync.Mutex
	var changes []client.Change[todo.Model]
	defer c.Subscribe(func(ch client.Change[todo.Model]) {
		mu.Lock()
		defer mu.Unlock()
		changes = append(changes, ch)
	})()
	send(t, c, todo.AddItem{Title: "milk"})
	flush(t, c)
	send(t, c, todo.AddItem{Title: ""})
	flush(t, c)

	if m := c.Model(); len(m.Items) != 1 || m.Items[0].Title != "milk" {
		t.Fatalf("local model %+v, want the milk item only", m)
	}
	if m, seq := c.Confirmed(); len(m.Items) != 1 || seq != 1 {
		t.Fatalf("confirmed %+v at seq %d, want one item at seq 1", m, seq)
	}
	// Callbacks run on their own goroutine: wait for the report.
	testutil.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(changes) > 0 && changes[len(changes)-1].Err != nil
	}, "the refusal is reported")
	mu.Lock()
	defer mu.Unlock()
	optimistic, reported := false, false
	for _, ch := range changes {
		if len(ch.Model.Items) == 2 && ch.Pending == 1 {
			optimistic = true
		}
		var me *client.MessageError
		if errors.As(ch.Err, &me) {
			if !optimistic {
				t.Error("the refusal came before the optimistic change")
			}
			if me.Err.Code != transport.CodeRejected || me.Message != (todo.AddItem{Title: ""}) || len(ch.Model.Items) != 1 || ch.Pending != 0 {
				t.Errorf("refusal %v (message %#v) with model %+v, %d pending", me, me.Message, ch.Model, ch.Pending)
			}
			var te *transport.Error
			if !errors.As(ch.Err, &te) {
				t.Errorf("%v does not wrap a *transport.Error", ch.Err)
			}
			reported = true
		}
	}
	if !optimistic || !reported {
		t.Fatalf("changes %+v: optimistic %v, reported %v", changes, optimistic, reported)
	}
}

func TestLocalRejection(t *testing.T) {
	reg := newRegistry(t)
	n := startNode(t, reg, nil)
	ctx, cancel := context.WithTimeout(context.Background(), testutil.DefaultWait)
	defer cancel()
	c, err := client.Connect(ctx, storeURL(n.addr(), "todo", "local"), todo.Store(), todoSerialiser(), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Send(todo.AddItem{}); !errors.Is(err, store.ErrRejected) {
		t.Fatalf("send of an empty title: %v, want store.ErrRejected", err)
	}
	if c.Pending() != 0 || len(c.Model().Items) != 0 {
		t.Fatalf("a refused send changed the client: %d pending, %+v", c.Pending(), c.Model())
	}
}

func TestSubscribe(t *testing.T) {
	reg := newRegistry(t)
	n := startNode(t, reg, nil)
	c := connectCounter(t, storeURL(n.addr(), "counter", "subscribe"), client.Options{})
	changes := make(chan client.Change[counter.Counter], 100)
	unsubscribe := c.Subscribe(func(ch client.Change[counter.Counter]) { changes <- ch })
	next := func() client.Change[counter.Counter] {
		t.Helper()
		select {
		case ch := <-changes:
			return ch
		case <-time.After(testutil.DefaultWait):
			t.Fatal("no change")
			return client.Change[counter.Counter]{}
		}
	}
	if ch := next(); ch.State != client.Connected || ch.Model.Count != 0 {
		t.Fatalf("first change %+v, want the current state", ch)
	}
	send(t, c, counter.Add{N: 3})
	if ch := next(); ch.Model.Count != 3 || ch.Pending != 1 {
		t.Fatalf("after send: %+v, want count 3 with 1 pending", ch)
	}
	if ch := next(); ch.Model.Count != 3 || ch.Pending != 0 || ch.Sequence != 1 {
		t.Fatalf("after the acknowledgement: %+v, want count 3 at seq 1, nothing pending", ch)
	}
	unsubscribe()
	unsubscribe() // idempotent
	send(t, c, counter.Increment{})
	flush(t, c)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case ch := <-changes:
		t.Fatalf("change %+v after unsubscribe", ch)
	default:
	}
}

func TestCloseLeavesNoGoroutine(t *testing.T) {
	reg := newRegistry(t)
	n := startNode(t, reg, nil)
	url := storeURL(n.addr(), "counter", "close")
	warm := connectCounter(t, url, client.Options{}) // starts the store and the actor system
	if err := warm.Close(); err != nil {
		t.Fatal(err)
	}
	noClientGoroutines(t)
	ignore := goleak.IgnoreCurrent()

	path := t.TempDir() + "/pending.json"
	c := connectCounter(t, url, client.Options{PendingStore: client.FilePendingStore(path)})
	c.Subscribe(func(client.Change[counter.Counter]) {})
	send(t, c, counter.Increment{})
	flush(t, c)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	select {
	case <-c.Done():
	default:
		t.Fatal("Done not closed after Close")
	}
	if err := c.Send(counter.Increment{}); !errors.Is(err, client.ErrClosed) {
		t.Fatalf("send after close: %v, want ErrClosed", err)
	}
	if c.State() != client.Closed || c.Err() != nil {
		t.Fatalf("after close: state %v, err %v", c.State(), c.Err())
	}
	goleak.VerifyNone(t, ignore)
}

func TestUnknownKind(t *testing.T) {
	reg := newRegistry(t)
	n := startNode(t, reg, nil)
	ignore := goleak.IgnoreCurrent()
	ctx, cancel := context.WithTimeout(context.Background(), testutil.DefaultWait)
	defer cancel()
	_, err := client.Connect(ctx, storeURL(n.addr(), "nope", "x"), counter.Store(), counterSerialiser(), client.Options{})
	if !errors.Is(err, client.ErrUnknownStore) {
		t.Fatalf("connect to an unknown kind: %v, want ErrUnknownStore", err)
	}
	var he *client.HandshakeError
	if !errors.As(err, &he) || he.StatusCode != 404 {
		t.Fatalf("connect to an unknown kind: %v, want a 404 HandshakeError", err)
	}
	if ctx.Err() != nil {
		t.Fatal("connect retried until its context ended")
	}
	goleak.VerifyNone(t, ignore)
}

func TestConnectGivesUpWithContext(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close() // nothing listens there
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err = client.Connect(ctx, storeURL(addr, "counter", "x"), counter.Store(), counterSerialiser(), client.Options{Backoff: fast})
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "last error") {
		t.Fatalf("connect with nothing listening: %v, want the deadline and the last error", err)
	}
	noClientGoroutines(t)
}

func TestOptionsValidation(t *testing.T) {
	tests := []struct {
		name  string
		url   string
		opts  client.Options
		field string
	}{
		{"client id", "", client.Options{ClientID: "not valid!"}, "Options.ClientID"},
		{"format", "", client.Options{Format: 9}, "Options.Format"},
		{"base", "", client.Options{Backoff: client.Backoff{Base: -1}}, "Options.Backoff.Base"},
		{"max", "", client.Options{Backoff: client.Backoff{Max: -1}}, "Options.Backoff.Max"},
		{"max below base", "", client.Options{Backoff: client.Backoff{Base: time.Minute}}, "Options.Backoff.Max"},
		{"multiplier", "", client.Options{Backoff: client.Backoff{Multiplier: 0.5}}, "Options.Backoff.Multiplier"},
		{"jitter", "", client.Options{Backoff: client.Backoff{Jitter: 2}}, "Options.Backoff.Jitter"},
		{"write timeout", "", client.Options{WriteTimeout: -time.Second}, "Options.WriteTimeout"},
		{"scheme", "ftp://127.0.0.1/ws/counter/x", client.Options{}, "scheme"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url := tt.url
			if url == "" {
				url = "ws://127.0.0.1:1/ws/counter/x"
			}
			_, err := client.Connect(context.Background(), url, counter.Store(), counterSerialiser(), tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.field) {
				t.Fatalf("got %v, want an error naming %s", err, tt.field)
			}
		})
	}
}

func TestClientIDFromOptions(t *testing.T) {
	reg := newRegistry(t)
	n := startNode(t, reg, nil)
	url := storeURL(n.addr(), "counter", "named")
	a := connectCounter(t, url, client.Options{ClientID: "alice"})
	send(t, a, counter.Increment{})
	flush(t, a)
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	// A new process with the same id and no saved counter: its messages
	// must not be taken for resent ones.
	again := connectCounter(t, url, client.Options{ClientID: "alice"})
	send(t, again, counter.Increment{})
	waitCount(t, again, 2)
	if again.ClientID() != "alice" {
		t.Fatalf("client id %q", again.ClientID())
	}

	path := t.TempDir() + "/pending.json"
	if err := client.FilePendingStore(path).Save(client.PendingState{ClientID: "bob", NextID: 1}); err != nil {
		t.Fatal(err)
	}
	_, err := client.Connect(context.Background(), url, counter.Store(), counterSerialiser(),
		client.Options{ClientID: "alice", PendingStore: client.FilePendingStore(path)})
	if err == nil || !strings.Contains(err.Error(), "Options.ClientID") {
		t.Fatalf("connect with a client id other than the saved one: %v", err)
	}
}

// Pending messages saved in one format are sent in the format the
// restarted client uses.
func TestPendingStoreFormatChange(t *testing.T) {
	reg := newRegistry(t)
	n := startNode(t, reg, nil)
	url := storeURL(n.addr(), "counter", "format")
	path := t.TempDir() + "/pending.json"
	err := client.FilePendingStore(path).Save(client.PendingState{
		ClientID: "carol",
		NextID:   3,
		Format:   transport.FormatJSON,
		Pending: []client.PendingMessage{
			{ID: 1, Payload: []byte(`{"_":"Add","0":4}`)},
			{ID: 2, Payload: []byte(`{"_":"Increment"}`)},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	c := connectCounter(t, url, client.Options{Format: transport.FormatMsgPack, PendingStore: client.FilePendingStore(path)})
	if c.ClientID() != "carol" {
		t.Fatalf("client id %q, want the saved one", c.ClientID())
	}
	waitCount(t, c, 5)
	flush(t, c)
	send(t, c, counter.Increment{})
	reader := connectCounter(t, url, client.Options{})
	waitCount(t, reader, 6)
	saved, err := client.FilePendingStore(path).Load()
	if err != nil {
		t.Fatal(err)
	}
	if saved.NextID != 4 || saved.Format != transport.FormatMsgPack {
		t.Fatalf("saved state %+v, want next id 4 in msgpack", saved)
	}
}
