package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"math/bits"
	mrand "math/rand/v2"
	"net/http"
	"reflect"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/lily-go/lily/demo/counter"
	"github.com/lily-go/lily/demo/todo"
	"github.com/lily-go/lily/transport"
)

// storeState is one store of the run.
type storeState struct {
	name  string
	conns []*benchConn
	ring  *seqRing
	// maxSeq is the highest sequence acknowledged to any of the store's
	// senders: what every client must reach before the final resync.
	maxSeq atomic.Uint64

	// Set by the run's goroutine from the baseline snapshots.
	startSeq   uint64
	startModel any
	baseline   bool // every client's baseline snapshot arrived and they agree
}

// noteSeq raises maxSeq to seq.
func (s *storeState) noteSeq(seq uint64) {
	for {
		m := s.maxSeq.Load()
		if seq <= m || s.maxSeq.CompareAndSwap(m, seq) {
			return
		}
	}
}

// kindCodec is what the run needs to know about the store kind: the
// message it sends and how to read a model.
type kindCodec struct {
	payload    []byte                          // the message, in the run's format
	increments bool                            // each applied message adds one to Count
	decode     func(state []byte) (any, error) // a snapshot's state -> the model
	count      func(model any) int             // counter: the model's Count
	describe   string                          // the message, for the report
}

// newKindCodec returns the codec of the configured kind and message.
func newKindCodec(cfg config) (kindCodec, error) {
	var k kindCodec
	var err error
	switch cfg.kind {
	case "counter":
		ser := transport.Automatic[counter.Counter, counter.Msg](counter.Variants...)
		k.payload, err = ser.EncodeMessage(counter.Increment{}, cfg.format)
		k.increments = true
		k.describe = "Increment"
		k.decode = func(state []byte) (any, error) { return ser.DecodeModel(state, cfg.format) }
		k.count = func(m any) int { return m.(counter.Counter).Count }
	case "todo":
		ser := transport.Automatic[todo.Model, todo.Msg](todo.Variants...)
		// Item ids start at 1: -1 never exists, so the model never changes.
		var msg todo.Msg = todo.Toggle{ID: -1}
		k.describe = "Toggle{ID: -1}"
		if cfg.payload > 0 {
			msg = todo.Rename{ID: -1, Title: strings.Repeat("x", cfg.payload)}
			k.describe = fmt.Sprintf("Rename{ID: -1, Title: %d bytes}", cfg.payload)
		}
		k.payload, err = ser.EncodeMessage(msg, cfg.format)
		k.decode = func(state []byte) (any, error) { return ser.DecodeModel(state, cfg.format) }
	default:
		return k, fmt.Errorf("lily-bench: unknown kind %q", cfg.kind)
	}
	if err != nil {
		return k, fmt.Errorf("lily-bench: encode the %s message: %w", cfg.kind, err)
	}
	return k, nil
}

// loadRun is the state one load run shares between its goroutines.
type loadRun struct {
	cfg   config
	codec kindCodec
	base  time.Time // run time 0; times are nanoseconds since base (monotonic)

	// The measurement window, in run nanoseconds: mStart is MaxInt64 until
	// the warm-up ends, mEnd until the measurement ends.
	mStart, mEnd atomic.Int64
	ackHist      *histogram
	delivHist    *histogram

	stores []*storeState
	conns  []*benchConn

	stop     chan struct{} // closed to stop the senders
	stopFlag atomic.Bool

	errMu  sync.Mutex
	errs   map[string]uint64 // guarded by errMu
	notes  []string          // guarded by errMu; the first few, for the report
	nNotes int               // guarded by errMu
}

// now returns the run time in nanoseconds.
func (r *loadRun) now() int64 { return int64(time.Since(r.base)) }

// inWindow reports whether run time t is inside the measurement window.
func (r *loadRun) inWindow(t int64) bool { return t >= r.mStart.Load() && t < r.mEnd.Load() }

// stopped reports whether the senders have been told to stop.
func (r *loadRun) stopped() bool { return r.stopFlag.Load() }

// recordDelivery records one delivery latency when both its send and its
// receipt are inside the window.
func (r *loadRun) recordDelivery(sentAt, at int64) {
	if sentAt >= r.mStart.Load() && at < r.mEnd.Load() {
		r.delivHist.record(time.Duration(at - sentAt))
	}
}

// countError counts one error of the given kind.
func (r *loadRun) countError(kind string) {
	r.errMu.Lock()
	r.errs[kind]++
	r.errMu.Unlock()
}

// note keeps a message for the report (the first ten) and writes it to the
// log.
func (r *loadRun) note(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	r.errMu.Lock()
	r.nNotes++
	keep := len(r.notes) < 10
	if keep {
		r.notes = append(r.notes, msg)
	}
	r.errMu.Unlock()
	if keep && r.cfg.log != nil {
		fmt.Fprintln(r.cfg.log, "lily-bench:", msg)
	}
}

func (r *loadRun) logf(format string, args ...any) {
	if r.cfg.log != nil {
		fmt.Fprintf(r.cfg.log, "lily-bench: "+format+"\n", args...)
	}
}

// ringSize returns the per-store size of the sequence ring: about a million
// slots (16 MiB) in all, between 64 and 65,536 per store.
func ringSize(stores int) int {
	n := (1 << 20) / max(stores, 1)
	n = 1 << (bits.Len(uint(n)) - 1) // round down to a power of two
	return min(max(n, 64), 1<<16)
}

// effectiveInflight returns how many unanswered messages a sender may
// have: one in a closed loop; with a rate, -max-inflight but no more than
// ten seconds' worth (at least 16), which keeps each sender's table of send
// times small.
func effectiveInflight(cfg config) uint64 {
	if cfg.rate <= 0 {
		return 1
	}
	return uint64(min(cfg.maxInflight, max(16, int(math.Ceil(cfg.rate*10)))))
}

// newRunID returns a short random id that makes the run's client ids unique.
func newRunID() string {
	var b [4]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand documents it)
	return hex.EncodeToString(b[:])
}

// newDialer returns the bench's WebSocket dialer: small read buffers and a
// shared pool of write buffers, so idle connections stay cheap.
func newDialer(cfg config, readBuffer int) *websocket.Dialer {
	return &websocket.Dialer{
		HandshakeTimeout: cfg.dialTimeout,
		ReadBufferSize:   readBuffer,
		WriteBufferSize:  4096,
		WriteBufferPool:  &sync.Pool{},
	}
}

// dialError names the kind of a failed dial, for the error counts.
func dialError(err error, resp *http.Response) string {
	switch {
	case resp != nil:
		return fmt.Sprintf("connect_http_%d", resp.StatusCode)
	case errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "timeout"):
		return "connect_timeout"
	case strings.Contains(err.Error(), "connection refused"):
		return "connect_refused"
	}
	return "connect_failed"
}

// dialAll opens the connections at cfg.connectRate per second, at most
// maxDialing handshakes at a time, calling opened for each connection that
// succeeds (on the dialing goroutine). It returns when every dial has
// finished, or early (without starting more) when ctx is done.
func dialAll(ctx context.Context, cfg config, n int, dialer *websocket.Dialer, urlOf func(i int) string,
	opened func(i int, ws *websocket.Conn), failed func(i int, kind string, err error)) {
	const maxDialing = 64
	sem := make(chan struct{}, maxDialing)
	var wg sync.WaitGroup
	interval := time.Duration(float64(time.Second) / cfg.connectRate)
	start := time.Now()
	for i := 0; i < n; i++ {
		if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
			}
		}
		if ctx.Err() != nil {
			for j := i; j < n; j++ {
				failed(j, "connect_cancelled", ctx.Err())
			}
			break
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			for j := i; j < n; j++ {
				failed(j, "connect_cancelled", ctx.Err())
			}
			wg.Wait()
			return
		}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			ws, resp, err := dialer.DialContext(ctx, urlOf(i), nil)
			if resp != nil && resp.Body != nil {
				_ = resp.Body.Close()
			}
			if err != nil {
				failed(i, dialError(err, resp), err)
				return
			}
			opened(i, ws)
		}(i)
	}
	wg.Wait()
}

// runLoad runs a load benchmark and returns its result. ctx ends the run
// early (SIGINT): the measurement stops, the run still drains, checks and
// returns what it measured. The error is for a run that could not start.
func runLoad(ctx context.Context, cfg config) (*result, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.connectOnly > 0 {
		return nil, errors.New("lily-bench: runLoad: connect-only configuration")
	}
	total := cfg.stores * cfg.clients
	if err := checkFileLimit(total); err != nil {
		return nil, err
	}
	codec, err := newKindCodec(cfg)
	if err != nil {
		return nil, err
	}
	enc, err := newMessageEncoder(codec.payload, cfg.format)
	if err != nil {
		return nil, fmt.Errorf("lily-bench: %w", err)
	}
	r := &loadRun{
		cfg:       cfg,
		codec:     codec,
		base:      time.Now(),
		ackHist:   newHistogram(),
		delivHist: newHistogram(),
		stop:      make(chan struct{}),
		errs:      map[string]uint64{},
	}
	r.mStart.Store(math.MaxInt64)
	r.mEnd.Store(math.MaxInt64)

	// The stores and their clients: client c of store s is connection
	// s*clients+c, and connections go round-robin over the URLs.
	runID := newRunID()
	senders := cfg.sendersPerStore()
	inflight := effectiveInflight(cfg)
	for s := 0; s < cfg.stores; s++ {
		st := &storeState{name: fmt.Sprintf("%s%d", cfg.storePrefix, s), ring: newSeqRing(ringSize(cfg.stores))}
		for c := 0; c < cfg.clients; c++ {
			i := len(r.conns)
			conn := &benchConn{
				run:        r,
				store:      st,
				clientID:   fmt.Sprintf("b%s-%d-%d", runID, s, c),
				sender:     c < senders,
				readerDone: make(chan struct{}),
				snaps:      make(chan snapInfo, 2),
			}
			conn.url = storeURL(cfg.urls[i%len(cfg.urls)], cfg.kind, st.name, conn.clientID)
			if conn.sender {
				n := max(2, 1<<bits.Len64(inflight-1)) // >= inflight, a power of two
				conn.sendTimes = make([]atomic.Int64, n)
				conn.sendMask = uint64(n - 1)
				conn.wake = make(chan struct{}, 1)
			}
			st.conns = append(st.conns, conn)
			r.conns = append(r.conns, conn)
		}
		r.stores = append(r.stores, st)
	}

	res := &result{}
	res.fillConfig(cfg, codec, len(enc.appendFrame(nil, 1)))
	var readers sync.WaitGroup
	defer func() {
		// Whatever happened: every socket is closed and every reader gone.
		r.closeAll(&readers)
	}()

	// 1. Connect, and ask every client for its store's state.
	r.logf("connecting %d clients to %d stores (%g/s)", total, cfg.stores, cfg.connectRate)
	connectStart := time.Now()
	dialAll(ctx, cfg, total, newDialer(cfg, 4096), func(i int) string { return r.conns[i].url },
		func(i int, ws *websocket.Conn) {
			c := r.conns[i]
			c.ws = ws
			readers.Add(1)
			go func() {
				defer readers.Done()
				c.readLoop()
			}()
			if err := c.sendResync(); err != nil {
				r.countError("write_failed")
				r.note("connection %s: resync: %v", c.clientID, err)
			}
		},
		func(i int, kind string, err error) {
			r.countError(kind)
			if kind != "connect_cancelled" {
				r.note("connect %s: %v", r.conns[i].url, err)
			}
		})
	res.ConnectSeconds = time.Since(connectStart).Seconds()
	for _, c := range r.conns {
		if c.ws != nil {
			res.Connections++
		}
	}
	res.ConnectFailures = total - res.Connections
	if res.Connections == 0 {
		res.finish(r)
		return res, nil
	}
	baselineOK := r.baseline(ctx)

	// 2. Load: warm-up, then the measurement.
	var sendWG sync.WaitGroup
	if ctx.Err() == nil {
		r.logf("%d clients connected in %.1fs; loading for %v (+%v warm-up)", res.Connections, res.ConnectSeconds, cfg.duration, cfg.warmup)
		for _, c := range r.conns {
			if !c.sender || c.ws == nil {
				continue
			}
			phase := time.Duration(0)
			if cfg.rate > 0 {
				phase = time.Duration(mrand.Float64() * float64(time.Second) / cfg.rate)
			}
			sendWG.Add(1)
			go func() {
				defer sendWG.Done()
				c.sendLoop(enc, cfg.rate, inflight, phase)
			}()
		}
		prog := r.startProgress()
		r.measure(ctx, res)
		prog()
	}

	// 3. Stop the senders, let everything in flight arrive, and check.
	r.stopSenders(&sendWG)
	res.Drained = r.drain()
	r.finalResync()
	r.closeAll(&readers)
	res.baselineOK = baselineOK
	res.finish(r)
	return res, nil
}

// baseline waits for every client's answer to its first resync and records
// each store's starting sequence and model. It reports whether every client
// answered and the clients of each store agree.
func (r *loadRun) baseline(ctx context.Context) bool {
	deadline := time.NewTimer(r.cfg.drain)
	defer deadline.Stop()
	ok := true
	for _, st := range r.stores {
		st.baseline = true
		first := true
		for _, c := range st.conns {
			if c.ws == nil {
				st.baseline = false
				continue
			}
			var snap snapInfo
			select {
			case snap = <-c.snaps:
			case <-c.readerDone:
				st.baseline = false
				continue
			case <-deadline.C:
				r.countError("baseline_timeout")
				r.note("no snapshot from %s within -drain-timeout", c.clientID)
				st.baseline = false
				deadline.Reset(0) // the others get no more time
				continue
			case <-ctx.Done():
				return false
			}
			model, err := r.codec.decode(snap.state)
			if err != nil {
				r.countError("undecodable_state")
				st.baseline = false
				continue
			}
			if first {
				st.startSeq, st.startModel, first = snap.seq, model, false
			} else if snap.seq != st.startSeq || !reflect.DeepEqual(model, st.startModel) {
				r.note("store %s: baseline snapshots differ (sequence %d and %d): is something else writing to it?", st.name, st.startSeq, snap.seq)
				st.baseline = false
			}
		}
		ok = ok && st.baseline
	}
	return ok
}

// measure waits out the warm-up and the measured time, or ctx.
func (r *loadRun) measure(ctx context.Context, res *result) {
	if r.cfg.warmup > 0 && !sleepCtx(ctx, r.cfg.warmup) {
		res.Interrupted = true
		return
	}
	before := scrapeAll(r.cfg.metricsURLs)
	cpu0 := processCPU()
	start := r.now()
	r.mStart.Store(start)
	if !sleepCtx(ctx, r.cfg.duration) {
		res.Interrupted = true
	}
	end := r.now()
	r.mEnd.Store(end)
	cpu1 := processCPU()
	after := scrapeAll(r.cfg.metricsURLs)
	res.MeasuredSeconds = time.Duration(end - start).Seconds()
	if res.MeasuredSeconds > 0 {
		res.BenchCPUPercent = round2(100 * (cpu1 - cpu0).Seconds() / res.MeasuredSeconds)
		if before != nil && after != nil {
			cpu := 100 * (after["process_cpu_seconds_total"] - before["process_cpu_seconds_total"]) / res.MeasuredSeconds
			out := (after["lily_frames_out_total"] - before["lily_frames_out_total"]) / res.MeasuredSeconds
			res.ServerCPUPercent, res.ServerFramesOutPerSec = ptr(round2(cpu)), ptr(round2(out))
		}
	}
}

// startProgress prints a line every cfg.progress until the returned
// function is called (which waits for the printer to stop).
func (r *loadRun) startProgress() (stop func()) {
	if r.cfg.progress <= 0 || r.cfg.log == nil {
		return func() {}
	}
	done := make(chan struct{})
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		t := time.NewTicker(r.cfg.progress)
		defer t.Stop()
		var lastAcked, lastDeliv uint64
		last := time.Now()
		for {
			select {
			case <-done:
				return
			case now := <-t.C:
				var acked, deliv, overflows uint64
				open := 0
				for _, c := range r.conns {
					acked += c.acked.Load()
					deliv += c.deliveries.Load()
					overflows += c.overflows.Load()
					if c.alive() {
						open++
					}
				}
				secs := now.Sub(last).Seconds()
				r.errMu.Lock()
				var errs uint64
				for _, n := range r.errs {
					errs += n
				}
				r.errMu.Unlock()
				phase := "measuring"
				if r.mStart.Load() == math.MaxInt64 {
					phase = "warm-up"
				}
				r.logf("%s: acked %.0f/s, deliveries %.0f/s, %d connections open, %d overflow snapshots, %d errors",
					phase, float64(acked-lastAcked)/secs, float64(deliv-lastDeliv)/secs, open, overflows, errs)
				lastAcked, lastDeliv, last = acked, deliv, now
			}
		}
	}()
	return func() {
		close(done)
		<-exited
	}
}

// stopSenders stops the sender goroutines and waits for them. A sender
// stuck in a write (a server that reads nothing) is unblocked by a write
// deadline in the past after a few seconds.
func (r *loadRun) stopSenders(wg *sync.WaitGroup) {
	r.stopFlag.Store(true)
	close(r.stop)
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	t := time.NewTimer(5 * time.Second)
	defer t.Stop()
	select {
	case <-done:
		return
	case <-t.C:
	}
	r.note("senders still writing 5s after the stop; cutting their writes short")
	for _, c := range r.conns {
		if c.sender && c.ws != nil {
			_ = c.ws.NetConn().SetWriteDeadline(time.Now())
		}
	}
	<-done
}

// drain waits until every sent message is answered and every client has
// reached its store's last acknowledged sequence, or -drain-timeout.
func (r *loadRun) drain() bool {
	deadline := time.Now().Add(r.cfg.drain)
	for {
		waiting := 0
		for _, c := range r.conns {
			if !c.alive() {
				continue
			}
			if c.sender && c.done.Load() < c.sent.Load() {
				waiting++
			} else if c.lastSeq.Load() < c.store.maxSeq.Load() {
				waiting++
			}
		}
		if waiting == 0 {
			return true
		}
		if time.Now().After(deadline) {
			r.note("%d clients still waiting for acks or deliveries after -drain-timeout %v", waiting, r.cfg.drain)
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// finalSnap is a connection's answer to the final resync, decoded.
type finalSnap struct {
	ok    bool
	seq   uint64
	model any
}

// finalResync asks every open client for its store's state once more and
// keeps the answers in the stores' results.
func (r *loadRun) finalResync() {
	for _, c := range r.conns {
		if !c.alive() {
			continue
		}
		// Drop an answer to the baseline resync that nobody collected.
		select {
		case <-c.snaps:
		default:
		}
		if err := c.sendResync(); err != nil {
			r.countError("write_failed")
			r.note("connection %s: final resync: %v", c.clientID, err)
		}
	}
	deadline := time.NewTimer(r.cfg.drain)
	defer deadline.Stop()
	for _, c := range r.conns {
		if c.ws == nil {
			continue
		}
		select {
		case snap := <-c.snaps:
			model, err := r.codec.decode(snap.state)
			if err != nil {
				r.countError("undecodable_state")
				continue
			}
			c.final = finalSnap{ok: true, seq: snap.seq, model: model}
		case <-c.readerDone:
		case <-deadline.C:
			deadline.Reset(0)
		}
	}
}

// closeAll closes every connection with 1000 and waits for the readers,
// closing the sockets of those that do not finish in time. It may be
// called more than once.
func (r *loadRun) closeAll(readers *sync.WaitGroup) {
	sockets := make([]closingSocket, 0, len(r.conns))
	for _, c := range r.conns {
		sockets = append(sockets, closingSocket{c.ws, &c.closing})
	}
	if !closeGracefully(sockets, readers) {
		r.note("some connections did not answer the close within 3s; closing their sockets")
	}
}

// sortedKeys returns the keys of m in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func ptr[T any](v T) *T { return &v }

func round2(v float64) float64 { return math.Round(v*100) / 100 }

// sleepCtx waits for d and reports true, or for ctx and reports false.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
