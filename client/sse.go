package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/lily-go/lily/transport"
)

// The HTTP fallback (PROTOCOL.md, "HTTP fallback"): the server's frames
// arrive on an event stream, GET on the store's address with Accept:
// text/event-stream; the client's frames go out by POST on the same
// address, one request at a time, so they reach the store in order. A POST
// that fails ends the connection like a broken WebSocket: the client
// reconnects and resends every pending message with its id, and the server
// applies none twice.

// maxPostFrames bounds the frames of one POST, so that a long offline queue
// goes out in requests below the server's read limit.
const maxPostFrames = 256

// transportState is what the manager goroutine remembers of its attempts.
type transportState struct {
	sse      bool // the HTTP fallback is in use, for good
	wsFailed int  // WebSocket attempts in a row that got no answer to their resync
}

// connectOnce makes one connection attempt, over a WebSocket or the HTTP
// fallback as Options.Transport says, and serves the connection until it
// ends. connected reports whether a connection opened, synced whether its
// resync was answered.
func (c *Client[M, Msg]) connectOnce(via *transportState) (connected, synced bool, err error) {
	if c.opts.Transport == TransportSSE || via.sse {
		return c.serveSSE()
	}
	ws, err := c.dial()
	if err == nil {
		connected = true
		synced, err = c.serve(ws)
	}
	if c.opts.Transport != TransportAuto || c.ctx.Err() != nil {
		return connected, synced, err
	}
	switch {
	case synced:
		via.wsFailed = 0
	case permanent(err):
		// A proxy that blocks WebSockets may refuse the upgrade itself:
		// the HTTP fallback gets the node's own answer.
		via.sse = true
		c.logger.Info("the WebSocket was refused; using the HTTP fallback", slog.Any("error", err))
		return connected, synced, fmt.Errorf("client: websocket refused (%v); trying the HTTP fallback", err)
	default:
		via.wsFailed++
		if via.wsFailed >= c.opts.FallbackAfter {
			via.sse = true
			c.logger.Info("WebSockets keep failing; using the HTTP fallback", slog.Int("attempts", via.wsFailed), slog.Any("error", err))
		}
	}
	return connected, synced, err
}

// httpURL returns the store's address for the HTTP fallback.
func (c *Client[M, Msg]) httpURL() string {
	return "http" + strings.TrimPrefix(c.url, "ws") // ws:// → http://, wss:// → https://
}

// serveSSE opens an event stream and serves it, with its POSTs, until the
// connection ends.
func (c *Client[M, Msg]) serveSSE() (connected, synced bool, err error) {
	ctx, cancel := context.WithCancel(c.ctx)
	defer cancel()
	defer c.opts.HTTPClient.CloseIdleConnections() // the POSTs' keep-alive connections
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.httpURL(), nil)
	if err != nil {
		return false, false, fmt.Errorf("client: event stream: %w", err)
	}
	for k, v := range c.opts.Header {
		req.Header[k] = v
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Cache-Control", "no-cache")
	resp, err := c.opts.HTTPClient.Do(req)
	if err != nil {
		return false, false, fmt.Errorf("client: event stream: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
		return false, false, &HandshakeError{StatusCode: resp.StatusCode, Body: strings.TrimSpace(string(body))}
	}

	cn := &conn{kick: make(chan struct{}, 1), done: make(chan struct{})}
	if !c.attach(cn) {
		return false, false, nil
	}
	c.logger.Debug("connected", slog.String("url", c.httpURL()), slog.String("transport", "sse"))
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		c.postLoop(ctx, cn, cancel)
	}()
	err = c.readEvents(ctx, cn, resp.Body, cancel)
	close(cn.done)
	cancel()
	<-writerDone
	return true, c.detach(cn), err
}

// readEvents reads the event stream and handles every frame on it until the
// stream ends. A stream silent for two ping intervals (the server writes a
// keepalive comment every interval) is dropped.
func (c *Client[M, Msg]) readEvents(ctx context.Context, cn *conn, body io.Reader, cancel context.CancelFunc) error {
	var silent *time.Timer
	if ping := c.opts.PingInterval; ping > 0 {
		silent = time.AfterFunc(2*ping, cancel)
		defer silent.Stop()
	}
	r := bufio.NewReaderSize(body, 16<<10)
	var (
		data    []byte
		hasData bool
		event   string
	)
	for {
		line, err := r.ReadBytes('\n')
		if err != nil {
			if ctx.Err() != nil && c.ctx.Err() == nil {
				return errors.New("client: event stream silent for two ping intervals, or its POST failed")
			}
			if errors.Is(err, io.EOF) {
				return errors.New("client: the server ended the event stream")
			}
			return fmt.Errorf("client: event stream: %w", err)
		}
		if silent != nil {
			silent.Reset(2 * c.opts.PingInterval)
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 { // the end of an event
			if hasData {
				c.handleEvent(cn, event, data)
			}
			data, hasData, event = nil, false, ""
			continue
		}
		field, value, _ := bytes.Cut(line, []byte{':'})
		value = bytes.TrimPrefix(value, []byte{' '})
		switch string(field) {
		case "": // a comment: a keepalive
		case "data":
			if hasData {
				data = append(data, '\n')
			}
			data, hasData = append(data, value...), true
		case "event":
			event = string(value)
		}
	}
}

// handleEvent handles the frame one event carries: a JSON envelope, or a
// MessagePack one in base64 in an event named msgpack.
func (c *Client[M, Msg]) handleEvent(cn *conn, event string, data []byte) {
	if event == "msgpack" {
		dec := make([]byte, base64.StdEncoding.DecodedLen(len(data)))
		n, err := base64.StdEncoding.Decode(dec, data)
		if err != nil {
			c.logger.Warn("undecodable msgpack event; resyncing", slog.Any("error", err))
			c.mu.Lock()
			c.requestResyncLocked(false)
			c.mu.Unlock()
			return
		}
		data = dec[:n]
	}
	c.handle(cn, data)
}

// postLoop is the HTTP fallback's writer: it POSTs the connection's frames
// (pending messages in id order, resyncs), one request at a time. A POST
// that fails ends the connection.
func (c *Client[M, Msg]) postLoop(ctx context.Context, cn *conn, cancel context.CancelFunc) {
	var frames [][]byte
	for {
		select {
		case <-cn.done:
			return
		case <-ctx.Done():
			return
		case <-cn.kick:
			frames = c.collect(cn, frames[:0])
			for len(frames) > 0 {
				n := min(len(frames), maxPostFrames)
				if c.opts.Format == transport.FormatMsgPack {
					n = 1 // a POST body holds one MessagePack frame
				}
				if err := c.post(ctx, frames[:n]); err != nil {
					if ctx.Err() == nil {
						c.logger.Info("a POST failed; dropping the connection", slog.Any("error", err))
					}
					cancel()
					return
				}
				clear(frames[:n])
				frames = frames[n:]
			}
		}
	}
}

// post sends frames in one POST: a JSON array of JSON envelopes, or one
// MessagePack envelope.
func (c *Client[M, Msg]) post(ctx context.Context, frames [][]byte) error {
	body, contentType := frames[0], "application/msgpack"
	if c.opts.Format != transport.FormatMsgPack {
		body = append(append([]byte{'['}, bytes.Join(frames, []byte{','})...), ']')
		contentType = "application/json"
	}
	ctx, cancel := context.WithTimeout(ctx, c.opts.WriteTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.httpURL(), bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("client: post: %w", err)
	}
	for k, v := range c.opts.Header {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", contentType)
	resp, err := c.opts.HTTPClient.Do(req)
	if err != nil {
		return fmt.Errorf("client: post: %w", err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("client: post: HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(msg))
	}
	return nil
}
