package client

import (
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"time"

	"github.com/gorilla/websocket"

	"github.com/lily-go/lily/transport"
)

// Options holds a client's optional settings. The zero value works.
type Options struct {
	// ClientID is the client id sent as ?client_id= (1-64 chars of
	// [A-Za-z0-9_-]). It stays the same across reconnects, which is what
	// makes resent messages exactly-once. Zero value: the id the
	// PendingStore holds, or else a new random id of 32 hex chars. When
	// both are set they must be equal.
	ClientID string
	// Format is the envelope format the client sends (the server answers
	// in the same one). Zero value means transport.FormatJSON.
	Format transport.Format
	// Backoff sets the delays between reconnection attempts. Zero value
	// means lily's defaults (see Backoff).
	Backoff Backoff
	// PendingStore, when set, keeps the client's durable part (client id,
	// message id counter, pending messages) across process restarts. Nil
	// means pending messages live in memory only and are lost by Close.
	PendingStore PendingStore
	// Logger receives the client's logs. Nil discards them.
	Logger *slog.Logger
	// Dialer opens the WebSocket connections. Nil means
	// websocket.DefaultDialer.
	Dialer *websocket.Dialer
	// Header is sent with every WebSocket handshake (Origin,
	// Authorization, ...). Nil sends none.
	Header http.Header
	// PingInterval is how often the client pings the server. A connection
	// that delivers nothing (not even a pong or a ping of the server's) for
	// two intervals is dropped and the client reconnects. Zero value means
	// 30 seconds; a negative value disables pings and that check.
	PingInterval time.Duration
	// WriteTimeout bounds the write of one frame; a socket that accepts
	// nothing for that long is dropped and the client reconnects. Zero
	// value means 10 seconds.
	WriteTimeout time.Duration
	// Transport chooses how the client reaches the server: a WebSocket,
	// the HTTP fallback (an event stream and POSTs, for networks that
	// block WebSockets), or a WebSocket that falls back. Zero value means
	// TransportWebSocket.
	Transport Transport
	// FallbackAfter is, with TransportAuto, the number of WebSocket
	// attempts in a row that must fail (no frame received) before the
	// client uses the HTTP fallback for good. Zero value means 2.
	FallbackAfter int
	// HTTPClient sends the HTTP fallback's requests (Header is added to
	// each). It must not time out whole requests: the event stream lasts
	// as long as the connection. Nil means a client with no timeout and a
	// connection pool of its own. Its idle connections are closed when a
	// connection of the client ends.
	HTTPClient *http.Client
}

// Transport is how a client reaches the server (Options.Transport).
type Transport uint8

const (
	// TransportWebSocket connects over a WebSocket only.
	TransportWebSocket Transport = iota
	// TransportSSE uses the HTTP fallback only: server frames arrive on
	// an event stream (GET with Accept: text/event-stream), client frames
	// go out by POST, one request at a time.
	TransportSSE
	// TransportAuto connects over a WebSocket and switches to the HTTP
	// fallback, for the client's lifetime, after Options.FallbackAfter
	// WebSocket attempts in a row delivered nothing.
	TransportAuto
)

// String returns "websocket", "sse" or "auto".
func (t Transport) String() string {
	switch t {
	case TransportWebSocket:
		return "websocket"
	case TransportSSE:
		return "sse"
	case TransportAuto:
		return "auto"
	}
	return fmt.Sprintf("Transport(%d)", uint8(t))
}

// Backoff is the schedule of reconnection delays: after failed attempt n
// (counting from 0) the client waits Base * Multiplier^n, capped at Max,
// then spread by Jitter. The count restarts once a connection has synced.
// The zero value means lily's defaults: 1s, 30s, 2, 0.25.
type Backoff struct {
	// Base is the first delay. Zero value means 1 second.
	Base time.Duration
	// Max caps every delay, jitter included. Zero value means 30 seconds.
	Max time.Duration
	// Multiplier grows the delay after each failed attempt; at least 1.
	// Zero value means 2.
	Multiplier float64
	// Jitter spreads each delay uniformly over ±Jitter of itself (0.25:
	// 75% to 125%), so that clients cut off together do not come back
	// together; between 0 and 1. Zero value means 0.25; a negative value
	// means no jitter.
	Jitter float64
}

// Delay returns the delay before attempt n+1 after attempt n (counting
// from 0) failed, given random, a number in [0, 1) that places the delay
// within the jitter range (0 gives its low end, 0.5 the undecorated delay).
// The zero Backoff uses the defaults; Delay never exceeds Max.
func (b Backoff) Delay(attempt int, random float64) time.Duration {
	b = b.withDefaults()
	d := float64(b.Base) * math.Pow(b.Multiplier, float64(max(attempt, 0)))
	if d > float64(b.Max) || math.IsInf(d, 0) || math.IsNaN(d) {
		d = float64(b.Max)
	}
	random = min(max(random, 0), 1)
	d *= 1 + b.Jitter*(2*random-1)
	return min(time.Duration(d), b.Max)
}

func (b Backoff) withDefaults() Backoff {
	if b.Base == 0 {
		b.Base = time.Second
	}
	if b.Max == 0 {
		b.Max = 30 * time.Second
	}
	if b.Multiplier == 0 {
		b.Multiplier = 2
	}
	switch {
	case b.Jitter == 0:
		b.Jitter = 0.25
	case b.Jitter < 0:
		b.Jitter = 0
	}
	return b
}

func (b Backoff) validate() error {
	switch {
	case b.Base < 0:
		return fmt.Errorf("client: Options.Backoff.Base must not be negative, got %v", b.Base)
	case b.Max < 0:
		return fmt.Errorf("client: Options.Backoff.Max must not be negative, got %v", b.Max)
	case b.Multiplier != 0 && (b.Multiplier < 1 || math.IsInf(b.Multiplier, 0) || math.IsNaN(b.Multiplier)):
		return fmt.Errorf("client: Options.Backoff.Multiplier must be at least 1, got %v", b.Multiplier)
	case b.Jitter > 1 || math.IsNaN(b.Jitter):
		return fmt.Errorf("client: Options.Backoff.Jitter must be at most 1, got %v", b.Jitter)
	}
	d := b.withDefaults()
	if d.Max < d.Base {
		return fmt.Errorf("client: Options.Backoff.Max (%v) must not be below Options.Backoff.Base (%v)", d.Max, d.Base)
	}
	return nil
}

// withDefaults validates o and fills in its defaults; the client id is
// settled later, with the PendingStore.
func (o Options) withDefaults() (Options, error) {
	if o.ClientID != "" && !transport.ValidClientID(o.ClientID) {
		return o, fmt.Errorf("client: Options.ClientID must be 1-64 chars of [A-Za-z0-9_-], got %q", o.ClientID)
	}
	switch o.Format {
	case 0:
		o.Format = transport.FormatJSON
	case transport.FormatJSON, transport.FormatMsgPack:
	default:
		return o, fmt.Errorf("client: Options.Format must be FormatJSON or FormatMsgPack, got %v", o.Format)
	}
	if err := o.Backoff.validate(); err != nil {
		return o, err
	}
	o.Backoff = o.Backoff.withDefaults()
	if o.WriteTimeout < 0 {
		return o, fmt.Errorf("client: Options.WriteTimeout must not be negative, got %v", o.WriteTimeout)
	}
	if o.WriteTimeout == 0 {
		o.WriteTimeout = 10 * time.Second
	}
	if o.PingInterval == 0 {
		o.PingInterval = 30 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Dialer == nil {
		o.Dialer = websocket.DefaultDialer
	}
	if o.Transport > TransportAuto {
		return o, fmt.Errorf("client: Options.Transport must be TransportWebSocket, TransportSSE or TransportAuto, got %v", o.Transport)
	}
	if o.FallbackAfter < 0 {
		return o, fmt.Errorf("client: Options.FallbackAfter must not be negative, got %d", o.FallbackAfter)
	}
	if o.FallbackAfter == 0 {
		o.FallbackAfter = 2
	}
	if o.HTTPClient == nil {
		// A pool of its own: the client closes its idle connections
		// when a connection ends, and must not close others'.
		o.HTTPClient = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	}
	return o, nil
}
