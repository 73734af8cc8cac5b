//go:build !race

// Stores as grains across in-process nodes (no -race: see cluster_test.go).
// The nodes share one in-memory journal (memjournal): it stands in for the
// PostgreSQL journal a real cluster shares, so that a store reloads its
// model and sequence on whichever node hosts it next.

package cluster

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/lily-go/lily/actors"
	"github.com/lily-go/lily/demo/counter"
	"github.com/lily-go/lily/gateway"
	"github.com/lily-go/lily/journal/memjournal"
	"github.com/lily-go/lily/messages"
	"github.com/lily-go/lily/transport"
)

var _ gateway.Resolver = (*Node)(nil)

var counterSer = transport.Automatic[counter.Counter, counter.Msg](counter.Variants...)

func counterKind() actors.Kind { return actors.NewKind("counter", counter.Store(), counterSer) }

// testConn is one client connection through Node.Connect: it records the
// frames its send receives, and whether it was let go (send(nil)).
type testConn struct {
	t          *testing.T
	mu         sync.Mutex
	frames     []transport.Frame
	letGo      bool
	incoming   func([]byte)
	disconnect func()
}

func connect(t *testing.T, n *Node, name, clientID string) *testConn {
	t.Helper()
	c := &testConn{t: t}
	send := func(frames [][]byte) error {
		c.mu.Lock()
		defer c.mu.Unlock()
		if frames == nil {
			c.letGo = true
			return nil
		}
		for _, data := range frames {
			f, err := transport.Decode(data, transport.FormatJSON)
			if err != nil {
				t.Errorf("decode %s: %v", data, err)
				continue
			}
			c.frames = append(c.frames, f)
		}
		return nil
	}
	// Like a client, try again while the cluster settles (a store whose
	// host just went away is placed anew once every node sees it gone).
	deadline := time.Now().Add(patience)
	var err error
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Until(deadline))
		c.incoming, c.disconnect, err = n.Connect(ctx, "counter", name, clientID, send)
		cancel()
		if err == nil || time.Now().After(deadline) {
			break
		}
		t.Logf("connect %s to %s through %s: %v; trying again", clientID, name, n.cfg.NodeName, err)
		time.Sleep(100 * time.Millisecond) // a client's backoff
	}
	if err != nil {
		t.Fatalf("connect %s to %s through %s: %v", clientID, name, n.cfg.NodeName, err)
	}
	return c
}

func (c *testConn) send(f transport.Frame) {
	c.t.Helper()
	data, err := transport.Encode(f, transport.FormatJSON)
	if err != nil {
		c.t.Fatal(err)
	}
	c.incoming(data)
}

func (c *testConn) increment(id uint64) {
	c.t.Helper()
	payload, err := counterSer.EncodeMessage(counter.Increment{}, transport.FormatJSON)
	if err != nil {
		c.t.Fatal(err)
	}
	c.send(transport.Frame{Type: transport.TypeClientMessage, ID: id, Payload: payload})
}

func (c *testConn) resync() { c.send(transport.Frame{Type: transport.TypeResync}) }

// find waits for a frame matching ok and returns it.
func (c *testConn) find(what string, ok func(transport.Frame) bool) transport.Frame {
	c.t.Helper()
	var found transport.Frame
	waitFor(c.t, what, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, f := range c.frames {
			if ok(f) {
				found = f
				return true
			}
		}
		return false
	})
	return found
}

func (c *testConn) wasLetGo() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.letGo
}

func snapshotAt(seq uint64) func(transport.Frame) bool {
	return func(f transport.Frame) bool { return f.Type == transport.TypeSnapshot && f.Sequence == seq }
}

func (c *testConn) wantCount(seq uint64, count int) {
	c.t.Helper()
	f := c.find(fmt.Sprintf("snapshot at %d", seq), snapshotAt(seq))
	m, err := counterSer.DecodeModel(f.State, transport.FormatJSON)
	if err != nil {
		c.t.Fatal(err)
	}
	if m.Count != count {
		c.t.Fatalf("snapshot at %d: count %d, want %d", seq, m.Count, count)
	}
}

// hostOf returns the index of the node hosting store name (activating it).
func hostOf(t testing.TB, all []*Node, name string) int {
	t.Helper()
	var pidAddr string
	waitFor(t, "placement of "+name, func() bool {
		pid := all[0].Cluster().Get(name, "counter")
		if pid == nil {
			return false
		}
		pidAddr = pid.Address
		return true
	})
	for i, n := range all {
		if n.Address() == pidAddr {
			return i
		}
	}
	t.Fatalf("store %s on unknown address %s", name, pidAddr)
	return -1
}

func startStoreNodes(t testing.TB, ns *nodes, names ...string) []*Node {
	t.Helper()
	j := memjournal.New()
	t.Cleanup(func() { _ = j.Close() })
	settings := StoreSettings{Journal: j}
	first := ns.start(Config{NodeName: names[0], StoreKinds: []actors.Kind{counterKind()}, Stores: settings})[0]
	var cfgs []Config
	for _, name := range names[1:] {
		cfgs = append(cfgs, Config{NodeName: name, Seeds: []string{first.GossipAddress()}, StoreKinds: []actors.Kind{counterKind()}, Stores: settings})
	}
	all := append([]*Node{first}, ns.start(cfgs...)...)
	for _, n := range all {
		waitFor(t, n.cfg.NodeName+" sees all", count(n, len(all)))
	}
	return all
}

// TestStoresAcrossNodes: for several stores spread over three nodes, a
// client through node a and one through node b converge, whichever node
// hosts the store.
func TestStoresAcrossNodes(t *testing.T) {
	ns := newNodes(t)
	all := startStoreNodes(t, ns, "a", "b", "c")
	a, b := all[0], all[1]
	if !a.HasKind("counter") || a.HasKind("todo") {
		t.Fatal("HasKind")
	}
	hosts := map[int]int{}
	for i := range 12 { // all on one node with chance 3/3^12 < 1e-5
		name := fmt.Sprintf("s%d", i)
		host := hostOf(t, all, name)
		hosts[host]++
		ca := connect(t, a, name, "ca")
		cb := connect(t, b, name, "cb")
		ca.resync()
		ca.wantCount(0, 0)
		ca.increment(1)
		ca.increment(2)
		ca.find("ack 2", func(f transport.Frame) bool {
			return f.Type == transport.TypeAcknowledge && f.ID == 2 && f.Sequence == 2
		})
		cb.find("server_message 2", func(f transport.Frame) bool { return f.Type == transport.TypeServerMessage && f.Sequence == 2 })
		cb.increment(1)
		ca.find("server_message 3", func(f transport.Frame) bool { return f.Type == transport.TypeServerMessage && f.Sequence == 3 })
		cb.resync()
		cb.wantCount(3, 3)
		ca.disconnect()
		cb.disconnect()
		t.Logf("store %s on node %s: converged", name, all[host].cfg.NodeName)
	}
	if len(hosts) < 2 {
		t.Errorf("all 12 stores on one node: %v", hosts)
	}
}

// storeOn returns the name of a store that lands on all[host].
func storeOn(t testing.TB, all []*Node, host int, prefix string) string {
	t.Helper()
	for i := range 100 {
		if name := fmt.Sprintf("%s%d", prefix, i); hostOf(t, all, name) == host {
			return name
		}
	}
	t.Fatalf("no store placed on node %d", host)
	return ""
}

// TestStoreHostLeaves: the node hosting a store shuts down gracefully;
// the connections to that store through the other node are re-attached to
// the store's next activation there (the leaving node refuses to take the
// store back), which reloads its model and sequence from the shared
// journal; the client catches up with a delta and its messages, including
// those sent while the store moved, are applied exactly once.
func TestStoreHostLeaves(t *testing.T) {
	testStoreHostGoes(t, func(b *Node) {
		ctx, cancel := context.WithTimeout(context.Background(), patience)
		defer cancel()
		if err := b.Shutdown(ctx); err != nil {
			t.Error(err)
		}
	})
}

// TestStoreHostFails: the same when the hosting node dies without leaving
// (halt, as if its process was killed): the connection actor's watch of
// the store's activation starts the re-attach, which succeeds once the
// node is declared dead and the store is placed anew.
func TestStoreHostFails(t *testing.T) {
	testStoreHostGoes(t, func(b *Node) { b.halt() })
}

func testStoreHostGoes(t *testing.T, stop func(b *Node)) {
	ns := newNodes(t)
	all := startStoreNodes(t, ns, "a", "b")
	a, b := all[0], all[1]
	name := storeOn(t, all, 1, "m")
	ca := connect(t, a, name, "ca")
	watcher := connect(t, a, name, "watcher")
	cb := connect(t, b, name, "cb")
	// ca asks for deltas, as lily's Go and JS clients do.
	ca.resync()
	epoch := ca.find("snapshot", snapshotAt(0)).Epoch
	ca.send(transport.Frame{Type: transport.TypeResync, Delta: true, Epoch: epoch})
	ca.find("synced at 0", func(f transport.Frame) bool { return f.Type == transport.TypeSynced && f.Sequence == 0 })
	for id := uint64(1); id <= 3; id++ {
		ca.increment(id)
	}
	ca.find("ack 3", func(f transport.Frame) bool {
		return f.Type == transport.TypeAcknowledge && f.ID == 3 && f.Sequence == 3
	})
	cb.find("server_message 3", func(f transport.Frame) bool { return f.Type == transport.TypeServerMessage && f.Sequence == 3 })
	watcher.find("server_message 3", func(f transport.Frame) bool { return f.Type == transport.TypeServerMessage && f.Sequence == 3 })

	begin := time.Now()
	go stop(b)
	// Sent while the store's node goes: to the old activation (applied or
	// lost with it) or held until the connection re-attaches.
	for id := uint64(4); id <= 6; id++ {
		ca.increment(id)
	}
	ack := ca.find("ack 6", func(f transport.Frame) bool { return f.Type == transport.TypeAcknowledge && f.ID == 6 })
	t.Logf("ack 6 (sequence %d) %v after b began to stop", ack.Sequence, time.Since(begin).Round(time.Millisecond))
	ca.find("synced after the move", func(f transport.Frame) bool { return f.Type == transport.TypeSynced && f.Sequence >= 3 })
	// The watcher, which never asked for deltas, gets a snapshot on
	// re-attaching: sequence 6 comes in it or after it.
	watcher.find("sequence 6", func(f transport.Frame) bool {
		return (f.Type == transport.TypeServerMessage && f.Sequence == 6) || (f.Type == transport.TypeSnapshot && f.Sequence >= 6)
	})
	watcher.find("a snapshot after the move", func(f transport.Frame) bool { return f.Type == transport.TypeSnapshot && f.Sequence >= 3 })
	if ca.wasLetGo() || watcher.wasLetGo() {
		t.Fatal("a connection through a was let go; want it re-attached")
	}
	fresh := connect(t, a, name, "fresh")
	fresh.resync()
	fresh.wantCount(6, 6) // each of the six increments applied once

	waitFor(t, "b stopped", func() bool {
		select {
		case <-b.stopped:
			return true
		default:
			return false
		}
	})
	if got := hostOf(t, all[:1], name); got != 0 {
		t.Fatalf("store on %d", got)
	}
}

// TestStoreMovesToJoiningNode: when a node joins, the stores placed on it
// move there (their old activations stop) and the connections to them are
// re-attached: the clients keep their sockets and go on converging.
func TestStoreMovesToJoiningNode(t *testing.T) {
	ns := newNodes(t)
	all := startStoreNodes(t, ns, "a", "b")
	a := all[0]
	const stores = 30 // each lands on the new node with chance 1/3: none moves with chance (2/3)^30 < 1e-5
	conns := make([]*testConn, stores)
	for i := range conns {
		conns[i] = connect(t, a, fmt.Sprintf("j%d", i), "c")
		conns[i].increment(1)
	}
	for _, c := range conns {
		c.find("ack 1", func(f transport.Frame) bool {
			return f.Type == transport.TypeAcknowledge && f.ID == 1 && f.Sequence == 1
		})
	}
	settings := all[0].cfg.Stores
	c := ns.start(Config{NodeName: "c", Seeds: []string{a.GossipAddress()}, StoreKinds: []actors.Kind{counterKind()}, Stores: settings})[0]
	all = append(all, c)
	for _, n := range all {
		waitFor(t, n.cfg.NodeName+" sees 3", count(n, 3))
	}
	moved := 0
	for i, conn := range conns {
		name := fmt.Sprintf("j%d", i)
		if hostOf(t, all, name) == 2 {
			moved++
		}
		conn.increment(2)
		conn.find("ack 2", func(f transport.Frame) bool {
			return f.Type == transport.TypeAcknowledge && f.ID == 2 && f.Sequence == 2
		})
		if conn.wasLetGo() {
			t.Fatalf("connection to %s let go", name)
		}
	}
	if moved == 0 {
		t.Fatal("no store moved to the new node: the test proves nothing")
	}
	waitFor(t, "one activation per store", func() bool {
		seen := map[string]int{}
		for _, n := range all {
			for _, s := range n.Activations() {
				seen[s]++
			}
		}
		for _, k := range seen {
			if k != 1 {
				return false
			}
		}
		return len(seen) == stores
	})
	t.Logf("%d of %d stores moved to the joining node; every connection kept", moved, stores)
}

// TestConnectionOverflow: a client whose socket is stuck overflows its
// connection actor's outbox; the store answers with a snapshot, and once
// the socket writes again the client gets the latest snapshot followed by
// contiguous server messages.
func TestConnectionOverflow(t *testing.T) {
	ns := newNodes(t)
	j := memjournal.New()
	t.Cleanup(func() { _ = j.Close() })
	kinds := []actors.Kind{counterKind()}
	a := ns.start(Config{NodeName: "a", StoreKinds: kinds, Stores: StoreSettings{Journal: j, OutboxBytes: 300}})[0]
	b := ns.start(Config{NodeName: "b", Seeds: []string{a.GossipAddress()}, StoreKinds: kinds, Stores: StoreSettings{Journal: j, OutboxBytes: 300}})[0]
	waitFor(t, "two members", count(a, 2))
	name := storeOn(t, []*Node{a, b}, 1, "o")

	release := make(chan struct{})
	var mu sync.Mutex
	var got []transport.Frame
	send := func(frames [][]byte) error {
		<-release
		mu.Lock()
		defer mu.Unlock()
		for _, data := range frames {
			if data == nil {
				continue
			}
			f, err := transport.Decode(data, transport.FormatJSON)
			if err != nil {
				t.Errorf("decode: %v", err)
			}
			got = append(got, f)
		}
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	incoming, disconnect, err := a.Connect(ctx, "counter", name, "slow", send)
	if err != nil {
		t.Fatal(err)
	}
	defer disconnect()
	_ = incoming
	fast := connect(t, a, name, "fast")
	const n = 50
	for id := uint64(1); id <= n; id++ {
		fast.increment(id)
	}
	fast.find("ack 50", func(f transport.Frame) bool { return f.Type == transport.TypeAcknowledge && f.ID == n })
	close(release)
	waitFor(t, "slow reaches 50", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) > 0 && got[len(got)-1].Sequence == n
	})
	mu.Lock()
	defer mu.Unlock()
	last := -1
	for i, f := range got {
		if f.Type == transport.TypeSnapshot {
			last = i
		}
	}
	if last < 0 {
		t.Fatalf("no snapshot among %d frames", len(got))
	}
	seq := got[last].Sequence
	for _, f := range got[last+1:] {
		if f.Type != transport.TypeServerMessage || f.Sequence != seq+1 {
			t.Fatalf("after snapshot at %d: %v at %d", got[last].Sequence, f.Type, f.Sequence)
		}
		seq = f.Sequence
	}
	t.Logf("slow client got %d frames; last snapshot at %d", len(got), got[last].Sequence)
}

// TestGrainPassivates: an activation with no client for PassivateAfter
// snapshots and stops (it leaves Activations); the next connection, on any
// node, activates the store again with its model and sequence.
func TestGrainPassivates(t *testing.T) {
	ns := newNodes(t)
	j := memjournal.New()
	t.Cleanup(func() { _ = j.Close() })
	settings := StoreSettings{Journal: j, PassivateAfter: 200 * time.Millisecond}
	kinds := []actors.Kind{counterKind()}
	a := ns.start(Config{NodeName: "a", StoreKinds: kinds, Stores: settings})[0]
	b := ns.start(Config{NodeName: "b", Seeds: []string{a.GossipAddress()}, StoreKinds: kinds, Stores: settings})[0]
	waitFor(t, "two members", count(a, 2))
	all := []*Node{a, b}
	name := storeOn(t, all, 1, "p")
	c := connect(t, a, name, "c")
	for id := uint64(1); id <= 3; id++ {
		c.increment(id)
	}
	c.find("ack 3", func(f transport.Frame) bool {
		return f.Type == transport.TypeAcknowledge && f.ID == 3 && f.Sequence == 3
	})
	if got := b.Activations(); len(got) != 1 || got[0] != "counter/"+name {
		t.Fatalf("activations on b: %v", got)
	}
	c.disconnect()
	waitFor(t, "the activation passivates", func() bool { return len(a.Activations())+len(b.Activations()) == 0 })
	if info, err := j.Open(context.Background(), "counter/"+name); err != nil || info.Snapshot == nil || info.Snapshot.Sequence != 3 {
		t.Fatalf("no snapshot at 3 before passivating: %+v, %v", info, err)
	}
	again := connect(t, a, name, "c")
	again.resync()
	again.wantCount(3, 3)
	again.increment(4)
	again.find("ack 4", func(f transport.Frame) bool {
		return f.Type == transport.TypeAcknowledge && f.ID == 4 && f.Sequence == 4
	})
}

// TestReattachGivesUpWhenTooMuchIsInFlight: a connection keeps its
// client's unanswered messages only up to its outbox size; when its store's
// node dies with more than that in flight, the connection is let go (the
// gateway closes the socket with 1012) instead of re-attached, and the
// client, resending everything unanswered on its new connection, has each
// message applied once.
func TestReattachGivesUpWhenTooMuchIsInFlight(t *testing.T) {
	ns := newNodes(t)
	j := memjournal.New()
	t.Cleanup(func() { _ = j.Close() })
	settings := StoreSettings{Journal: j, OutboxBytes: 400}
	kinds := []actors.Kind{counterKind()}
	a := ns.start(Config{NodeName: "a", StoreKinds: kinds, Stores: settings})[0]
	b := ns.start(Config{NodeName: "b", Seeds: []string{a.GossipAddress()}, StoreKinds: kinds, Stores: settings})[0]
	waitFor(t, "two members", count(a, 2))
	name := storeOn(t, []*Node{a, b}, 1, "f")
	c := connect(t, a, name, "c")
	c.increment(1)
	c.find("ack 1", func(f transport.Frame) bool {
		return f.Type == transport.TypeAcknowledge && f.ID == 1 && f.Sequence == 1
	})

	const n = 40 // about 2,000 bytes of messages: more than 400
	b.halt()
	for id := uint64(2); id <= n; id++ {
		c.increment(id)
	}
	waitFor(t, "the connection let go", c.wasLetGo)
	c.disconnect()

	again := connect(t, a, name, "c")
	for id := uint64(1); id <= n; id++ { // a client resends what is unanswered
		again.increment(id)
	}
	again.find(fmt.Sprintf("ack %d", n), func(f transport.Frame) bool { return f.Type == transport.TypeAcknowledge && f.ID == n })
	again.resync()
	var last transport.Frame
	again.find("a snapshot", func(f transport.Frame) bool { last = f; return f.Type == transport.TypeSnapshot })
	m, err := counterSer.DecodeModel(last.State, transport.FormatJSON)
	if err != nil {
		t.Fatal(err)
	}
	if m.Count != n || last.Sequence != n {
		t.Fatalf("count %d at %d, want %d at %d: each message applied once", m.Count, last.Sequence, n, n)
	}
}

// TestLostAnswerReattaches: messages between nodes are delivered at most
// once, and a store may lose its record of a connection while both nodes
// live (here: the store is told the client left, as when its watch of the
// connection actor fires on a broken stream). A message left unanswered
// for AnswerTimeout makes the connection re-attach: the store attaches it
// again and answers the resent message, applied once.
func TestLostAnswerReattaches(t *testing.T) {
	ns := newNodes(t)
	j := memjournal.New()
	t.Cleanup(func() { _ = j.Close() })
	settings := StoreSettings{Journal: j}
	kinds := []actors.Kind{counterKind()}
	a := ns.start(Config{NodeName: "a", StoreKinds: kinds, Stores: settings, AnswerTimeout: 300 * time.Millisecond})[0]
	b := ns.start(Config{NodeName: "b", Seeds: []string{a.GossipAddress()}, StoreKinds: kinds, Stores: settings})[0]
	waitFor(t, "two members", count(a, 2))
	name := storeOn(t, []*Node{a, b}, 1, "l")
	c := connect(t, a, name, "c")
	c.increment(1)
	c.find("ack 1", func(f transport.Frame) bool {
		return f.Type == transport.TypeAcknowledge && f.ID == 1 && f.Sequence == 1
	})

	grain := a.Cluster().Get(name, "counter")
	a.system.Root.Send(grain, &messages.Disconnect{ClientId: "c"}) // the store forgets the connection
	observer := connect(t, a, name, "observer")
	observer.resync()
	observer.wantCount(1, 1) // the Disconnect was handled before

	c.increment(2) // applied, its answer goes nowhere
	ack := c.find("ack 2", func(f transport.Frame) bool { return f.Type == transport.TypeAcknowledge && f.ID == 2 })
	if ack.Sequence != 2 {
		t.Fatalf("ack 2 at sequence %d, want 2", ack.Sequence)
	}
	if c.wasLetGo() {
		t.Fatal("the connection was let go; want it re-attached")
	}
	fresh := connect(t, a, name, "fresh")
	fresh.resync()
	fresh.wantCount(2, 2)
}
