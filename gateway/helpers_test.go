package gateway_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/lily-go/lily/actors"
	"github.com/lily-go/lily/demo/counter"
	"github.com/lily-go/lily/demo/todo"
	"github.com/lily-go/lily/gateway"
	"github.com/lily-go/lily/internal/testutil"
	"github.com/lily-go/lily/server"
	"github.com/lily-go/lily/transport"
)

var counterSerialiser = transport.Automatic[counter.Counter, counter.Msg](counter.Variants...)

// node is a gateway in front of a registry, on a loopback port.
type node struct {
	gw       *gateway.Gateway
	registry *server.Registry
	http     *httptest.Server
	metrics  *gateway.Metrics
}

func startNode(tb testing.TB, gcfg gateway.Config, scfg server.Config) *node {
	tb.Helper()
	n := &node{}
	n.metrics = gateway.NewMetrics(func() int { return n.registry.Stores() })
	scfg.Observer = n.metrics
	registry, err := server.NewRegistry(scfg,
		actors.NewKind("counter", counter.Store(), counterSerialiser),
		actors.NewKind("todo", todo.Store(), transport.Automatic[todo.Model, todo.Msg](todo.Variants...)))
	if err != nil {
		tb.Fatal(err)
	}
	n.registry = registry
	gcfg.Metrics = n.metrics
	gw, err := gateway.New(registry, gcfg)
	if err != nil {
		tb.Fatal(err)
	}
	n.gw = gw
	n.http = httptest.NewServer(gw)
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = gw.Shutdown(ctx)
		n.http.Close()
		registry.Stop()
	})
	return n
}

func (n *node) wsURL(path string) string {
	return "ws" + strings.TrimPrefix(n.http.URL, "http") + path
}

// wsClient is a raw protocol client: it sends frames and collects what
// comes back.
type wsClient struct {
	tb   testing.TB
	conn *websocket.Conn

	mu      sync.Mutex
	frames  []transport.Frame // guarded by mu
	kinds   []int             // guarded by mu; websocket message type of each frame
	cursor  int               // guarded by mu
	closeCh chan error        // the reader's final error
}

func dial(tb testing.TB, n *node, path string, header http.Header) *wsClient {
	tb.Helper()
	conn, resp, err := websocket.DefaultDialer.Dial(n.wsURL(path), header)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		tb.Fatalf("dial %s: %v (HTTP %d)", path, err, status)
	}
	c := &wsClient{tb: tb, conn: conn, closeCh: make(chan error, 1)}
	go c.read()
	tb.Cleanup(func() { _ = conn.Close() })
	return c
}

func (c *wsClient) read() {
	for {
		mt, data, err := c.conn.ReadMessage()
		if err != nil {
			c.closeCh <- err
			return
		}
		f, derr := transport.Decode(data, transport.DetectFormat(data))
		if derr != nil {
			c.tb.Errorf("undecodable frame from the server %q: %v", data, derr)
			continue
		}
		c.mu.Lock()
		c.frames = append(c.frames, f)
		c.kinds = append(c.kinds, mt)
		c.mu.Unlock()
	}
}

func (c *wsClient) write(data []byte) {
	c.tb.Helper()
	mt := websocket.TextMessage
	if transport.DetectFormat(data) == transport.FormatMsgPack {
		mt = websocket.BinaryMessage
	}
	if err := c.conn.WriteMessage(mt, data); err != nil {
		c.tb.Fatalf("write: %v", err)
	}
}

func (c *wsClient) send(msg counter.Msg, id uint64) {
	c.tb.Helper()
	payload, err := counterSerialiser.EncodeMessage(msg, transport.FormatJSON)
	if err != nil {
		c.tb.Fatal(err)
	}
	c.write(encode(c.tb, transport.Frame{Type: transport.TypeClientMessage, Payload: payload, ID: id}, transport.FormatJSON))
}

func (c *wsClient) resync() {
	c.write(encode(c.tb, transport.Frame{Type: transport.TypeResync}, transport.FormatJSON))
}

// next waits for the next frame.
func (c *wsClient) next() transport.Frame {
	c.tb.Helper()
	testutil.Eventually(c.tb, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return len(c.frames) > c.cursor
	}, "no frame came")
	c.mu.Lock()
	defer c.mu.Unlock()
	f := c.frames[c.cursor]
	c.cursor++
	return f
}

// nextOf skips frames until one of type t.
func (c *wsClient) nextOf(t transport.FrameType) transport.Frame {
	c.tb.Helper()
	for {
		if f := c.next(); f.Type == t {
			return f
		}
	}
}

func (c *wsClient) all() []transport.Frame {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]transport.Frame(nil), c.frames...)
}

// closed waits for the connection to end and returns the reader's error.
func (c *wsClient) closed() error {
	c.tb.Helper()
	select {
	case err := <-c.closeCh:
		return err
	case <-time.After(testutil.DefaultWait):
		c.tb.Fatal("the connection was not closed")
		return nil
	}
}

func encode(tb testing.TB, f transport.Frame, format transport.Format) []byte {
	tb.Helper()
	b, err := transport.Encode(f, format)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// counterAt resyncs c and returns the snapshot's count and sequence.
func counterAt(tb testing.TB, c *wsClient) (int, uint64) {
	tb.Helper()
	c.resync()
	snap := c.nextOf(transport.TypeSnapshot)
	m, err := counterSerialiser.DecodeModel(snap.State, transport.FormatJSON)
	if err != nil {
		tb.Fatal(err)
	}
	return m.Count, snap.Sequence
}

// checkGapFree checks that the acknowledgements and server messages a client
// got follow each other without gap (a snapshot may replace them).
func checkGapFree(tb testing.TB, frames []transport.Frame) uint64 {
	tb.Helper()
	var last uint64
	for i, f := range frames {
		switch f.Type {
		case transport.TypeAcknowledge, transport.TypeServerMessage:
			if f.Sequence != last+1 {
				tb.Fatalf("frame %d: %v %d after %d", i, f.Type, f.Sequence, last)
			}
			last = f.Sequence
		case transport.TypeSnapshot:
			if f.Sequence < last {
				tb.Fatalf("frame %d: snapshot %d after %d", i, f.Sequence, last)
			}
			last = f.Sequence
		}
	}
	return last
}

// lastAck returns the id of the newest acknowledgement among frames (an
// acknowledgement of id N also acknowledges every earlier id).
func lastAck(frames []transport.Frame) uint64 {
	var id uint64
	for _, f := range frames {
		if f.Type == transport.TypeAcknowledge && f.ID > id {
			id = f.ID
		}
	}
	return id
}
