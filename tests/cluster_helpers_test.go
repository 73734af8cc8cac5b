package tests

// Helpers of the multi-process cluster tests (cluster_multi_test.go,
// cluster_measure_test.go): a cluster of lilyd processes over a shared
// PostgreSQL journal whose nodes can be killed, paused, stopped and
// restarted on the same ports; Go clients that send under load and record
// what they see; checks of convergence and of the journal itself.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/jackc/pgx/v5"

	"github.com/lily-go/lily/client"
	"github.com/lily-go/lily/demo/counter"
	"github.com/lily-go/lily/internal/testutil"
	"github.com/lily-go/lily/journal"
	"github.com/lily-go/lily/transport"
)

// clusterNode is one member of a testCluster: its ports stay the same
// across restarts, its process changes.
type clusterNode struct {
	index      int
	addr       string // HTTP and WebSockets, host:port
	debugAddr  string // -pprof-listen: /debug/activations
	gossipPort string
	remotePort string

	mu   sync.Mutex
	proc *lilyd // guarded by mu; the current (or last) process
}

func (n *clusterNode) process() *lilyd {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.proc
}

func (n *clusterNode) gossipAddr() string { return "127.0.0.1:" + n.gossipPort }

// testCluster is a cluster of lilyd processes on 127.0.0.1 sharing one
// PostgreSQL database as their journal.
type testCluster struct {
	t     *testing.T
	name  string
	pg    string // the journal's postgres:// URL
	mu    sync.Mutex
	nodes []*clusterNode // guarded by mu
}

// newTestCluster starts PostgreSQL and n lilyd nodes, one after the other
// (each seeded with the ones before it), and waits until every node sees n
// members.
func newTestCluster(t *testing.T, n int) *testCluster {
	t.Helper()
	c := &testCluster{t: t, name: "multi", pg: testutil.StartPostgres(t)}
	for range n {
		c.addNode()
	}
	c.waitMembers(n)
	return c
}

// addNode starts a new node seeded with every node so far.
func (c *testCluster) addNode() *clusterNode {
	c.t.Helper()
	c.mu.Lock()
	n := &clusterNode{index: len(c.nodes), addr: freeAddr(c.t), debugAddr: freeAddr(c.t),
		gossipPort: freePort(c.t), remotePort: freePort(c.t)}
	c.nodes = append(c.nodes, n)
	c.mu.Unlock()
	c.start(n)
	return n
}

// all returns the nodes.
func (c *testCluster) all() []*clusterNode {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.nodes)
}

// start starts n's process (again, on the same ports), seeded with every
// other node, and waits until it is ready (/readyz: it has joined).
func (c *testCluster) start(n *clusterNode) *lilyd {
	c.t.Helper()
	var seeds []string
	for _, o := range c.all() {
		if o != n {
			seeds = append(seeds, o.gossipAddr())
		}
	}
	p := startLilyd(c.t, n.addr, "-cluster-name", c.name, "-node-name", fmt.Sprint("node", n.index),
		"-journal", c.pg, "-gossip-port", n.gossipPort, "-remote-port", n.remotePort,
		"-seeds", strings.Join(seeds, ","), "-pprof-listen", n.debugAddr)
	n.mu.Lock()
	n.proc = p
	n.mu.Unlock()
	// Cleanups run last-registered first: this one runs before the
	// per-process ones startLilyd registered, wakes a paused process and
	// stops every node at once, so the cluster's shutdown (about 2.2 s a
	// node) is not paid once per node.
	c.t.Cleanup(c.stopAll)
	return p
}

// stopAll stops every running node at once (SIGCONT first, in case a test
// left one paused).
func (c *testCluster) stopAll() {
	var wg sync.WaitGroup
	for _, n := range c.all() {
		p := n.process()
		if p == nil {
			continue
		}
		_ = p.cmd.Process.Signal(syscall.SIGCONT)
		wg.Go(p.stop)
	}
	wg.Wait()
}

// exited reports whether the node's process has exited.
func (p *lilyd) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// members returns lily_cluster_members of a node, or -1 when it does not
// answer.
func (n *clusterNode) members() int {
	v, err := n.metric("lily_cluster_members")
	if err != nil {
		return -1
	}
	return int(v)
}

// metric reads a gauge without labels from the node's /metrics.
func (n *clusterNode) metric(name string) (float64, error) {
	client := http.Client{Timeout: 2 * time.Second}
	resp, err := client.Get("http://" + n.addr + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			var f float64
			_, err := fmt.Sscan(v, &f)
			return f, err
		}
	}
	return 0, fmt.Errorf("no %s in /metrics", name)
}

// activations returns /debug/activations of a node: the stores ("kind/name")
// activated on it.
func (n *clusterNode) activations() ([]string, error) {
	client := http.Client{Timeout: 2 * time.Second}
	resp, err := client.Get("http://" + n.debugAddr + "/debug/activations")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("/debug/activations: %s", resp.Status)
	}
	var list []string
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		return nil, err
	}
	return list, nil
}

// waitMembers waits until every running node sees want members.
func (c *testCluster) waitMembers(want int) {
	c.t.Helper()
	for _, n := range c.all() {
		if p := n.process(); p == nil || p.exited() {
			continue
		}
		waitFor(c.t, func() (bool, string) {
			got := n.members()
			return got == want, fmt.Sprintf("node%d (%s) sees %d members, want %d", n.index, n.addr, got, want)
		})
	}
}

// placement maps each store activated on a running node to the indexes of
// the nodes it is activated on.
func (c *testCluster) placement() (map[string][]int, error) {
	where := map[string][]int{}
	for _, n := range c.all() {
		if p := n.process(); p == nil || p.exited() {
			continue
		}
		list, err := n.activations()
		if err != nil {
			return nil, fmt.Errorf("node%d: %w", n.index, err)
		}
		for _, s := range list {
			where[s] = append(where[s], n.index)
		}
	}
	return where, nil
}

// placementProblem says what is wrong with a placement in which each of
// stores must be activated exactly once (and nothing else activated), or
// returns "".
func placementProblem(where map[string][]int, stores []string) string {
	var problems []string
	for _, s := range stores {
		if len(where[s]) != 1 {
			problems = append(problems, fmt.Sprintf("%s on nodes %v", s, where[s]))
		}
	}
	if len(where) != len(stores) {
		problems = append(problems, fmt.Sprintf("%d stores activated, want %d", len(where), len(stores)))
	}
	if len(problems) > 5 {
		problems = append(problems[:5], fmt.Sprintf("... %d in all", len(problems)))
	}
	return strings.Join(problems, "; ")
}

// waitPlacement waits until each of stores is activated on exactly one
// running node, and returns that placement (store to node index).
func (c *testCluster) waitPlacement(stores []string) map[string]int {
	c.t.Helper()
	var where map[string][]int
	waitFor(c.t, func() (bool, string) {
		w, err := c.placement()
		if err != nil {
			return false, err.Error()
		}
		where = w
		problem := placementProblem(w, stores)
		return problem == "", "stores not activated exactly once: " + problem
	})
	out := map[string]int{}
	for s, ns := range where {
		out[s] = ns[0]
	}
	return out
}

// perNode counts the stores of a placement on each node.
func perNode(place map[string]int) map[int]int {
	out := map[int]int{}
	for _, n := range place {
		out[n]++
	}
	return out
}

// storeNames are the names ("cluster-0", ...) and journal keys
// ("counter/cluster-0", ...) of n stores with prefix.
func storeNames(prefix string, n int) (names, keys []string) {
	for i := range n {
		names = append(names, fmt.Sprintf("%s-%d", prefix, i))
		keys = append(keys, fmt.Sprintf("counter/%s-%d", prefix, i))
	}
	return names, keys
}

// loadClient is one Go client of the load: it counts what it sent and
// records whether its confirmed sequence ever went back and how often its
// connection was lost.
type loadClient struct {
	c     *client.Client[counter.Counter, counter.Msg]
	store int // index into the load's stores
	node  int // the node it is connected through

	sent        atomic.Int64  // Sends that returned nil
	confirmed   atomic.Uint64 // highest confirmed sequence seen
	wentBack    atomic.Value  // a string, once the confirmed sequence decreased
	disconnects atomic.Int32  // changes from Connected to another state while counting
	connected   atomic.Bool   // last state seen by the subscriber
}

// clusterLoad is a set of clients on stores spread over nodes, with one
// sending goroutine per client while running.
type clusterLoad struct {
	t       *testing.T
	names   []string // store names
	clients []*loadClient
	count   atomic.Bool // count disconnects from now on

	stop chan struct{}
	wg   sync.WaitGroup
}

// connectLoad connects perStore clients to each of the stores, client k of
// store s through node nodes[(s+k) % len(nodes)], in parallel.
func connectLoad(t *testing.T, nodes []*clusterNode, names []string, perStore int) *clusterLoad {
	t.Helper()
	l := &clusterLoad{t: t, names: names}
	for s := range names {
		for k := range perStore {
			l.clients = append(l.clients, &loadClient{store: s, node: nodes[(s+k)%len(nodes)].index})
		}
	}
	byIndex := map[int]*clusterNode{}
	for _, n := range nodes {
		byIndex[n.index] = n
	}
	sem := make(chan struct{}, 16)
	errs := make(chan error, len(l.clients))
	var wg sync.WaitGroup
	for _, lc := range l.clients {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			ctx, cancel := context.WithTimeout(context.Background(), testutil.DefaultWait)
			defer cancel()
			url := byIndex[lc.node].process().storeURL("counter", names[lc.store])
			c, err := client.Connect(ctx, url, counter.Store(), counterSerialiser, client.Options{Backoff: fastBackoff})
			if err != nil {
				errs <- fmt.Errorf("connect %s: %w", url, err)
				return
			}
			lc.c = c
			lc.connected.Store(true)
			c.Subscribe(func(ch client.Change[counter.Counter]) {
				if prev := lc.confirmed.Load(); ch.Sequence < prev {
					lc.wentBack.Store(fmt.Sprintf("confirmed sequence went from %d back to %d", prev, ch.Sequence))
				} else {
					lc.confirmed.Store(ch.Sequence)
				}
				was := lc.connected.Swap(ch.State == client.Connected)
				if was && ch.State != client.Connected && l.count.Load() {
					lc.disconnects.Add(1)
				}
			})
		})
	}
	wg.Wait()
	close(errs)
	for _, lc := range l.clients {
		if lc.c != nil {
			t.Cleanup(func() { _ = lc.c.Close() })
		}
	}
	for err := range errs {
		t.Fatal(err)
	}
	return l
}

// sendEach has every client send n increments, then waits until each is
// acknowledged.
func (l *clusterLoad) sendEach(n int) {
	l.t.Helper()
	for _, lc := range l.clients {
		for range n {
			if err := lc.c.Send(counter.Increment{}); err != nil {
				l.t.Fatalf("send: %v", err)
			}
			lc.sent.Add(1)
		}
	}
	l.flush()
}

// start has every client send an increment every pace (with a random
// offset) until stopLoad.
func (l *clusterLoad) start(pace time.Duration) {
	l.stop = make(chan struct{})
	for i, lc := range l.clients {
		l.wg.Go(func() {
			// Spread the clients over the pace.
			t := time.NewTimer(pace * time.Duration(i%97) / 97)
			defer t.Stop()
			for {
				select {
				case <-l.stop:
					return
				case <-t.C:
				}
				if err := lc.c.Send(counter.Increment{}); err != nil {
					l.t.Errorf("send: %v", err)
					return
				}
				lc.sent.Add(1)
				t.Reset(pace)
			}
		})
	}
}

// stopLoad stops the senders started by start.
func (l *clusterLoad) stopLoad() {
	close(l.stop)
	l.wg.Wait()
}

// totalSent is the number of increments sent so far.
func (l *clusterLoad) totalSent() int64 {
	var n int64
	for _, lc := range l.clients {
		n += lc.sent.Load()
	}
	return n
}

// pending is the number of messages not acknowledged yet.
func (l *clusterLoad) pending() int {
	n := 0
	for _, lc := range l.clients {
		n += lc.c.Pending()
	}
	return n
}

// flush waits until every client's messages are acknowledged.
func (l *clusterLoad) flush() {
	l.t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, len(l.clients))
	for _, lc := range l.clients {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 2*testutil.DefaultWait)
			defer cancel()
			if err := lc.c.Flush(ctx); err != nil {
				errs <- fmt.Errorf("client of %s via node%d: flush: %v (pending %d, state %v)", l.names[lc.store], lc.node, err, lc.c.Pending(), lc.c.State())
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		l.t.Fatal(err)
	}
}

// expected is the count each store must have: the increments its clients
// sent (every one acknowledged once flushed).
func (l *clusterLoad) expected() []int64 {
	want := make([]int64, len(l.names))
	for _, lc := range l.clients {
		want[lc.store] += lc.sent.Load()
	}
	return want
}

// converge flushes every client, then waits until each client's
// confirmed model is its store's expected count at that sequence (every
// message applied once: one increment per sequence), and fails if a client's
// confirmed sequence ever went back.
func (l *clusterLoad) converge() []int64 {
	l.t.Helper()
	l.flush()
	want := l.expected()
	for _, lc := range l.clients {
		w := want[lc.store]
		waitFor(l.t, func() (bool, string) {
			m, seq := lc.c.Confirmed()
			return int64(m.Count) == w && seq == uint64(w), fmt.Sprintf("client of %s via node%d: confirmed count %d at sequence %d, want %d at %d",
				l.names[lc.store], lc.node, m.Count, seq, w, w)
		})
		if got := lc.c.Model().Count; int64(got) != w {
			l.t.Errorf("client of %s via node%d: local count %d, want %d", l.names[lc.store], lc.node, got, w)
		}
	}
	l.checkNoneWentBack()
	return want
}

// checkNoneWentBack fails if a client's confirmed sequence ever decreased.
func (l *clusterLoad) checkNoneWentBack() {
	l.t.Helper()
	for _, lc := range l.clients {
		if how := lc.wentBack.Load(); how != nil {
			l.t.Errorf("client of %s via node%d: %s", l.names[lc.store], lc.node, how)
		}
	}
}

// disconnected returns how many clients lost their connection at least
// once while counting, and how many losses there were.
func (l *clusterLoad) disconnected() (clients, losses int) {
	for _, lc := range l.clients {
		if d := lc.disconnects.Load(); d > 0 {
			clients++
			losses += int(d)
		}
	}
	return clients, losses
}

// checkJournal reads every record of the stores from PostgreSQL and fails
// unless, for store i, the sequences are exactly 1..want[i] (none missing,
// none twice, last_seq the same), and no client message (client id,
// message id) was recorded twice, each client's ids increasing with the
// sequence.
func checkJournal(t *testing.T, pg string, keys []string, want []int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testutil.DefaultWait)
	defer cancel()
	conn, err := pgx.Connect(ctx, pg)
	if err != nil {
		t.Fatalf("journal: %v", err)
	}
	defer conn.Close(context.Background())

	lastSeq := map[string]int64{}
	rows, err := conn.Query(ctx, `SELECT store, last_seq FROM lily_stores WHERE store = ANY($1)`, keys)
	if err != nil {
		t.Fatalf("journal: %v", err)
	}
	for rows.Next() {
		var store string
		var last int64
		if err := rows.Scan(&store, &last); err != nil {
			t.Fatal(err)
		}
		lastSeq[store] = last
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}

	type storeState struct {
		next     int64             // the sequence expected next
		lastID   map[string]uint64 // per client id, the last message id
		problems []string
	}
	states := map[string]*storeState{}
	for _, k := range keys {
		states[k] = &storeState{next: 1, lastID: map[string]uint64{}}
	}
	rows, err = conn.Query(ctx, `SELECT store, seq, value FROM lily_records WHERE store = ANY($1) ORDER BY store, seq`, keys)
	if err != nil {
		t.Fatalf("journal: %v", err)
	}
	for rows.Next() {
		var store string
		var seq int64
		var value []byte
		if err := rows.Scan(&store, &seq, &value); err != nil {
			t.Fatal(err)
		}
		st := states[store]
		if seq != st.next {
			st.problems = append(st.problems, fmt.Sprintf("sequence %d where %d was expected", seq, st.next))
		}
		st.next = seq + 1
		r, err := journal.DecodeRecord(value)
		if err != nil {
			st.problems = append(st.problems, fmt.Sprintf("record %d: %v", seq, err))
			continue
		}
		if r.Sequence != uint64(seq) {
			st.problems = append(st.problems, fmt.Sprintf("record %d says sequence %d", seq, r.Sequence))
		}
		if prev, ok := st.lastID[r.ClientID]; ok && r.MessageID <= prev {
			st.problems = append(st.problems, fmt.Sprintf("record %d: client %s message %d after its message %d (applied twice?)", seq, r.ClientID, r.MessageID, prev))
		}
		st.lastID[r.ClientID] = r.MessageID
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	bad := 0
	for i, k := range keys {
		st := states[k]
		if got := st.next - 1; got != want[i] {
			st.problems = append(st.problems, fmt.Sprintf("%d records, want %d (the acknowledged increments)", got, want[i]))
		}
		if lastSeq[k] != want[i] {
			st.problems = append(st.problems, fmt.Sprintf("last_seq %d, want %d", lastSeq[k], want[i]))
		}
		if len(st.problems) > 0 {
			bad++
			if bad <= 10 {
				t.Errorf("journal of %s: %s", k, strings.Join(st.problems, "; "))
			}
		}
	}
	if bad > 10 {
		t.Errorf("... %d stores with a bad journal in all", bad)
	}
}

// probeStore connects to a store through addr with a fresh connection,
// asks for a snapshot and returns nil once it has one: the store answers.
func probeStore(addr, name, clientID string, timeout time.Duration) error {
	dialer := websocket.Dialer{HandshakeTimeout: timeout}
	conn, _, err := dialer.Dial(fmt.Sprintf("ws://%s/ws/counter/%s?client_id=%s", addr, name, clientID), nil)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetReadDeadline(time.Now().Add(timeout))
	_ = conn.SetWriteDeadline(time.Now().Add(timeout))
	resync, err := transport.Encode(transport.Frame{Type: transport.TypeResync}, transport.FormatJSON)
	if err != nil {
		return err
	}
	if err := conn.WriteMessage(websocket.TextMessage, resync); err != nil {
		return err
	}
	for {
		_, data, err := conn.ReadMessage()
		if err != nil {
			return err
		}
		f, err := transport.Decode(data, transport.DetectFormat(data))
		if err != nil {
			return err
		}
		if f.Type == transport.TypeSnapshot {
			return nil
		}
	}
}

// timeToServeAll probes every store through addrs (round robin, a fresh
// connection per attempt, each attempt up to 2 s) from now until each
// answered once, and returns, per store, the time from since until its
// first answer. It gives up after limit, returning an error naming the
// stores that never answered.
func timeToServeAll(addrs, names []string, since time.Time, limit time.Duration) ([]time.Duration, error) {
	took := make([]time.Duration, len(names))
	var wg sync.WaitGroup
	var failed sync.Map
	deadline := time.Now().Add(limit)
	for i, name := range names {
		wg.Go(func() {
			var last error
			for attempt := 0; time.Now().Before(deadline); attempt++ {
				last = probeStore(addrs[(i+attempt)%len(addrs)], name, "probe", 2*time.Second)
				if last == nil {
					took[i] = time.Since(since)
					return
				}
				time.Sleep(10 * time.Millisecond)
			}
			failed.Store(name, last)
		})
	}
	wg.Wait()
	var errs []error
	failed.Range(func(k, v any) bool {
		errs = append(errs, fmt.Errorf("%s: %v", k, v))
		return len(errs) < 5
	})
	return took, errors.Join(errs...)
}

// waitFor polls cond until it reports true, like testutil.Eventually, and
// fails the test with cond's last explanation when it never does.
func waitFor(tb testing.TB, cond func() (ok bool, why string)) {
	tb.Helper()
	deadline := time.Now().Add(testutil.DefaultWait)
	for {
		ok, why := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("condition not met after %v: %s", testutil.DefaultWait, why)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// durationStats returns the median and the maximum of ds.
func durationStats(ds []time.Duration) (p50, maxD time.Duration) {
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s) == 0 {
		return 0, 0
	}
	return s[len(s)/2], s[len(s)-1]
}

func freePort(tb testing.TB) string {
	tb.Helper()
	_, port, err := net.SplitHostPort(freeAddr(tb))
	if err != nil {
		tb.Fatal(err)
	}
	return port
}
