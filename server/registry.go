package server

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/lily-go/lily/actors"
	"github.com/lily-go/lily/journal/memjournal"
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

	ownJournal *memjournal.Journal // the registry's own, when Config.Journal is nil

	mu      sync.Mutex
	stores  map[string]*registered // guarded by mu; by "kind/name"
	stopped bool                   // guarded by mu
}

// registered is one running store. conns and passivating are guarded by
// the registry's mu.
type registered struct {
	pid         *actor.PID
	done        chan struct{} // closed when the store's actor has stopped
	conns       int           // connections attached through the registry
	passivating bool          // the store agreed to stop: new connections wait for done
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
	if r.cfg.Journal == nil {
		r.ownJournal = memjournal.New()
		r.cfg.Journal = r.ownJournal
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

// Stores returns the number of stores running (passivating ones included).
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
	root := r.cfg.System.Root
	connectionID := r.nextID.Add(1)
	entry, err := r.attach(ctx, kind, name, &actors.Attach{ClientID: clientID, ConnectionID: connectionID, Sink: send})
	if err != nil {
		return nil, nil, err
	}
	pid := entry.pid
	incoming = func(frame []byte) {
		root.Send(pid, &messages.ClientFrame{ClientId: clientID, Data: frame})
	}
	var once sync.Once
	disconnect = func() {
		once.Do(func() {
			r.mu.Lock()
			entry.conns--
			r.mu.Unlock()
			root.Send(pid, &messages.Disconnect{ClientId: clientID, ConnectionId: connectionID})
		})
	}
	return incoming, disconnect, nil
}

// attach sends a to the running store kind/name, starting it if need be,
// and counts the connection. A store that is passivating is waited for,
// then started again.
func (r *Registry) attach(ctx context.Context, kind, name string, a *actors.Attach) (*registered, error) {
	k, ok := r.kinds[kind]
	if !ok {
		return nil, fmt.Errorf("server: store %s/%s: %w", kind, name, ErrUnknownKind)
	}
	if !transport.ValidName(name) {
		return nil, fmt.Errorf("server: store %s/%s: name is not 1-128 chars of [A-Za-z0-9._-]", kind, name)
	}
	key := kind + "/" + name
	for {
		r.mu.Lock()
		if r.stopped {
			r.mu.Unlock()
			return nil, fmt.Errorf("server: store %s: %w", key, ErrStopped)
		}
		entry := r.stores[key]
		if entry != nil && entry.passivating {
			r.mu.Unlock()
			select {
			case <-entry.done:
				continue
			case <-ctx.Done():
				return nil, fmt.Errorf("server: store %s: waiting for it to passivate: %w", key, ctx.Err())
			}
		}
		if entry == nil {
			entry = r.start(k, key)
		}
		// Counted and sent under the lock: the store cannot agree to
		// passivate between the two.
		entry.conns++
		r.cfg.System.Root.Send(entry.pid, a)
		r.mu.Unlock()
		return entry, nil
	}
}

// start starts the store key. Caller holds mu.
func (r *Registry) start(k actors.Kind, key string) *registered {
	entry := &registered{done: make(chan struct{})}
	var once sync.Once
	props := k.Props(actors.Config{
		Name:           key,
		OutboxBytes:    r.cfg.OutboxBytes,
		Logger:         r.logger,
		Observer:       r.cfg.Observer,
		Journal:        r.cfg.Journal,
		SnapshotEvery:  r.cfg.SnapshotEvery,
		Retention:      r.cfg.Retention,
		PassivateAfter: r.cfg.PassivateAfter,
		Passivate: func() bool {
			r.mu.Lock()
			defer r.mu.Unlock()
			if entry.conns > 0 || r.stopped {
				return false
			}
			entry.passivating = true
			return true
		},
		OnStop: func() {
			once.Do(func() {
				r.mu.Lock()
				if r.stores[key] == entry {
					delete(r.stores, key)
				}
				r.mu.Unlock()
				close(entry.done)
			})
		},
	})
	entry.pid = r.cfg.System.Root.SpawnPrefix(props, "store")
	r.stores[key] = entry
	r.logger.Debug("store started", slog.String("store", key))
	return entry
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
	stores := maps.Clone(r.stores)
	r.mu.Unlock()
	if r.ownJournal != nil {
		defer r.ownJournal.Close()
	}

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
