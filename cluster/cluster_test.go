//go:build !race

// These tests start protoactor's remote and cluster layers, in which the
// race detector reports races inside the library: they run without -race
// only (tests/run lists this package in NORACE). They start nodes on
// 127.0.0.1 with free ports and measure (and log, with -v) join and
// failure-detection times instead of asserting thresholds.
// LILY_CLUSTER_LOG=debug (or info) sends the nodes' logs to stderr.

package cluster

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// patience bounds every wait: generous, as the machine may be loaded.
const patience = 30 * time.Second

func testLogger() *slog.Logger {
	var level slog.Level
	if err := level.UnmarshalText([]byte(os.Getenv("LILY_CLUSTER_LOG"))); err != nil || os.Getenv("LILY_CLUSTER_LOG") == "" {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

// nodes starts and stops the nodes of one test.
type nodes struct {
	t   testing.TB
	mu  sync.Mutex
	all []*Node
}

// newNodes returns a set whose nodes all shut down, concurrently, when the
// test ends.
func newNodes(t testing.TB) *nodes {
	ns := &nodes{t: t}
	t.Cleanup(func() {
		var wg sync.WaitGroup
		for _, n := range ns.all {
			wg.Go(func() {
				ctx, cancel := context.WithTimeout(context.Background(), patience)
				defer cancel()
				if err := n.Shutdown(ctx); err != nil {
					t.Errorf("shutdown %s: %v", n.ID(), err)
				}
			})
		}
		wg.Wait()
	})
	return ns
}

// start starts one node per config, concurrently, and returns them in
// order once all have started.
func (ns *nodes) start(cfgs ...Config) []*Node {
	ns.t.Helper()
	out := make([]*Node, len(cfgs))
	errs := make([]error, len(cfgs))
	var wg sync.WaitGroup
	for i, cfg := range cfgs {
		wg.Go(func() {
			if cfg.Logger == nil {
				cfg.Logger = testLogger()
			}
			ctx, cancel := context.WithTimeout(context.Background(), patience)
			defer cancel()
			out[i], errs[i] = Start(ctx, cfg)
		})
	}
	wg.Wait()
	for i, n := range out {
		if n != nil {
			ns.mu.Lock()
			ns.all = append(ns.all, n)
			ns.mu.Unlock()
		}
		if errs[i] != nil {
			ns.t.Fatalf("start node %d: %v", i, errs[i])
		}
	}
	return out
}

// waitFor polls cond until it holds and returns how long that took; the
// test fails after patience.
func waitFor(t testing.TB, what string, cond func() bool) time.Duration {
	t.Helper()
	begin := time.Now()
	for !cond() {
		if time.Since(begin) > patience {
			t.Fatalf("%s: not after %v", what, patience)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(begin)
}

// clock polls cond in the background from now on; the function it returns
// waits until cond held and returns how long after the call of clock that
// first happened. The test fails after patience.
func clock(cond func() bool) func(t *testing.T, what string) time.Duration {
	begin := time.Now()
	done := make(chan time.Duration, 1)
	go func() {
		defer close(done)
		for time.Since(begin) < patience {
			if cond() {
				done <- time.Since(begin)
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	return func(t *testing.T, what string) time.Duration {
		t.Helper()
		d, ok := <-done
		if !ok {
			t.Fatalf("%s: not after %v", what, patience)
		}
		return d
	}
}

func count(n *Node, want int) func() bool {
	return func() bool { return len(n.Members()) == want }
}

func ids(n *Node) []string {
	var out []string
	for _, m := range n.Members() {
		out = append(out, m.ID)
	}
	slices.Sort(out)
	return out
}

// see reports whether each observer's member list is exactly members.
func see(observers []*Node, members ...*Node) func() bool {
	var want []string
	for _, m := range members {
		want = append(want, m.ID())
	}
	slices.Sort(want)
	return func() bool {
		for _, o := range observers {
			if !slices.Equal(ids(o), want) {
				return false
			}
		}
		return true
	}
}

func port(t *testing.T, addr string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(p)
	return n
}

// TestCluster: three nodes join through the first; one leaves gracefully,
// one is killed, and the killed one comes back on the same address with a
// new id; finally a peer blocks that id and the node stops serving.
func TestCluster(t *testing.T) {
	ns := newNodes(t)
	a := ns.start(Config{NodeName: "a", Kinds: []string{"counter"}})[0]
	if !a.Ready() {
		t.Fatal("a not ready after Start")
	}
	seeds := []string{a.GossipAddress()}
	begin := time.Now()
	aSeesThree := clock(count(a, 3))
	bc := ns.start(
		Config{NodeName: "b", Seeds: seeds, Kinds: []string{"counter", "todo"}},
		Config{NodeName: "c", Seeds: seeds},
	)
	b, c := bc[0], bc[1]
	started := time.Since(begin)
	all := []*Node{a, b, c}
	took := waitFor(t, "three members", see(all, all...))
	t.Logf("join: a saw b and c %v after their Start began; Start took %v (1 s of it protoactor's sleep); all three saw three members %v after that",
		aSeesThree(t, "a sees three").Round(time.Millisecond), started.Round(time.Millisecond), took.Round(time.Millisecond))

	// Every node describes the others as they are.
	for _, m := range c.Members() {
		var want *Node
		for _, n := range all {
			if n.ID() == m.ID {
				want = n
			}
		}
		if want == nil || m.Address != want.Address() || !slices.Equal(m.Kinds, want.cfg.Kinds) {
			t.Errorf("c sees member %+v, want %s at %s with kinds %v", m, want.ID(), want.Address(), want.cfg.Kinds)
		}
	}

	// A graceful leave: the others drop c at once.
	begin = time.Now()
	var shutdown sync.WaitGroup
	shutdown.Go(func() {
		if err := c.Shutdown(context.Background()); err != nil {
			t.Errorf("shutdown c: %v", err)
		}
	})
	took = waitFor(t, "a and b drop c", see([]*Node{a, b}, a, b))
	shutdown.Wait()
	t.Logf("graceful leave: a and b dropped c %v after Shutdown began; Shutdown took %v",
		took.Round(time.Millisecond), time.Since(begin).Round(time.Millisecond))
	<-c.Done()
	if c.Err() != nil || c.Ready() {
		t.Fatalf("after Shutdown: Err = %v, Ready = %v", c.Err(), c.Ready())
	}

	// A killed node (memberlist without Leave, actor system and gRPC
	// stopped at once): a detects its failure.
	bGossip, bAddress, bID := b.GossipAddress(), b.Address(), b.ID()
	begin = time.Now()
	b.halt()
	took = waitFor(t, "a drops b", see([]*Node{a}, a))
	t.Logf("failure detection: a dropped the killed b after %v", took.Round(time.Millisecond))

	// b comes back on the same address with a new id: accepted.
	aSeesB2 := clock(count(a, 2))
	b2 := ns.start(Config{NodeName: "b2", GossipPort: port(t, bGossip), RemotePort: port(t, bAddress), Seeds: seeds})[0]
	if b2.ID() == bID || b2.Address() != bAddress || b2.GossipAddress() != bGossip {
		t.Fatalf("restarted b: id %s (was %s), address %s (was %s), gossip %s (was %s)",
			b2.ID(), bID, b2.Address(), bAddress, b2.GossipAddress(), bGossip)
	}
	waitFor(t, "a and b2 see each other", see([]*Node{a, b2}, a, b2))
	t.Logf("restart: a saw the restarted b %v after its Start began", aSeesB2(t, "a sees b2").Round(time.Millisecond))

	// Split brain: protoactor on a blocks b2's id, as it does for a member
	// memberlist declared dead (a stall, a partition). When b2 gossips that
	// it is alive (here: re-advertising itself; after a stall: refuting),
	// a's alive delegate refuses it and tells it so; b2 must stop serving.
	a.c.Remote.BlockList().Block(b2.ID())
	begin = time.Now()
	if err := b2.provider.ml.UpdateNode(time.Second); err != nil {
		t.Fatalf("b2 re-advertises: %v", err)
	}
	select {
	case <-b2.Done():
	case <-time.After(patience):
		t.Fatal("b2 still serving after a blocked it")
	}
	if !errors.Is(b2.Err(), ErrSplitBrain) || b2.Ready() {
		t.Fatalf("b2: Err = %v, Ready = %v; want ErrSplitBrain, not ready", b2.Err(), b2.Ready())
	}
	t.Logf("split brain: b2 learned it was blocked %v after gossiping", time.Since(begin).Round(time.Millisecond))
	waitFor(t, "a drops the blocked b2", see([]*Node{a}, a))
}

// TestSeedNotUpYet: nodes whose seed is not up yet join it when it comes
// up; one names it by a DNS name.
func TestSeedNotUpYet(t *testing.T) {
	ns := newNodes(t)
	seedPort, err := reservePort("127.0.0.1", 0)
	if err != nil {
		t.Fatal(err)
	}
	bc := ns.start(
		Config{NodeName: "b", Seeds: []string{net.JoinHostPort("127.0.0.1", strconv.Itoa(seedPort))}},
		Config{NodeName: "c", Seeds: []string{net.JoinHostPort("localhost", strconv.Itoa(seedPort))}},
	)
	b, c := bc[0], bc[1]
	if !see([]*Node{b}, b)() || !see([]*Node{c}, c)() {
		t.Fatalf("before the seed: b sees %v, c sees %v; want themselves only", ids(b), ids(c))
	}
	bSeesThree, cSeesThree := clock(count(b, 3)), clock(count(c, 3))
	a := ns.start(Config{NodeName: "a", GossipPort: seedPort})[0]
	all := []*Node{a, b, c}
	waitFor(t, "three members", see(all, all...))
	t.Logf("late seed: b and c saw three members %v and %v after the seed's Start began",
		bSeesThree(t, "b sees three").Round(time.Millisecond), cSeesThree(t, "c sees three").Round(time.Millisecond))

	// A Shutdown whose ctx ends first still leaves, and stops the node.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := c.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown with a short ctx = %v, want DeadlineExceeded", err)
	}
	select {
	case <-c.Done():
	default:
		t.Fatal("Shutdown returned before the node stopped")
	}
	waitFor(t, "a and b drop c", see([]*Node{a, b}, a, b))
}

// TestStartFailsOnABusyPort: Start returns protoactor's panic as an error
// naming the port, and stops what it started.
func TestStartFailsOnABusyPort(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	p := busy.Addr().(*net.TCPAddr).Port
	for _, cfg := range []Config{{GossipPort: p}, {RemotePort: p}} {
		cfg.Logger = testLogger()
		n, err := Start(context.Background(), cfg)
		if err == nil {
			_ = n.Shutdown(context.Background())
			t.Fatalf("Start on a busy port (%+v) succeeded", cfg)
		}
		if !strings.Contains(err.Error(), "Port") {
			t.Errorf("Start = %v, want an error naming the port", err)
		}
		t.Log(err)
	}
}
