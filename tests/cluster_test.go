package tests

import (
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/lily-go/lily/client"
	"github.com/lily-go/lily/demo/counter"
	"github.com/lily-go/lily/internal/testutil"
)

func freePort(tb testing.TB) string {
	tb.Helper()
	_, port, err := net.SplitHostPort(freeAddr(tb))
	if err != nil {
		tb.Fatal(err)
	}
	return port
}

// Three lilyd processes form a cluster over a shared PostgreSQL journal.
// Clients connected to two of them share stores, wherever the stores live;
// then the third node is killed (SIGKILL): the connections to stores it
// hosted are closed (1012), the clients reconnect, the stores come back on
// the surviving nodes from the journal, and every message is applied
// exactly once.
func TestLilydClusterSurvivesAKilledNode(t *testing.T) {
	pg := testutil.StartPostgres(t)
	seedPort := freePort(t)
	start := func(seeds string) *lilyd {
		gossip := seedPort
		if seeds != "" {
			gossip = freePort(t)
		}
		return startLilyd(t, freeAddr(t), "-cluster-name", "test", "-journal", pg,
			"-gossip-port", gossip, "-remote-port", freePort(t), "-seeds", seeds)
	}
	a := start("")
	b := start("127.0.0.1:" + seedPort)
	c := start("127.0.0.1:" + seedPort)
	for _, n := range []*lilyd{a, b, c} {
		testutil.Eventually(t, func() bool { return strings.Contains(n.metrics(t), "\nlily_cluster_members 3\n") }, "node %s does not see 3 members", n.addr)
	}

	const stores, first, second = 20, 10, 5
	type pair struct {
		viaA, viaB *client.Client[counter.Counter, counter.Msg]
	}
	pairs := make([]pair, stores)
	var killed atomic.Bool
	var cutOff atomic.Int32 // clients whose connection closed after the kill
	for s := range pairs {
		name := fmt.Sprint("spread-", s)
		pairs[s] = pair{
			viaA: connectCounter(t, a.storeURL("counter", name), client.Options{}),
			viaB: connectCounter(t, b.storeURL("counter", name), client.Options{}),
		}
		for _, c := range []*client.Client[counter.Counter, counter.Msg]{pairs[s].viaA, pairs[s].viaB} {
			var once sync.Once
			c.Subscribe(func(ch client.Change[counter.Counter]) {
				if killed.Load() && ch.State != client.Connected {
					once.Do(func() { cutOff.Add(1) })
				}
			})
		}
	}
	send := func(n int) {
		for _, p := range pairs {
			for range n {
				_ = p.viaA.Send(counter.Increment{})
				_ = p.viaB.Send(counter.Increment{})
			}
		}
		for _, p := range pairs {
			flush(t, p.viaA)
			flush(t, p.viaB)
		}
	}
	check := func(want int) {
		t.Helper()
		for s := range stores {
			for _, n := range []*lilyd{a, b} {
				observer := testutil.DialWS(t, n.url("counter", fmt.Sprint("spread-", s), "observer"), nil)
				if count, seq := countOf(t, observer); count != want || seq != uint64(want) {
					t.Fatalf("store %d through %s: count %d at %d, want %d", s, n.addr, count, seq, want)
				}
				_ = observer.Conn.Close()
			}
		}
	}
	send(first)
	check(2 * first)

	killed.Store(true)
	c.kill()
	for _, n := range []*lilyd{a, b} {
		testutil.Eventually(t, func() bool { return strings.Contains(n.metrics(t), "\nlily_cluster_members 2\n") }, "node %s still sees the killed node", n.addr)
	}
	send(second)
	check(2 * (first + second))
	if cutOff.Load() == 0 {
		t.Fatal("no client's store was on the killed node: the test proves nothing")
	}
	t.Logf("%d of %d clients had their store on the killed node and reconnected", cutOff.Load(), 2*stores)
}
