package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/lily-go/lily/actors"
	"github.com/lily-go/lily/journal"
	"github.com/lily-go/lily/messages"
	"github.com/lily-go/lily/store"
	"github.com/lily-go/lily/transport"
)

// Config holds a server's optional settings. The zero value works.
type Config struct {
	// Name names the store in logs. Zero value: "".
	Name string
	// OutboxBytes bounds the frames queued for one client, in bytes; a
	// client whose outbox overflows gets a fresh snapshot instead of the
	// frames it missed. Zero value means 1 MiB.
	OutboxBytes int
	// StopTimeout bounds how long Stop waits for the store's actor and its
	// client actors to stop (a send function that blocks holds its client's
	// actor up). Zero value means 10 seconds.
	StopTimeout time.Duration
	// Logger receives the server's logs. Nil discards them (AutoLogMessages
	// then logs to slog.Default()).
	Logger *slog.Logger
	// Observer, when set, receives each store's apply times and error
	// counts (gateway.Metrics is one).
	Observer actors.Observer
	// Journal, when set, persists the stores: they load from it when they
	// start and acknowledge a message only once the journal holds it. Nil:
	// a Server lives in memory only; a Registry uses an in-memory journal
	// (so a passivated store comes back, until the process ends).
	Journal journal.Journal
	// SnapshotEvery is how many messages a journaled store applies between
	// snapshots. Zero value means 1,000.
	SnapshotEvery uint64
	// Retention is how many messages a journaled store keeps behind its
	// latest snapshot for delta resyncs. Zero value means 10,000.
	Retention uint64
	// PassivateAfter, for a Registry, stops a store that has had no client
	// and no message for that long (it snapshots first and comes back from
	// the journal on the next connection). Zero value: never. A Server
	// ignores it.
	PassivateAfter time.Duration
	// System is the actor system the store's actor runs in. Nil means one
	// actor system shared by every server of the process.
	System *actor.ActorSystem
}

func (c Config) withDefaults() Config {
	if c.StopTimeout <= 0 {
		c.StopTimeout = 10 * time.Second
	}
	if c.System == nil {
		c.System = sharedSystem()
	}
	return c
}

var (
	sharedOnce sync.Once
	shared     *actor.ActorSystem
)

// sharedSystem returns the process's default actor system, made on first
// use. Its own logs are discarded: the server logs what matters itself.
func sharedSystem() *actor.ActorSystem {
	sharedOnce.Do(func() {
		shared = NewActorSystem(nil)
	})
	return shared
}

// NewActorSystem returns a local actor system whose protoactor logs go to
// logger (nil discards them), for Config.System.
func NewActorSystem(logger *slog.Logger) *actor.ActorSystem {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return logger.With(slog.String("lib", "protoactor"))
	}))
}

// Server runs one store in an actor: it applies client messages one at a
// time, numbers them, acknowledges the sender, broadcasts to the other
// clients and answers resyncs with snapshots. It mirrors lily's
// server.Server. All methods are safe for concurrent use; after Stop they do
// nothing.
type Server[M, Msg any] struct {
	cfg     Config
	system  *actor.ActorSystem
	pid     *actor.PID
	stopped atomic.Bool
	done    chan struct{} // closed when the store's actor has stopped
	logger  *slog.Logger
}

// Start starts a server for st that encodes with ser. It mirrors lily's
// server.start(store:, serialiser:). Use StartWithConfig for settings.
func Start[M, Msg any](st store.Store[M, Msg], ser transport.Serialiser[M, Msg]) (*Server[M, Msg], error) {
	return StartWithConfig(st, ser, Config{})
}

// StartWithConfig starts a server like Start, with the given settings.
func StartWithConfig[M, Msg any](st store.Store[M, Msg], ser transport.Serialiser[M, Msg], cfg Config) (*Server[M, Msg], error) {
	if any(ser) == nil {
		return nil, fmt.Errorf("server: start: %w", ErrNoSerialiser)
	}
	if cfg.OutboxBytes < 0 {
		return nil, fmt.Errorf("server: start: Config.OutboxBytes must not be negative, got %d", cfg.OutboxBytes)
	}
	cfg = cfg.withDefaults()
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	done := make(chan struct{})
	var once sync.Once
	props := actors.StoreProps(st, ser, actors.Config{
		Name:          cfg.Name,
		OutboxBytes:   cfg.OutboxBytes,
		Logger:        logger,
		OnStop:        func() { once.Do(func() { close(done) }) },
		Observer:      cfg.Observer,
		Journal:       cfg.Journal,
		SnapshotEvery: cfg.SnapshotEvery,
		Retention:     cfg.Retention,
	})
	pid := cfg.System.Root.SpawnPrefix(props, "store")
	return &Server[M, Msg]{cfg: cfg, system: cfg.System, pid: pid, done: done, logger: logger}, nil
}

// Connect registers a client connection: send is how the server pushes
// frames to this client. It mirrors lily's server.connect. Connect for a
// client id that is connected replaces the old connection (a reconnect; the
// old send function is not called again).
//
// send runs on the client's own actor, one call at a time, in order; it may
// block without holding up the store or other clients (frames queue in the
// client's bounded outbox, and a client that falls behind gets a fresh
// snapshot instead of what it missed). It must not keep or modify the slice
// it is given. A panic in send stops that client's connection only.
func (s *Server[M, Msg]) Connect(clientID string, send func([]byte)) {
	if send == nil {
		return
	}
	s.ConnectSink(clientID, 0, func(frames [][]byte) error {
		for _, f := range frames {
			send(f)
		}
		return nil
	})
}

// ConnectSink registers a client connection like Connect, with a Sink that
// takes every frame queued for the client at once (so a transport can write
// them in one system call) and reports a dead connection with an error.
// A non-zero connectionID lets DisconnectConnection detach this connection
// only.
func (s *Server[M, Msg]) ConnectSink(clientID string, connectionID uint64, sink actors.Sink) {
	if sink == nil || s.stopped.Load() {
		return
	}
	s.system.Root.Send(s.pid, &actors.Attach{ClientID: clientID, ConnectionID: connectionID, Sink: sink})
}

// Disconnect unregisters a client connection. It mirrors lily's
// server.disconnect. What the client's id applied is remembered, so a
// reconnecting client's resent messages are not applied twice.
func (s *Server[M, Msg]) Disconnect(clientID string) {
	s.DisconnectConnection(clientID, 0)
}

// DisconnectConnection unregisters a client connection if it is the one
// registered with connectionID (any connection when 0), so a late disconnect
// of an old connection cannot detach a newer one of the same client.
func (s *Server[M, Msg]) DisconnectConnection(clientID string, connectionID uint64) {
	if s.stopped.Load() {
		return
	}
	s.system.Root.Send(s.pid, &messages.Disconnect{ClientId: clientID, ConnectionId: connectionID})
}

// Incoming hands the server one frame a client sent (a JSON or MessagePack
// envelope of PROTOCOL.md). It mirrors lily's server.incoming. It only
// enqueues: the frame is applied on the store's actor, and answers (an
// acknowledge, a snapshot, or an error frame for bad input) go to the
// client's send function. Frames from a client id that is not connected are
// applied but get no answer. data must not be modified after the call.
func (s *Server[M, Msg]) Incoming(clientID string, data []byte) {
	if s.stopped.Load() {
		return
	}
	s.system.Root.Send(s.pid, &messages.ClientFrame{ClientId: clientID, Data: data})
}

// OnMessage adds a hook that runs after each applied client message with the
// message, the model after it and the sender's client id. It mirrors lily's
// server.on_message; hooks added later run after earlier ones. A hook runs
// on the store's actor, one call at a time, in sequence order, and must not
// block (hand slow work to a goroutine of your own); a panic in it is logged
// and the store keeps serving.
func (s *Server[M, Msg]) OnMessage(hook func(msg Msg, model M, clientID string)) {
	if hook == nil || s.stopped.Load() {
		return
	}
	s.system.Root.Send(s.pid, &actors.AddHook[M, Msg]{Hook: hook})
}

// AutoLogMessages adds a hook that logs every applied message at level, to
// Config.Logger (or slog.Default() when that is nil), and returns the server
// for chaining. It mirrors lily's server.auto_log_messages.
func (s *Server[M, Msg]) AutoLogMessages(level slog.Level) *Server[M, Msg] {
	logger := s.cfg.Logger
	if logger == nil {
		logger = slog.Default()
	}
	if s.cfg.Name != "" {
		logger = logger.With(slog.String("store", s.cfg.Name))
	}
	s.OnMessage(func(msg Msg, _ M, clientID string) {
		logger.Log(context.Background(), level, "message", slog.String("client_id", clientID), slog.Any("message", msg))
	})
	return s
}

// State returns the acknowledged model, the sequence of the last
// acknowledged message and the store's epoch. It waits for the store's
// actor, which answers after the messages already enqueued (and, with a
// journal, once it has loaded). A store whose journal cannot be loaded
// returns the journal's error.
func (s *Server[M, Msg]) State(ctx context.Context) (model M, sequence uint64, epoch string, err error) {
	if s.stopped.Load() {
		return model, 0, "", ErrStopped
	}
	timeout := 10 * time.Second
	if deadline, ok := ctx.Deadline(); ok {
		timeout = time.Until(deadline)
	}
	res, err := s.system.Root.RequestFuture(s.pid, &actors.GetState{}, timeout).Result()
	if err != nil {
		return model, 0, "", fmt.Errorf("server: state: %w", err)
	}
	st, ok := res.(*actors.State[M])
	if !ok {
		return model, 0, "", fmt.Errorf("server: state: unexpected answer %T", res)
	}
	if st.Err != nil {
		return model, 0, "", fmt.Errorf("server: state: %w", st.Err)
	}
	return st.Model, st.Sequence, st.Epoch, nil
}

// Stop stops the server: the store's actor processes what was already
// enqueued, then stops with its client actors. It mirrors lily's
// server.stop. Later calls of any method do nothing. It does not notify
// connected clients: closing their transports is the caller's job.
// It returns once the actors stopped, or after Config.StopTimeout.
func (s *Server[M, Msg]) Stop() {
	if !s.stopped.CompareAndSwap(false, true) {
		return
	}
	s.system.Root.Poison(s.pid)
	timer := time.NewTimer(s.cfg.StopTimeout)
	defer timer.Stop()
	select {
	case <-s.done:
	case <-timer.C:
		s.logger.Warn("server: stop: the store's actors did not stop in time", slog.Duration("timeout", s.cfg.StopTimeout))
	}
}

// GenerateClientID returns a new random client id: 16 bytes from
// crypto/rand, hex-encoded to 32 characters. It mirrors lily's
// server.generate_client_id.
func GenerateClientID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand documents it)
	return hex.EncodeToString(b[:])
}
