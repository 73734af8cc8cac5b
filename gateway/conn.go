package gateway

import (
	"errors"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// errClosed is what send returns once the connection is closed.
var errClosed = errors.New("gateway: connection closed")

// closeWriteTimeout bounds the write of a close frame.
const closeWriteTimeout = time.Second

// conn is one client's WebSocket. Its handler goroutine reads; frames for
// the client are written by whoever calls send (the client's actor in the
// store), control frames by the ping timer and the reader. Every write holds
// writeMu and is one system call on the socket, so frames never interleave.
// An idle connection owns no goroutine but its reader and no buffer but
// gorilla's read buffer.
type conn struct {
	ws       *websocket.Conn
	nc       net.Conn
	cfg      *Config // shared by every connection of the gateway
	store    string  // kind/name, for logs
	clientID string
	lastRead atomic.Int64 // unix nanoseconds of the last frame from the client
	ping     *time.Timer

	writeMu sync.Mutex
	// guarded by writeMu
	closed  bool
	headers []byte
	bufs    net.Buffers
}

func newConn(ws *websocket.Conn, cfg *Config, store, clientID string) *conn {
	c := &conn{ws: ws, nc: ws.NetConn(), cfg: cfg, store: store, clientID: clientID}
	if tcp, ok := c.nc.(*net.TCPConn); ok && cfg.SocketSendBuffer > 0 {
		if err := tcp.SetWriteBuffer(cfg.SocketSendBuffer); err != nil {
			c.logger().Warn("cannot set the socket send buffer", slog.Any("error", err))
		}
	}
	c.lastRead.Store(time.Now().UnixNano())
	ws.SetReadLimit(cfg.ReadLimit)
	ws.SetPingHandler(func(data string) error {
		c.lastRead.Store(time.Now().UnixNano())
		c.writeControl(websocket.PongMessage, []byte(data))
		return nil
	})
	ws.SetPongHandler(func(string) error {
		c.lastRead.Store(time.Now().UnixNano())
		return nil
	})
	ws.SetCloseHandler(func(code int, _ string) error {
		if code == websocket.CloseNoStatusReceived {
			code = websocket.CloseNormalClosure
		}
		c.closeWith(code, "")
		return nil
	})
	c.ping = time.AfterFunc(cfg.PingInterval, c.keepAlive)
	return c
}

// readLoop hands every frame from the client to incoming until the
// connection ends.
func (c *conn) readLoop(incoming func([]byte)) {
	metrics := c.cfg.Metrics
	for {
		_, data, err := c.ws.ReadMessage()
		if err != nil {
			if errors.Is(err, websocket.ErrReadLimit) {
				// gorilla has sent the close frame (1009).
				c.logger().Info("frame over the size limit; closing", slog.Int64("limit", c.cfg.ReadLimit))
				c.closeSocket(websocket.CloseMessageTooBig)
			} else {
				c.closeWith(websocket.CloseNormalClosure, "")
			}
			return
		}
		c.lastRead.Store(time.Now().UnixNano())
		metrics.framesIn.Inc()
		metrics.bytesIn.Add(float64(len(data)))
		incoming(data)
	}
}

// send writes frames to the socket in one system call (more only when the
// socket takes them in parts). It blocks while the socket accepts data; a
// socket that accepts nothing for the write timeout is closed with 1013.
// It is the Sink of the client's actor.
func (c *conn) send(frames [][]byte) error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	if c.closed {
		return errClosed
	}
	if frames == nil {
		// The store let the connection go (it restarts, stopped, cannot
		// serve, or cut the client off): the client reconnects and resyncs.
		c.closeLocked(websocket.CloseServiceRestart, "store restarting")
		return nil
	}
	if need := len(frames) * maxHeaderLen; cap(c.headers) < need {
		c.headers = make([]byte, 0, need)
	}
	headers, bufs := c.headers[:0], c.bufs[:0]
	size := 0
	for _, f := range frames {
		start := len(headers)
		headers = appendHeader(headers, opcodeFor(f), len(f))
		bufs = append(bufs, headers[start:], f)
		size += len(f)
	}
	err := c.writeLocked(bufs)
	clear(bufs)
	// Keep small buffers for the next batch; let large ones go.
	if cap(bufs) <= 256 {
		c.headers, c.bufs = headers[:0], bufs[:0]
	} else {
		c.headers, c.bufs = nil, nil
	}
	if err != nil {
		c.failLocked(err)
		return err
	}
	c.cfg.Metrics.framesOut.Add(float64(len(frames)))
	c.cfg.Metrics.bytesOut.Add(float64(size))
	return nil
}

// writeLocked writes bufs, giving the socket a fresh write timeout whenever
// it made progress. Caller holds writeMu.
func (c *conn) writeLocked(bufs net.Buffers) error {
	for len(bufs) > 0 {
		if err := c.nc.SetWriteDeadline(time.Now().Add(c.cfg.WriteTimeout)); err != nil {
			return err
		}
		n, err := bufs.WriteTo(c.nc) // consumes what it wrote
		if err != nil {
			var ne net.Error
			if n > 0 && errors.As(err, &ne) && ne.Timeout() {
				continue // slow, not stuck
			}
			return err
		}
	}
	return nil
}

// writeControl writes one control frame (ping, pong).
func (c *conn) writeControl(opcode int, payload []byte) {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	if c.closed {
		return
	}
	frame := appendHeader(make([]byte, 0, maxHeaderLen+len(payload)), opcode, len(payload))
	frame = append(frame, payload...)
	if err := c.writeLocked(net.Buffers{frame}); err != nil {
		c.failLocked(err)
	}
}

// failLocked closes the connection after a failed write: with 1013 when the
// socket accepted nothing for the write timeout (the client will reconnect
// and resync), without a close frame when the connection is broken.
func (c *conn) failLocked(err error) {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		c.logger().Info("client accepted nothing for the write timeout; closing", slog.Duration("timeout", c.cfg.WriteTimeout))
		c.closeLocked(websocket.CloseTryAgainLater, "write timeout")
		return
	}
	c.closeLocked(websocket.CloseAbnormalClosure, "")
}

// keepAlive runs on the ping timer: it closes a connection that has been
// silent for two intervals, and pings the others.
func (c *conn) keepAlive() {
	silent := time.Since(time.Unix(0, c.lastRead.Load()))
	if silent > 2*c.cfg.PingInterval {
		// A peer that answers no ping reads no close frame either.
		c.logger().Info("client silent for two ping intervals; dropping it", slog.Duration("silent", silent))
		c.closeSocket(websocket.CloseAbnormalClosure)
		return
	}
	c.writeControl(websocket.PingMessage, nil)
	c.writeMu.Lock()
	if !c.closed {
		c.ping.Reset(c.cfg.PingInterval)
	}
	c.writeMu.Unlock()
}

// closeWith sends a close frame with code and reason, then closes the
// socket. Later writes fail with errClosed.
func (c *conn) closeWith(code int, reason string) {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	c.closeLocked(code, reason)
}

func (c *conn) closeLocked(code int, reason string) {
	if c.closed {
		return
	}
	if code != websocket.CloseAbnormalClosure {
		payload := websocket.FormatCloseMessage(code, reason)
		frame := appendHeader(make([]byte, 0, maxHeaderLen+len(payload)), websocket.CloseMessage, len(payload))
		frame = append(frame, payload...)
		_ = c.nc.SetWriteDeadline(time.Now().Add(closeWriteTimeout))
		_, _ = c.nc.Write(frame) // best effort: the peer may be gone
	}
	c.closeSocketLocked(code)
}

// closeSocket closes the socket without a close frame (one was sent).
func (c *conn) closeSocket(code int) {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	if !c.closed {
		c.closeSocketLocked(code)
	}
}

func (c *conn) closeSocketLocked(code int) {
	c.closed = true
	c.ping.Stop()
	_ = c.nc.Close()
	c.headers, c.bufs = nil, nil
	c.cfg.Metrics.closes.WithLabelValues(strconv.Itoa(code)).Inc()
}

// logger returns the connection's logger. It is made when needed: an idle
// connection keeps no logger of its own.
func (c *conn) logger() *slog.Logger {
	return c.cfg.Logger.With(slog.String("store", c.store), slog.String("client_id", c.clientID))
}
