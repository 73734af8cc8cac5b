package client_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/goleak"

	"github.com/lily-go/lily/client"
	"github.com/lily-go/lily/demo/counter"
	"github.com/lily-go/lily/gateway"
	"github.com/lily-go/lily/internal/testutil"
	"github.com/lily-go/lily/transport"
)

// Clients of the HTTP fallback, in both formats, converge with WebSocket
// clients on one store.
func TestSSEClientsConvergeWithWebSocketClients(t *testing.T) {
	reg := newRegistry(t)
	n := startNode(t, reg, nil)
	url := storeURL(n.addr(), "counter", "sse")
	clients := []*client.Client[counter.Counter, counter.Msg]{
		connectCounter(t, url, client.Options{Transport: client.TransportSSE}),
		connectCounter(t, url, client.Options{Transport: client.TransportSSE, Format: transport.FormatMsgPack}),
		connectCounter(t, url, client.Options{}),
	}
	for i := range 10 {
		for j, c := range clients {
			send(t, c, counter.Add{N: i + j})
		}
	}
	for _, c := range clients {
		flush(t, c)
	}
	const want = 3*45 + 10*3
	for _, c := range clients {
		waitCount(t, c, want)
		if _, seq := c.Confirmed(); seq != 30 {
			t.Fatalf("client %s: confirmed sequence %d, want 30", c.ClientID(), seq)
		}
	}
}

// A POST whose answer is lost with the connection is resent with its id on
// the next connection, and applied once.
func TestSSELostAnswerIsAppliedOnce(t *testing.T) {
	reg := newRegistry(t)
	n := startNode(t, reg, nil)
	proxy := testutil.NewProxy(t, n.addr())
	posts := &countingTransport{next: http.DefaultTransport}
	a := connectCounter(t, storeURL(proxy.Addr(), "counter", "sse-lost"), client.Options{Transport: client.TransportSSE, HTTPClient: &http.Client{Transport: posts}})
	b := connectCounter(t, storeURL(n.addr(), "counter", "sse-lost"), client.Options{})
	send(t, a, counter.Increment{})
	flush(t, a)
	waitCount(t, b, 1)
	// The acknowledgement comes on the event stream; the POST's own answer
	// on its connection. POSTs go one at a time: drop the answers only
	// once the first POST has its answer, or the next one is never sent.
	testutil.Eventually(t, func() bool { return posts.inFlight.Load() == 0 }, "the first POST got no answer")

	proxy.DropDownstream()
	send(t, a, counter.Add{N: 10})
	waitCount(t, b, 11) // the server applied it; neither the POST's answer nor the acknowledgement arrive
	accepted := proxy.Accepted()
	proxy.CutAll()
	proxy.RestoreDownstream()

	waitCount(t, a, 11)
	flush(t, a)
	if proxy.Accepted() <= accepted {
		t.Fatal("the client did not reconnect through the proxy")
	}
	if model, seq := a.Confirmed(); model.Count != 11 || seq != 2 {
		t.Fatalf("client: confirmed %+v at seq %d, want 11 at seq 2 (applied once)", model, seq)
	}
	if model, seq := b.Confirmed(); model.Count != 11 || seq != 2 {
		t.Fatalf("server: %+v at seq %d, want 11 at seq 2", model, seq)
	}
}

// blockWebSockets answers every WebSocket upgrade with status, as a proxy
// that blocks WebSockets would, and passes the rest to next.
func blockWebSockets(next http.Handler, status int, blocked *atomic.Int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if websocket.IsWebSocketUpgrade(r) {
			blocked.Add(1)
			http.Error(w, "websockets blocked", status)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// TransportAuto falls back to the HTTP fallback when WebSockets keep
// failing, or at once when the upgrade is refused for good.
func TestAutoFallsBackToSSE(t *testing.T) {
	cases := []struct {
		name          string
		status        int
		fallbackAfter int
		wantAttempts  int64
	}{
		{"after failed attempts", http.StatusBadGateway, 3, 3},
		{"at once when refused", http.StatusForbidden, 3, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			reg := newRegistry(t)
			gw, err := gateway.New(reg, gateway.Config{})
			if err != nil {
				t.Fatal(err)
			}
			var blocked atomic.Int64
			srv := httptest.NewServer(blockWebSockets(gw, tc.status, &blocked))
			t.Cleanup(func() {
				_ = gw.Shutdown(context.Background())
				srv.Close()
			})
			url := storeURL(srv.Listener.Addr().String(), "counter", "auto")
			c := connectCounter(t, url, client.Options{Transport: client.TransportAuto, FallbackAfter: tc.fallbackAfter})
			send(t, c, counter.Increment{}, counter.Add{N: 2})
			flush(t, c)
			waitCount(t, c, 3)
			if got := blocked.Load(); got != tc.wantAttempts {
				t.Fatalf("%d WebSocket attempts, want %d", got, tc.wantAttempts)
			}
			observer := connectCounter(t, url, client.Options{Transport: client.TransportSSE})
			waitCount(t, observer, 3)
		})
	}
}

// The HTTP fallback gives up on a refusal for good, as a WebSocket does.
func TestSSEUnknownKindGivesUp(t *testing.T) {
	reg := newRegistry(t)
	n := startNode(t, reg, nil)
	ctx, cancel := context.WithTimeout(context.Background(), testutil.DefaultWait)
	defer cancel()
	_, err := client.Connect(ctx, storeURL(n.addr(), "nope", "x"), counter.Store(), counterSerialiser(),
		client.Options{Transport: client.TransportSSE, Backoff: fast})
	var he *client.HandshakeError
	if !errors.Is(err, client.ErrUnknownStore) || !errors.As(err, &he) || he.StatusCode != http.StatusNotFound {
		t.Fatalf("connect: %v, want a 404 HandshakeError wrapping ErrUnknownStore", err)
	}
}

// A node that shuts down ends the event stream; the client keeps editing
// and flushes on a new node at the same address.
func TestSSEReconnectsToANewNode(t *testing.T) {
	reg := newRegistry(t)
	n := startNode(t, reg, nil)
	addr := n.addr()
	c := connectCounter(t, storeURL(addr, "counter", "sse-restart"), client.Options{Transport: client.TransportSSE})
	send(t, c, counter.Increment{})
	flush(t, c)
	n.stop()
	testutil.Eventually(t, func() bool { return c.State() == client.Reconnecting }, "state %v, want reconnecting", c.State())
	send(t, c, counter.Add{N: 5})
	startNode(t, newRegistry(t), listenAgain(t, addr)) // a new node: its stores start empty
	flush(t, c)
	waitCount(t, c, 5)
	if _, seq := c.Confirmed(); seq != 1 {
		t.Fatalf("confirmed sequence %d on the new node, want 1", seq)
	}
}

func TestSSECloseLeavesNoGoroutine(t *testing.T) {
	reg := newRegistry(t)
	n := startNode(t, reg, nil)
	url := storeURL(n.addr(), "counter", "sse-close")
	warm := connectCounter(t, url, client.Options{Transport: client.TransportSSE})
	if err := warm.Close(); err != nil {
		t.Fatal(err)
	}
	noClientGoroutines(t)
	ignore := goleak.IgnoreCurrent()
	c := connectCounter(t, url, client.Options{Transport: client.TransportSSE})
	send(t, c, counter.Increment{})
	flush(t, c)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	noClientGoroutines(t)
	goleak.VerifyNone(t, ignore)
}

func TestTransportOptions(t *testing.T) {
	cases := []struct {
		name string
		opts client.Options
		want string
	}{
		{"unknown transport", client.Options{Transport: client.Transport(9)}, "Transport"},
		{"negative fallback", client.Options{Transport: client.TransportAuto, FallbackAfter: -1}, "FallbackAfter"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			_, err := client.Connect(ctx, "ws://127.0.0.1:1/ws/counter/x", counter.Store(), counterSerialiser(), tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("connect: %v, want an error about %s", err, tc.want)
			}
		})
	}
	for tr, want := range map[client.Transport]string{client.TransportWebSocket: "websocket", client.TransportSSE: "sse", client.TransportAuto: "auto"} {
		if tr.String() != want {
			t.Errorf("%d.String() = %q, want %q", tr, tr.String(), want)
		}
	}
}

// countingTransport counts the POSTs waiting for their answer.
type countingTransport struct {
	next     http.RoundTripper
	inFlight atomic.Int32
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method != http.MethodPost {
		return c.next.RoundTrip(r)
	}
	c.inFlight.Add(1)
	defer c.inFlight.Add(-1)
	return c.next.RoundTrip(r)
}
