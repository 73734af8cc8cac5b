package cluster

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	protocluster "github.com/asynkron/protoactor-go/cluster"

	"github.com/lily-go/lily/actors"
	"github.com/lily-go/lily/messages"
	"github.com/lily-go/lily/transport"
)

// DefaultConnectTimeout bounds Node.Connect when its ctx has no earlier
// deadline.
const DefaultConnectTimeout = 10 * time.Second

// DefaultReattachTimeout is Config.ReattachTimeout's zero value.
const DefaultReattachTimeout = 15 * time.Second

// DefaultAnswerTimeout is Config.AnswerTimeout's zero value.
const DefaultAnswerTimeout = 5 * time.Second

// attemptTimeout bounds one attach request; attach tries again (with
// backoff) until its deadline, so that a request lost with a dead node
// does not use the whole deadline.
const attemptTimeout = 2 * time.Second

// ErrUnknownKind is returned by Node.Connect for a kind the node does not
// serve.
var ErrUnknownKind = errors.New("cluster: unknown store kind")

// HasKind reports whether the node serves stores of kind (it implements
// gateway.Resolver with Connect).
func (n *Node) HasKind(kind string) bool {
	_, ok := n.storeKinds[kind]
	return ok
}

// Connections returns the number of connections attached through Connect
// on this node and not disconnected yet (let-go ones included until the
// gateway disconnects them).
func (n *Node) Connections() int { return int(n.conns.Load()) }

// Connect attaches a client connection to store kind/name, wherever in the
// cluster the store's grain lives (activating it on first use). It spawns
// a connection actor on this node that owns send and a bounded outbox;
// the store's child for the client sends it the client's frames. incoming
// sends one client frame to the store through the connection actor;
// disconnect detaches the connection and stops the connection actor.
//
// When the store's activation goes away (its node left or died, or the
// store moved to a node that joined), the connection actor re-attaches to
// the store's next activation without closing the socket: it sends the
// new activation the client's messages that had no answer yet (the store
// applies each id once) and a resync, so the client catches up. If that
// fails within Config.ReattachTimeout, or when the store lets the
// connection go, send is called with nil: the gateway closes the socket
// (1012) and the client reconnects (see doc.go).
func (n *Node) Connect(ctx context.Context, kind, name, clientID string, send func(frames [][]byte) error) (incoming func(frame []byte), disconnect func(), err error) {
	if !n.HasKind(kind) {
		return nil, nil, fmt.Errorf("cluster: connect %s/%s: %w", kind, name, ErrUnknownKind)
	}
	if !transport.ValidName(name) {
		return nil, nil, fmt.Errorf("cluster: connect %s/%s: name is not 1-128 chars of [A-Za-z0-9._-]", kind, name)
	}
	if !transport.ValidClientID(clientID) {
		return nil, nil, fmt.Errorf("cluster: connect %s/%s: client id %q is not 1-64 chars of [A-Za-z0-9_-]", kind, name, clientID)
	}
	if !n.Ready() {
		return nil, nil, fmt.Errorf("cluster: connect %s/%s: node is not ready", kind, name)
	}
	ctx, cancel := context.WithTimeout(ctx, DefaultConnectTimeout)
	defer cancel()

	root := n.system.Root
	limit := n.cfg.Stores.OutboxBytes
	if limit <= 0 {
		limit = actors.DefaultOutboxBytes
	}
	ca := &connActor{
		node: n, kind: kind, name: name, clientID: clientID, connectionID: newConnectionID(), limit: limit,
		format: transport.FormatJSON, // until the client sends a frame
		q:      &connQueue{limit: limit, send: send},
	}
	conn := root.SpawnPrefix(actor.PropsFromProducer(func() actor.Actor { return ca }), "conn")
	store, err := n.attach(ctx, kind, name, clientID, conn, ca.connectionID)
	if err != nil {
		// If the store attached it after all, it detaches the client
		// when it sees the connection actor stop.
		root.Stop(conn)
		return nil, nil, err
	}
	root.Send(conn, &attached{store: store})

	incoming = func(frame []byte) {
		root.Send(conn, &fromClient{frame: frame})
	}
	n.conns.Add(1)
	var once sync.Once
	disconnect = func() {
		once.Do(func() {
			n.conns.Add(-1)
			root.Send(conn, leave{}) // after the frames sent before it
		})
	}
	return incoming, disconnect, nil
}

// attach asks store kind/name's grain, wherever it lives, to attach the
// connection actor conn for clientID, and returns the grain's PID. Every
// attempt is a request with a timeout, a retry count and a millisecond
// backoff; attach tries again until ctx ends (a node that is leaving
// refuses until the others see it gone; a request to a node that just
// died times out).
func (n *Node) attach(ctx context.Context, kind, name, clientID string, conn *actor.PID, connectionID uint64) (*actor.PID, error) {
	for attempt := 0; ; attempt++ {
		store, err := n.attachOnce(ctx, kind, name, &messages.Connect{ClientId: clientID, Connection: conn, ConnectionId: connectionID})
		if err == nil {
			return store, nil
		}
		if d, ok := ctx.Deadline(); ctx.Err() != nil || (ok && time.Until(d) < 100*time.Millisecond) {
			return nil, fmt.Errorf("cluster: connect %s/%s: %w", kind, name, err)
		}
		n.c.PidCache.Remove(name, kind)
		retryBackoff(attempt)
	}
}

// attachOnce makes one attach request.
func (n *Node) attachOnce(ctx context.Context, kind, name string, m *messages.Connect) (*actor.PID, error) {
	timeout := attemptTimeout
	if d, ok := ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(d))
	}
	if timeout <= 0 {
		return nil, context.DeadlineExceeded
	}
	type result struct {
		res any
		err error
	}
	start := time.Now()
	done := make(chan result, 1)
	go func() {
		// Request blocks without a context: ctx is watched below.
		res, err := n.c.Request(name, kind, m,
			protocluster.WithTimeout(timeout),
			protocluster.WithRetryCount(20),
			protocluster.WithRetryAction(retryBackoff))
		done <- result{res, err}
	}()
	var r result
	select {
	case r = <-done:
	case <-ctx.Done():
		r.err = ctx.Err()
	}
	var store *actor.PID
	if r.err == nil {
		switch m := r.res.(type) {
		case *messages.Connected:
			if m.Error != "" {
				r.err = errors.New(m.Error)
			} else if store = m.Store; store == nil {
				r.err = errors.New("no store in the answer")
			}
		default:
			r.err = fmt.Errorf("unexpected answer %T", r.res)
		}
	}
	if observe := n.cfg.ObserveRequest; observe != nil {
		observe(store != nil && store.Address != n.system.Address(), time.Since(start), r.err)
	}
	return store, r.err
}

// newConnectionID returns a random non-zero connection id: ids are made on
// every node, so a counter would repeat across nodes.
func newConnectionID() uint64 {
	var b [8]byte
	for {
		_, _ = rand.Read(b[:])
		if id := binary.LittleEndian.Uint64(b[:]); id != 0 {
			return id
		}
	}
}

// The connection actor's own messages (local only: they never cross
// nodes).
type (
	// attached tells a connection actor its store's activation.
	attached struct{ store *actor.PID }
	// checkAnswers: time to look for a client message left unanswered
	// for Config.AnswerTimeout.
	checkAnswers struct{}
	// reattached answers a re-attach: the store's new activation, or err.
	reattached struct {
		store *actor.PID
		err   error
	}
	// fromClient carries one frame of the client.
	fromClient struct{ frame []byte }
	// leave: the client left (the gateway disconnected it).
	leave struct{}
)

// connActor is the connection actor: it lives on the node that holds the
// client's socket, sends the client's frames to the store's activation,
// receives the store's frames in Deliver messages and queues them for its
// writer goroutine, which calls send. It watches the activation and, when
// it goes away, re-attaches to the store's next one.
//
// To re-attach without losing anything it keeps the client's messages
// that have an id and no answer yet (an acknowledgement of id N answers
// every id up to N), the client's format and whether it asks for delta
// resyncs, and what it queued for the client last: the epoch and sequence
// of the latest snapshot, synced or acknowledgement (decoded as they pass:
// they are this client's own), and the latest server message (decoded
// only when re-attaching, so that broadcasts cost no decoding).
type connActor struct {
	node         *Node
	kind, name   string
	clientID     string
	connectionID uint64
	limit        int // bytes of kept messages, and of frames held while moving
	q            *connQueue

	store     *actor.PID // nil while moving
	moving    bool       // re-attaching: the client's frames wait
	resyncing bool       // after an overflow, until the snapshot arrives
	letGo     bool

	unanswered      []sentMessage // sent to the store, no answer yet, in order
	unansweredBytes int
	answerTimer     *time.Timer // runs while unanswered is not empty
	untracked       bool        // a message with an id did not fit unanswered
	waiting         []sentMessage
	waitingBytes    int

	format     transport.Format // of the client's latest frame
	delta      bool             // the client asked for a delta resync
	seq        uint64           // of the latest snapshot, synced or acknowledgement
	epoch      string
	lastServer []byte // the latest server message queued after seq
}

// sentMessage is one client frame with its message id (0: none), and
// when it was last sent to a store.
type sentMessage struct {
	frame []byte
	id    uint64
	at    time.Time
}

// Receive implements actor.Actor.
func (c *connActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *attached:
		c.store = m.store
		ctx.Watch(m.store)
	case *fromClient:
		c.fromClient(ctx, m.frame)
	case leave:
		if c.store != nil && !c.letGo {
			ctx.Send(c.store, &messages.Disconnect{ClientId: c.clientID, ConnectionId: c.connectionID})
		}
		ctx.Stop(ctx.Self())
	case *messages.Deliver:
		if len(m.Frames) == 0 {
			c.release(ctx) // the store let the connection go
			return
		}
		for _, f := range m.Frames {
			c.deliver(ctx, f)
		}
	case *actor.Terminated:
		if c.store != nil && m.Who.Equal(c.store) {
			c.reattach(ctx) // the store's activation is gone
		}
	case *reattached:
		c.reattached(ctx, m)
	case checkAnswers:
		c.checkAnswers(ctx)
	case *actor.Stopped:
		if c.answerTimer != nil {
			c.answerTimer.Stop()
		}
		c.q.finish(false)
	}
}

// fromClient sends one client frame to the store, or holds it while the
// connection re-attaches.
func (c *connActor) fromClient(ctx actor.Context, frame []byte) {
	if c.letGo {
		return
	}
	c.format = transport.DetectFormat(frame)
	m := sentMessage{frame: frame}
	// Decoded once here for its id (a client's layout need not
	// start with "type"); the store decodes it again, on its own node.
	if f, err := transport.Decode(frame, c.format); err == nil {
		m.id = f.ID
		c.delta = c.delta || (f.Type == transport.TypeResync && f.Delta)
	}
	if c.moving {
		c.waiting = append(c.waiting, m)
		if c.waitingBytes += len(frame); c.waitingBytes > c.limit {
			c.release(ctx) // the client resends once it reconnects
		}
		return
	}
	c.send(ctx, m)
}

// send sends a client frame to the store, keeping a message with an id
// until it is answered.
func (c *connActor) send(ctx actor.Context, m sentMessage) {
	if m.id != 0 {
		if c.unansweredBytes+len(m.frame) <= c.limit {
			m.at = time.Now()
			c.unanswered = append(c.unanswered, m)
			c.unansweredBytes += len(m.frame)
			c.watchAnswers(ctx, c.node.cfg.AnswerTimeout)
		} else {
			c.untracked = true
		}
	}
	ctx.Send(c.store, &messages.ClientFrame{ClientId: c.clientID, Data: m.frame})
}

// watchAnswers has checkAnswers come after d, unless it is on its way.
func (c *connActor) watchAnswers(ctx actor.Context, d time.Duration) {
	if c.answerTimer != nil {
		return
	}
	self, root := ctx.Self(), ctx.ActorSystem().Root
	c.answerTimer = time.AfterFunc(d, func() { root.Send(self, checkAnswers{}) })
}

// checkAnswers re-attaches when the oldest unanswered message has waited
// Config.AnswerTimeout: Proto.Actor delivers at most once between nodes,
// and a message, its answer or the store's record of the connection (its
// watch of the connection actor fires when the connection between the
// nodes breaks, as when a node restarts on the same address) may be lost
// while both nodes live. Re-attaching resends what is unanswered (the store
// applies each id once) with a resync.
func (c *connActor) checkAnswers(ctx actor.Context) {
	c.answerTimer = nil
	if c.letGo || c.moving || len(c.unanswered) == 0 {
		return // reattached restarts the watch
	}
	timeout := c.node.cfg.AnswerTimeout
	if waited := time.Since(c.unanswered[0].at); waited < timeout {
		c.watchAnswers(ctx, timeout-waited)
		return
	}
	c.node.log.Info("no answer from the store; re-attaching", slog.String("store", c.kind+"/"+c.name),
		slog.String("client_id", c.clientID), slog.Uint64("id", c.unanswered[0].id), slog.Duration("waited", time.Since(c.unanswered[0].at)))
	c.reattach(ctx)
}

// answered forgets the kept messages an acknowledgement (upTo) or an
// error (only) answers.
func (c *connActor) answered(id uint64, upTo bool) {
	kept := c.unanswered[:0]
	for _, m := range c.unanswered {
		if m.id == id || (upTo && m.id < id) {
			c.unansweredBytes -= len(m.frame)
			continue
		}
		kept = append(kept, m)
	}
	clear(c.unanswered[len(kept):])
	c.unanswered = kept
	if len(kept) == 0 {
		c.untracked = false // nothing is in flight any more
	}
}

// release lets the connection go: the writer writes what is queued, then
// calls send(nil).
func (c *connActor) release(ctx actor.Context) {
	if c.letGo {
		return
	}
	c.letGo = true
	c.q.finish(true)
	ctx.Stop(ctx.Self())
}

// reattach starts re-attaching to the store's next activation. A
// connection that could not keep one of its unanswered messages is let go
// instead: its client resends everything when it reconnects.
func (c *connActor) reattach(ctx actor.Context) {
	if c.letGo || c.moving {
		return
	}
	if c.untracked {
		c.release(ctx)
		return
	}
	ctx.Unwatch(c.store)
	c.store, c.moving = nil, true
	n, self, root := c.node, ctx.Self(), ctx.ActorSystem().Root
	kind, name, clientID, connectionID := c.kind, c.name, c.clientID, c.connectionID
	n.log.Debug("store activation gone; re-attaching", slog.String("store", kind+"/"+name), slog.String("client_id", clientID))
	go func() {
		attachCtx, cancel := context.WithTimeout(context.Background(), n.cfg.ReattachTimeout)
		defer cancel()
		n.c.PidCache.Remove(name, kind)
		store, err := n.attach(attachCtx, kind, name, clientID, self, connectionID)
		root.Send(self, &reattached{store: store, err: err})
	}()
}

// reattached continues on the store's new activation: it resends the
// unanswered messages, asks for what the client missed, then sends the
// frames that waited.
func (c *connActor) reattached(ctx actor.Context, m *reattached) {
	if c.letGo || !c.moving {
		return
	}
	if m.err != nil {
		c.node.log.Info("cannot re-attach a connection; letting it go", slog.String("store", c.kind+"/"+c.name),
			slog.String("client_id", c.clientID), slog.Any("error", m.err))
		c.release(ctx)
		return
	}
	c.store, c.moving = m.store, false
	ctx.Watch(m.store)
	now := time.Now()
	for i, u := range c.unanswered {
		c.unanswered[i].at = now
		ctx.Send(c.store, &messages.ClientFrame{ClientId: c.clientID, Data: u.frame})
	}
	if len(c.unanswered) > 0 {
		c.watchAnswers(ctx, c.node.cfg.AnswerTimeout)
	}
	if resync, err := transport.Encode(c.resyncFrame(), c.format); err == nil {
		ctx.Send(c.store, &messages.ClientFrame{ClientId: c.clientID, Data: resync})
	}
	waiting := c.waiting
	c.waiting, c.waitingBytes = nil, 0
	for _, w := range waiting {
		c.send(ctx, w)
	}
}

// resyncFrame is the resync sent for the client on re-attaching: a delta
// after what the client was last sent when it asks for deltas and nothing
// was dropped, otherwise a request for a snapshot.
func (c *connActor) resyncFrame() transport.Frame {
	if !c.delta || c.resyncing || c.epoch == "" {
		return transport.Frame{Type: transport.TypeResync}
	}
	seq := c.seq
	if c.lastServer != nil {
		if f, err := transport.Decode(c.lastServer, transport.DetectFormat(c.lastServer)); err == nil {
			seq = max(seq, f.Sequence)
		}
	}
	return transport.Frame{Type: transport.TypeResync, AfterSequence: seq, Delta: true, Epoch: c.epoch}
}

// deliver queues one frame for the client, noting what re-attaching needs
// (see connActor). On overflow the queue drops what it holds and the actor
// asks the store for a snapshot; until it arrives, server messages and
// pushes are dropped (acknowledgements and errors are kept).
func (c *connActor) deliver(ctx actor.Context, f []byte) {
	if c.letGo {
		return
	}
	typ := transport.PeekType(f)
	switch typ {
	case transport.TypeServerMessage:
		c.lastServer = f
	case transport.TypeAcknowledge, transport.TypeError, transport.TypeSnapshot, transport.TypeSynced:
		c.note(typ, f)
	}
	if c.resyncing {
		switch typ {
		case transport.TypeServerMessage, transport.TypePush:
			return
		case transport.TypeSnapshot:
			c.resyncing = false
		}
	}
	if c.q.push(f) {
		return
	}
	c.q.drop()
	if c.store == nil {
		c.release(ctx)
		return
	}
	c.resyncing = true
	ctx.Send(c.store, &messages.Overflowed{ClientId: c.clientID, ConnectionId: c.connectionID})
	if typ != transport.TypeServerMessage && typ != transport.TypePush {
		c.q.push(f)
	}
}

// note decodes a frame of the client's own (acknowledgement, error) or a
// rare one (snapshot, synced) and records what it says.
func (c *connActor) note(typ transport.FrameType, data []byte) {
	if typ == transport.TypeError && len(c.unanswered) == 0 {
		return // nothing to forget
	}
	f, err := transport.Decode(data, transport.DetectFormat(data))
	if err != nil {
		return
	}
	switch typ {
	case transport.TypeAcknowledge:
		if f.ID != 0 {
			c.answered(f.ID, true)
		}
		if f.Sequence != 0 {
			c.seq = max(c.seq, f.Sequence)
		}
	case transport.TypeError:
		if f.ID != 0 {
			c.answered(f.ID, false)
		}
	case transport.TypeSnapshot, transport.TypeSynced:
		c.seq, c.epoch, c.lastServer = f.Sequence, f.Epoch, nil
	}
}

// connQueue is a connection's bounded outbox. A writer goroutine, started
// when frames arrive and ending once the queue is empty, calls send: an
// idle connection holds no goroutine, and one writer at a time keeps the
// frames in order.
type connQueue struct {
	limit int
	send  func([][]byte) error

	mu      sync.Mutex
	frames  [][]byte
	bytes   int
	writing bool // a writer goroutine runs
	failed  bool // send failed: the gateway disconnects
	ended   bool
	letGo   bool
}

// push queues f; false when it does not fit (a frame alone always fits).
func (q *connQueue) push(f []byte) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.ended {
		return true
	}
	if len(q.frames) > 0 && q.bytes+len(f) > q.limit {
		return false
	}
	q.frames = append(q.frames, f)
	q.bytes += len(f)
	q.startLocked()
	return true
}

// drop empties the queue.
func (q *connQueue) drop() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.frames, q.bytes = nil, 0
}

// finish ends the queue; with letGo the writer calls send(nil) once the
// queued frames are written.
func (q *connQueue) finish(letGo bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.ended {
		return
	}
	q.ended, q.letGo = true, letGo
	q.startLocked()
}

// startLocked starts a writer unless one runs. Caller holds mu.
func (q *connQueue) startLocked() {
	if !q.writing {
		q.writing = true
		go q.write()
	}
}

// write is the writer goroutine: it writes until the queue is empty.
func (q *connQueue) write() {
	for {
		q.mu.Lock()
		frames, failed := q.frames, q.failed
		q.frames, q.bytes = nil, 0
		if len(frames) == 0 {
			// Nothing more: the next push or finish starts a writer again.
			// A finished queue's writer tells a let-go connection once.
			letGo := q.ended && q.letGo && !failed
			q.letGo = false
			q.writing = false
			q.mu.Unlock()
			if letGo {
				_ = q.send(nil)
			}
			return
		}
		q.mu.Unlock()
		if !failed && q.send(frames) != nil {
			q.mu.Lock()
			q.failed = true
			q.mu.Unlock()
		}
	}
}
