package testutil

import (
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/lily-go/lily/transport"
)

// WSClient is a raw PROTOCOL.md client for tests: it writes frames as given
// and keeps every frame the server sends, decoded.
type WSClient struct {
	tb   testing.TB
	Conn *websocket.Conn

	*FrameLog
	typesMu sync.Mutex
	types   []int      // guarded by typesMu; WebSocket message type of each frame
	readErr chan error // the reader's final error
}

// DialWS connects to url (ws://…) and starts reading. It fails the test if
// the connection is refused; the connection is closed when the test ends.
func DialWS(tb testing.TB, url string, header http.Header) *WSClient {
	tb.Helper()
	conn, resp, err := websocket.DefaultDialer.Dial(url, header)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		tb.Fatalf("dial %s: %v (HTTP %d)", url, err, status)
	}
	c := &WSClient{tb: tb, Conn: conn, FrameLog: NewFrameLog(tb), readErr: make(chan error, 1)}
	go c.read()
	tb.Cleanup(func() { _ = conn.Close() })
	return c
}

func (c *WSClient) read() {
	for {
		mt, data, err := c.Conn.ReadMessage()
		if err != nil {
			c.readErr <- err
			return
		}
		f, derr := transport.Decode(data, transport.DetectFormat(data))
		if derr != nil {
			c.tb.Errorf("undecodable frame from the server %q: %v", data, derr)
			continue
		}
		c.typesMu.Lock()
		c.types = append(c.types, mt)
		c.typesMu.Unlock()
		c.Add(f)
	}
}

// Write sends one raw frame: a text frame when it is JSON, binary otherwise.
func (c *WSClient) Write(data []byte) {
	c.tb.Helper()
	mt := websocket.TextMessage
	if transport.DetectFormat(data) == transport.FormatMsgPack {
		mt = websocket.BinaryMessage
	}
	if err := c.Conn.WriteMessage(mt, data); err != nil {
		c.tb.Fatalf("write: %v", err)
	}
}

// WriteFrame encodes f in format and sends it.
func (c *WSClient) WriteFrame(f transport.Frame, format transport.Format) {
	c.tb.Helper()
	b, err := transport.Encode(f, format)
	if err != nil {
		c.tb.Fatal(err)
	}
	c.Write(b)
}

// MessageTypes returns the WebSocket message type of every frame so far.
func (c *WSClient) MessageTypes() []int {
	c.typesMu.Lock()
	defer c.typesMu.Unlock()
	return append([]int(nil), c.types...)
}

// Closed waits for the connection to end and returns the reader's error
// (a *websocket.CloseError when the server sent a close frame).
func (c *WSClient) Closed() error {
	c.tb.Helper()
	select {
	case err := <-c.readErr:
		return err
	case <-time.After(DefaultWait):
		c.tb.Fatal("the connection was not closed")
		return nil
	}
}

// Snapshot sends a resync and returns the snapshot that answers it.
func (c *WSClient) Snapshot() transport.Frame {
	c.tb.Helper()
	c.WriteFrame(transport.Frame{Type: transport.TypeResync}, transport.FormatJSON)
	return c.NextOf(transport.TypeSnapshot)
}

// CheckGapFree fails the test unless the acknowledgements and server
// messages among frames follow each other without gap from the first one on
// (a client sees the sequences from the moment it is attached; a snapshot
// may take the place of frames it missed), and returns the last sequence.
func CheckGapFree(tb testing.TB, frames []transport.Frame) uint64 {
	tb.Helper()
	var last uint64
	started := false
	for i, f := range frames {
		switch f.Type {
		case transport.TypeAcknowledge, transport.TypeServerMessage:
			if started && f.Sequence != last+1 {
				tb.Fatalf("frame %d: %v %d after %d", i, f.Type, f.Sequence, last)
			}
			last, started = f.Sequence, true
		case transport.TypeSnapshot:
			if f.Sequence < last {
				tb.Fatalf("frame %d: snapshot %d after %d", i, f.Sequence, last)
			}
			last, started = f.Sequence, true
		}
	}
	return last
}

// LastAck returns the id of the newest acknowledgement among frames (an
// acknowledgement of id N also acknowledges every earlier id).
func LastAck(frames []transport.Frame) uint64 {
	var id uint64
	for _, f := range frames {
		if f.Type == transport.TypeAcknowledge && f.ID > id {
			id = f.ID
		}
	}
	return id
}
