package actors

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/lily-go/lily/messages"
	"github.com/lily-go/lily/store"
	"github.com/lily-go/lily/transport"
)

// DefaultOutboxBytes is the default bound of one client's outbox.
const DefaultOutboxBytes = 1 << 20

// Config configures a store actor. The zero value works.
type Config struct {
	// Name names the store in logs. Zero value: "".
	Name string
	// OutboxBytes bounds the encoded frames queued for one client, in bytes.
	// Zero value means DefaultOutboxBytes (1 MiB).
	OutboxBytes int
	// Epoch names the store's history (PROTOCOL.md). Zero value: a new
	// random epoch each time the actor starts, as for an in-memory store.
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
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Attach attaches a client connection served in this process: the store
// spawns a child actor that owns Sink. An Attach for a client id that is
// already attached replaces the old connection (a reconnect). It carries a
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
// time, in sequence order, and must not block; a panic in it is logged and
// the store keeps serving.
type Hook[M, Msg any] func(msg Msg, model M, clientID string)

// AddHook adds a hook to a store actor; hooks run in the order added.
type AddHook[M, Msg any] struct{ Hook Hook[M, Msg] }

// GetState asks a store actor for its state; it responds with a State.
type GetState struct{}

// State is a store actor's model, the sequence of the last applied message
// and its epoch.
type State[M any] struct {
	Model    M
	Sequence uint64
	Epoch    string
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
	return actor.PropsFromProducer(func() actor.Actor {
		return &storeActor[M, Msg]{st: st, ser: ser, cfg: cfg, logger: logger, backlog: waiting}
	}, actor.WithSupervisor(supervisor), actor.WithMailbox(actor.Unbounded(waiting)))
}

type client struct {
	id           string
	connectionID uint64
	pid          *actor.PID
	out          *outbox
	format       transport.Format
}

type appliedID struct {
	id       uint64
	sequence uint64
}

// storeActor applies a store's messages one at a time. All its fields are
// owned by the actor: no locks.
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

	model    M
	sequence uint64
	epoch    string
	clients  map[string]*client   // by client id
	children map[string]*client   // by child actor id
	applied  map[string]appliedID // last applied message id, by client id
	hooks    []Hook[M, Msg]

	childProps *actor.Props // shared by every client actor
	nextChild  *clientActor // what childProps produces next
	snapshot   [3][]byte    // encoded snapshot frame by format; nil once stale
}

// Receive implements actor.Actor. It recovers from any panic so that the
// store's state is never reset by a restart; the message is then dropped.
func (s *storeActor[M, Msg]) Receive(ctx actor.Context) {
	defer func() {
		if r := recover(); r != nil {
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
		s.start()
	case *messages.ClientFrame:
		s.handleFrame(ctx, m.ClientId, m.Data)
	case *Attach:
		s.attach(ctx, m)
	case *messages.Disconnect:
		if c := s.clients[m.ClientId]; c != nil && (m.ConnectionId == 0 || m.ConnectionId == c.connectionID) {
			s.detach(ctx, c)
		}
	case *messages.Overflowed:
		if c := s.clients[m.ClientId]; c != nil && (m.ConnectionId == 0 || m.ConnectionId == c.connectionID) {
			s.resend(ctx, c)
		}
	case *actor.Terminated:
		if c := s.children[m.Who.Id]; c != nil {
			s.forget(c)
		}
	case *AddHook[M, Msg]:
		if m.Hook != nil {
			s.hooks = append(s.hooks, m.Hook)
		}
	case *GetState:
		ctx.Respond(&State[M]{Model: s.model, Sequence: s.sequence, Epoch: s.epoch})
	case *actor.Stopped:
		for _, c := range s.clients {
			c.out.close()
		}
		if s.cfg.OnStop != nil {
			s.cfg.OnStop()
		}
	}
}

func (s *storeActor[M, Msg]) start() {
	s.model = s.st.Initial()
	s.sequence = 0
	s.epoch = s.cfg.Epoch
	if s.epoch == "" {
		s.epoch = newEpoch()
	}
	s.clients = make(map[string]*client)
	s.children = make(map[string]*client)
	s.applied = make(map[string]appliedID)
	s.snapshot = [3][]byte{}
	s.childProps = actor.PropsFromProducer(func() actor.Actor { return s.nextChild },
		actor.WithMailbox(actor.UnboundedLockfree())) // idle clients hold no queue buffer
}

func newEpoch() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand documents it)
	return hex.EncodeToString(b[:])
}

func (s *storeActor[M, Msg]) attach(ctx actor.Context, m *Attach) {
	if old := s.clients[m.ClientID]; old != nil {
		s.detach(ctx, old)
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
}

// detach stops a client's child and forgets the client.
func (s *storeActor[M, Msg]) detach(ctx actor.Context, c *client) {
	c.out.close()
	ctx.Stop(c.pid)
	s.forget(c)
}

func (s *storeActor[M, Msg]) forget(c *client) {
	c.out.close()
	delete(s.children, c.pid.Id)
	if s.clients[c.id] == c {
		delete(s.clients, c.id)
	}
}

func (s *storeActor[M, Msg]) handleFrame(ctx actor.Context, clientID string, data []byte) {
	format := transport.DetectFormat(data)
	c := s.clients[clientID]
	if c != nil {
		c.format = format
	}
	f, err := transport.Decode(data, format)
	if err != nil {
		s.sendError(ctx, c, err, 0)
		return
	}
	switch f.Type {
	case transport.TypeClientMessage:
		if s.cfg.Observer != nil {
			start := time.Now()
			defer func() { s.cfg.Observer.ObserveApply(time.Since(start)) }()
		}
		s.apply(ctx, c, clientID, f, format)
	case transport.TypeResync:
		// An in-memory store keeps no history, so every resync gets a
		// snapshot (PROTOCOL.md allows it for a delta request too).
		if c != nil {
			s.push(ctx, c, s.snapshotFrame(c.format), kindReliable)
		}
	default:
		s.sendError(ctx, c, transport.Errorf(transport.CodeBadFrame, "a client may not send %q frames", f.Type), 0)
	}
}

func (s *storeActor[M, Msg]) apply(ctx actor.Context, c *client, clientID string, f transport.Frame, format transport.Format) {
	if f.ID != 0 {
		if last, ok := s.applied[clientID]; ok && f.ID <= last.id {
			// Already applied: acknowledge again, apply nothing.
			seq := uint64(0)
			if f.ID == last.id {
				seq = last.sequence
			}
			s.sendFrame(ctx, c, transport.Frame{Type: transport.TypeAcknowledge, Sequence: seq, ID: f.ID}, kindReliable)
			return
		}
	}
	msg, err := s.decodeMessage(f.Payload, format)
	if err != nil {
		s.sendError(ctx, c, err, f.ID)
		return
	}
	next, err := s.st.Apply(s.model, msg)
	if err != nil {
		s.logger.Warn("message rejected", slog.String("client_id", clientID), slog.Any("error", err))
		var pe *store.PanicError
		if errors.As(err, &pe) && s.logger.Enabled(context.Background(), slog.LevelDebug) {
			s.logger.Debug("update panic stack", slog.String("stack", string(pe.Stack)))
		}
		s.sendError(ctx, c, &transport.Error{Code: transport.CodeRejected, Reason: err.Error()}, f.ID)
		return
	}
	s.model = next
	s.sequence++
	s.snapshot = [3][]byte{}
	if f.ID != 0 {
		s.applied[clientID] = appliedID{id: f.ID, sequence: s.sequence}
	}
	if c != nil {
		kind := kindReliable
		if f.ID != 0 {
			kind = kindAck // implies the acknowledgement of the client's earlier ids
		}
		s.sendFrame(ctx, c, transport.Frame{Type: transport.TypeAcknowledge, Sequence: s.sequence, ID: f.ID}, kind)
	}
	s.broadcast(ctx, clientID, msg)
	s.runHooks(msg, clientID)
}

// broadcast sends a server_message to every client but the sender, encoding
// it once per envelope format in use.
func (s *storeActor[M, Msg]) broadcast(ctx actor.Context, sender string, msg Msg) {
	var frames [3][]byte
	for id, c := range s.clients {
		if id == sender {
			continue
		}
		frame := frames[c.format]
		if frame == nil {
			payload, err := s.encodeMessage(msg, c.format)
			if err == nil {
				frame, err = transport.Encode(transport.Frame{Type: transport.TypeServerMessage, Sequence: s.sequence, Payload: payload}, c.format)
			}
			if err != nil {
				s.logger.Error("cannot encode a server_message; the client will get a snapshot",
					slog.String("format", c.format.String()), slog.Any("error", err))
				if c.out.overflow() == pushScheduled {
					s.kicks = append(s.kicks, c)
				}
				continue
			}
			frames[c.format] = frame
		}
		s.push(ctx, c, frame, kindDroppable)
	}
}

func (s *storeActor[M, Msg]) runHooks(msg Msg, clientID string) {
	for _, hook := range s.hooks {
		func() {
			defer func() {
				if r := recover(); r != nil {
					s.logger.Error("on-message hook panicked; the store keeps serving",
						slog.String("client_id", clientID), slog.Uint64("seq", s.sequence), slog.Any("panic", r))
				}
			}()
			hook(msg, s.model, clientID)
		}()
	}
}

// resend answers an outbox overflow with a fresh snapshot.
func (s *storeActor[M, Msg]) resend(ctx actor.Context, c *client) {
	frame := s.snapshotFrame(c.format)
	if frame == nil {
		return
	}
	if c.out.pushSnapshot(frame) == pushScheduled {
		s.kicks = append(s.kicks, c)
	}
}

// snapshotFrame returns the encoded snapshot frame of the current model,
// cached until the next apply. It returns nil if the model cannot be encoded.
func (s *storeActor[M, Msg]) snapshotFrame(format transport.Format) []byte {
	if cached := s.snapshot[format]; cached != nil {
		return cached
	}
	state, err := s.encodeModel(format)
	var frame []byte
	if err == nil {
		frame, err = transport.Encode(transport.Frame{Type: transport.TypeSnapshot, Sequence: s.sequence, State: state, Epoch: s.epoch}, format)
	}
	if err != nil {
		s.logger.Error("cannot encode a snapshot", slog.String("format", format.String()), slog.Any("error", err))
		return nil
	}
	s.snapshot[format] = frame
	return frame
}

func (s *storeActor[M, Msg]) sendError(ctx actor.Context, c *client, err error, id uint64) {
	var te *transport.Error
	if !errors.As(err, &te) {
		te = &transport.Error{Code: transport.CodeInternal, Reason: err.Error()}
	}
	if s.cfg.Observer != nil {
		s.cfg.Observer.CountError(string(te.Code))
	}
	s.sendFrame(ctx, c, transport.Frame{Type: transport.TypeError, Code: te.Code, Reason: te.Reason, ID: id}, kindReliable)
}

func (s *storeActor[M, Msg]) sendFrame(ctx actor.Context, c *client, f transport.Frame, kind frameKind) {
	if c == nil {
		return
	}
	data, err := transport.Encode(f, c.format)
	if err != nil {
		s.logger.Error("cannot encode a frame", slog.String("type", f.Type.String()), slog.Any("error", err))
		return
	}
	s.push(ctx, c, data, kind)
}

func (s *storeActor[M, Msg]) push(ctx actor.Context, c *client, data []byte, kind frameKind) {
	if data == nil {
		return
	}
	switch c.out.push(data, kind) {
	case pushScheduled:
		s.kicks = append(s.kicks, c)
	case pushCutOff:
		s.logger.Warn("client cut off: its outbox is full of frames that cannot be dropped",
			slog.String("client_id", c.id), slog.Int("limit_bytes", s.cfg.OutboxBytes))
		s.detach(ctx, c)
	}
}

// flush tells the actors of the clients that have new frames to drain them.
func (s *storeActor[M, Msg]) flush(ctx actor.Context) {
	for i, c := range s.kicks {
		ctx.Send(c.pid, drainOutbox{})
		s.kicks[i] = nil
	}
	s.kicks = s.kicks[:0]
	s.handled = 0
}

// The serialiser is application code: a panic in it is bad input, not a
// reason to lose the store.

func (s *storeActor[M, Msg]) decodeMessage(data []byte, format transport.Format) (msg Msg, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = transport.Errorf(transport.CodeBadPayload, "serialiser panicked: %v", r)
		}
	}()
	msg, err = s.ser.DecodeMessage(data, format)
	if err != nil {
		var te *transport.Error
		if !errors.As(err, &te) {
			err = transport.Errorf(transport.CodeBadPayload, "%v", err)
		}
	}
	return msg, err
}

func (s *storeActor[M, Msg]) encodeMessage(msg Msg, format transport.Format) (data []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("serialiser panicked: %v", r)
		}
	}()
	return s.ser.EncodeMessage(msg, format)
}

func (s *storeActor[M, Msg]) encodeModel(format transport.Format) (data []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("serialiser panicked: %v", r)
		}
	}()
	return s.ser.EncodeModel(s.model, format)
}
