package tests

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/lily-go/lily/client"
	"github.com/lily-go/lily/demo/counter"
	"github.com/lily-go/lily/internal/testutil"
)

// localCluster is a cluster started by deploy/local/up.
type localCluster struct {
	state string   // the state folder
	url   string   // nginx, http://127.0.0.1:PORT
	nodes []string // the nodes' host:port
}

// pidAlive reports whether pid runs (a zombie does not count).
func pidAlive(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(stat)
	if i := strings.LastIndex(s, ") "); i >= 0 {
		s = s[i+2:]
	}
	return !strings.HasPrefix(s, "Z")
}

// pids returns the PIDs the state folder records, by name (node1,
// nginx, postgres...).
func (c *localCluster) pids(tb testing.TB) map[string]int {
	tb.Helper()
	files, _ := filepath.Glob(filepath.Join(c.state, "pids", "*.pid"))
	out := map[string]int{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil {
			tb.Errorf("%s: %q is not a PID", f, b)
			continue
		}
		out[strings.TrimSuffix(filepath.Base(f), ".pid")] = pid
	}
	return out
}

// down runs deploy/local/down on the state folder.
func (c *localCluster) down() ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	return exec.CommandContext(ctx, repoPath("deploy", "local", "down"), c.state).CombinedOutput()
}

// startLocalCluster runs deploy/local/up with its state in a new folder
// and free ports; when the test ends, deploy/local/down stops it (and
// anything down leaves running is killed by its PID, and the test fails).
func startLocalCluster(t *testing.T, nodes int) *localCluster {
	t.Helper()
	nginxBin(t) // fail loudly, not inside the script, when nginx is missing
	// Not t.TempDir: PostgreSQL runs as user postgres (the tests run as
	// root here), which must reach the folder; t.TempDir's parents are 0700.
	state, err := os.MkdirTemp("", "lily-deploy-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(state, 0o755); err != nil {
		t.Fatal(err)
	}
	c := &localCluster{state: state}
	t.Cleanup(func() {
		out, err := c.down()
		if err != nil {
			t.Errorf("deploy/local/down: %v\n%s", err, out)
		}
		for name, pid := range c.pids(t) {
			if pidAlive(pid) {
				t.Errorf("%s (PID %d) still runs after down: killing it", name, pid)
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		if t.Failed() {
			for _, log := range []string{"node1.log", "node2.log", "node3.log", "nginx-error.log"} {
				if b, err := os.ReadFile(filepath.Join(state, "logs", log)); err == nil {
					if len(b) > 8000 {
						b = b[len(b)-8000:]
					}
					t.Logf("%s (end):\n%s", log, b)
				}
			}
		}
		_ = os.RemoveAll(state)
	})

	var httpPorts, gossipPorts, remotePorts []string
	for range nodes {
		httpPorts = append(httpPorts, freePort(t))
		gossipPorts = append(gossipPorts, freePort(t))
		remotePorts = append(remotePorts, freePort(t))
	}
	lbPort := freePort(t)
	up := exec.Command(repoPath("deploy", "local", "up"))
	up.Env = append(os.Environ(),
		"LILY_STATE_DIR="+state,
		"LILY_LOCAL_PORT="+lbPort,
		"LILY_LOCAL_HTTP_PORTS="+strings.Join(httpPorts, ","),
		"LILY_LOCAL_GOSSIP_PORTS="+strings.Join(gossipPorts, ","),
		"LILY_LOCAL_REMOTE_PORTS="+strings.Join(remotePorts, ","),
		"LILY_LOCAL_PG_PORT="+freePort(t),
		// The binary this test run built from the same checkout: up would
		// build the same one.
		"LILY_LOCAL_LILYD="+lilydBin,
	)
	var stderr testutil.LockedBuffer
	up.Stderr = &stderr
	out, err := up.Output()
	if err != nil {
		t.Fatalf("deploy/local/up: %v\nstdout:\n%s\nstderr:\n%s", err, out, stderr.String())
	}
	t.Logf("deploy/local/up:\n%s", out)
	// It prints the URL to connect to.
	m := regexp.MustCompile(`(?m)^\s*URL:\s+(http://127\.0\.0\.1:(\d+))/`).FindSubmatch(out)
	if m == nil || string(m[2]) != lbPort {
		t.Fatalf("up printed no URL on port %s:\n%s", lbPort, out)
	}
	c.url = string(m[1])
	for _, p := range httpPorts {
		c.nodes = append(c.nodes, "127.0.0.1:"+p)
	}
	pids := c.pids(t)
	for _, name := range []string{"postgres", "nginx", "node1", "node2", "node3"}[:2+nodes] {
		if !pidAlive(pids[name]) {
			t.Fatalf("up recorded no running %s: pids %v", name, pids)
		}
	}
	return c
}

// nodeMetric returns the value of an unlabelled metric on a node's /metrics.
func nodeMetric(tb testing.TB, addr, name string) int {
	tb.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		tb.Fatalf("metrics of %s: %v", addr, err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				tb.Fatalf("%s on %s: %q", name, addr, v)
			}
			return int(f)
		}
	}
	tb.Fatalf("%s has no metric %s", addr, name)
	return 0
}

// deploy/local/up starts PostgreSQL, three lilyd nodes and nginx; 100 Go
// clients connect through nginx to 50 stores and send; one node is killed
// (SIGKILL). Every socket that was on it closes, and so may (today: do,
// with 1012) those whose store lived on it; every client reconnects
// through nginx, and every store ends with exactly the messages sent, none
// lost, none twice. deploy/local/down then stops everything by its PID.
func TestDeployLocalClusterBehindNginx(t *testing.T) {
	cl := startLocalCluster(t, 3)
	lb := strings.TrimPrefix(cl.url, "http://")
	for _, n := range cl.nodes {
		if got := nodeMetric(t, n, "lily_cluster_members"); got != 3 {
			t.Fatalf("node %s sees %d members after up, want 3", n, got)
		}
	}

	const stores, perStore = 50, 2
	const first, during, second = 3, 2, 3
	var killed atomic.Bool
	var cutOff atomic.Int32 // clients whose connection closed after the kill
	var clients []*client.Client[counter.Counter, counter.Msg]
	storeOf := map[*client.Client[counter.Counter, counter.Msg]]int{}
	for s := range stores {
		for range perStore {
			c := connectCounter(t, fmt.Sprintf("ws://%s/ws/counter/deploy-%d", lb, s), client.Options{})
			var once sync.Once
			c.Subscribe(func(ch client.Change[counter.Counter]) {
				if killed.Load() && ch.State != client.Connected {
					once.Do(func() { cutOff.Add(1) })
				}
			})
			clients = append(clients, c)
			storeOf[c] = s
		}
	}
	// nginx spread the sockets over the three nodes.
	connsPerNode := make([]int, len(cl.nodes))
	testutil.Eventually(t, func() bool {
		sum := 0
		for i, n := range cl.nodes {
			connsPerNode[i] = nodeMetric(t, n, "lily_connections_open")
			sum += connsPerNode[i]
		}
		return sum == len(clients)
	}, "the nodes hold %v connections, want %d in all", connsPerNode, len(clients))
	for i, n := range connsPerNode {
		if n == 0 {
			t.Fatalf("nginx sent no connection to node %d (%v): it does not balance", i+1, connsPerNode)
		}
	}
	t.Logf("connections per node through nginx: %v", connsPerNode)

	send := func(n int) {
		for _, c := range clients {
			for range n {
				if err := c.Send(counter.Increment{}); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	flushAll := func() {
		for _, c := range clients {
			flush(t, c)
		}
	}
	check := func(want int) {
		t.Helper()
		for s := range stores {
			observer := testutil.DialWS(t, fmt.Sprintf("ws://%s/ws/counter/deploy-%d?client_id=observer-%d", lb, s, want), nil)
			if count, seq := countOf(t, observer); count != want || seq != uint64(want) {
				t.Fatalf("store deploy-%d through nginx: count %d at sequence %d, want %d", s, count, seq, want)
			}
			_ = observer.Conn.Close()
		}
	}
	send(first)
	flushAll()
	check(perStore * first)

	// Kill node 2 with messages in flight (sent, not yet acknowledged).
	victim := 1
	pid := cl.pids(t)["node2"]
	onVictim := connsPerNode[victim]
	send(during)
	killed.Store(true)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill node2 (PID %d): %v", pid, err)
	}
	testutil.Eventually(t, func() bool { return !pidAlive(pid) }, "node2 (PID %d) survives SIGKILL", pid)
	survivors := []string{cl.nodes[0], cl.nodes[2]}
	for _, n := range survivors {
		testutil.Eventually(t, func() bool { return nodeMetric(t, n, "lily_cluster_members") == 2 }, "node %s still sees the killed node", n)
	}
	send(second)
	flushAll() // every client is connected again (through nginx) and acknowledged
	want := perStore * (first + during + second)
	check(want)
	for _, c := range clients {
		testutil.Eventually(t, func() bool { return c.Model().Count == want && c.State() == client.Connected },
			"a client of store deploy-%d has count %d (state %v), want %d", storeOf[c], c.Model().Count, c.State(), want)
	}
	// Every client is connected to a surviving node, through nginx.
	testutil.Eventually(t, func() bool {
		return nodeMetric(t, survivors[0], "lily_connections_open")+nodeMetric(t, survivors[1], "lily_connections_open") == len(clients)
	}, "the surviving nodes do not hold the %d clients' connections", len(clients))
	// The sockets on the killed node all closed; those whose store lived
	// there may have too (closed with 1012 today, re-attached later).
	if got := int(cutOff.Load()); got < onVictim || got == 0 {
		t.Fatalf("%d clients saw their connection close, but %d were on the killed node", got, onVictim)
	}
	t.Logf("%d of %d clients were cut off by the kill (%d were on the killed node) and reconnected through nginx", cutOff.Load(), len(clients), onVictim)

	// down stops exactly what up started, by PID.
	pids := cl.pids(t)
	if out, err := cl.down(); err != nil {
		t.Fatalf("deploy/local/down: %v\n%s", err, out)
	}
	for name, pid := range pids {
		if pidAlive(pid) {
			t.Errorf("%s (PID %d) still runs after down", name, pid)
		}
	}
	if left := cl.pids(t); len(left) != 0 {
		t.Errorf("down left PID files %v", left)
	}
	if conn, err := net.DialTimeout("tcp", lb, time.Second); err == nil {
		conn.Close()
		t.Errorf("something still listens on nginx's address %s after down", lb)
	}
}
