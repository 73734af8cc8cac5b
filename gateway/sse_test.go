package gateway_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lily-go/lily/clients/js"
	"github.com/lily-go/lily/demo/counter"
	"github.com/lily-go/lily/gateway"
	"github.com/lily-go/lily/internal/testutil"
	"github.com/lily-go/lily/server"
	"github.com/lily-go/lily/transport"
)

// dialSSE opens the event stream of path (with ?client_id=).
func dialSSE(tb testing.TB, n *node, path string, header http.Header) *testutil.SSEClient {
	tb.Helper()
	return testutil.DialSSE(tb, n.http.URL+path, header)
}

// message encodes a counter client_message with an id.
func message(tb testing.TB, msg counter.Msg, id uint64) []byte {
	tb.Helper()
	payload, err := counterSerialiser.EncodeMessage(msg, transport.FormatJSON)
	if err != nil {
		tb.Fatal(err)
	}
	return encode(tb, transport.Frame{Type: transport.TypeClientMessage, Payload: payload, ID: id}, transport.FormatJSON)
}

func countOf(tb testing.TB, snap transport.Frame) int {
	tb.Helper()
	m, err := counterSerialiser.DecodeModel(snap.State, transport.FormatJSON)
	if err != nil {
		tb.Fatal(err)
	}
	return m.Count
}

func TestEventStreamClientsConvergeWithWebSocketClients(t *testing.T) {
	n := startNode(t, gateway.Config{}, server.Config{})
	sse := dialSSE(t, n, "/ws/counter/mixed?client_id=sse", nil)
	ws := dial(t, n, "/ws/counter/mixed?client_id=ws", nil)
	const each = 40
	var wg sync.WaitGroup
	wg.Go(func() {
		for id := uint64(1); id <= each; id += 4 {
			// Batches of four frames per POST, one POST at a time.
			sse.WriteBatch(message(t, counter.Increment{}, id), message(t, counter.Increment{}, id+1),
				message(t, counter.Add{N: 1}, id+2), message(t, counter.Increment{}, id+3))
		}
	})
	wg.Go(func() {
		for id := uint64(1); id <= each; id++ {
			send(t, ws, counter.Increment{}, id)
		}
	})
	wg.Wait()
	const total = 2 * each
	testutil.Eventually(t, func() bool { return testutil.CheckGapFree(t, sse.Frames()) == total }, "the event stream did not reach sequence %d", total)
	testutil.Eventually(t, func() bool { return testutil.CheckGapFree(t, ws.Frames()) == total }, "the WebSocket did not reach sequence %d", total)
	if got := testutil.LastAck(sse.Frames()); got != each {
		t.Fatalf("event stream: last acknowledged id %d, want %d", got, each)
	}
	if count := countOf(t, sse.Snapshot()); count != total {
		t.Fatalf("count %d, want %d", count, total)
	}
}

// A POST's frames are applied in order, and POSTs one after the other keep
// their order.
func TestPostKeepsOrder(t *testing.T) {
	n := startNode(t, gateway.Config{}, server.Config{})
	c := dialSSE(t, n, "/ws/counter/order?client_id=a", nil)
	var batch [][]byte
	for id := uint64(1); id <= 30; id++ {
		batch = append(batch, message(t, counter.Add{N: int(id)}, id))
	}
	c.WriteBatch(batch[:20]...)
	for _, f := range batch[20:] {
		c.Write(f) // one frame per POST
	}
	for id := uint64(1); id <= 30; id++ {
		if ack := c.NextOf(transport.TypeAcknowledge); ack.ID != id || ack.Sequence != id {
			t.Fatalf("acknowledgement %+v, want id and sequence %d", ack, id)
		}
	}
}

// A POST the client could not see answered is sent again with the same
// ids: the store acknowledges them again and applies nothing twice.
func TestRetriedPostIsAppliedOnce(t *testing.T) {
	n := startNode(t, gateway.Config{}, server.Config{})
	c := dialSSE(t, n, "/ws/counter/retry?client_id=a", nil)
	batch := [][]byte{message(t, counter.Add{N: 5}, 1), message(t, counter.Add{N: 7}, 2)}
	c.WriteBatch(batch...)
	c.WriteBatch(batch...)
	c.WriteBatch(append(batch, message(t, counter.Increment{}, 3))...)
	// The store may apply a message only once its journal has it: wait for
	// the last acknowledgement before looking at the model.
	testutil.Eventually(t, func() bool { return testutil.LastAck(c.Frames()) == 3 }, "message 3 was not acknowledged")
	if count := countOf(t, c.Snapshot()); count != 13 {
		t.Fatalf("count %d, want 13: a resent message was applied twice", count)
	}
}

// Bad input gets the same error frame through POST as through a WebSocket.
func TestPostBadInputGetsTheSameErrorFrames(t *testing.T) {
	n := startNode(t, gateway.Config{}, server.Config{})
	cases := []struct {
		name string
		data []byte
		code transport.ErrorCode
		id   uint64
	}{
		{"garbage bytes", []byte("\xc1\xffgarbage"), transport.CodeBadFrame, 0},
		{"empty", []byte(""), transport.CodeBadFrame, 0},
		{"json of the wrong shape", []byte(`{"type":"client_message","payload":{"_":"Increment"},"id":-4}`), transport.CodeBadFrame, 0},
		{"not an object", []byte(`"hello"`), transport.CodeBadFrame, 0},
		{"broken array", []byte(`[{"type":"resync"`), transport.CodeBadFrame, 0},
		{"unknown frame type", []byte(`{"type":"subscribe","topic":"x"}`), transport.CodeBadFrame, 0},
		{"a server frame", []byte(`{"type":"snapshot","sequence":3,"state":{"_":"Counter","0":1}}`), transport.CodeBadFrame, 0},
		{"unknown constructor", []byte(`{"type":"client_message","payload":{"_":"Explode"},"id":7}`), transport.CodeBadPayload, 7},
		{"payload of the wrong shape", []byte(`{"type":"client_message","payload":{"_":"Add","0":"x"},"id":8}`), transport.CodeBadPayload, 8},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ws := dial(t, n, fmt.Sprintf("/ws/counter/bad-post-%d?client_id=ws", i), nil)
			sse := dialSSE(t, n, fmt.Sprintf("/ws/counter/bad-post-%d?client_id=sse", i), nil)
			ws.Write(tc.data)
			sse.Write(tc.data)
			want, got := ws.NextOf(transport.TypeError), sse.NextOf(transport.TypeError)
			if got.Code != tc.code || got.ID != tc.id {
				t.Fatalf("through POST: %+v, want code %q id %d", got, tc.code, tc.id)
			}
			if got.Code != want.Code || got.ID != want.ID || got.Reason != want.Reason {
				t.Fatalf("through POST: %+v; through a WebSocket: %+v", got, want)
			}
			// Still attached, nothing changed.
			sse.Write(message(t, counter.Increment{}, 9))
			if ack := sse.NextOf(transport.TypeAcknowledge); ack.Sequence != 1 || ack.ID != 9 {
				t.Fatalf("acknowledgement after bad input %+v, want sequence 1 id 9", ack)
			}
		})
	}
	t.Run("a bad frame in a batch", func(t *testing.T) {
		c := dialSSE(t, n, "/ws/counter/bad-batch?client_id=a", nil)
		c.Write([]byte(`[{"type":"client_message","payload":{"_":"Increment"},"id":1}, "hello", {"type":"client_message","payload":{"_":"Increment"},"id":2}]`))
		// An acknowledgement may wait for the store's journal, an error
		// frame does not: only the acknowledgements are in order.
		var acks []uint64
		errs := 0
		for len(acks) < 2 || errs < 1 {
			switch f := c.Next(); f.Type {
			case transport.TypeAcknowledge:
				acks = append(acks, f.ID)
			case transport.TypeError:
				errs++
				if f.Code != transport.CodeBadFrame {
					t.Fatalf("error frame %+v, want bad_frame", f)
				}
			default:
				t.Fatalf("unexpected frame %+v", f)
			}
		}
		if acks[0] != 1 || acks[1] != 2 || errs != 1 {
			t.Fatalf("acknowledged ids %v and %d errors, want [1 2] and 1", acks, errs)
		}
	})
}

// A client that POSTs MessagePack envelopes gets its answers as
// base64-encoded msgpack events.
func TestEventStreamMessagePack(t *testing.T) {
	n := startNode(t, gateway.Config{}, server.Config{})
	c := dialSSE(t, n, "/ws/counter/msgpack?client_id=a", nil)
	payload, _ := counterSerialiser.EncodeMessage(counter.Add{N: 4}, transport.FormatMsgPack)
	c.WriteFrame(transport.Frame{Type: transport.TypeClientMessage, Payload: payload, ID: 1}, transport.FormatMsgPack)
	if ack := c.NextOf(transport.TypeAcknowledge); ack.Sequence != 1 || ack.ID != 1 {
		t.Fatalf("acknowledgement %+v", ack)
	}
}

func TestHTTPFallbackRefusals(t *testing.T) {
	n := startNode(t, gateway.Config{
		ReadLimit:      256,
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
	dialSSE(t, n, "/ws/counter/x?client_id=open", good)
	small := message(t, counter.Increment{}, 1)
	cases := []struct {
		name   string
		path   string
		header http.Header
		body   []byte // nil: open an event stream; else POST it
		status int
	}{
		{"stream: unknown kind", "/ws/nope/x?client_id=a", good, nil, http.StatusNotFound},
		{"stream: bad store name", "/ws/counter/a%20b?client_id=a", good, nil, http.StatusBadRequest},
		{"stream: no client id", "/ws/counter/x", good, nil, http.StatusBadRequest},
		{"stream: bad client id", "/ws/counter/x?client_id=a%2Fb", good, nil, http.StatusBadRequest},
		{"stream: origin not allowed", "/ws/counter/x?client_id=a", with("Origin", "https://evil.example.com"), nil, http.StatusForbidden},
		{"stream: not authenticated", "/ws/counter/x?client_id=a", with("Authorization", "Bearer bad"), nil, http.StatusUnauthorized},
		{"stream: forbidden", "/ws/counter/x?client_id=a", with("Authorization", "Bearer banned"), nil, http.StatusForbidden},
		{"post: taken", "/ws/counter/x?client_id=open", good, small, http.StatusNoContent},
		{"post: no open stream", "/ws/counter/x?client_id=nobody", good, small, http.StatusConflict},
		{"post: stream of another store", "/ws/counter/y?client_id=open", good, small, http.StatusConflict},
		{"post: over the read limit", "/ws/counter/x?client_id=open", good, bytes.Repeat([]byte(" "), 257), http.StatusRequestEntityTooLarge},
		{"post: unknown kind", "/ws/nope/x?client_id=open", good, small, http.StatusNotFound},
		{"post: no client id", "/ws/counter/x", good, small, http.StatusBadRequest},
		{"post: origin not allowed", "/ws/counter/x?client_id=open", with("Origin", "https://evil.example.com"), small, http.StatusForbidden},
		{"post: not authenticated", "/ws/counter/x?client_id=open", with("Authorization", "Bearer bad"), small, http.StatusUnauthorized},
		{"post: forbidden", "/ws/counter/x?client_id=open", with("Authorization", "Bearer banned"), small, http.StatusForbidden},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var status int
			if tc.body == nil {
				resp, err := testutil.OpenSSE(context.Background(), n.http.URL+tc.path, tc.header)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				status = resp.StatusCode
			} else {
				var err error
				if status, err = testutil.Post(n.http.URL+tc.path, tc.header, tc.body); err != nil {
					t.Fatal(err)
				}
			}
			if status != tc.status {
				t.Fatalf("HTTP %d, want %d", status, tc.status)
			}
		})
	}
}

// A browser page of an allowed origin may read the stream and POST
// (CORS); others may not.
func TestHTTPFallbackCORS(t *testing.T) {
	n := startNode(t, gateway.Config{AllowedOrigins: []string{"https://app.example.com"}}, server.Config{})
	cases := []struct {
		name, origin string
		status       int
		allowOrigin  string
	}{
		{"allowed origin", "https://app.example.com", http.StatusNoContent, "https://app.example.com"},
		{"other origin", "https://evil.example.com", http.StatusForbidden, ""},
		{"no origin", "", http.StatusForbidden, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodOptions, n.http.URL+"/ws/counter/cors?client_id=a", nil)
			if tc.origin != "" {
				req.Header.Set("Origin", tc.origin)
			}
			req.Header.Set("Access-Control-Request-Method", "POST")
			req.Header.Set("Access-Control-Request-Headers", "content-type, authorization")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.status || resp.Header.Get("Access-Control-Allow-Origin") != tc.allowOrigin {
				t.Fatalf("preflight: HTTP %d, Allow-Origin %q; want %d, %q", resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"), tc.status, tc.allowOrigin)
			}
			if tc.status == http.StatusNoContent {
				if got := resp.Header.Get("Access-Control-Allow-Headers"); got != "content-type, authorization" {
					t.Fatalf("Allow-Headers %q", got)
				}
				if got := resp.Header.Get("Access-Control-Allow-Credentials"); got != "true" {
					t.Fatalf("Allow-Credentials %q", got)
				}
			}
		})
	}
	resp, err := testutil.OpenSSE(context.Background(), n.http.URL+"/ws/counter/cors?client_id=a", http.Header{"Origin": {"https://app.example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if got := resp.Header.Get("Access-Control-Allow-Origin"); resp.StatusCode != http.StatusOK || got != "https://app.example.com" {
		t.Fatalf("event stream: HTTP %d, Allow-Origin %q", resp.StatusCode, got)
	}
}

func TestEventStreamKeepAlive(t *testing.T) {
	n := startNode(t, gateway.Config{PingInterval: 10 * time.Millisecond}, server.Config{})
	c := dialSSE(t, n, "/ws/counter/ka?client_id=a", nil)
	testutil.Eventually(t, func() bool { return c.KeepAlives() >= 3 }, "no keepalive comments (%d)", c.KeepAlives())
}

// A newer stream of the same client takes over: the old one ends, POSTs
// reach the store through the new one.
func TestNewerEventStreamReplacesTheOlder(t *testing.T) {
	n := startNode(t, gateway.Config{}, server.Config{})
	old := dialSSE(t, n, "/ws/counter/replace?client_id=a", nil)
	old.Write(message(t, counter.Increment{}, 1))
	old.NextOf(transport.TypeAcknowledge)
	fresh := dialSSE(t, n, "/ws/counter/replace?client_id=a", nil)
	if err := old.Closed(); !errors.Is(err, io.EOF) {
		t.Fatalf("the old stream ended with %v, want EOF", err)
	}
	fresh.Write(message(t, counter.Increment{}, 2))
	if ack := fresh.NextOf(transport.TypeAcknowledge); ack.ID != 2 || ack.Sequence != 2 {
		t.Fatalf("acknowledgement %+v", ack)
	}
	if got := n.gw.Connections(); got != 1 {
		t.Fatalf("%d connections, want 1", got)
	}
}

func TestShutdownEndsEventStreams(t *testing.T) {
	n := startNode(t, gateway.Config{}, server.Config{})
	c := dialSSE(t, n, "/ws/counter/down?client_id=a", nil)
	dial(t, n, "/ws/counter/down?client_id=b", nil)
	testutil.Eventually(t, func() bool { return n.gw.Connections() == 2 }, "connections %d, want 2", n.gw.Connections())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.gw.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Closed(); !errors.Is(err, io.EOF) {
		t.Fatalf("the stream ended with %v, want EOF", err)
	}
	if status := c.Post(message(t, counter.Increment{}, 1)); status != http.StatusServiceUnavailable {
		t.Fatalf("a POST after shutdown: HTTP %d, want 503", status)
	}
	resp, err := testutil.OpenSSE(context.Background(), n.http.URL+"/ws/counter/down?client_id=a", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("a stream after shutdown: HTTP %d, want 503", resp.StatusCode)
	}
}

// A client that goes away is detached: the node counts it no more.
func TestClosedEventStreamIsDetached(t *testing.T) {
	n := startNode(t, gateway.Config{}, server.Config{})
	c := dialSSE(t, n, "/ws/counter/gone?client_id=a", nil)
	testutil.Eventually(t, func() bool { return n.gw.Connections() == 1 }, "connections %d, want 1", n.gw.Connections())
	c.Close()
	testutil.Eventually(t, func() bool { return n.gw.Connections() == 0 }, "connections %d after the client left, want 0", n.gw.Connections())
	if status := c.Post(message(t, counter.Increment{}, 1)); status != http.StatusConflict {
		t.Fatalf("a POST after the stream ended: HTTP %d, want 409", status)
	}
}

func TestServesTheBrowserClient(t *testing.T) {
	n := startNode(t, gateway.Config{}, server.Config{})
	resp, err := http.Get(n.http.URL + "/lily.js") // Go's client asks for gzip and unpacks it
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !bytes.Equal(body, js.Source) || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/javascript") {
		t.Fatalf("GET /lily.js: HTTP %d, %q, %d bytes", resp.StatusCode, resp.Header.Get("Content-Type"), len(body))
	}
}

// fakeResolver attaches every connection and keeps its send function.
type fakeResolver struct {
	mu    sync.Mutex
	sends []func([][]byte) error
}

func (f *fakeResolver) HasKind(string) bool { return true }

func (f *fakeResolver) Connect(_ context.Context, _, _, _ string, send func([][]byte) error) (func([]byte), func(), error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sends = append(f.sends, send)
	return func([]byte) {}, func() {}, nil
}

func (f *fakeResolver) send(i int) func([][]byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if i < len(f.sends) {
		return f.sends[i]
	}
	return nil
}

// A store that lets the connection go (nil frames) ends the event stream,
// as it closes a WebSocket with 1012: the client reconnects and resyncs.
func TestStoreLettingGoEndsTheEventStream(t *testing.T) {
	r := &fakeResolver{}
	gw, err := gateway.New(r, gateway.Config{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gw)
	t.Cleanup(srv.Close)
	c := testutil.DialSSE(t, srv.URL+"/ws/counter/x?client_id=a", nil)
	testutil.Eventually(t, func() bool { return r.send(0) != nil }, "the stream was not attached")
	if err := r.send(0)([][]byte{[]byte(`{"type":"push","payload":1}`)}); err != nil {
		t.Fatal(err)
	}
	if f := c.Next(); f.Type != transport.TypePush {
		t.Fatalf("got %+v, want the push", f)
	}
	if err := r.send(0)(nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Closed(); !errors.Is(err, io.EOF) {
		t.Fatalf("the stream ended with %v, want EOF", err)
	}
	if err := r.send(0)([][]byte{[]byte(`{"type":"push","payload":2}`)}); err == nil {
		t.Fatal("a send after the stream ended succeeded")
	}
}
