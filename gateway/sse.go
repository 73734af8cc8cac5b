package gateway

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// The HTTP fallback (PROTOCOL.md, "HTTP fallback") serves clients whose
// network blocks WebSockets on the same store address:
//
//	GET  /ws/{kind}/{name}?client_id=ID  (Accept: text/event-stream)  server frames, one SSE event each
//	POST /ws/{kind}/{name}?client_id=ID  one frame, or a JSON array of frames, for that stream's store
//
// The event stream is a connection like a WebSocket: it is attached through
// Resolver.Connect, so the store sees no difference. A POST hands its
// frames, in order, to the store of the client's open stream; POSTs of one
// client are handled one at a time, so frames keep the order of the POSTs'
// arrival, and message ids make a resent frame harmless.

// streamKey names the event stream of one client of one store.
type streamKey struct{ kind, name, clientID string }

// stream is one client's event stream. Frames for the client are written by
// whoever calls send (the client's actor in the store), keepalive comments
// by the stream's handler; every write holds writeMu.
type stream struct {
	key   streamKey
	cfg   *Config
	w     http.ResponseWriter
	rc    *http.ResponseController
	done  chan struct{} // closed once the stream is closed
	store string        // kind/name, for logs

	// postMu makes POSTs of the stream's client take turns, so that one
	// POST's frames reach the store before the next one's. The handler
	// holds it while it attaches the stream, so an early POST waits.
	postMu   sync.Mutex
	incoming func(frame []byte) // guarded by postMu; nil until attached

	writeMu sync.Mutex
	// guarded by writeMu
	started bool // the response's header is written
	closed  bool
	buf     []byte
}

// wantsEventStream reports whether a GET of a store's address asks for the
// event stream rather than a WebSocket.
func wantsEventStream(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "text/event-stream") && !websocket.IsWebSocketUpgrade(r)
}

// serveEvents serves one client's event stream until the client leaves,
// the gateway shuts down, a newer stream of the same client replaces it or
// a write fails.
func (g *Gateway) serveEvents(w http.ResponseWriter, r *http.Request) {
	a, ok := g.admit(w, r, true)
	if !ok {
		return
	}
	allowCORS(w, r)
	if !g.track() {
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	defer g.handlers.Done()
	s := &stream{
		key:   streamKey{a.kind, a.name, a.clientID},
		cfg:   &g.cfg,
		w:     w,
		rc:    http.NewResponseController(w),
		done:  make(chan struct{}),
		store: a.store(),
	}
	// Set before the store can write: its first frame sends the header.
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // tell reverse proxies not to buffer the stream

	s.postMu.Lock()
	if !g.registerStream(s) {
		s.postMu.Unlock()
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	incoming, disconnect, err := g.resolver.Connect(ctx, a.kind, a.name, a.clientID, s.send)
	cancel()
	if err != nil {
		s.postMu.Unlock()
		g.unregisterStream(s)
		s.logger().Warn("cannot attach the event stream to its store", slog.Any("error", err))
		if !g.resolver.HasKind(a.kind) {
			http.Error(w, fmt.Sprintf("no store kind %q", a.kind), http.StatusNotFound)
		} else {
			http.Error(w, "store unavailable", http.StatusServiceUnavailable)
		}
		return
	}
	s.incoming = incoming
	s.postMu.Unlock()
	defer func() {
		g.unregisterStream(s)
		disconnect()
	}()
	if a.identity != "" {
		s.logger().Debug("event stream authenticated", slog.String("identity", a.identity))
	}
	// The header goes out now even if the store has nothing to say yet: a
	// client POSTs its frames once it sees the stream open.
	s.write(nil)

	keepAlive := time.NewTicker(g.cfg.PingInterval)
	defer keepAlive.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-r.Context().Done():
			s.close(websocket.CloseNormalClosure) // the client left
			return
		case <-keepAlive.C:
			// A comment: it keeps proxies from closing an idle stream,
			// and lets a client see the stream is alive.
			s.write([]byte(": keepalive\n\n"))
		}
	}
}

// send writes frames to the stream, one SSE event each, and flushes them;
// nil frames end the stream (Resolver.Connect). It is the Sink of the
// client's actor.
func (s *stream) send(frames [][]byte) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if s.closed {
		return errClosed
	}
	if frames == nil {
		// The store let the connection go: ending the stream makes the
		// client reconnect and resync, as 1012 does on a WebSocket.
		s.logger().Info("the store let the event stream go; ending it")
		s.closeLocked(websocket.CloseServiceRestart)
		return nil
	}
	buf := s.buf[:0]
	size := 0
	for _, f := range frames {
		buf = appendEvent(buf, f)
		size += len(f)
	}
	err := s.writeLocked(buf)
	if cap(buf) <= 64<<10 {
		s.buf = buf[:0]
	} else {
		s.buf = nil
	}
	if err != nil {
		return err
	}
	s.cfg.Metrics.framesOut.Add(float64(len(frames)))
	s.cfg.Metrics.bytesOut.Add(float64(size))
	return nil
}

// write writes data (possibly nothing: the header only) and flushes it.
func (s *stream) write(data []byte) {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if !s.closed {
		_ = s.writeLocked(data)
	}
}

// writeLocked writes data and flushes, within the write timeout; a failed
// write closes the stream. Caller holds writeMu and checked closed.
func (s *stream) writeLocked(data []byte) error {
	_ = s.rc.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
	if !s.started {
		s.started = true
		s.w.WriteHeader(http.StatusOK)
	}
	var err error
	if len(data) > 0 {
		_, err = s.w.Write(data)
	}
	if err == nil {
		err = s.rc.Flush()
	}
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			s.logger().Info("client accepted nothing for the write timeout; closing its event stream", slog.Duration("timeout", s.cfg.WriteTimeout))
			s.closeLocked(websocket.CloseTryAgainLater)
		} else {
			s.closeLocked(websocket.CloseAbnormalClosure)
		}
		return err
	}
	return nil
}

// appendEvent appends one SSE event carrying frame: a JSON envelope as
// data lines, a MessagePack one base64-encoded in an event named msgpack.
func appendEvent(dst, frame []byte) []byte {
	if opcodeFor(frame) == websocket.BinaryMessage {
		dst = append(dst, "event: msgpack\ndata: "...)
		dst = base64.StdEncoding.AppendEncode(dst, frame)
		return append(dst, "\n\n"...)
	}
	for {
		line, rest, more := bytes.Cut(frame, []byte{'\n'})
		dst = append(dst, "data: "...)
		dst = append(dst, bytes.TrimSuffix(line, []byte{'\r'})...)
		dst = append(dst, '\n')
		if !more {
			break
		}
		frame = rest
	}
	return append(dst, '\n')
}

// close ends the stream: its handler returns, which ends the response.
// code is the WebSocket close code the closes metric counts it under.
func (s *stream) close(code int) {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	s.closeLocked(code)
}

func (s *stream) closeLocked(code int) {
	if s.closed {
		return
	}
	s.closed = true
	s.buf = nil
	close(s.done)
	s.cfg.Metrics.closes.WithLabelValues(strconv.Itoa(code)).Inc()
}

func (s *stream) logger() *slog.Logger {
	return s.cfg.Logger.With(slog.String("store", s.store), slog.String("client_id", s.key.clientID), slog.String("transport", "sse"))
}

// servePost hands the frames of a POST to the store of the client's event
// stream, in order.
func (g *Gateway) servePost(w http.ResponseWriter, r *http.Request) {
	a, ok := g.admit(w, r, true)
	if !ok {
		return
	}
	allowCORS(w, r)
	if g.shuttingDown() {
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	tooLarge := func() {
		http.Error(w, fmt.Sprintf("body over the read limit of %d bytes", g.cfg.ReadLimit), http.StatusRequestEntityTooLarge)
	}
	if r.ContentLength > g.cfg.ReadLimit {
		tooLarge()
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, g.cfg.ReadLimit))
	if err != nil {
		if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
			tooLarge()
		} else {
			http.Error(w, "cannot read the body", http.StatusBadRequest)
		}
		return
	}
	s := g.streamOf(streamKey{a.kind, a.name, a.clientID})
	if s == nil {
		http.Error(w, "no event stream is open for this client_id: open one first (GET with Accept: text/event-stream)", http.StatusConflict)
		return
	}
	frames := splitFrames(body)
	s.postMu.Lock()
	defer s.postMu.Unlock()
	if s.incoming == nil || s.isClosed() {
		http.Error(w, "the event stream of this client_id has closed: open a new one", http.StatusConflict)
		return
	}
	metrics := g.cfg.Metrics
	for _, f := range frames {
		metrics.framesIn.Inc()
		metrics.bytesIn.Add(float64(len(f)))
		s.incoming(f)
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *stream) isClosed() bool {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	return s.closed
}

// splitFrames returns the frames of a POST body: the elements of a JSON
// array, or else the whole body as one frame (which may be bad input: the
// store answers it with an error frame, as it would on a WebSocket).
func splitFrames(body []byte) [][]byte {
	if trimmed := bytes.TrimLeft(body, " \t\r\n"); len(trimmed) > 0 && trimmed[0] == '[' {
		var elems []json.RawMessage
		if json.Unmarshal(trimmed, &elems) == nil {
			frames := make([][]byte, len(elems))
			for i, e := range elems {
				frames[i] = bytes.TrimSpace(e)
			}
			return frames
		}
	}
	return [][]byte{body}
}

// servePreflight answers a browser's CORS preflight for a POST or an event
// stream from another origin: allowed when Config.AllowedOrigins allows
// the origin.
func (g *Gateway) servePreflight(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Origin") == "" || !originAllowed(g.cfg.AllowedOrigins, r) {
		http.Error(w, "origin not allowed", http.StatusForbidden)
		return
	}
	allowCORS(w, r)
	h := w.Header()
	h.Set("Access-Control-Allow-Methods", "GET, POST")
	if req := r.Header.Get("Access-Control-Request-Headers"); req != "" {
		h.Set("Access-Control-Allow-Headers", req)
	}
	h.Set("Access-Control-Max-Age", "600")
	w.WriteHeader(http.StatusNoContent)
}

// allowCORS lets a browser page of the request's origin read the answer.
// It is called only once the origin check has passed.
func allowCORS(w http.ResponseWriter, r *http.Request) {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return
	}
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", origin)
	h.Set("Access-Control-Allow-Credentials", "true")
	h.Add("Vary", "Origin")
}

// registerStream makes s the event stream of its client, closing the one
// it replaces. It fails once the gateway is shutting down.
func (g *Gateway) registerStream(s *stream) bool {
	g.mu.Lock()
	if g.shutdown {
		g.mu.Unlock()
		return false
	}
	old := g.streams[s.key]
	g.streams[s.key] = s
	if old == nil {
		g.cfg.Metrics.connections.Inc()
	}
	g.mu.Unlock()
	if old != nil {
		old.logger().Debug("event stream replaced by a newer one of the same client")
		old.close(websocket.CloseNormalClosure)
	}
	return true
}

func (g *Gateway) unregisterStream(s *stream) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.streams[s.key] == s {
		delete(g.streams, s.key)
		g.cfg.Metrics.connections.Dec()
	}
}

// streamOf returns the open event stream of a client, or nil.
func (g *Gateway) streamOf(k streamKey) *stream {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.streams[k]
}

func (g *Gateway) shuttingDown() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.shutdown
}
