package client

import (
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/gorilla/websocket"

	"github.com/lily-go/lily/transport"
)

// closeGrace bounds how long Close waits for the server to answer its close
// frame before it drops the socket.
const closeGrace = time.Second

// conn is one connection: a WebSocket, or an event stream and its POSTs
// (sse.go, where ws is nil). The manager goroutine reads it; its
// writer goroutine writes the data frames (gorilla allows one concurrent
// writer); control frames (ping, pong, close) go through WriteControl,
// which gorilla allows from any goroutine.
type conn struct {
	ws   *websocket.Conn
	kick chan struct{} // capacity 1: there may be frames to write
	done chan struct{} // closed when the connection is over

	// guarded by Client.mu
	sentID      uint64 // the highest message id written on this connection
	resync      bool   // a resync frame is to be written
	resyncDelta bool   // ... asking for a delta
	synced      bool   // a resync of this connection has been answered
}

// kickWriterLocked wakes the writer of the open connection, if any.
func (c *Client[M, Msg]) kickWriterLocked() {
	if c.conn == nil {
		return
	}
	select {
	case c.conn.kick <- struct{}{}:
	default:
	}
}

// run is the manager goroutine: it dials, serves each connection (reading
// it on this goroutine) and waits out the backoff delays, until Close or a
// permanent refusal; then it shuts the client down.
func (c *Client[M, Msg]) run() {
	defer c.shutdown()
	attempt := 0
	var via transportState
	for {
		connected, synced, err := c.connectOnce(&via) // over a WebSocket or the HTTP fallback (sse.go)
		if synced {
			attempt = 0
		}
		if c.ctx.Err() != nil {
			return // Close
		}
		if permanent(err) {
			c.logger.Warn("the server refused the client for good; giving up", slog.Any("error", err))
			c.mu.Lock()
			c.err = err
			c.closing = true
			c.mu.Unlock()
			return
		}
		delay := c.opts.Backoff.Delay(attempt, rand.Float64())
		attempt++
		if connected {
			c.logger.Info("connection lost; reconnecting", slog.Any("error", err), slog.Duration("delay", delay))
		} else {
			c.logger.Debug("cannot connect; retrying", slog.Any("error", err), slog.Duration("delay", delay))
		}
		c.mu.Lock()
		c.lastErr = err
		if c.state != Connecting {
			c.setStateLocked(Reconnecting, err)
		}
		c.mu.Unlock()
		timer := time.NewTimer(delay)
		select {
		case <-c.ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		}
	}
}

// permanent reports whether err means that reconnecting cannot help.
func permanent(err error) bool {
	var he *HandshakeError
	if errors.As(err, &he) {
		return he.permanent()
	}
	return errors.Is(err, ErrUnknownStore)
}

// dial opens a WebSocket to the store.
func (c *Client[M, Msg]) dial() (*websocket.Conn, error) {
	ws, resp, err := c.opts.Dialer.DialContext(c.ctx, c.url, c.opts.Header)
	if err != nil {
		if resp != nil && errors.Is(err, websocket.ErrBadHandshake) {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
			_ = resp.Body.Close()
			return nil, &HandshakeError{StatusCode: resp.StatusCode, Body: strings.TrimSpace(string(body))}
		}
		return nil, err
	}
	return ws, nil
}

// serve runs one connection until it ends, and reports whether the
// resync sent on it was answered.
func (c *Client[M, Msg]) serve(ws *websocket.Conn) (synced bool, err error) {
	cn := &conn{ws: ws, kick: make(chan struct{}, 1), done: make(chan struct{})}
	if !c.attach(cn) {
		_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(closeGrace))
		_ = ws.Close()
		return false, nil
	}
	c.logger.Debug("connected", slog.String("url", c.url))

	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		c.writeLoop(cn)
	}()
	err = c.readLoop(cn)
	close(cn.done)
	_ = ws.Close()
	<-writerDone

	synced = c.detach(cn)
	var ce *websocket.CloseError
	if errors.As(err, &ce) && ce.Code == CloseUnknownStore {
		err = errors.Join(ErrUnknownStore, err)
	}
	return synced, err
}

// attach makes cn the open connection, with a resync to write after every
// pending message. It fails once the client is closing.
func (c *Client[M, Msg]) attach(cn *conn) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return false
	}
	c.conn = cn
	c.syncing = false
	c.requestResyncLocked(true) // written after every pending message
	c.setStateLocked(Connected, nil)
	return true
}

// detach forgets the connection cn once it is over, and reports whether
// the resync sent on it was answered.
func (c *Client[M, Msg]) detach(cn *conn) (synced bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.conn = nil
	c.syncing = false
	return cn.synced
}

// readLoop reads and handles frames until the connection fails.
func (c *Client[M, Msg]) readLoop(cn *conn) error {
	ws := cn.ws
	ping := c.opts.PingInterval
	alive := func() {
		if ping > 0 && c.ctx.Err() == nil {
			_ = ws.SetReadDeadline(time.Now().Add(2 * ping))
		}
	}
	ws.SetPongHandler(func(string) error {
		alive()
		return nil
	})
	ws.SetPingHandler(func(data string) error {
		alive()
		err := ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(c.opts.WriteTimeout))
		if err == nil || errors.Is(err, websocket.ErrCloseSent) {
			return nil
		}
		var ne interface{ Timeout() bool }
		if errors.As(err, &ne) && ne.Timeout() {
			return nil
		}
		return err
	})
	for {
		alive()
		_, data, err := ws.ReadMessage()
		if err != nil {
			return err
		}
		c.handle(cn, data)
	}
}

// writeLoop writes the connection's frames: the pending messages in id
// order, resync requests, pings, and the close frame when the client
// closes.
func (c *Client[M, Msg]) writeLoop(cn *conn) {
	ws := cn.ws
	var tick <-chan time.Time
	if c.opts.PingInterval > 0 {
		t := time.NewTicker(c.opts.PingInterval)
		defer t.Stop()
		tick = t.C
	}
	messageType := websocket.TextMessage
	if c.opts.Format == transport.FormatMsgPack {
		messageType = websocket.BinaryMessage
	}
	var frames [][]byte
	for {
		select {
		case <-cn.done:
			return
		case <-c.ctx.Done():
			// Close: say goodbye, and give the server a moment to answer.
			_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(closeGrace))
			t := time.NewTimer(closeGrace)
			select {
			case <-cn.done:
			case <-t.C:
				_ = ws.Close()
			}
			t.Stop()
			return
		case <-tick:
			if err := ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(c.opts.WriteTimeout)); err != nil {
				c.logger.Info("cannot ping the server; dropping the connection", slog.Any("error", err))
				_ = ws.Close()
				return
			}
		case <-cn.kick:
			frames = c.collect(cn, frames[:0])
			for i, f := range frames {
				_ = ws.SetWriteDeadline(time.Now().Add(c.opts.WriteTimeout))
				err := ws.WriteMessage(messageType, f)
				frames[i] = nil
				if err != nil {
					c.logger.Info("cannot write to the server; dropping the connection", slog.Any("error", err))
					_ = ws.Close()
					return
				}
			}
		}
	}
}

// collect returns the frames to write on cn: the pending messages it has
// not carried yet (those that are durable), then a resync if one was asked
// for, with the confirmed sequence of now.
func (c *Client[M, Msg]) collect(cn *conn, dst [][]byte) [][]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn != cn {
		return dst
	}
	for _, p := range c.pending {
		if p.id > c.durableID {
			break
		}
		if p.id > cn.sentID {
			dst = append(dst, p.frame)
			cn.sentID = p.id
		}
	}
	if cn.resync {
		cn.resync = false
		f := transport.Frame{Type: transport.TypeResync, AfterSequence: c.confSeq}
		if cn.resyncDelta && c.epoch != "" {
			f.Delta, f.Epoch = true, c.epoch
		}
		data, err := transport.Encode(f, c.opts.Format)
		if err != nil {
			c.logger.Error("cannot encode a resync frame", slog.Any("error", err))
		} else {
			dst = append(dst, data)
		}
	}
	return dst
}

// requestResyncLocked asks for the state of the store, unless an answer
// is already due (it will cover everything received before it).
func (c *Client[M, Msg]) requestResyncLocked(delta bool) {
	if c.syncing || c.conn == nil {
		return // a new connection always resyncs
	}
	c.syncing = true
	c.conn.resync = true
	c.conn.resyncDelta = delta
	c.kickWriterLocked()
}
