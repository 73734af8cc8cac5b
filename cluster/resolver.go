package cluster

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
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
// a connection actor on this node that owns send and a bounded outbox; the
// store's child for the client sends it the client's frames. incoming
// sends one client frame to the store; disconnect detaches the connection
// and stops the connection actor. When the store's activation goes away
// (its node left or died), send is called with nil: the gateway closes
// the socket and the client reconnects (see doc.go).
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
	timeout := DefaultConnectTimeout
	if d, ok := ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(d))
	}
	if timeout <= 0 {
		return nil, nil, fmt.Errorf("cluster: connect %s/%s: %w", kind, name, context.DeadlineExceeded)
	}

	root := n.system.Root
	connectionID := newConnectionID()
	limit := n.cfg.Stores.OutboxBytes
	if limit <= 0 {
		limit = actors.DefaultOutboxBytes
	}
	q := &connQueue{limit: limit, send: send, wake: make(chan struct{}, 1)}
	conn := root.SpawnPrefix(actor.PropsFromProducer(func() actor.Actor {
		return &connActor{clientID: clientID, connectionID: connectionID, q: q}
	}), "conn")

	type result struct {
		res any
		err error
	}
	deadline := time.Now().Add(timeout)
	var r result
	var store *actor.PID
	for attempt := 0; ; attempt++ {
		done := make(chan result, 1)
		go func() {
			// Request blocks without a context, and disthash may wait 5 s
			// on a dead owner whatever the timeout (pitfall 4): ctx is
			// watched below instead.
			res, err := n.c.Request(name, kind,
				&messages.Connect{ClientId: clientID, Connection: conn, ConnectionId: connectionID},
				protocluster.WithTimeout(time.Until(deadline)),
				protocluster.WithRetryCount(20),
				protocluster.WithRetryAction(retryBackoff))
			done <- result{res, err}
		}()
		select {
		case r = <-done:
		case <-ctx.Done():
			r.err = ctx.Err()
		}
		if r.err == nil {
			switch m := r.res.(type) {
			case *messages.Connected:
				if m.Error != "" {
					r.err = errors.New(m.Error)
				}
				store = m.Store
			default:
				r.err = fmt.Errorf("unexpected answer %T", r.res)
			}
		}
		// The store's node is leaving: it refuses until the others see
		// it gone and place the store elsewhere.
		if r.err == nil || r.err.Error() != errLeaving || time.Until(deadline) < 100*time.Millisecond || ctx.Err() != nil {
			break
		}
		n.c.PidCache.Remove(name, kind)
		retryBackoff(attempt)
	}
	if r.err == nil && store == nil {
		r.err = errors.New("no store in the answer")
	}
	if r.err != nil {
		// If the store attached it after all, it detaches the client
		// when it sees the connection actor stop.
		root.Stop(conn)
		return nil, nil, fmt.Errorf("cluster: connect %s/%s: %w", kind, name, r.err)
	}
	root.Send(conn, &watchStore{store: store})

	incoming = func(frame []byte) {
		root.Send(store, &messages.ClientFrame{ClientId: clientID, Data: frame})
	}
	n.conns.Add(1)
	var once sync.Once
	disconnect = func() {
		once.Do(func() {
			n.conns.Add(-1)
			root.Send(store, &messages.Disconnect{ClientId: clientID, ConnectionId: connectionID})
			root.Stop(conn)
		})
	}
	return incoming, disconnect, nil
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

// watchStore tells a connection actor its store's activation (local only).
type watchStore struct{ store *actor.PID }

// connActor is the connection actor: it lives on the node that holds the
// client's socket, receives the client's frames from the store's child in
// Deliver messages and queues them for its writer goroutine, which calls
// send. It watches the store's activation and lets the connection go when
// it stops.
type connActor struct {
	clientID     string
	connectionID uint64
	q            *connQueue
	store        *actor.PID
	resyncing    bool // after an overflow, until the snapshot arrives
	letGo        bool
}

// Receive implements actor.Actor.
func (c *connActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		go c.q.run()
	case *watchStore:
		c.store = m.store
		ctx.Watch(m.store)
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
			c.release(ctx) // the store's activation is gone
		}
	case *actor.Stopped:
		c.q.finish(false)
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

// deliver queues one frame. On overflow the queue drops what it holds
// and the actor asks the store for a snapshot; until it arrives, server
// messages and pushes are dropped (acknowledgements and errors are kept).
func (c *connActor) deliver(ctx actor.Context, f []byte) {
	if c.letGo {
		return
	}
	if c.resyncing {
		switch frameType(f) {
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
	if frameType(f) != transport.TypeServerMessage && frameType(f) != transport.TypePush {
		c.q.push(f)
	}
}

// frameType returns the type of an encoded frame (JSON or MessagePack), 0
// if it cannot be decoded.
func frameType(f []byte) transport.FrameType {
	format := transport.FormatMsgPack
	if len(f) > 0 && f[0] == '{' {
		format = transport.FormatJSON
	}
	fr, err := transport.Decode(f, format)
	if err != nil {
		return 0
	}
	return fr.Type
}

// connQueue is a connection's bounded outbox, drained by one writer
// goroutine into send.
type connQueue struct {
	limit int
	send  func([][]byte) error
	wake  chan struct{}

	mu     sync.Mutex
	frames [][]byte
	bytes  int
	ended  bool
	letGo  bool
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
	q.poke()
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
	q.poke()
}

// poke wakes the writer. Caller holds mu.
func (q *connQueue) poke() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// run is the writer goroutine.
func (q *connQueue) run() {
	failed := false
	for range q.wake {
		for {
			q.mu.Lock()
			frames, ended, letGo := q.frames, q.ended, q.letGo
			q.frames, q.bytes = nil, 0
			q.mu.Unlock()
			if len(frames) > 0 {
				if !failed && q.send(frames) != nil {
					failed = true // the gateway disconnects
				}
				continue
			}
			if ended {
				if letGo && !failed {
					_ = q.send(nil)
				}
				return
			}
			break
		}
	}
}
