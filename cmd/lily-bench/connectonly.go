package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"runtime"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/gorilla/websocket"
)

// connectResult is what a connect-only run measured; the exported fields
// are its JSON line. Per-connection figures are (after - before) / the
// connections opened, from the servers' /metrics (summed over -metrics).
type connectResult struct {
	Mode            string  `json:"mode"`
	Requested       int     `json:"requested"`
	Stores          int     `json:"stores"`
	Connections     int     `json:"connections"`
	ConnectFailures int     `json:"connect_failures"`
	ConnectSeconds  float64 `json:"connect_s"`
	HeldSeconds     float64 `json:"held_s"`
	Interrupted     bool    `json:"interrupted"`

	ServerConnectionsBefore     float64 `json:"server_connections_before"`
	ServerConnectionsOpen       float64 `json:"server_connections_open"`
	ServerConnectionsAfterHold  float64 `json:"server_connections_after_hold"`
	ServerConnectionsAfterClose float64 `json:"server_connections_after_close"`

	HeapInuseBefore  float64 `json:"server_heap_inuse_before_bytes"`
	HeapInuseAfter   float64 `json:"server_heap_inuse_after_bytes"`
	StackInuseBefore float64 `json:"server_stack_inuse_before_bytes"`
	StackInuseAfter  float64 `json:"server_stack_inuse_after_bytes"`
	RSSBefore        float64 `json:"server_rss_before_bytes"`
	RSSAfter         float64 `json:"server_rss_after_bytes"`

	HeapPerConn          float64 `json:"heap_inuse_per_conn_bytes"`
	StackPerConn         float64 `json:"stack_inuse_per_conn_bytes"`
	RSSPerConn           float64 `json:"rss_per_conn_bytes"`
	GoroutinesPerConn    float64 `json:"goroutines_per_conn"`
	HeapPerConnAfterHold float64 `json:"heap_inuse_per_conn_after_hold_bytes"`

	BenchHeapPerConn  float64 `json:"bench_heap_inuse_per_conn_bytes"`
	BenchStackPerConn float64 `json:"bench_stack_inuse_per_conn_bytes"`

	Errors      map[string]uint64 `json:"errors"`
	ErrorsTotal uint64            `json:"errors_total"`
	Checks      map[string]string `json:"checks"`
	Pass        bool              `json:"pass"`

	checks []check
	notes  []string
}

// idleConn is one connection of a connect-only run: a reader that answers
// pings (gorilla does it) and discards anything else.
type idleConn struct {
	ws      *websocket.Conn
	closing atomic.Bool
	done    chan struct{}
}

// runConnectOnly opens cfg.connectOnly idle connections spread over the
// stores and URLs, measures the servers' memory before and after, holds
// them, and closes them with 1000. ctx ends the hold early.
func runConnectOnly(ctx context.Context, cfg config) (*connectResult, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	n := cfg.connectOnly
	if n < 1 {
		return nil, errors.New("lily-bench: runConnectOnly: -connect-only must be at least 1")
	}
	if err := checkFileLimit(n); err != nil {
		return nil, err
	}
	logf := func(format string, args ...any) {
		if cfg.log != nil {
			fmt.Fprintf(cfg.log, "lily-bench: "+format+"\n", args...)
		}
	}
	before, err := scrapeSum(ctx, cfg.metricsURLs)
	if err != nil {
		return nil, fmt.Errorf("lily-bench: connect-only reads the server's /metrics: %w", err)
	}
	res := &connectResult{Mode: "connect-only", Requested: n, Stores: cfg.stores}
	res.ServerConnectionsBefore = before["lily_connections_open"]
	res.HeapInuseBefore = before["go_memstats_heap_inuse_bytes"]
	res.StackInuseBefore = before["go_memstats_stack_inuse_bytes"]
	res.RSSBefore = before["process_resident_memory_bytes"]
	goroutinesBefore := before["go_goroutines"]

	var errMu sync.Mutex
	errs := map[string]uint64{}
	note := func(msg string) {
		errMu.Lock()
		defer errMu.Unlock()
		if len(res.notes) < 10 {
			res.notes = append(res.notes, msg)
		}
	}
	countError := func(kind string, err error) {
		errMu.Lock()
		errs[kind]++
		errMu.Unlock()
		if err != nil {
			note(err.Error())
		}
	}

	runtime.GC()
	var ms0 runtime.MemStats
	runtime.ReadMemStats(&ms0)

	runID := newRunID()
	conns := make([]*idleConn, n)
	urlOf := func(i int) string {
		store := fmt.Sprintf("%s%d", cfg.storePrefix, i%cfg.stores)
		return storeURL(cfg.urls[i%len(cfg.urls)], cfg.kind, store, fmt.Sprintf("i%s-%d", runID, i))
	}
	var readers sync.WaitGroup
	logf("opening %d idle connections over %d stores (%g/s)", n, cfg.stores, cfg.connectRate)
	start := time.Now()
	dialAll(ctx, cfg, n, newDialer(cfg, 1024), urlOf,
		func(i int, ws *websocket.Conn) {
			c := &idleConn{ws: ws, done: make(chan struct{})}
			conns[i] = c
			readers.Add(1)
			go func() {
				defer readers.Done()
				defer close(c.done)
				for {
					_, rd, err := ws.NextReader()
					if err == nil {
						_, err = io.Copy(io.Discard, rd)
					}
					if err == nil {
						continue
					}
					if !c.closing.Load() {
						var ce *websocket.CloseError
						if errors.As(err, &ce) {
							countError(fmt.Sprintf("close_%d", ce.Code), nil)
						} else {
							countError("connection_lost", err)
						}
					}
					return
				}
			}()
		},
		func(i int, kind string, err error) {
			if kind == "connect_cancelled" {
				countError(kind, nil)
				return
			}
			countError(kind, err)
		})
	res.ConnectSeconds = round2(time.Since(start).Seconds())
	for _, c := range conns {
		if c != nil {
			res.Connections++
		}
	}
	res.ConnectFailures = n - res.Connections
	defer closeIdle(conns, &readers)

	// Wait until the servers count every connection, then let them settle.
	want := res.ServerConnectionsBefore + float64(res.Connections)
	var after map[string]float64
	deadline := time.Now().Add(10*time.Second + cfg.settle)
	for ctx.Err() == nil {
		m, err := scrapeSum(ctx, cfg.metricsURLs)
		if err == nil && m["lily_connections_open"] >= want {
			break
		}
		if time.Now().After(deadline) {
			note(fmt.Sprintf("the servers never counted %.0f open connections", want))
			break
		}
		sleepCtx(ctx, 100*time.Millisecond)
	}
	logf("%d connections open in %.2fs; settling %v, holding %v", res.Connections, res.ConnectSeconds, cfg.settle, cfg.hold)
	heldFrom := time.Now()
	if sleepCtx(ctx, cfg.settle) {
		after, err = scrapeSum(ctx, cfg.metricsURLs)
		if err != nil {
			note("scrape after opening: " + err.Error())
		}
	}
	runtime.GC()
	var ms1 runtime.MemStats
	runtime.ReadMemStats(&ms1)
	if rest := cfg.hold - time.Since(heldFrom); rest > 0 && ctx.Err() == nil {
		sleepCtx(ctx, rest)
	}
	res.Interrupted = ctx.Err() != nil
	res.HeldSeconds = round2(time.Since(heldFrom).Seconds())
	held := scrapeAll(cfg.metricsURLs)

	per := func(a, b float64) float64 {
		if res.Connections == 0 {
			return 0
		}
		return math.Round((a - b) / float64(res.Connections))
	}
	if after != nil {
		res.ServerConnectionsOpen = after["lily_connections_open"]
		res.HeapInuseAfter = after["go_memstats_heap_inuse_bytes"]
		res.StackInuseAfter = after["go_memstats_stack_inuse_bytes"]
		res.RSSAfter = after["process_resident_memory_bytes"]
		res.HeapPerConn = per(res.HeapInuseAfter, res.HeapInuseBefore)
		res.StackPerConn = per(res.StackInuseAfter, res.StackInuseBefore)
		res.RSSPerConn = per(res.RSSAfter, res.RSSBefore)
		if res.Connections > 0 {
			res.GoroutinesPerConn = round2((after["go_goroutines"] - goroutinesBefore) / float64(res.Connections))
		}
	}
	if held != nil {
		res.ServerConnectionsAfterHold = held["lily_connections_open"]
		res.HeapPerConnAfterHold = per(held["go_memstats_heap_inuse_bytes"], res.HeapInuseBefore)
	}
	res.BenchHeapPerConn = per(float64(ms1.HeapInuse), float64(ms0.HeapInuse))
	res.BenchStackPerConn = per(float64(ms1.StackInuse), float64(ms0.StackInuse))

	// Close, and see the servers forget the connections.
	closeIdle(conns, &readers)
	deadline = time.Now().Add(5 * time.Second)
	for {
		m := scrapeAll(cfg.metricsURLs)
		if m != nil {
			res.ServerConnectionsAfterClose = m["lily_connections_open"]
			if m["lily_connections_open"] <= res.ServerConnectionsBefore {
				break
			}
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}

	errMu.Lock()
	res.Errors = errs
	for _, v := range errs {
		res.ErrorsTotal += v
	}
	errMu.Unlock()
	add := func(name string, pass bool, format string, args ...any) {
		res.checks = append(res.checks, check{name: name, pass: pass, detail: fmt.Sprintf(format, args...)})
	}
	add("connections", res.Connections == n, "%d/%d opened", res.Connections, n)
	add("server_count", after != nil && res.ServerConnectionsOpen-res.ServerConnectionsBefore == float64(res.Connections),
		"lily_connections_open went from %.0f to %.0f", res.ServerConnectionsBefore, res.ServerConnectionsOpen)
	add("held", held != nil && held["lily_connections_open"] == res.ServerConnectionsOpen && res.ErrorsTotal == 0,
		"%.0f connections still open after the hold, %d errors", res.ServerConnectionsAfterHold, res.ErrorsTotal)
	add("closed", res.ServerConnectionsAfterClose <= res.ServerConnectionsBefore,
		"lily_connections_open back to %.0f after closing", res.ServerConnectionsAfterClose)
	res.Checks = map[string]string{}
	res.Pass = true
	for _, c := range res.checks {
		res.Checks[c.name] = map[bool]string{true: "PASS", false: "FAIL"}[c.pass]
		res.Pass = res.Pass && c.pass
	}
	return res, nil
}

// closeIdle closes the connections with 1000 and waits for their readers,
// closing the sockets of those that do not answer within 3 seconds. It may
// be called more than once.
func closeIdle(conns []*idleConn, readers *sync.WaitGroup) {
	sockets := make([]closingSocket, 0, len(conns))
	for _, c := range conns {
		if c != nil {
			sockets = append(sockets, closingSocket{c.ws, &c.closing})
		}
	}
	closeGracefully(sockets, readers)
}

// closingSocket is a connection the bench closes itself: closing is set
// once the close has been sent, so its reader takes the end as expected.
type closingSocket struct {
	ws      *websocket.Conn
	closing *atomic.Bool
}

// closeGracefully sends a close frame (1000) on every socket not yet
// closing and waits up to 3 seconds for the readers to finish; then it
// closes the sockets, which ends any reader still waiting. It reports
// whether every reader finished in time.
func closeGracefully(sockets []closingSocket, readers *sync.WaitGroup) bool {
	for _, s := range sockets {
		if s.ws == nil || s.closing.Swap(true) {
			continue
		}
		_ = s.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	}
	done := make(chan struct{})
	go func() {
		readers.Wait()
		close(done)
	}()
	t := time.NewTimer(3 * time.Second)
	defer t.Stop()
	inTime := true
	select {
	case <-done:
	case <-t.C:
		inTime = false
	}
	for _, s := range sockets {
		if s.ws != nil {
			_ = s.ws.Close()
		}
	}
	<-done
	return inTime
}

// printConnect writes the human table (unless jsonOnly) and the JSON line.
func printConnect(w io.Writer, res *connectResult, jsonOnly bool) error {
	if !jsonOnly {
		fmt.Fprintf(w, "lily-bench: connect-only, %d idle connections over %d stores\n", res.Requested, res.Stores)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintf(tw, "\tbefore\tafter\tper connection\t\n")
		fmt.Fprintf(tw, "lily_connections_open\t%.0f\t%.0f\t\t\n", res.ServerConnectionsBefore, res.ServerConnectionsOpen)
		fmt.Fprintf(tw, "heap in use (bytes)\t%.0f\t%.0f\t%.0f\t\n", res.HeapInuseBefore, res.HeapInuseAfter, res.HeapPerConn)
		fmt.Fprintf(tw, "stacks in use (bytes)\t%.0f\t%.0f\t%.0f\t\n", res.StackInuseBefore, res.StackInuseAfter, res.StackPerConn)
		fmt.Fprintf(tw, "resident (bytes)\t%.0f\t%.0f\t%.0f\t\n", res.RSSBefore, res.RSSAfter, res.RSSPerConn)
		fmt.Fprintf(tw, "goroutines\t\t\t%.2f\t\n", res.GoroutinesPerConn)
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintf(w, "opened %d (%d failed) in %.2fs, held %.2fs%s; heap per connection after the hold %.0f bytes\n",
			res.Connections, res.ConnectFailures, res.ConnectSeconds, res.HeldSeconds,
			map[bool]string{true: " (interrupted)", false: ""}[res.Interrupted], res.HeapPerConnAfterHold)
		fmt.Fprintf(w, "bench side per connection: heap %.0f bytes, stacks %.0f bytes\n", res.BenchHeapPerConn, res.BenchStackPerConn)
		for _, k := range sortedKeys(res.Errors) {
			fmt.Fprintf(w, "errors: %s %d\n", k, res.Errors[k])
		}
		for _, n := range res.notes {
			fmt.Fprintf(w, "note: %s\n", n)
		}
		fmt.Fprintln(w, "checks:")
		for _, c := range res.checks {
			fmt.Fprintf(w, "  %s %-12s %s\n", map[bool]string{true: "PASS", false: "FAIL"}[c.pass], c.name, c.detail)
		}
	}
	return writeJSONLine(w, res)
}
