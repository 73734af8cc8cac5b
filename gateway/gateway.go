package gateway

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/lily-go/lily/clients/js"
)

// Resolver finds the store a connection talks to. It is declared here, with
// built-in types only, so that a single node's registry and a cluster node
// satisfy it without importing this package.
type Resolver interface {
	// HasKind reports whether stores of kind exist.
	HasKind(kind string) bool
	// Connect attaches a client connection to store kind/name (creating
	// the store on first use). send is called with the frames for the
	// client, in order, one batch at a time; it blocks while the socket is
	// slow and returns an error once the connection is gone. A call with
	// nil frames means the store let the connection go: the gateway closes
	// it with 1012 so that the client reconnects and resyncs. Connect
	// returns the functions that hand the store one frame from the client
	// and detach this connection.
	Connect(ctx context.Context, kind, name, clientID string, send func(frames [][]byte) error) (incoming func(frame []byte), disconnect func(), err error)
}

// ErrForbidden, returned (or wrapped) by Config.Authenticate, refuses a
// request with 403 Forbidden instead of 401 Unauthorized.
var ErrForbidden = errors.New("gateway: forbidden")

// Config holds a gateway's settings. The zero value works.
type Config struct {
	// ReadLimit is the largest frame a client may send, in bytes; a larger
	// one closes the connection with 1009. It also bounds the body of a
	// POST of the HTTP fallback (all its frames together; a larger one is
	// answered 413). Zero value means 1 MiB.
	ReadLimit int64
	// WriteTimeout is how long a socket may accept nothing before it is
	// closed with 1013. Zero value means 10 seconds.
	WriteTimeout time.Duration
	// PingInterval is how often the server pings an idle client; a client
	// that sends nothing (not even a pong) for two intervals is closed.
	// An event stream gets a keepalive comment every interval instead.
	// Zero value means 30 seconds.
	PingInterval time.Duration
	// AllowedOrigins lists the browser origins that may connect (and, for
	// the HTTP fallback, read the answers across origins: CORS):
	// "https://app.example.com", a bare host "app.example.com", or "*" for
	// any. Requests without an Origin header (not from a browser) are
	// always allowed. Zero value: the same origin as the request's Host.
	AllowedOrigins []string
	// Authenticate, when set, runs before the upgrade: an error refuses
	// the request with 401, or 403 when it wraps ErrForbidden. The identity
	// it returns is logged (at debug level) when the connection opens.
	Authenticate func(r *http.Request) (identity string, err error)
	// ReadBufferSize is the read buffer of each connection, in bytes.
	// Zero value means 512 (a frame larger than it is read in several
	// system calls; a small buffer keeps idle connections cheap).
	ReadBufferSize int
	// SocketSendBuffer, when positive, sets each socket's kernel send
	// buffer (SO_SNDBUF), in bytes, which bounds the kernel memory a slow
	// client can hold and makes a stalled client reach the write timeout
	// sooner. Zero value: the operating system's default (autotuned).
	SocketSendBuffer int
	// Metrics receive the gateway's counters and are served at /metrics.
	// Nil means NewMetrics(nil).
	Metrics *Metrics
	// Logger receives the gateway's logs. Nil discards them.
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.ReadLimit <= 0 {
		c.ReadLimit = 1 << 20
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 10 * time.Second
	}
	if c.PingInterval <= 0 {
		c.PingInterval = 30 * time.Second
	}
	if c.ReadBufferSize <= 0 {
		c.ReadBufferSize = 512
	}
	if c.Metrics == nil {
		c.Metrics = NewMetrics(nil)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Gateway is the HTTP side of a node: WebSocket connections at
// GET /ws/{kind}/{name}, the HTTP fallback on the same address (an event
// stream for GET with Accept: text/event-stream, frames by POST), the
// browser client at /lily.js, and /healthz, /readyz and /metrics. Its zero
// value is not usable; call New.
type Gateway struct {
	cfg      Config
	resolver Resolver
	mux      *http.ServeMux
	upgrader websocket.Upgrader
	ready    atomic.Bool

	mu       sync.Mutex
	conns    map[*conn]struct{}    // guarded by mu
	streams  map[streamKey]*stream // guarded by mu; the HTTP fallback's event streams
	shutdown bool                  // guarded by mu
	handlers sync.WaitGroup        // one per open connection
}

// New returns a gateway that reaches stores through resolver. It is ready
// (see SetReady) from the start.
func New(resolver Resolver, cfg Config) (*Gateway, error) {
	if resolver == nil {
		return nil, errors.New("gateway: new: nil Resolver")
	}
	if cfg.ReadLimit < 0 || cfg.WriteTimeout < 0 || cfg.PingInterval < 0 || cfg.ReadBufferSize < 0 {
		return nil, errors.New("gateway: new: Config.ReadLimit, WriteTimeout, PingInterval and ReadBufferSize must not be negative")
	}
	cfg = cfg.withDefaults()
	g := &Gateway{cfg: cfg, resolver: resolver, conns: map[*conn]struct{}{}, streams: map[streamKey]*stream{}}
	g.upgrader = websocket.Upgrader{
		ReadBufferSize:  cfg.ReadBufferSize,
		WriteBufferPool: &sync.Pool{}, // the gateway writes frames itself: gorilla never needs one
		CheckOrigin:     func(r *http.Request) bool { return originAllowed(cfg.AllowedOrigins, r) },
		Error: func(w http.ResponseWriter, r *http.Request, status int, reason error) {
			http.Error(w, reason.Error(), status)
		},
	}
	g.ready.Store(true)
	g.mux = http.NewServeMux()
	g.mux.HandleFunc("GET /ws/{kind}/{name}", g.serveWebSocket) // or the event stream (sse.go)
	g.mux.HandleFunc("POST /ws/{kind}/{name}", g.servePost)
	g.mux.HandleFunc("OPTIONS /ws/{kind}/{name}", g.servePreflight)
	g.mux.Handle("GET /lily.js", js.Handler())
	g.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	g.mux.HandleFunc("GET /readyz", g.serveReady)
	g.mux.Handle("GET /metrics", promhttp.HandlerFor(cfg.Metrics.registry, promhttp.HandlerOpts{}))
	return g, nil
}

// Handle serves handler at pattern (net/http.ServeMux syntax) next to the
// gateway's own routes: lilyd mounts its demo page this way. It panics,
// as ServeMux.Handle does, when pattern conflicts with a route of the
// gateway. Call it before serving.
func (g *Gateway) Handle(pattern string, handler http.Handler) {
	g.mux.Handle(pattern, handler)
}

// ServeHTTP implements http.Handler.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.mux.ServeHTTP(w, r)
}

// SetReady sets what /readyz answers: 200 when ready, 503 when not. A
// gateway that is shutting down is never ready.
func (g *Gateway) SetReady(ready bool) { g.ready.Store(ready) }

func (g *Gateway) serveReady(w http.ResponseWriter, _ *http.Request) {
	g.mu.Lock()
	down := g.shutdown
	g.mu.Unlock()
	if down || !g.ready.Load() {
		http.Error(w, "not ready", http.StatusServiceUnavailable)
		return
	}
	_, _ = w.Write([]byte("ready\n"))
}

func (g *Gateway) serveWebSocket(w http.ResponseWriter, r *http.Request) {
	if wantsEventStream(r) {
		g.serveEvents(w, r) // the HTTP fallback (sse.go)
		return
	}
	a, ok := g.admit(w, r, false)
	if !ok {
		return
	}
	kind, name, clientID, identity := a.kind, a.name, a.clientID, a.identity
	if !g.track() {
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	ws, err := g.upgrader.Upgrade(w, r, nil)
	if err != nil {
		g.handlers.Done()
		return // the upgrader has answered
	}
	if identity != "" {
		g.cfg.Logger.Debug("connection authenticated", slog.String("store", kind+"/"+name),
			slog.String("client_id", clientID), slog.String("identity", identity))
	}
	// The connection's reader runs on a goroutine of its own and this
	// handler returns, so net/http's goroutine for the request (and the
	// stack it grew parsing it) is gone while the connection idles.
	go g.serveConn(newConn(ws, &g.cfg, kind+"/"+name, clientID), kind, name, clientID)
}

// serveConn attaches a connection to its store and reads from it until it
// ends. It is the connection's one goroutine.
func (g *Gateway) serveConn(c *conn, kind, name, clientID string) {
	defer g.handlers.Done()
	if !g.register(c) {
		c.closeWith(websocket.CloseGoingAway, "server shutting down")
		return
	}
	defer g.unregister(c)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	incoming, disconnect, err := g.resolver.Connect(ctx, kind, name, clientID, c.send)
	cancel()
	if err != nil {
		c.logger().Warn("cannot attach the connection to its store", slog.Any("error", err))
		if !g.resolver.HasKind(kind) {
			c.closeWith(closeUnknownStore, "unknown store kind")
		} else {
			c.closeWith(websocket.CloseTryAgainLater, "store unavailable")
		}
		return
	}
	defer disconnect()
	c.readLoop(incoming)
}

// closeUnknownStore is PROTOCOL.md's close code for a store of a kind that
// does not exist.
const closeUnknownStore = 4404

// track counts a handler in, unless the gateway is shutting down.
func (g *Gateway) track() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.shutdown {
		return false
	}
	g.handlers.Add(1)
	return true
}

func (g *Gateway) register(c *conn) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.shutdown {
		return false
	}
	g.conns[c] = struct{}{}
	g.cfg.Metrics.connections.Inc()
	return true
}

func (g *Gateway) unregister(c *conn) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, ok := g.conns[c]; ok {
		delete(g.conns, c)
		g.cfg.Metrics.connections.Dec()
	}
}

// Connections returns the number of open client connections: WebSockets
// and event streams.
func (g *Gateway) Connections() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.conns) + len(g.streams)
}

// Shutdown stops accepting connections, closes every open one with 1001
// (going away; an event stream just ends) and waits until their handlers
// have returned or ctx is done.
// It does not stop the stores: that is the resolver's owner's job, after
// Shutdown. Shutting down the http.Server is the caller's job too.
func (g *Gateway) Shutdown(ctx context.Context) error {
	g.mu.Lock()
	g.shutdown = true
	conns := make([]*conn, 0, len(g.conns))
	for c := range g.conns {
		conns = append(conns, c)
	}
	streams := make([]*stream, 0, len(g.streams))
	for _, s := range g.streams {
		streams = append(streams, s)
	}
	g.mu.Unlock()
	for _, c := range conns {
		c.closeWith(websocket.CloseGoingAway, "server shutting down")
	}
	for _, s := range streams {
		s.close(websocket.CloseGoingAway)
	}
	done := make(chan struct{})
	go func() {
		g.handlers.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("gateway: shutdown: %w", ctx.Err())
	}
}

func newClientID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand documents it)
	return hex.EncodeToString(b[:])
}
