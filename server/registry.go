package server

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/lily-go/lily/actors"
	"github.com/lily-go/lily/messages"
	"github.com/lily-go/lily/transport"
)

// Registry serves the stores of several kinds in one process: a store
// kind/name is started on first use, from its kind, and lives until Stop.
// It is what a single node's gateway resolves stores with (it satisfies
// gateway.Resolver). All methods are safe for concurrent use.
type Registry struct {
	cfg    Config
	logger *slog.Logger
	kinds  map[string]actors.Kind
	nextID atomic.Uint64 // connection ids

	mu      sync.Mutex
	stores  map[string]*registered // guarded by mu; by "kind/name"
	stopped bool                   // guarded by mu
}

type registered struct {
	pid  *actor.PID
	done chan struct{}
}

// NewRegistry returns a registry serving the given kinds. Config.Name is
// not used: each store is named "kind/name" in logs.
func NewRegistry(cfg Config, kinds ...actors.Kind) (*Registry, error) {
	if cfg.OutboxBytes < 0 {
		return nil, fmt.Errorf("server: registry: Config.OutboxBytes must not be negative, got %d", cfg.OutboxBytes)
	}
	cfg = cfg.withDefaults()
	r := &Registry{cfg: cfg, logger: cfg.Logger, kinds: map[string]actors.Kind{}, stores: map[string]*registered{}}
	if r.logger == nil {
		r.logger = slog.New(slog.DiscardHandler)
	}
	for _, k := range kinds {
		if !transport.ValidName(k.Name()) {
			return nil, fmt.Errorf("server: registry: kind name %q is not 1-128 chars of [A-Za-z0-9._-]", k.Name())
		}
		if _, dup := r.kinds[k.Name()]; dup {
			return nil, fmt.Errorf("server: registry: kind %q given twice", k.Name())
		}
		r.kinds[k.Name()] = k
	}
	return r, nil
}

// HasKind reports whether the registry serves stores of kind.
func (r *Registry) HasKind(kind string) bool {
	_, ok := r.kinds[kind]
	return ok
}

// Kinds returns the number of kinds served.
func (r *Registry) Kinds() int { return len(r.kinds) }

// Stores returns the number of stores running.
func (r *Registry) Stores() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.stores)
}

// Connect attaches a client connection to store kind/name, starting the
// store if it is not running. send receives the client's frames in batches
// on the client's actor (see actors.Sink). It returns the functions that
// hand the store the client's frames and detach this connection; after a
// disconnect, a later connection of the same client id stays attached.
// Errors: ErrUnknownKind, ErrStopped, an invalid name or client id.
func (r *Registry) Connect(ctx context.Context, kind, name, clientID string, send func(frames [][]byte) error) (incoming func(frame []byte), disconnect func(), err error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, fmt.Errorf("server: connect %s/%s: %w", kind, name, err)
	}
	if !transport.ValidClientID(clientID) {
		return nil, nil, fmt.Errorf("server: connect %s/%s: client id %q is not 1-64 chars of [A-Za-z0-9_-]", kind, name, clientID)
	}
	pid, err := r.store(kind, name)
	if err != nil {
		return nil, nil, err
	}
	root := r.cfg.System.Root
	connectionID := r.nextID.Add(1)
	root.Send(pid, &actors.Attach{ClientID: clientID, ConnectionID: connectionID, Sink: send})
	incoming = func(frame []byte) {
		root.Send(pid, &messages.ClientFrame{ClientId: clientID, Data: frame})
	}
	disconnect = func() {
		root.Send(pid, &messages.Disconnect{ClientId: clientID, ConnectionId: connectionID})
	}
	return incoming, disconnect, nil
}

// store returns the running store kind/name, starting it if need be.
func (r *Registry) store(kind, name string) (*actor.PID, error) {
	k, ok := r.kinds[kind]
	if !ok {
		return nil, fmt.Errorf("server: store %s/%s: %w", kind, name, ErrUnknownKind)
	}
	if !transport.ValidName(name) {
		return nil, fmt.Errorf("server: store %s/%s: name is not 1-128 chars of [A-Za-z0-9._-]", kind, name)
	}
	key := kind + "/" + name
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped {
		return nil, fmt.Errorf("server: store %s: %w", key, ErrStopped)
	}
	if s := r.stores[key]; s != nil {
		return s.pid, nil
	}
	done := make(chan struct{})
	var once sync.Once
	props := k.Props(actors.Config{
		Name:        key,
		OutboxBytes: r.cfg.OutboxBytes,
		Logger:      r.logger,
		OnStop:      func() { once.Do(func() { close(done) }) },
		Observer:    r.cfg.Observer,
	})
	pid := r.cfg.System.Root.SpawnPrefix(props, "store")
	r.stores[key] = &registered{pid: pid, done: done}
	r.logger.Debug("store started", slog.String("store", key))
	return pid, nil
}

// Stop stops every store (each finishes what was enqueued first) and
// refuses new connections. It returns when they have stopped, or after
// Config.StopTimeout.
func (r *Registry) Stop() {
	r.mu.Lock()
	if r.stopped {
		r.mu.Unlock()
		return
	}
	r.stopped = true
	stores := r.stores
	r.stores = map[string]*registered{}
	r.mu.Unlock()

	for _, s := range stores {
		r.cfg.System.Root.Poison(s.pid)
	}
	timer := time.NewTimer(r.cfg.StopTimeout)
	defer timer.Stop()
	for key, s := range stores {
		select {
		case <-s.done:
		case <-timer.C:
			r.logger.Warn("server: registry: stores did not stop in time", slog.String("store", key), slog.Duration("timeout", r.cfg.StopTimeout))
			return
		}
	}
}
