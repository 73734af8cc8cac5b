package tests

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/lily-go/lily/client"
	"github.com/lily-go/lily/demo/counter"
	"github.com/lily-go/lily/internal/testutil"
	"github.com/lily-go/lily/transport"
)

// fastBackoff reconnects quickly so the tests do not wait on lily's 1 s base.
var fastBackoff = client.Backoff{Base: 20 * time.Millisecond, Max: 200 * time.Millisecond, Multiplier: 2, Jitter: 0.25}

func connectCounter(tb testing.TB, url string, opts client.Options) *client.Client[counter.Counter, counter.Msg] {
	tb.Helper()
	if opts.Backoff == (client.Backoff{}) {
		opts.Backoff = fastBackoff
	}
	ctx, cancel := context.WithTimeout(context.Background(), testutil.DefaultWait)
	defer cancel()
	c, err := client.Connect(ctx, url, counter.Store(), counterSerialiser, opts)
	if err != nil {
		tb.Fatalf("connect %s: %v", url, err)
	}
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

func flush(tb testing.TB, c *client.Client[counter.Counter, counter.Msg]) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testutil.DefaultWait)
	defer cancel()
	if err := c.Flush(ctx); err != nil {
		tb.Fatalf("flush: %v (pending %d, state %v)", err, c.Pending(), c.State())
	}
}

// The node stops gracefully (1001), the client keeps editing offline, a new
// lilyd process comes up on the same port, and the client reconnects by
// itself and flushes its edits, each applied once.
func TestLilydGoClientReconnectsToANewProcess(t *testing.T) {
	addr := freeAddr(t)
	first := startLilyd(t, addr)
	url := fmt.Sprintf("ws://%s/ws/counter/restart", addr)
	c := connectCounter(t, url, client.Options{})
	for range 3 {
		_ = c.Send(counter.Increment{})
	}
	flush(t, c)

	first.stop()
	testutil.Eventually(t, func() bool { return c.State() != client.Connected }, "the client did not notice the shutdown")
	for range 5 {
		if err := c.Send(counter.Add{N: 10}); err != nil {
			t.Fatal(err)
		}
	}
	if got := c.Model().Count; got != 53 {
		t.Fatalf("offline local count %d, want 53", got)
	}

	startLilyd(t, addr) // a new process: its stores start empty
	flush(t, c)
	observer := connectCounter(t, url, client.Options{})
	testutil.Eventually(t, func() bool { return observer.Model().Count == 50 }, "the new node has count %d, want the 5 offline edits (50) applied once", observer.Model().Count)
	testutil.Eventually(t, func() bool { return c.Model().Count == 50 }, "the client converged to %d, want 50", c.Model().Count)
}

// The connection drops after the node applied a message but before its
// acknowledgement reached the client: the client resends it with its id and
// the node does not apply it twice.
func TestLilydLostAcknowledgement(t *testing.T) {
	node := startLilyd(t, freeAddr(t))
	proxy := testutil.NewProxy(t, node.addr)
	url := fmt.Sprintf("ws://%s/ws/counter/lost-ack", proxy.Addr())
	c := connectCounter(t, url, client.Options{})
	observer := testutil.DialWS(t, node.url("counter", "lost-ack", "observer"), nil)
	observer.Snapshot()

	proxy.DropDownstream()
	if err := c.Send(counter.Add{N: 7}); err != nil {
		t.Fatal(err)
	}
	applied := observer.NextOf(transport.TypeServerMessage) // the node applied it
	proxy.CutAll()
	proxy.RestoreDownstream()
	flush(t, c)
	if count, seq := countOf(t, observer); count != 7 || seq != applied.Sequence {
		t.Fatalf("node at count %d sequence %d, want 7 at %d: the message was applied twice", count, seq, applied.Sequence)
	}
	if got := c.Model().Count; got != 7 {
		t.Fatalf("client count %d, want 7", got)
	}
}

// A client process that restarts while offline keeps its client id, its id
// counter and its edits (FilePendingStore); they are applied once.
func TestLilydPendingEditsSurviveAClientRestart(t *testing.T) {
	addr := freeAddr(t)
	node := startLilyd(t, addr)
	url := fmt.Sprintf("ws://%s/ws/counter/persisted", addr)
	path := filepath.Join(t.TempDir(), "pending.json")
	c := connectCounter(t, url, client.Options{PendingStore: client.FilePendingStore(path)})
	_ = c.Send(counter.Increment{})
	flush(t, c)
	id := c.ClientID()

	node.stop()
	testutil.Eventually(t, func() bool { return c.State() != client.Connected }, "the client did not notice the shutdown")
	for range 4 {
		if err := c.Send(counter.Increment{}); err != nil {
			t.Fatal(err)
		}
	}
	_ = c.Close() // the process "exits" with 4 edits pending

	startLilyd(t, addr)
	again := connectCounter(t, url, client.Options{PendingStore: client.FilePendingStore(path)})
	if again.ClientID() != id {
		t.Fatalf("client id %q after restart, want %q", again.ClientID(), id)
	}
	flush(t, again)
	observer := testutil.DialWS(t, fmt.Sprintf("ws://%s/ws/counter/persisted?client_id=observer", addr), nil)
	if count, _ := countOf(t, observer); count != 4 {
		t.Fatalf("count %d on the new node, want the 4 offline edits", count)
	}
}
