package tests

import (
	"bytes"
	"fmt"
	"net/http"
	"sync"
	"testing"

	"github.com/gorilla/websocket"

	"github.com/lily-go/lily/demo/counter"
	"github.com/lily-go/lily/internal/testutil"
	"github.com/lily-go/lily/transport"
)

var counterSerialiser = transport.Automatic[counter.Counter, counter.Msg](counter.Variants...)

func sendCounter(tb testing.TB, c *testutil.WSClient, msg counter.Msg, id uint64) {
	tb.Helper()
	payload, err := counterSerialiser.EncodeMessage(msg, transport.FormatJSON)
	if err != nil {
		tb.Fatal(err)
	}
	c.WriteFrame(transport.Frame{Type: transport.TypeClientMessage, Payload: payload, ID: id}, transport.FormatJSON)
}

func countOf(tb testing.TB, c *testutil.WSClient) (int, uint64) {
	tb.Helper()
	snap := c.Snapshot()
	m, err := counterSerialiser.DecodeModel(snap.State, transport.FormatJSON)
	if err != nil {
		tb.Fatal(err)
	}
	return m.Count, snap.Sequence
}

func TestLilydClientsConverge(t *testing.T) {
	node := startLilyd(t, freeAddr(t))
	t.Run("20 clients on one store", func(t *testing.T) {
		const clients, each = 20, 50
		cs := make([]*testutil.WSClient, clients)
		for i := range cs {
			cs[i] = testutil.DialWS(t, node.url("counter", "one", fmt.Sprint("c", i)), nil)
		}
		var wg sync.WaitGroup
		for _, c := range cs {
			wg.Go(func() {
				for id := uint64(1); id <= each; id++ {
					sendCounter(t, c, counter.Increment{}, id)
				}
			})
		}
		wg.Wait()
		for i, c := range cs {
			testutil.Eventually(t, func() bool { return testutil.CheckGapFree(t, c.Frames()) == clients*each }, "client %d fell short", i)
			if count, seq := countOf(t, c); count != clients*each || seq != clients*each {
				t.Fatalf("client %d: count %d at %d", i, count, seq)
			}
		}
	})
	t.Run("100 stores with 5 clients each", func(t *testing.T) {
		var wg sync.WaitGroup
		for s := range 100 {
			wg.Go(func() {
				cs := make([]*testutil.WSClient, 5)
				for i := range cs {
					cs[i] = testutil.DialWS(t, node.url("counter", fmt.Sprint("many-", s), fmt.Sprint("c", i)), nil)
				}
				for i, c := range cs {
					sendCounter(t, c, counter.Add{N: i + 1}, 1)
				}
				for _, c := range cs {
					testutil.Eventually(t, func() bool { return testutil.CheckGapFree(t, c.Frames()) == 5 }, "store %d fell short", s)
					if count, _ := countOf(t, c); count != 15 {
						t.Errorf("store %d: count %d, want 15", s, count)
					}
				}
			})
		}
		wg.Wait()
	})
}

func TestLilydResyncGivesTheCurrentSnapshot(t *testing.T) {
	node := startLilyd(t, freeAddr(t))
	a := testutil.DialWS(t, node.url("counter", "snap", "a"), nil)
	for id := uint64(1); id <= 7; id++ {
		sendCounter(t, a, counter.Increment{}, id)
	}
	a.NextOf(transport.TypeAcknowledge)
	late := testutil.DialWS(t, node.url("counter", "snap", "late"), nil)
	testutil.Eventually(t, func() bool {
		count, seq := countOf(t, late)
		return count == 7 && seq == 7
	}, "a late client's snapshot is not the current model")
}

func TestLilydBadInput(t *testing.T) {
	node := startLilyd(t, freeAddr(t), "-read-limit", "1048576")
	cases := []struct {
		name string
		data []byte
		code transport.ErrorCode
	}{
		{"garbage bytes", []byte{0xc1, 0x00, 0xff, 'x'}, transport.CodeBadFrame},
		{"json of the wrong shape", []byte(`{"type":"resync","after_sequence":"yesterday"}`), transport.CodeBadFrame},
		{"unknown frame type", []byte(`{"type":"delete_everything"}`), transport.CodeBadFrame},
		{"payload of an unknown constructor", []byte(`{"type":"client_message","payload":{"_":"Multiply","0":2}}`), transport.CodeBadPayload},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := testutil.DialWS(t, node.url("counter", fmt.Sprint("bad-", i), "a"), nil)
			c.Write(tc.data)
			if f := c.Next(); f.Type != transport.TypeError || f.Code != tc.code {
				t.Fatalf("got %+v, want error %q", f, tc.code)
			}
			sendCounter(t, c, counter.Increment{}, 1)
			if ack := c.NextOf(transport.TypeAcknowledge); ack.Sequence != 1 {
				t.Fatalf("the next message got sequence %d, want 1: bad input used a sequence", ack.Sequence)
			}
		})
	}
	t.Run("2 MiB frame", func(t *testing.T) {
		c := testutil.DialWS(t, node.url("counter", "big", "a"), nil)
		_ = c.Conn.WriteMessage(websocket.TextMessage, bytes.Repeat([]byte("x"), 2<<20))
		if err := c.Closed(); !websocket.IsCloseError(err, websocket.CloseMessageTooBig) {
			t.Fatalf("ended with %v, want 1009", err)
		}
	})
	t.Run("unknown kind", func(t *testing.T) {
		_, resp, _ := websocket.DefaultDialer.Dial(node.url("spreadsheet", "x", "a"), nil)
		if resp == nil || resp.StatusCode != http.StatusNotFound {
			t.Fatalf("got %v, want 404", resp)
		}
	})
	t.Run("disallowed origin", func(t *testing.T) {
		_, resp, _ := websocket.DefaultDialer.Dial(node.url("counter", "x", "a"), http.Header{"Origin": {"https://evil.example"}})
		if resp == nil || resp.StatusCode != http.StatusForbidden {
			t.Fatalf("got %v, want 403", resp)
		}
	})
}

func TestLilydGracefulShutdownSends1001(t *testing.T) {
	node := startLilyd(t, freeAddr(t))
	c := testutil.DialWS(t, node.url("counter", "bye", "a"), nil)
	sendCounter(t, c, counter.Increment{}, 1)
	c.NextOf(transport.TypeAcknowledge)
	node.stop()
	if err := c.Closed(); !websocket.IsCloseError(err, websocket.CloseGoingAway) {
		t.Fatalf("ended with %v, want 1001", err)
	}
	if node.err != nil {
		t.Fatalf("lilyd did not exit cleanly on SIGTERM: %v", node.err)
	}
}
