package gateway_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	dto "github.com/prometheus/client_model/go"

	"github.com/lily-go/lily/demo/counter"
	"github.com/lily-go/lily/demo/todo"
	"github.com/lily-go/lily/gateway"
	"github.com/lily-go/lily/internal/testutil"
	"github.com/lily-go/lily/server"
	"github.com/lily-go/lily/transport"
)

func TestClientsOfOneStoreConverge(t *testing.T) {
	n := startNode(t, gateway.Config{}, server.Config{})
	const clients, each = 20, 50
	cs := make([]*testutil.WSClient, clients)
	for i := range cs {
		cs[i] = dial(t, n, fmt.Sprintf("/ws/counter/shared?client_id=c%d", i), nil)
	}
	var wg sync.WaitGroup
	for _, c := range cs {
		wg.Go(func() {
			for id := uint64(1); id <= each; id++ {
				send(t, c, counter.Increment{}, id)
			}
		})
	}
	wg.Wait()
	const total = clients * each
	for i, c := range cs {
		testutil.Eventually(t, func() bool { return testutil.CheckGapFree(t, c.Frames()) == total }, "client %d did not reach sequence %d", i, total)
		if count, seq := counterAt(t, c); count != total || seq != total {
			t.Fatalf("client %d: snapshot count %d at %d, want %d", i, count, seq, total)
		}
	}
}

func TestManyStoresConverge(t *testing.T) {
	n := startNode(t, gateway.Config{}, server.Config{})
	const stores, clients = 100, 5
	var wg sync.WaitGroup
	for s := range stores {
		wg.Go(func() {
			cs := make([]*testutil.WSClient, clients)
			for i := range cs {
				cs[i] = dial(t, n, fmt.Sprintf("/ws/counter/store-%d?client_id=c%d", s, i), nil)
			}
			for i, c := range cs {
				send(t, c, counter.Add{N: i + 1}, 1)
			}
			for _, c := range cs {
				testutil.Eventually(t, func() bool { return testutil.CheckGapFree(t, c.Frames()) == clients }, "store %d did not converge", s)
				if count, _ := counterAt(t, c); count != 15 {
					t.Errorf("store %d: count %d, want 15", s, count)
				}
			}
		})
	}
	wg.Wait()
	if got := n.registry.Stores(); got != stores {
		t.Fatalf("%d stores running, want %d", got, stores)
	}
}

func TestAnswersInTheClientsFrameTypeAndFormat(t *testing.T) {
	n := startNode(t, gateway.Config{}, server.Config{})
	c := dial(t, n, "/ws/counter/formats?client_id=alice", nil)
	payload, _ := counterSerialiser.EncodeMessage(counter.Increment{}, transport.FormatMsgPack)
	c.Write(encode(t, transport.Frame{Type: transport.TypeClientMessage, Payload: payload, ID: 1}, transport.FormatMsgPack))
	c.Next()
	send(t, c, counter.Increment{}, 2)
	c.Next()
	if types := c.MessageTypes(); types[0] != websocket.BinaryMessage || types[1] != websocket.TextMessage {
		t.Fatalf("frame types %v, want binary then text", types)
	}
}

func TestBadInputGetsAnErrorAndChangesNothing(t *testing.T) {
	n := startNode(t, gateway.Config{}, server.Config{})
	cases := []struct {
		name string
		data []byte
		code transport.ErrorCode
	}{
		{"garbage bytes", []byte("\xc1\xffgarbage"), transport.CodeBadFrame},
		{"json of the wrong shape", []byte(`{"type":"client_message","payload":{"_":"Increment"},"id":-4}`), transport.CodeBadFrame},
		{"not an object", []byte(`"hello"`), transport.CodeBadFrame},
		{"unknown frame type", []byte(`{"type":"subscribe","topic":"x"}`), transport.CodeBadFrame},
		{"unknown constructor", []byte(`{"type":"client_message","payload":{"_":"Explode"}}`), transport.CodeBadPayload},
		{"payload of the wrong shape", []byte(`{"type":"client_message","payload":{"_":"Add","0":"x"}}`), transport.CodeBadPayload},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, n, fmt.Sprintf("/ws/counter/bad-%d?client_id=alice", i), nil)
			send(t, c, counter.Increment{}, 1)
			c.NextOf(transport.TypeAcknowledge)
			c.Write(tc.data)
			f := c.Next()
			if f.Type != transport.TypeError || f.Code != tc.code {
				t.Fatalf("got %+v, want an error frame %q", f, tc.code)
			}
			// Still connected, nothing changed.
			send(t, c, counter.Increment{}, 2)
			if ack := c.NextOf(transport.TypeAcknowledge); ack.Sequence != 2 {
				t.Fatalf("next message got sequence %d, want 2", ack.Sequence)
			}
			if count, _ := counterAt(t, c); count != 2 {
				t.Fatalf("count %d, want 2", count)
			}
		})
	}
}

func TestTooLargeFrameClosesWith1009(t *testing.T) {
	n := startNode(t, gateway.Config{}, server.Config{})
	c := dial(t, n, "/ws/counter/large?client_id=alice", nil)
	big := append([]byte(`{"type":"client_message","payload":{"_":"Add","0":`), bytes.Repeat([]byte(" "), 2<<20)...)
	_ = c.Conn.WriteMessage(websocket.TextMessage, append(big, "1}}"...))
	err := c.Closed()
	if !websocket.IsCloseError(err, websocket.CloseMessageTooBig) {
		t.Fatalf("connection ended with %v, want close 1009", err)
	}
	// The store is unharmed.
	other := dial(t, n, "/ws/counter/large?client_id=bob", nil)
	if count, _ := counterAt(t, other); count != 0 {
		t.Fatalf("count %d after a refused frame", count)
	}
}

func TestRefusedBeforeTheUpgrade(t *testing.T) {
	n := startNode(t, gateway.Config{
		AllowedOrigins: []string{"https://app.example.com"},
		Authenticate: func(r *http.Request) (string, error) {
			switch r.Header.Get("Authorization") {
			case "Bearer good":
				return "user-1", nil
			case "Bearer banned":
				return "", fmt.Errorf("user is banned: %w", gateway.ErrForbidden)
			}
			return "", errors.New("no valid token")
		},
	}, server.Config{})
	good := http.Header{"Authorization": {"Bearer good"}, "Origin": {"https://app.example.com"}}
	with := func(k, v string) http.Header {
		h := good.Clone()
		h.Set(k, v)
		return h
	}
	cases := []struct {
		name   string
		path   string
		header http.Header
		status int
	}{
		{"allowed", "/ws/counter/x", good, http.StatusSwitchingProtocols},
		{"unknown kind", "/ws/nope/x", good, http.StatusNotFound},
		{"bad store name", "/ws/counter/a%20b", good, http.StatusBadRequest},
		{"bad client id", "/ws/counter/x?client_id=a%2Fb", good, http.StatusBadRequest},
		{"client id too long", "/ws/counter/x?client_id=" + strings.Repeat("a", 65), good, http.StatusBadRequest},
		{"origin not allowed", "/ws/counter/x", with("Origin", "https://evil.example.com"), http.StatusForbidden},
		{"not authenticated", "/ws/counter/x", with("Authorization", "Bearer bad"), http.StatusUnauthorized},
		{"forbidden", "/ws/counter/x", with("Authorization", "Bearer banned"), http.StatusForbidden},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			conn, resp, err := websocket.DefaultDialer.Dial(n.wsURL(tc.path), tc.header)
			if conn != nil {
				conn.Close()
			}
			if resp == nil {
				t.Fatalf("no HTTP response: %v", err)
			}
			if resp.StatusCode != tc.status {
				t.Fatalf("HTTP %d, want %d (%v)", resp.StatusCode, tc.status, err)
			}
		})
	}
}

func TestSameOriginByDefault(t *testing.T) {
	n := startNode(t, gateway.Config{}, server.Config{})
	host := strings.TrimPrefix(n.http.URL, "http://")
	for origin, want := range map[string]int{
		"http://" + host:         http.StatusSwitchingProtocols,
		"http://other.example:1": http.StatusForbidden,
	} {
		conn, resp, _ := websocket.DefaultDialer.Dial(n.wsURL("/ws/counter/o"), http.Header{"Origin": {origin}})
		if conn != nil {
			conn.Close()
		}
		if resp == nil || resp.StatusCode != want {
			t.Fatalf("origin %s: response %v, want %d", origin, resp, want)
		}
	}
}

// smallReadBuffer dials with a tiny socket receive buffer, so that a client
// that reads slowly soon stops the server's writes.
var smallReadBuffer = &websocket.Dialer{
	NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err == nil {
			_ = conn.(*net.TCPConn).SetReadBuffer(4096)
		}
		return conn, err
	},
}

// noOp is a todo message the store applies, numbers and broadcasts without
// changing the model: a rename of an item that does not exist.
func noOp(tb testing.TB, id uint64) []byte {
	payload, err := transport.Automatic[todo.Model, todo.Msg](todo.Variants...).EncodeMessage(todo.Rename{ID: -1, Title: strings.Repeat("x", 180)}, transport.FormatJSON)
	if err != nil {
		tb.Fatal(err)
	}
	return encode(tb, transport.Frame{Type: transport.TypeClientMessage, Payload: payload, ID: id}, transport.FormatJSON)
}

func TestSlowReaderStaysConnectedAndCatchesUp(t *testing.T) {
	// Small socket buffers on both sides: the lag sits in the outbox, where
	// the server sees it, not in megabytes of kernel buffers.
	n := startNode(t, gateway.Config{SocketSendBuffer: 16 << 10}, server.Config{OutboxBytes: 16 << 10})
	slowConn, _, err := smallReadBuffer.Dial(n.wsURL("/ws/todo/slow?client_id=slow"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer slowConn.Close()
	var slowFrames []transport.Frame
	var slowMu sync.Mutex
	stopReading := make(chan struct{})
	readerDone := make(chan error, 1)
	go func() {
		for {
			_, data, err := slowConn.ReadMessage()
			if err != nil {
				readerDone <- err
				return
			}
			f, _ := transport.Decode(data, transport.FormatJSON)
			slowMu.Lock()
			slowFrames = append(slowFrames, f)
			slowMu.Unlock()
			select {
			case <-stopReading:
			case <-time.After(200 * time.Microsecond): // a slow reader
			}
		}
	}()
	writer := dial(t, n, "/ws/todo/slow?client_id=writer", nil)
	const total = 20000
	for id := uint64(1); id <= total; id++ {
		writer.Write(noOp(t, id))
	}
	testutil.Eventually(t, func() bool { return testutil.LastAck(writer.Frames()) == total }, "the writer was not served in full")
	close(stopReading)
	testutil.Eventually(t, func() bool {
		slowMu.Lock()
		defer slowMu.Unlock()
		return len(slowFrames) > 0 && slowFrames[len(slowFrames)-1].Sequence == total
	}, "the slow reader did not catch up")
	slowMu.Lock()
	frames := append([]transport.Frame(nil), slowFrames...)
	slowMu.Unlock()
	snapshots := 0
	for _, f := range frames {
		if f.Type == transport.TypeSnapshot {
			snapshots++
		}
	}
	if snapshots == 0 {
		t.Fatalf("the slow reader got all %d frames without a snapshot: it never fell behind, the test proves nothing", len(frames))
	}
	testutil.CheckGapFree(t, frames)
	select {
	case err := <-readerDone:
		t.Fatalf("the slow reader was disconnected: %v", err)
	default:
	}
	t.Logf("slow reader: %d frames for %d messages, %d snapshots", len(frames), total, snapshots)
}

func metricValue(tb testing.TB, m *gateway.Metrics, name, label string) float64 {
	tb.Helper()
	families, err := m.Registry().Gather()
	if err != nil {
		tb.Fatal(err)
	}
	var sum float64
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, metric := range f.GetMetric() {
			if label != "" && !hasLabel(metric, label) {
				continue
			}
			switch {
			case metric.Counter != nil:
				sum += metric.Counter.GetValue()
			case metric.Gauge != nil:
				sum += metric.Gauge.GetValue()
			case metric.Histogram != nil:
				sum += float64(metric.Histogram.GetSampleCount())
			}
		}
	}
	return sum
}

func hasLabel(m *dto.Metric, value string) bool {
	for _, l := range m.GetLabel() {
		if l.GetValue() == value {
			return true
		}
	}
	return false
}

func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

func TestClientThatNeverReadsIsClosedAndOthersAreServed(t *testing.T) {
	// An outbox larger than what the kernel buffers for the stuck socket
	// (its send and receive buffers are small), so its writes block and
	// time out before it overflows; overflows drop whole bursts, and a
	// client that only gets snapshots never fills its socket.
	const outbox = 256 << 10
	n := startNode(t, gateway.Config{WriteTimeout: 2 * time.Second, SocketSendBuffer: 16 << 10}, server.Config{OutboxBytes: outbox, SnapshotEvery: 100, Retention: 100}) // a small journal: the heap check is about the outbox
	stuck, _, err := smallReadBuffer.Dial(n.wsURL("/ws/todo/stuck?client_id=stuck"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer stuck.Close()
	// Readers that keep only the last sequence or acknowledged id (a client
	// that falls behind gets a snapshot, and acknowledgements of later ids
	// imply earlier ones), so the test's own memory does not hide the
	// server's.
	var delivered atomic.Int64
	fast, _, err := websocket.DefaultDialer.Dial(n.wsURL("/ws/todo/stuck?client_id=fast"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer fast.Close()
	go func() {
		for {
			_, data, err := fast.ReadMessage()
			if err != nil {
				return
			}
			if f, err := transport.Decode(data, transport.FormatJSON); err == nil {
				delivered.Store(int64(f.Sequence))
			}
		}
	}()
	writer, _, err := websocket.DefaultDialer.Dial(n.wsURL("/ws/todo/stuck?client_id=writer"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer writer.Close()
	var acked atomic.Int64
	go func() {
		for {
			_, data, err := writer.ReadMessage()
			if err != nil {
				return
			}
			if f, err := transport.Decode(data, transport.FormatJSON); err == nil && f.Type == transport.TypeAcknowledge {
				acked.Store(int64(f.ID))
			}
		}
	}()
	before := heapInUse()
	const total = 40000 // about 10 MB of frames for the stuck client
	for id := uint64(1); id <= total; id++ {
		if err := writer.WriteMessage(websocket.TextMessage, noOp(t, id)); err != nil {
			t.Fatal(err)
		}
	}
	testutil.Eventually(t, func() bool { return acked.Load() == total && delivered.Load() == total },
		"others were not served in full: last ack %d, last sequence seen %d of %d", acked.Load(), delivered.Load(), total)
	if grown := int64(heapInUse()) - int64(before); grown > 4<<20 {
		t.Fatalf("server heap grew by %d bytes while a client read nothing: its outbox is not bounded", grown)
	}
	testutil.Eventually(t, func() bool { return metricValue(t, n.metrics, "lily_closes_total", "1013") == 1 },
		"the stuck client was not closed with 1013")
	_ = stuck.SetReadDeadline(time.Now().Add(testutil.DefaultWait))
	for {
		if _, _, err := stuck.ReadMessage(); err != nil {
			break // it drains what the kernel held, then sees the end
		}
	}
}

func TestKeepAlive(t *testing.T) {
	n := startNode(t, gateway.Config{PingInterval: 50 * time.Millisecond}, server.Config{})
	alive := dial(t, n, "/ws/counter/ka?client_id=alive", nil) // its reader answers pings
	silent, _, err := websocket.DefaultDialer.Dial(n.wsURL("/ws/counter/ka?client_id=silent"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close() // never reads, so never answers a ping
	testutil.Eventually(t, func() bool { return metricValue(t, n.metrics, "lily_closes_total", "1006") == 1 },
		"the silent client was not dropped")
	if got := metricValue(t, n.metrics, "lily_connections_open", ""); got != 1 {
		t.Fatalf("%v connections open, want the one that answers pings", got)
	}
	send(t, alive, counter.Increment{}, 1)
	alive.NextOf(transport.TypeAcknowledge)
}

func TestShutdownClosesWith1001(t *testing.T) {
	n := startNode(t, gateway.Config{}, server.Config{})
	cs := []*testutil.WSClient{dial(t, n, "/ws/counter/s?client_id=a", nil), dial(t, n, "/ws/todo/s?client_id=b", nil)}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.gw.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		if err := c.Closed(); !websocket.IsCloseError(err, websocket.CloseGoingAway) {
			t.Fatalf("closed with %v, want 1001", err)
		}
	}
	_, resp, _ := websocket.DefaultDialer.Dial(n.wsURL("/ws/counter/s"), nil)
	if resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("a connection after shutdown got %v, want 503", resp)
	}
	if r, err := http.Get(n.http.URL + "/readyz"); err != nil || r.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("readyz after shutdown: %v %v", r, err)
	}
}

func TestHealthReadyAndMetrics(t *testing.T) {
	n := startNode(t, gateway.Config{}, server.Config{})
	get := func(path string) (int, string) {
		resp, err := http.Get(n.http.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Fatalf("healthz %d", code)
	}
	if code, _ := get("/readyz"); code != 200 {
		t.Fatalf("readyz %d", code)
	}
	n.gw.SetReady(false)
	if code, _ := get("/readyz"); code != 503 {
		t.Fatalf("readyz when not ready: %d", code)
	}
	n.gw.SetReady(true)

	c := dial(t, n, "/ws/counter/m?client_id=a", nil)
	send(t, c, counter.Increment{}, 1)
	c.NextOf(transport.TypeAcknowledge)
	c.Write([]byte("junk"))
	c.NextOf(transport.TypeError)
	_, body := get("/metrics")
	for _, want := range []string{
		"lily_connections_open 1",
		"lily_stores_active 1",
		"lily_frames_in_total 2",
		"lily_frames_out_total 2",
		"lily_apply_seconds_count 1",
		`lily_errors_total{code="bad_frame"} 1`,
		"go_goroutines",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	if _, err := gateway.New(nil, gateway.Config{}); err == nil {
		t.Fatal("nil resolver accepted")
	}
	registry, _ := server.NewRegistry(server.Config{})
	defer registry.Stop()
	if _, err := gateway.New(registry, gateway.Config{WriteTimeout: -1}); err == nil {
		t.Fatal("negative WriteTimeout accepted")
	}
}
