package tests

import (
	"fmt"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lily-go/lily/internal/testutil"
)

// The multi-process cluster tests: real lilyd processes on 127.0.0.1 over
// one PostgreSQL journal, 200 counter stores, two Go clients per store on
// different nodes (400 sockets). They check behaviour only; the times they
// log are measurements (BENCHMARKS.md, "Cluster").

const (
	multiStores   = 200
	multiPerStore = 2
	// multiPace is how often each client sends while under load: 400
	// clients at 10 messages/s, 4,000 messages/s in all, what two shared
	// cores carry under the race detector with three nodes and PostgreSQL.
	multiPace = 100 * time.Millisecond
)

// Three nodes, 200 stores, clients on all three: every client converges,
// each store is activated on exactly one node (the union of the nodes'
// /debug/activations holds each store once, and the
// lily_cluster_activations gauges agree), and the activations stay where
// they are while membership is stable.
func TestLilydClusterMultiSpreadsStores(t *testing.T) {
	c := newTestCluster(t, 3)
	names, keys := storeNames("spread", multiStores)
	load := connectLoad(t, c.all(), names, multiPerStore)
	load.sendEach(3)
	load.converge()

	place := c.waitPlacement(keys)
	counts := perNode(place)
	t.Logf("activations per node: %v", counts)
	for _, n := range c.all() {
		if counts[n.index] == 0 {
			t.Errorf("node%d hosts no store: the stores are not spread", n.index)
		}
		if got, err := n.metric("lily_cluster_activations"); err != nil || int(got) != counts[n.index] {
			t.Errorf("node%d: lily_cluster_activations %v (%v), /debug/activations lists %d", n.index, got, err, counts[n.index])
		}
		// Its clients' stores live on every node: it made attach requests
		// answered here and on other nodes.
		for _, placement := range []string{"local", "remote"} {
			name := `lily_cluster_request_seconds_count{placement="` + placement + `",result="ok"}`
			if got, err := n.metric(name); err != nil || got == 0 {
				t.Errorf("node%d: %s = %v (%v), want some", n.index, name, got, err)
			}
		}
	}
	before := map[int][]string{}
	for _, n := range c.all() {
		before[n.index], _ = n.activations()
	}

	// More traffic, some of it while the clients are sending; membership
	// does not change, so neither do the activations.
	load.start(multiPace)
	load.waitSent(6)
	load.stopLoad()
	load.sendEach(2)
	want := load.converge()
	for _, n := range c.all() {
		after, err := n.activations()
		if err != nil {
			t.Fatalf("node%d: %v", n.index, err)
		}
		if !slices.Equal(before[n.index], after) {
			t.Errorf("node%d's activations changed while membership was stable: %d before, %d after", n.index, len(before[n.index]), len(after))
		}
	}
	if p := placementProblem(must(c.placement()), keys); p != "" {
		t.Errorf("after more traffic: %s", p)
	}
	checkJournal(t, c.pg, keys, want)
	t.Logf("%d messages in all", load.totalSent())
}

// shutdownTrouble returns the WARN and ERROR lines of a lilyd log from
// "lilyd shutting down" on (at most 40, plus the shutdown's own lines).
func shutdownTrouble(log string) string {
	_, after, ok := strings.Cut(log, "lilyd shutting down")
	if !ok {
		return "(the log does not say it was shutting down)"
	}
	var out []string
	for line := range strings.SplitSeq(after, "\n") {
		if strings.Contains(line, "level=WARN") || strings.Contains(line, "level=ERROR") || strings.Contains(line, "stopped") {
			out = append(out, line)
		}
	}
	if len(out) > 40 {
		out = append(out[:40], fmt.Sprintf("... %d lines in all", len(out)))
	}
	return strings.Join(out, "\n")
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// One node is killed (SIGKILL) while clients connected to the two others
// send to 200 stores, about a third of which it hosts: every store is
// served again, every client converges and every acknowledged increment is
// in the journal exactly once, and no client loses its connection. It logs
// the time from the SIGKILL until every store answered a fresh connection
// again.
func TestLilydClusterMultiKillUnderLoad(t *testing.T) {
	killUnderLoad(t)
}

// killUnderLoad is TestLilydClusterMultiKillUnderLoad; it returns the time
// from the SIGKILL until every store answered again (also measured by
// TestLilydClusterMeasureFailover).
func killUnderLoad(t *testing.T) time.Duration {
	c := newTestCluster(t, 3)
	nodes := c.all()
	survivors, victim := nodes[:2], nodes[2]
	// The clients connect through the survivors: a client's URL names one
	// node, and the victim does not come back.
	load, names, keys, place := c.settledLoad("kill", survivors)
	onVictim := perNode(place)[victim.index]
	if onVictim == 0 {
		t.Fatal("the victim hosts no store: the test proves nothing")
	}

	load.start(multiPace)
	load.waitSent(3)
	// A baseline: how long probing every store takes while all is well,
	// under the same load (the probes cost their own time).
	began := time.Now()
	base, err := timeToServeAll([]string{survivors[0].addr, survivors[1].addr}, names, began, 2*testutil.DefaultWait)
	if err != nil {
		t.Fatalf("stores not served before the kill: %v", err)
	}
	baseP50, baseMax := durationStats(base)
	t.Logf("before the kill, every store answered a probe within %v (p50 %v)", baseMax.Round(time.Millisecond), baseP50.Round(time.Millisecond))
	load.count.Store(true)
	sentBefore := load.totalSent()
	killed := time.Now()
	victim.process().kill()
	pendingAtKill := load.pending()
	took, err := timeToServeAll([]string{survivors[0].addr, survivors[1].addr}, names, killed, 2*testutil.DefaultWait)
	if err != nil {
		t.Fatalf("stores not served again after the SIGKILL: %v", err)
	}
	p50, worst := durationStats(took)
	var victimTook []time.Duration
	for i, k := range keys {
		if place[k] == victim.index {
			victimTook = append(victimTook, took[i])
		}
	}
	vp50, _ := durationStats(victimTook)
	t.Logf("SIGKILL to every store served again: %v (all stores: p50 %v; the victim's %d stores: p50 %v)",
		worst.Round(time.Millisecond), p50.Round(time.Millisecond), onVictim, vp50.Round(time.Millisecond))
	c.waitMembers(2)
	// Keep sending a little longer on the healed cluster.
	now := load.totalSent()
	testutil.Eventually(t, func() bool { return load.totalSent() > now+int64(len(load.clients)) }, "the load stopped")
	load.stopLoad()
	t.Logf("%d sent before the kill, %d pending at the kill, %d in all", sentBefore, pendingAtKill, load.totalSent())
	if pendingAtKill == 0 {
		t.Error("nothing was in flight at the kill: not under load, the test proves less than it says")
	}

	want := load.converge()
	checkJournal(t, c.pg, keys, want)
	place = c.waitPlacement(keys)
	if n := perNode(place)[victim.index]; n != 0 {
		t.Errorf("%d stores still placed on the killed node", n)
	}
	clients, losses := load.disconnected()
	t.Logf("%d of %d clients lost their connection (%d losses); %d stores were on the killed node", clients, len(load.clients), losses, onVictim)
	// The clients' sockets are on the survivors: their connections to the
	// killed node's stores re-attach to the stores' new activations.
	if clients != 0 {
		t.Errorf("%d clients lost their connection; want every connection re-attached", clients)
	}
	return worst
}

// Every node in turn is stopped (SIGTERM: a graceful leave), restarted on
// the same ports and waited for, while clients on all three nodes send: no
// client's confirmed sequence ever goes back, every client converges and
// the journal holds each acknowledged increment once.
func TestLilydClusterMultiRollingRestart(t *testing.T) {
	c := newTestCluster(t, 3)
	load, _, keys, _ := c.settledLoad("rolling", c.all())

	load.start(multiPace)
	load.count.Store(true)
	for _, n := range c.all() {
		sent := load.totalSent()
		testutil.Eventually(t, func() bool { return load.totalSent() > sent+int64(len(load.clients)) }, "the load stopped")
		old := n.process()
		began := time.Now()
		old.stop()
		stopped := time.Since(began)
		if old.err != nil {
			t.Errorf("node%d exited with %v after SIGTERM, want a clean exit", n.index, old.err)
		}
		if log := old.log.String(); !strings.Contains(log, "lilyd stopped") {
			t.Errorf("node%d's log does not say it stopped", n.index)
		}
		if stopped > 5*time.Second {
			// Node.Shutdown takes about 2.2 s (cluster/doc.go): say what
			// the node was doing instead.
			t.Logf("node%d took %v to stop; the warnings and errors of its shutdown:\n%s", n.index, stopped.Round(time.Millisecond), shutdownTrouble(old.log.String()))
		}
		c.start(n)
		c.waitMembers(3)
		t.Logf("node%d: graceful stop took %v, back with 3 members after %v", n.index, stopped.Round(time.Millisecond), time.Since(began).Round(time.Millisecond))
	}
	c.finishLoad(load, keys)
	clients, losses := load.disconnected()
	t.Logf("%d messages; %d of %d clients lost their connection during the restarts (%d losses)", load.totalSent(), clients, len(load.clients), losses)
}

// One node is paused (SIGSTOP) for 8 s, longer than failure detection,
// while clients on the other two keep sending, then resumed (SIGCONT). Its
// peers declared it dead: it must notice and exit by itself (lilyd's
// split-brain guard), and an activation it still had cannot write (the
// journal fences it: pgjournal's activation tokens). The node is restarted
// on the same ports; every client, those connected through it included,
// converges, and the journal holds each acknowledged increment once.
func TestLilydClusterMultiSplitBrain(t *testing.T) {
	c := newTestCluster(t, 3)
	nodes := c.all()
	stalled := nodes[2]
	load, _, keys, place := c.settledLoad("split", nodes)
	onStalled := perNode(place)[stalled.index]
	if onStalled == 0 {
		t.Fatal("the stalled node hosts no store: the test proves nothing")
	}

	load.start(multiPace)
	load.count.Store(true)
	load.waitSent(3)
	proc := stalled.process()
	if err := proc.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	paused := time.Now()
	// The others notice (about 1 s) and keep serving their stores.
	for _, n := range nodes[:2] {
		waitFor(t, func() (bool, string) {
			got := n.members()
			return got == 2, fmt.Sprintf("node%d sees %d members while node%d is paused, want 2", n.index, got, stalled.index)
		})
	}
	t.Logf("the others saw the paused node gone after %v", time.Since(paused).Round(time.Millisecond))
	time.Sleep(time.Until(paused.Add(8 * time.Second))) // the stall itself, not a wait for a result
	if err := proc.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	resumed := time.Now()
	select {
	case <-proc.done:
	case <-time.After(2 * testutil.DefaultWait):
		t.Fatalf("node%d did not exit after it was declared dead; its log:\n%s", stalled.index, proc.log.String())
	}
	log := proc.log.String()
	t.Logf("node%d exited %v after SIGCONT (%v)", stalled.index, time.Since(resumed).Round(time.Millisecond), proc.err)
	if proc.err == nil {
		t.Errorf("node%d exited with status 0, want a failure after being declared dead", stalled.index)
	}
	for _, says := range []string{"declared dead", "lilyd: leaving"} {
		if !strings.Contains(log, says) {
			t.Errorf("node%d's log does not say %q", stalled.index, says)
		}
	}
	fenced := strings.Count(log, "claimed by a newer activation")
	t.Logf("node%d's log: %d writes refused by the journal's fencing", stalled.index, fenced)

	c.start(stalled)
	c.waitMembers(3)
	c.finishLoad(load, keys)
	clients, losses := load.disconnected()
	t.Logf("%d messages; %d of %d clients lost their connection (%d losses)", load.totalSent(), clients, len(load.clients), losses)
}

// A fourth node joins a cluster of three under load: some stores move to
// it (their activation is now on the new node), every client keeps
// working and converges, and the journal holds each acknowledged increment
// once; no client loses its connection (the connections to a moved store
// re-attach to its new activation).
func TestLilydClusterMultiNodeJoins(t *testing.T) {
	c := newTestCluster(t, 3)
	load, _, keys, before := c.settledLoad("join", c.all())

	load.start(multiPace)
	load.waitSent(3)
	load.count.Store(true)
	joined := time.Now()
	newcomer := c.addNode()
	c.waitMembers(4)
	// The stores that belong to the new node move when their activations
	// on the old nodes stop and their connections re-attach.
	waitFor(t, func() (bool, string) {
		w, err := c.placement()
		if err != nil {
			return false, err.Error()
		}
		if p := placementProblem(w, keys); p != "" {
			return false, "stores not activated exactly once: " + p
		}
		n := 0
		for _, ns := range w {
			if ns[0] == newcomer.index {
				n++
			}
		}
		return n > 0, "no store moved to the new node"
	})
	t.Logf("4 members and some stores on the new node %v after it started", time.Since(joined).Round(time.Millisecond))
	after := c.finishLoad(load, keys)
	t.Logf("activations per node: before %v, after %v", perNode(before), perNode(after))
	moved := 0
	for k, n := range after {
		if before[k] != n {
			moved++
			if n != newcomer.index {
				t.Errorf("%s moved from node%d to node%d, not to the new node", k, before[k], n)
			}
		}
	}
	if moved == 0 {
		t.Errorf("no store moved to the new node")
	}
	clients, losses := load.disconnected()
	t.Logf("%d of %d stores moved to the new node; %d of %d clients lost their connection (%d losses)", moved, len(keys), clients, len(load.clients), losses)
	// Connections re-attach to the moved stores' new activations: no
	// socket closes.
	if clients != 0 {
		t.Errorf("%d clients lost their connection when stores moved; want them re-attached without reconnecting", clients)
	}
}

// finishLoad lets the load run one more message per client, stops it,
// waits for every client to converge, checks the journal holds each
// acknowledged increment exactly once, and returns the stores' placement
// (each activated exactly once).
func (c *testCluster) finishLoad(load *clusterLoad, keys []string) map[string]int {
	c.t.Helper()
	sent := load.totalSent()
	testutil.Eventually(c.t, func() bool { return load.totalSent() > sent+int64(len(load.clients)) }, "the load stopped")
	load.stopLoad()
	checkJournal(c.t, c.pg, keys, load.converge())
	return c.waitPlacement(keys)
}

// settledLoad connects multiPerStore clients to each of multiStores stores
// named prefix-N through the given nodes, has each send one increment and
// waits until all converge. It returns the load, the store names and keys,
// and the stores' placement (each activated exactly once).
func (c *testCluster) settledLoad(prefix string, through []*clusterNode) (load *clusterLoad, names, keys []string, place map[string]int) {
	c.t.Helper()
	names, keys = storeNames(prefix, multiStores)
	load = connectLoad(c.t, through, names, multiPerStore)
	load.sendEach(1)
	load.converge()
	return load, names, keys, c.waitPlacement(keys)
}

// waitSent waits until the load has sent more than perClient messages per
// client in all.
func (l *clusterLoad) waitSent(perClient int) {
	l.t.Helper()
	testutil.Eventually(l.t, func() bool { return l.totalSent() > int64(len(l.clients)*perClient) }, "the load did not run")
}
