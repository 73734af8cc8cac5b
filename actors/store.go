package actors

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/lily-go/lily/journal"
	"github.com/lily-go/lily/messages"
	"github.com/lily-go/lily/store"
	"github.com/lily-go/lily/transport"
)

// Defaults of Config.
const (
	DefaultOutboxBytes   = 1 << 20
	DefaultSnapshotEvery = 1000
	DefaultRetention     = 10000
)

// Config configures a store actor. The zero value works: an in-memory store
// that never passivates.
type Config struct {
	// Name names the store in logs and in its journal. Zero value: "".
	Name string
	// OutboxBytes bounds the encoded frames queued for one client, in bytes.
	// Zero value means DefaultOutboxBytes (1 MiB).
	OutboxBytes int
	// Journal, when set, persists the store: it loads from it when it
	// starts and acknowledges a message only once the journal holds it.
	// Nil: the store lives in memory only.
	Journal journal.Journal
	// SnapshotEvery is how many messages a journaled store applies between
	// snapshots. Zero value means DefaultSnapshotEvery (1,000).
	SnapshotEvery uint64
	// Retention is how many messages a journaled store keeps behind its
	// latest snapshot for delta resyncs. Zero value means DefaultRetention
	// (10,000).
	Retention uint64
	// PassivateAfter, when positive, stops the store after it has had no
	// client and no message for that long (a journaled store snapshots
	// first). Zero value: never.
	PassivateAfter time.Duration
	// Passivate, when set, is asked before the store passivates; false
	// keeps it running (a registry says false when a connection is on its
	// way).
	Passivate func() bool
	// Epoch names the history of a store without a journal (PROTOCOL.md).
	// Zero value: a new random epoch each time the actor starts. A
	// journaled store takes its epoch from the journal.
	Epoch string
	// Logger receives the store's logs. Nil discards them.
	Logger *slog.Logger
	// OnStop, when set, is called on the actor once it and its client
	// actors have stopped.
	OnStop func()
	// Observer, when set, is told how long each apply took and which
	// error frames were sent (gateway.Metrics is one).
	Observer Observer
}

// Observer receives a store's measurements. Its methods run on the store's
// actor and must be quick and safe for concurrent use (many stores share
// one).
type Observer interface {
	// ObserveApply records the time one client message took to apply:
	// decode, update, encode and queue the acknowledgement and broadcast.
	ObserveApply(d time.Duration)
	// CountError counts one error frame with its PROTOCOL.md code.
	CountError(code string)
}

func (c Config) withDefaults() Config {
	if c.OutboxBytes <= 0 {
		c.OutboxBytes = DefaultOutboxBytes
	}
	if c.SnapshotEvery == 0 {
		c.SnapshotEvery = DefaultSnapshotEvery
	}
	if c.Retention == 0 {
		c.Retention = DefaultRetention
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Attach attaches a client connection served in this process: the store
// spawns a child actor that owns Sink. An Attach for a client id that is
// already attached replaces the old connection (a reconnect), unless it
// names the same non-zero ConnectionID (then it changes nothing). It carries a
// function, so it never crosses nodes; messages.Connect is its remote form.
type Attach struct {
	ClientID string
	// ConnectionID tells this connection apart from others of the same
	// client id (see messages.Disconnect); 0 means "not given".
	ConnectionID uint64
	Sink         Sink
}

// Hook is an on-message hook: it gets the applied message, the model after
// it and the sender's client id. It runs on the store's actor, one call at a
// time, in sequence order, once the message is durable, and must not block;
// a panic in it is logged and the store keeps serving.
type Hook[M, Msg any] func(msg Msg, model M, clientID string)

// AddHook adds a hook to a store actor; hooks run in the order added.
type AddHook[M, Msg any] struct{ Hook Hook[M, Msg] }

// GetState asks a store actor for its state; it responds with a State.
type GetState struct{}

// State is a store actor's acknowledged model, the sequence of the last
// acknowledged message and its epoch; Err is set when the store cannot serve
// (its journal could not be loaded).
type State[M any] struct {
	Model    M
	Sequence uint64
	Epoch    string
	Err      error
}

// StoreProps returns the props of a store actor running st, encoding with
// ser. The actor takes ClientFrame, Attach, Disconnect, AddHook and GetState.
func StoreProps[M, Msg any](st store.Store[M, Msg], ser transport.Serialiser[M, Msg], cfg Config) *actor.Props {
	cfg = cfg.withDefaults()
	logger := cfg.Logger
	if cfg.Name != "" {
		logger = logger.With(slog.String("store", cfg.Name))
	}
	supervisor := actor.NewOneForOneStrategy(0, 0, func(reason any) actor.Directive {
		logger.Error("client connection panicked; stopping it", slog.Any("panic", reason))
		return actor.StopDirective
	})
	waiting := &backlog{}
	hooks := &hookList[M, Msg]{} // kept across restarts
	return actor.PropsFromProducer(func() actor.Actor {
		return &storeActor[M, Msg]{st: st, ser: ser, cfg: cfg, logger: logger, backlog: waiting, hooks: hooks}
	}, actor.WithSupervisor(supervisor), actor.WithMailbox(actor.Unbounded(waiting)))
}

type client struct {
	id           string
	connectionID uint64
	pid          *actor.PID
	out          *outbox
	format       transport.Format
}

// storeActor applies a store's messages one at a time. All its fields are
// owned by the actor (no locks), but for writes, which its writer goroutine
// reports back as messages.
//
// A message is applied at once (model, sequence) but held: its
// acknowledgement, broadcast and hooks wait until the journal holds it
// (group commit: the messages that arrive while one write is in flight go
// in the next). "durable" is what has been released; snapshots and resyncs
// only ever show durable state.
type storeActor[M, Msg any] struct {
	st      store.Store[M, Msg]
	ser     transport.Serialiser[M, Msg]
	cfg     Config
	logger  *slog.Logger
	backlog *backlog

	// Clients whose actors must be told to drain, and how many messages
	// were handled since they last were.
	kicks   []*client
	handled int

	model    M                          // with every applied message
	sequence uint64                     // of the last applied message
	applied  map[string]journal.Applied // last applied message, by client id
	epoch    string
	failed   error // the store could not load: it serves nothing

	held           []held[M, Msg]             // applied, not yet released
	durableModel   M                          // after the last released message
	durableSeq     uint64                     // of the last released message
	durableApplied map[string]journal.Applied // last released message, by client id

	journal     journal.Journal  // cfg.Journal, or this activation's claim of it
	batch       []journal.Record // applied, to be written
	writing     bool             // a write is in flight
	writes      sync.WaitGroup   // the writer goroutine
	snapshotSeq uint64           // of the latest snapshot written or being written
	snapshotDue bool             // a snapshot goes with the next write
	fenced      bool             // a newer activation owns the journal

	clients  map[string]*client // by client id
	children map[string]*client // by child actor id
	hooks    *hookList[M, Msg]

	childProps *actor.Props // shared by every client actor
	nextChild  *clientActor // what childProps produces next
	snapshot   [3][]byte    // encoded snapshot frame by format; nil once stale
}

// hookList holds a store's hooks, shared by the actor's incarnations (it
// is only touched on the actor, one incarnation at a time).
type hookList[M, Msg any] struct{ list []Hook[M, Msg] }

// held is a message applied but not yet released, or an acknowledgement
// of an earlier message waiting for it to be durable.
type held[M, Msg any] struct {
	sequence uint64 // released once the journal holds this sequence
	clientID string
	id       uint64 // the client's message id
	msg      Msg
	model    M    // after msg
	reack    bool // only acknowledge id again, with ackSeq
	ackSeq   uint64
}

// Receive implements actor.Actor. Without a journal it recovers from any
// panic, so that a restart never resets the model; with one, a panic
// restarts the actor, which reloads from the journal.
func (s *storeActor[M, Msg]) Receive(ctx actor.Context) {
	defer func() {
		if r := recover(); r != nil {
			if s.cfg.Journal != nil {
				s.logger.Error("store: internal fault; restarting from the journal", slog.Any("panic", r))
				panic(r)
			}
			s.logger.Error("store: internal fault; message dropped",
				slog.Any("panic", r), slog.String("stack", string(debug.Stack())))
		}
		s.handled++
		if len(s.kicks) > 0 && (s.handled >= flushEvery || !s.backlog.more()) {
			s.flush(ctx)
		}
	}()
	switch m := ctx.Message().(type) {
	case *actor.Started:
		s.start(ctx)
	case *messages.ClientFrame:
		s.handleFrame(ctx, m.ClientId, m.Data)
	case *Attach:
		s.attach(ctx, m)
	case *messages.Disconnect:
		if c := s.clients[m.ClientId]; c != nil && (m.ConnectionId == 0 || m.ConnectionId == c.connectionID) {
			s.detach(ctx, c, false)
		}
	case *messages.Overflowed:
		if c := s.clients[m.ClientId]; c != nil && (m.ConnectionId == 0 || m.ConnectionId == c.connectionID) {
			s.resend(c)
		}
	case *writeDone:
		s.written(ctx, m)
	case *actor.ReceiveTimeout:
		s.idle(ctx)
	case *actor.Terminated:
		if c := s.children[m.Who.Id]; c != nil {
			s.forget(c)
		}
	case *AddHook[M, Msg]:
		if m.Hook != nil {
			s.hooks.list = append(s.hooks.list, m.Hook)
		}
	case *GetState:
		ctx.Respond(&State[M]{Model: s.durableModel, Sequence: s.durableSeq, Epoch: s.epoch, Err: s.failed})
	case *actor.Restarting:
		s.letGoOfClients()
		s.writes.Wait()     // the next incarnation loads what this one wrote
		s.backlog.n.Add(-1) // the message that failed was counted in, never out
	case *actor.Stopped:
		s.letGoOfClients()
		s.writes.Wait()
		s.handOff("stopping")
		if s.cfg.OnStop != nil {
			s.cfg.OnStop()
		}
	}
}

func (s *storeActor[M, Msg]) start(ctx actor.Context) {
	s.clients = make(map[string]*client)
	s.children = make(map[string]*client)
	s.childProps = actor.PropsFromProducer(func() actor.Actor { return s.nextChild },
		actor.WithMailbox(actor.UnboundedLockfree())) // idle clients hold no queue buffer
	if s.cfg.PassivateAfter > 0 {
		ctx.SetReceiveTimeout(s.cfg.PassivateAfter)
	}
	if err := s.load(); err != nil {
		s.failed = err
		s.logger.Error("store: cannot load; it refuses every client until it passivates", slog.Any("error", err))
	}
}

func newEpoch() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand documents it)
	return hex.EncodeToString(b[:])
}

func (s *storeActor[M, Msg]) attach(ctx actor.Context, m *Attach) {
	if old := s.clients[m.ClientID]; old != nil {
		if m.ConnectionID != 0 && m.ConnectionID == old.connectionID {
			return // attached already (an Attach repeated by a cluster node)
		}
		s.detach(ctx, old, true)
	}
	c := &client{
		id:           m.ClientID,
		connectionID: m.ConnectionID,
		out:          newOutbox(s.cfg.OutboxBytes),
		format:       transport.FormatJSON,
	}
	child := &clientActor{
		clientID:     m.ClientID,
		connectionID: m.ConnectionID,
		out:          c.out,
		sink:         m.Sink,
		logger:       s.logger,
	}
	// Spawning calls the producer synchronously, on this actor: it hands
	// over nextChild. Children are never restarted (the supervisor stops
	// them), so the producer runs once per child and one Props serves all.
	s.nextChild = child
	c.pid = ctx.SpawnPrefix(s.childProps, "client")
	s.nextChild = nil
	s.clients[c.id] = c
	s.children[c.pid.Id] = c
	if s.failed != nil {
		s.sendError(ctx, c, transport.Errorf(transport.CodeInternal, "store %s is unavailable: %v", s.cfg.Name, s.failed), 0)
		if c.out.finish() == pushScheduled {
			s.kicks = append(s.kicks, c)
		}
	}
}

// detach stops a client's child and forgets the client. letGo tells the
// connection that the store dropped it (its Sink gets nil, and a gateway
// closes the socket so that the client reconnects); a client that asked to
// leave is not told.
func (s *storeActor[M, Msg]) detach(ctx actor.Context, c *client, letGo bool) {
	c.out.close(letGo)
	ctx.Stop(c.pid)
	s.forget(c)
}

func (s *storeActor[M, Msg]) forget(c *client) {
	delete(s.children, c.pid.Id)
	if s.clients[c.id] == c {
		delete(s.clients, c.id)
	}
}

// letGoOfClients closes every client's outbox telling the connection that
// the store let it go; the client actors stop with the store.
func (s *storeActor[M, Msg]) letGoOfClients() {
	for _, c := range s.clients {
		c.out.close(true)
	}
}

// ctxBackground is the context of journal calls: a store's journal
// operations are bounded by the journal itself.
var ctxBackground = context.Background()
