package client_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/lily-go/lily/actors"
	"github.com/lily-go/lily/client"
	"github.com/lily-go/lily/demo/counter"
	"github.com/lily-go/lily/demo/todo"
	"github.com/lily-go/lily/gateway"
	"github.com/lily-go/lily/internal/testutil"
	"github.com/lily-go/lily/server"
	"github.com/lily-go/lily/transport"
)

// fast reconnects quickly, so that tests that cut connections stay short.
var fast = client.Backoff{Base: 5 * time.Millisecond, Max: 50 * time.Millisecond}

func counterSerialiser() transport.Serialiser[counter.Counter, counter.Msg] {
	return transport.Automatic[counter.Counter, counter.Msg](counter.Variants...)
}

func todoSerialiser() transport.Serialiser[todo.Model, todo.Msg] {
	return transport.Automatic[todo.Model, todo.Msg](todo.Variants...)
}

// newRegistry returns a registry serving the counter and todo kinds,
// stopped by t's cleanup.
func newRegistry(tb testing.TB) *server.Registry {
	tb.Helper()
	reg, err := server.NewRegistry(server.Config{},
		actors.NewKind("counter", counter.Store(), counterSerialiser()),
		actors.NewKind("todo", todo.Store(), todoSerialiser()),
	)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(reg.Stop)
	return reg
}

// node is a gateway served over a real loopback socket.
type node struct {
	gw       *gateway.Gateway
	srv      *httptest.Server
	stopOnce sync.Once
}

// startNode serves reg on ln (a fresh port of 127.0.0.1 when ln is nil).
// The node is stopped by t's cleanup (registered before the registry's,
// so it runs first).
func startNode(tb testing.TB, reg *server.Registry, ln net.Listener) *node {
	tb.Helper()
	gw, err := gateway.New(reg, gateway.Config{})
	if err != nil {
		tb.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(gw)
	if ln != nil {
		_ = srv.Listener.Close()
		srv.Listener = ln
	}
	srv.Start()
	n := &node{gw: gw, srv: srv}
	tb.Cleanup(n.stop)
	return n
}

// stop closes every WebSocket with 1001 and stops listening.
func (n *node) stop() {
	n.stopOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = n.gw.Shutdown(ctx)
		n.srv.Close()
	})
}

// addr returns the node's host:port.
func (n *node) addr() string { return n.srv.Listener.Addr().String() }

func storeURL(addr, kind, name string) string {
	return "ws://" + addr + "/ws/" + kind + "/" + name
}

// connectCounter connects a counter client, closed by t's cleanup.
func connectCounter(tb testing.TB, url string, opts client.Options) *client.Client[counter.Counter, counter.Msg] {
	tb.Helper()
	if opts.Backoff == (client.Backoff{}) {
		opts.Backoff = fast
	}
	ctx, cancel := context.WithTimeout(context.Background(), testutil.DefaultWait)
	defer cancel()
	c, err := client.Connect(ctx, url, counter.Store(), counterSerialiser(), opts)
	if err != nil {
		tb.Fatalf("connect %s: %v", url, err)
	}
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

// send sends msgs (of type Msg), failing the test on an error.
func send[M, Msg any](tb testing.TB, c *client.Client[M, Msg], msgs ...any) {
	tb.Helper()
	for _, m := range msgs {
		if err := c.Send(m.(Msg)); err != nil {
			tb.Fatalf("send %#v: %v", m, err)
		}
	}
}

func flush[M, Msg any](tb testing.TB, c *client.Client[M, Msg]) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testutil.DefaultWait)
	defer cancel()
	if err := c.Flush(ctx); err != nil {
		tb.Fatalf("flush: %v", err)
	}
}

// waitCount waits until c's local model counts want and nothing is
// pending.
func waitCount(tb testing.TB, c *client.Client[counter.Counter, counter.Msg], want int) {
	tb.Helper()
	testutil.Eventually(tb, func() bool {
		return c.Model().Count == want && c.Pending() == 0
	}, "client %s: want count %d; have %v", c.ClientID(), want, modelsOf{c})
}

// clientGoroutines returns the stacks of the goroutines running code of
// package client.
func clientGoroutines() []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "lily-go/lily/client.") && !strings.Contains(g, "client_test.") {
			out = append(out, g)
		}
	}
	return out
}

func noClientGoroutines(tb testing.TB) {
	tb.Helper()
	testutil.Eventually(tb, func() bool { return len(clientGoroutines()) == 0 },
		"goroutines of package client left: %v", clientGoroutines())
}

// fakeServer is a scripted WebSocket server: the test reads what the
// client sends and writes the server's frames itself.
type fakeServer struct {
	srv   *httptest.Server
	conns chan *websocket.Conn
}

func newFakeServer(tb testing.TB) *fakeServer {
	tb.Helper()
	f := &fakeServer{conns: make(chan *websocket.Conn, 8)}
	up := websocket.Upgrader{}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		f.conns <- ws
	}))
	tb.Cleanup(func() {
		f.srv.Close()
		for {
			select {
			case ws := <-f.conns:
				_ = ws.Close()
			default:
				return
			}
		}
	})
	return f
}

func (f *fakeServer) url() string { return storeURL(f.srv.Listener.Addr().String(), "counter", "fake") }

// accept returns the next connection of a client.
func (f *fakeServer) accept(tb testing.TB) *fakeConn {
	tb.Helper()
	select {
	case ws := <-f.conns:
		tb.Cleanup(func() { _ = ws.Close() })
		return &fakeConn{tb: tb, ws: ws}
	case <-time.After(testutil.DefaultWait):
		tb.Fatal("no client connected")
		return nil
	}
}

type fakeConn struct {
	tb testing.TB
	ws *websocket.Conn
}

// read returns the next frame of the client.
func (fc *fakeConn) read() transport.Frame {
	fc.tb.Helper()
	_ = fc.ws.SetReadDeadline(time.Now().Add(testutil.DefaultWait))
	_, data, err := fc.ws.ReadMessage()
	if err != nil {
		fc.tb.Fatalf("fake server: read: %v", err)
	}
	f, err := transport.Decode(data, transport.DetectFormat(data))
	if err != nil {
		fc.tb.Fatalf("fake server: decode %q: %v", data, err)
	}
	return f
}

// expect reads the next frame and checks its type.
func (fc *fakeConn) expect(typ transport.FrameType) transport.Frame {
	fc.tb.Helper()
	f := fc.read()
	if f.Type != typ {
		fc.tb.Fatalf("fake server: got a %v frame %+v, want %v", f.Type, f, typ)
	}
	return f
}

func (fc *fakeConn) write(f transport.Frame) {
	fc.tb.Helper()
	data, err := transport.Encode(f, transport.FormatJSON)
	if err != nil {
		fc.tb.Fatalf("fake server: encode: %v", err)
	}
	if err := fc.ws.WriteMessage(websocket.TextMessage, data); err != nil {
		fc.tb.Fatalf("fake server: write: %v", err)
	}
}

func (fc *fakeConn) snapshot(seq uint64, count int, epoch string) {
	fc.tb.Helper()
	state, err := counterSerialiser().EncodeModel(counter.Counter{Count: count}, transport.FormatJSON)
	if err != nil {
		fc.tb.Fatal(err)
	}
	fc.write(transport.Frame{Type: transport.TypeSnapshot, Sequence: seq, State: state, Epoch: epoch})
}

func (fc *fakeConn) serverMessage(seq uint64, msg counter.Msg) {
	fc.tb.Helper()
	payload, err := counterSerialiser().EncodeMessage(msg, transport.FormatJSON)
	if err != nil {
		fc.tb.Fatal(err)
	}
	fc.write(transport.Frame{Type: transport.TypeServerMessage, Sequence: seq, Payload: payload})
}

// connectFake connects a counter client to f, answering its first resync
// with a snapshot, and returns both ends.
func connectFake(tb testing.TB, f *fakeServer, seq uint64, count int, epoch string, opts client.Options) (*client.Client[counter.Counter, counter.Msg], *fakeConn) {
	tb.Helper()
	type result struct {
		c   *client.Client[counter.Counter, counter.Msg]
		err error
	}
	done := make(chan result, 1)
	if opts.Backoff == (client.Backoff{}) {
		opts.Backoff = fast
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), testutil.DefaultWait)
		defer cancel()
		c, err := client.Connect(ctx, f.url(), counter.Store(), counterSerialiser(), opts)
		done <- result{c, err}
	}()
	fc := f.accept(tb)
	r := fc.expect(transport.TypeResync)
	if r.AfterSequence != 0 || r.Delta {
		tb.Fatalf("first resync = %+v, want after_sequence 0 and no delta", r)
	}
	fc.snapshot(seq, count, epoch)
	res := <-done
	if res.err != nil {
		tb.Fatalf("connect: %v", res.err)
	}
	tb.Cleanup(func() { _ = res.c.Close() })
	tb.Cleanup(func() { _ = fc.ws.Close() }) // first: the fake never answers a close frame
	return res.c, fc
}
