package client

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sync"
	"time"

	"github.com/lily-go/lily/store"
	"github.com/lily-go/lily/transport"
)

// Client is a connection to one store of a lily server that keeps a local
// copy of its model: the confirmed model (what the server acknowledged, up
// to a sequence) and the local model (the confirmed one with the messages
// still pending applied on top). It reconnects by itself. Create it with
// Connect; every method is safe for concurrent use.
type Client[M, Msg any] struct {
	st       store.Store[M, Msg]
	ser      transport.Serialiser[M, Msg]
	opts     Options
	url      string // the store's URL, with ?client_id=
	clientID string
	logger   *slog.Logger
	pstore   PendingStore // nil without one

	ctx    context.Context // the client's lifetime; canceled by Close or when it gives up
	cancel context.CancelFunc

	ready     chan struct{} // closed once the first resync answer is applied
	readyOnce sync.Once
	stopped   chan struct{} // closed once every goroutine of the client has returned
	closeOnce sync.Once
	closeErr  error // the final save's error; written before stopped is closed

	events    *delivery[M, Msg]
	saveKick  chan struct{} // capacity 1: the state changed and should be saved
	saverDone chan struct{} // closed when the saver has returned; nil without a PendingStore

	// saveMu serialises PendingStore.Save. Lock order: saveMu, then mu,
	// then the delivery's lock.
	saveMu sync.Mutex

	mu sync.Mutex
	// guarded by mu
	confirmed M
	confSeq   uint64 // sequence of confirmed
	epoch     string // epoch of confirmed's history; "" when unknown
	local     M      // confirmed + unsure + pending, kept step by step
	pending   []pendingMsg[Msg]
	unsure    []unsureMsg[Msg]
	nextID    uint64 // id of the next message
	durableID uint64 // every pending message with an id up to it has been saved (all, without a PendingStore)
	dirty     bool   // changed since the last save
	state     ConnState
	conn      *conn // the open connection, or nil
	syncing   bool  // a resync was asked for on conn and not answered yet
	closing   bool  // Close was called or the client gave up
	err       error // why the client gave up; nil after Close
	lastErr   error // the last connection error, for Connect's error
	changed   chan struct{}
}

// pendingMsg is a message sent (or to be sent) and not acknowledged yet.
type pendingMsg[Msg any] struct {
	id      uint64
	msg     Msg
	payload []byte // the serialiser's encoding, in Options.Format
	frame   []byte // the client_message frame, in Options.Format
}

// unsureMsg is a message the server acknowledged at a sequence the client
// could not place (0, or not the next one): the server applied it, but the
// confirmed model does not include it yet. It stays in the local model
// until the answer to the resync that such an acknowledgement triggers.
type unsureMsg[Msg any] struct {
	msg Msg
	seq uint64 // the acknowledged sequence; 0 when the server did not say
}

// Connect connects to the store at url (a ws:// or wss:// URL such as
// ws://host/ws/counter/demo; http:// and https:// are accepted too) and
// returns once the first connection is open and the model of the first
// resync applied. Any client_id in url is replaced by the client's.
//
// Until then it retries with backoff, except when the server refuses the
// client for good (HTTP 400, 401, 403, 404 before the upgrade, close 4404
// after it): then it returns that error. If ctx ends first, it returns
// ctx's error with the last connection error, and leaves no goroutine
// behind. Once connected, ctx no longer matters: the client lives until
// Close.
//
// st must be the store the server runs (the client applies messages
// optimistically with it); ser must be the serialiser the server uses.
func Connect[M, Msg any](ctx context.Context, url string, st store.Store[M, Msg], ser transport.Serialiser[M, Msg], opts Options) (*Client[M, Msg], error) {
	c, err := newClient(url, st, ser, opts)
	if err != nil {
		return nil, err
	}
	c.start()
	select {
	case <-c.ready:
		return c, nil
	case <-c.stopped:
		if err := c.Err(); err != nil {
			return nil, err
		}
		return nil, ErrClosed
	case <-ctx.Done():
	}
	_ = c.Close()
	c.mu.Lock()
	last := c.lastErr
	c.mu.Unlock()
	if last != nil {
		return nil, fmt.Errorf("client: connect %s: %w (last error: %v)", c.url, ctx.Err(), last)
	}
	return nil, fmt.Errorf("client: connect %s: %w", c.url, ctx.Err())
}

// newClient checks the arguments, loads the PendingStore and builds a
// client that has not started.
func newClient[M, Msg any](rawURL string, st store.Store[M, Msg], ser transport.Serialiser[M, Msg], opts Options) (*Client[M, Msg], error) {
	if ser == nil {
		return nil, errors.New("client: connect: nil Serialiser")
	}
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("client: connect: bad url: %w", err)
	}
	switch u.Scheme {
	case "ws", "wss":
	case "http":
		u.Scheme = "ws"
	case "https":
		u.Scheme = "wss"
	default:
		return nil, fmt.Errorf("client: connect: url %q: scheme must be ws or wss", rawURL)
	}
	c := &Client[M, Msg]{
		st:        st,
		ser:       ser,
		opts:      opts,
		pstore:    opts.PendingStore,
		ready:     make(chan struct{}),
		stopped:   make(chan struct{}),
		events:    newDelivery[M, Msg](),
		saveKick:  make(chan struct{}, 1),
		confirmed: st.Initial(),
		local:     st.Initial(),
		state:     Connecting,
		changed:   make(chan struct{}),
	}
	if err := c.restore(); err != nil {
		return nil, err
	}
	q := u.Query()
	q.Set("client_id", c.clientID)
	u.RawQuery = q.Encode()
	c.url = u.String()
	c.logger = opts.Logger.With(slog.String("client_id", c.clientID))
	return c, nil
}

// restore settles the client id and the id counter, and loads the pending
// messages of the PendingStore.
func (c *Client[M, Msg]) restore() error {
	var saved PendingState
	if c.pstore != nil {
		var err error
		if saved, err = c.pstore.Load(); err != nil {
			return fmt.Errorf("client: connect: load pending state: %w", err)
		}
		if saved.ClientID != "" && !transport.ValidClientID(saved.ClientID) {
			return fmt.Errorf("client: connect: the PendingStore holds an invalid client id %q", saved.ClientID)
		}
	}
	switch {
	case saved.ClientID != "" && c.opts.ClientID != "" && saved.ClientID != c.opts.ClientID:
		return fmt.Errorf("client: connect: Options.ClientID %q differs from the PendingStore's client id %q", c.opts.ClientID, saved.ClientID)
	case saved.ClientID != "":
		c.clientID = saved.ClientID
		c.nextID = saved.NextID
	case c.opts.ClientID != "":
		// A caller-chosen id may have been used by an earlier process
		// whose counter is lost: start above any counter it can have
		// reached, so that the server does not take new messages for
		// resent ones.
		c.clientID = c.opts.ClientID
		c.nextID = uint64(time.Now().UnixMicro())
	default:
		c.clientID = newClientID()
		c.nextID = 1
	}
	format := saved.Format
	if format == 0 {
		format = c.opts.Format
	}
	for _, pm := range saved.Pending {
		if pm.ID == 0 || (len(c.pending) > 0 && pm.ID <= c.pending[len(c.pending)-1].id) {
			return fmt.Errorf("client: connect: the PendingStore's message ids are not increasing (%d)", pm.ID)
		}
		msg, err := c.decodeMessage(pm.Payload, format)
		if err != nil {
			return fmt.Errorf("client: connect: pending message %d: %w", pm.ID, err)
		}
		payload := pm.Payload
		if format != c.opts.Format {
			if payload, err = c.encodeMessage(msg); err != nil {
				return fmt.Errorf("client: connect: pending message %d: %w", pm.ID, err)
			}
		}
		frame, err := transport.Encode(transport.Frame{Type: transport.TypeClientMessage, Payload: payload, ID: pm.ID}, c.opts.Format)
		if err != nil {
			return fmt.Errorf("client: connect: pending message %d: %w", pm.ID, err)
		}
		if next, err := c.st.Apply(c.local, msg); err == nil {
			c.local = next
		}
		c.pending = append(c.pending, pendingMsg[Msg]{id: pm.ID, msg: msg, payload: payload, frame: frame})
	}
	if n := len(c.pending); n > 0 {
		c.durableID = c.pending[n-1].id
		c.nextID = max(c.nextID, c.durableID+1)
	}
	c.nextID = max(c.nextID, 1)
	if c.pstore != nil && (saved.ClientID != c.clientID || saved.NextID != c.nextID || saved.Format != c.opts.Format) {
		// Make the client id durable before any message uses it.
		st, _ := c.durableStateLocked()
		if err := c.pstore.Save(st); err != nil {
			return fmt.Errorf("client: connect: save pending state: %w", err)
		}
	}
	return nil
}

func newClientID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand documents it)
	return hex.EncodeToString(b[:])
}

// start starts the client's goroutines: the connection manager (which
// also reads), the delivery of callbacks and, with a PendingStore, the
// saver.
func (c *Client[M, Msg]) start() {
	c.ctx, c.cancel = context.WithCancel(context.Background())
	go c.events.run()
	if c.pstore != nil {
		c.saverDone = make(chan struct{})
		go c.saveLoop()
	}
	go c.run()
}

// Send applies msg to the local model at once and queues it for the
// server; it is sent as soon as a connection is open (right away when one
// is), and stays pending until the server acknowledges it. The local model
// then holds it until the server refuses it (Change.Err reports a
// *MessageError) or confirms it.
//
// Send returns an error, and changes nothing, when the serialiser cannot
// encode msg, when the store refuses it on the local model (the error
// wraps store.ErrRejected), when the client is closed (ErrClosed), or when
// the PendingStore cannot save it. With a PendingStore, a nil error means
// the message is saved: it survives a crash and will be applied exactly
// once. Send then blocks for the save (concurrent Sends share one).
func (c *Client[M, Msg]) Send(msg Msg) error {
	payload, err := c.encodeMessage(msg)
	if err != nil {
		return fmt.Errorf("client: send: %w", err)
	}
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return ErrClosed
	}
	next, err := c.st.Apply(c.local, msg)
	if err != nil {
		c.mu.Unlock()
		return fmt.Errorf("client: send: %w", err)
	}
	id := c.nextID
	frame, err := transport.Encode(transport.Frame{Type: transport.TypeClientMessage, Payload: payload, ID: id}, c.opts.Format)
	if err != nil {
		c.mu.Unlock()
		return fmt.Errorf("client: send: %w", err)
	}
	c.nextID++
	c.local = next
	c.pending = append(c.pending, pendingMsg[Msg]{id: id, msg: msg, payload: payload, frame: frame})
	c.dirty = true
	if c.pstore == nil {
		c.durableID = id
		c.kickWriterLocked()
	}
	c.emitLocked(nil)
	c.mu.Unlock()
	if c.pstore != nil {
		return c.persist(id)
	}
	return nil
}

// Model returns the local model: the confirmed model with the pending
// messages applied. Treat it as immutable: the client shares it.
func (c *Client[M, Msg]) Model() M {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.local
}

// Confirmed returns the model the server confirmed and its sequence.
func (c *Client[M, Msg]) Confirmed() (M, uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.confirmed, c.confSeq
}

// State returns the connection state.
func (c *Client[M, Msg]) State() ConnState {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state
}

// Pending returns the number of messages the server has not acknowledged
// yet.
func (c *Client[M, Msg]) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.pending)
}

// ClientID returns the client id the client connects with.
func (c *Client[M, Msg]) ClientID() string { return c.clientID }

// Err returns why the client closed itself (it wraps ErrUnknownStore or
// is a *HandshakeError, for instance), or nil while it runs and after
// Close.
func (c *Client[M, Msg]) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Done returns a channel that is closed once the client has stopped, by
// Close or because it gave up (see Err), and all its goroutines have
// returned.
func (c *Client[M, Msg]) Done() <-chan struct{} { return c.stopped }

// Flush waits until no message is pending and the model is in sync: every
// message sent so far has been acknowledged (and is in the confirmed
// model) or dropped. It returns ctx's error if ctx ends first, and
// ErrClosed if the client closes first.
func (c *Client[M, Msg]) Flush(ctx context.Context) error {
	for {
		c.mu.Lock()
		if c.closing {
			c.mu.Unlock()
			return ErrClosed
		}
		if len(c.pending) == 0 && len(c.unsure) == 0 && !c.syncing {
			c.mu.Unlock()
			return nil
		}
		changed := c.changed
		c.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		case <-c.stopped:
			return ErrClosed
		}
	}
}

// Subscribe calls fn with the client's current state, then after every
// change of the local or confirmed model, of the pending messages or of
// the connection state, and for every error to report (Change.Err). It
// returns the function that unsubscribes fn; after it returns, fn is not
// called again (unless it is running right then).
//
// Callbacks (of Subscribe and OnPush) run on one goroutine of the client,
// one call at a time, in the order of the changes, with no lock of the
// client held. They may call any method of the client except Close (which
// waits for that goroutine: call go c.Close() instead), and must not block
// for long (Flush blocks; so does Send, for the save, with a
// PendingStore): changes queue up behind a slow callback, without bound.
// A client that has stopped calls no callback.
func (c *Client[M, Msg]) Subscribe(fn func(Change[M])) (unsubscribe func()) {
	s := &subscriber[M]{fn: fn}
	c.mu.Lock()
	c.events.addSubscriber(s)
	ch := c.changeLocked(nil)
	c.events.enqueue(event[M, Msg]{change: &ch, only: s})
	c.mu.Unlock()
	return sync.OnceFunc(func() { c.events.removeSubscriber(s) })
}

// OnPush calls fn with every push message of the server (ephemeral
// messages with no sequence, which do not change the model), on the
// callbacks' goroutine (see Subscribe). It returns the function that
// unsubscribes fn.
func (c *Client[M, Msg]) OnPush(fn func(Msg)) (unsubscribe func()) {
	s := &pushSubscriber[Msg]{fn: fn}
	c.events.addPushSubscriber(s)
	return sync.OnceFunc(func() { c.events.removePushSubscriber(s) })
}

// Close closes the connection cleanly (close code 1000), stops every
// goroutine of the client and waits for them. Pending messages are lost
// unless a PendingStore holds them: Close saves the latest state first,
// and returns that save's error. Close is idempotent; calls after the
// first return the first's result. It must not be called from a callback
// (see Subscribe).
func (c *Client[M, Msg]) Close() error {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.closing = true
		c.mu.Unlock()
		c.cancel()
	})
	<-c.stopped
	return c.closeErr
}

// shutdown runs last on the manager goroutine: it stops the saver, saves
// the final state, reports Closed and stops the delivery of callbacks.
func (c *Client[M, Msg]) shutdown() {
	c.cancel()
	if c.saverDone != nil {
		<-c.saverDone
		if err := c.saveDirty(); err != nil {
			c.closeErr = err
		}
	}
	c.mu.Lock()
	c.closing = true
	c.state = Closed
	c.emitLocked(c.err)
	c.mu.Unlock()
	c.events.stop()
	<-c.events.done
	close(c.stopped)
}

// changeLocked returns the current state as a Change.
func (c *Client[M, Msg]) changeLocked(err error) Change[M] {
	return Change[M]{Model: c.local, Sequence: c.confSeq, Pending: len(c.pending), State: c.state, Err: err}
}

// emitLocked tells subscribers and waiters that the state changed.
func (c *Client[M, Msg]) emitLocked(err error) {
	if c.events.hasSubscribers() {
		ch := c.changeLocked(err)
		c.events.enqueue(event[M, Msg]{change: &ch})
	}
	close(c.changed)
	c.changed = make(chan struct{})
}

// setStateLocked changes the connection state and reports it.
func (c *Client[M, Msg]) setStateLocked(s ConnState, err error) {
	if c.state == s {
		return
	}
	c.state = s
	c.emitLocked(err)
}

// recomputeLocked rebuilds the local model from the confirmed one: it is
// needed only when the confirmed model changes under messages that are
// still unsure or pending. A message the store now refuses is left out of
// the local model (the server decides).
func (c *Client[M, Msg]) recomputeLocked() {
	m := c.confirmed
	for _, u := range c.unsure {
		if next, err := c.st.Apply(m, u.msg); err == nil {
			m = next
		}
	}
	for _, p := range c.pending {
		if next, err := c.st.Apply(m, p.msg); err == nil {
			m = next
		}
	}
	c.local = m
}

// encodeMessage encodes msg in the client's format; a panic of the
// serialiser is an error.
func (c *Client[M, Msg]) encodeMessage(msg Msg) (data []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("serialiser panicked: %v", r)
		}
	}()
	return c.ser.EncodeMessage(msg, c.opts.Format)
}

func (c *Client[M, Msg]) decodeMessage(data []byte, format transport.Format) (msg Msg, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("serialiser panicked: %v", r)
		}
	}()
	return c.ser.DecodeMessage(data, format)
}

func (c *Client[M, Msg]) decodeModel(data []byte, format transport.Format) (model M, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("serialiser panicked: %v", r)
		}
	}()
	return c.ser.DecodeModel(data, format)
}
