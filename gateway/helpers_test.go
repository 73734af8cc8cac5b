package gateway_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

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

func dial(tb testing.TB, n *node, path string, header http.Header) *testutil.WSClient {
	tb.Helper()
	return testutil.DialWS(tb, n.wsURL(path), header)
}

// send sends a counter message with an id.
func send(tb testing.TB, c *testutil.WSClient, msg counter.Msg, id uint64) {
	tb.Helper()
	payload, err := counterSerialiser.EncodeMessage(msg, transport.FormatJSON)
	if err != nil {
		tb.Fatal(err)
	}
	c.WriteFrame(transport.Frame{Type: transport.TypeClientMessage, Payload: payload, ID: id}, transport.FormatJSON)
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
func counterAt(tb testing.TB, c *testutil.WSClient) (int, uint64) {
	tb.Helper()
	snap := c.Snapshot()
	m, err := counterSerialiser.DecodeModel(snap.State, transport.FormatJSON)
	if err != nil {
		tb.Fatal(err)
	}
	return m.Count, snap.Sequence
}
