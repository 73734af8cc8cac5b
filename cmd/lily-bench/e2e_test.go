package main

import (
	"context"
	"io"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"

	"github.com/lily-go/lily/actors"
	"github.com/lily-go/lily/demo/counter"
	"github.com/lily-go/lily/demo/todo"
	"github.com/lily-go/lily/gateway"
	"github.com/lily-go/lily/internal/testutil"
	"github.com/lily-go/lily/server"
	"github.com/lily-go/lily/transport"
)

// startNode serves the demo kinds in process, as lilyd does, on a free
// loopback port, and returns its ws:// base URL.
func startNode(tb testing.TB) string {
	tb.Helper()
	var registry *server.Registry
	metrics := gateway.NewMetrics(func() int { return registry.Stores() })
	registry, err := server.NewRegistry(server.Config{Observer: metrics},
		actors.NewKind("counter", counter.Store(), transport.Automatic[counter.Counter, counter.Msg](counter.Variants...)),
		actors.NewKind("todo", todo.Store(), transport.Automatic[todo.Model, todo.Msg](todo.Variants...)),
	)
	if err != nil {
		tb.Fatal(err)
	}
	gw, err := gateway.New(registry, gateway.Config{Metrics: metrics})
	if err != nil {
		tb.Fatal(err)
	}
	srv := httptest.NewServer(gw)
	tb.Cleanup(func() {
		_ = gw.Shutdown(context.Background())
		srv.Close()
		registry.Stop()
	})
	return "ws" + strings.TrimPrefix(srv.URL, "http")
}

// benchGoroutines returns the stacks of the goroutines running the bench's
// own code, other than the test itself.
func benchGoroutines() []string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "cmd/lily-bench.") && !strings.Contains(g, "cmd/lily-bench.Test") &&
			!strings.Contains(g, "testing.tRunner") {
			out = append(out, g)
		}
	}
	return out
}

func checkNoBenchGoroutines(t *testing.T) {
	t.Helper()
	metricsClient.CloseIdleConnections()
	testutil.Eventually(t, func() bool { return len(benchGoroutines()) == 0 },
		"bench goroutines still running after the run:\n%s", strings.Join(benchGoroutines(), "\n\n"))
}

func TestRunLoadEndToEnd(t *testing.T) {
	url := startNode(t)
	cases := []struct {
		name string
		args []string
	}{
		{"counter json closed loop", []string{"-stores", "2", "-clients", "3"}},
		{"counter msgpack fan-out at a rate", []string{"-stores", "2", "-clients", "4", "-senders", "1", "-rate", "200", "-format", "msgpack"}},
		{"todo payload json", []string{"-stores", "1", "-clients", "3", "-payload-bytes", "100"}},
		{"todo default msgpack", []string{"-kind", "todo", "-stores", "2", "-clients", "2", "-format", "msgpack", "-full-decode"}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"-url", url, "-duration", "1s", "-warmup", "0s", "-progress", "0",
				"-store-prefix", "e2e" + string(rune('a'+i)) + "-"}, tc.args...)
			cfg, err := parseFlags(args, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			res, err := runLoad(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			var out strings.Builder
			if err := printLoad(&out, res, cfg.urls, false); err != nil {
				t.Fatal(err)
			}
			t.Log("\n" + out.String())
			for _, c := range res.checks {
				if !c.pass {
					t.Errorf("check %s failed: %s", c.name, c.detail)
				}
			}
			if !res.Pass || len(res.Checks) != len(res.checks) {
				t.Errorf("pass = %v, checks %v", res.Pass, res.Checks)
			}
			if res.AckedTotal == 0 || res.Acked == 0 || res.AckCount == 0 {
				t.Errorf("nothing acknowledged: %+v", res)
			}
			if res.ErrorsTotal != 0 || res.RefusedTotal != 0 {
				t.Errorf("errors: %v, %d refused", res.Errors, res.RefusedTotal)
			}
			if res.Connections != cfg.stores*cfg.clients {
				t.Errorf("%d connections", res.Connections)
			}
			var acked uint64
			for _, st := range res.stores {
				acked += st.acked
				if st.overflows == 0 {
					if want := st.acked * uint64(st.clients-1); st.deliveries != want {
						t.Errorf("store %s: %d deliveries, want %d acked x %d other clients", st.name, st.deliveries, st.acked, st.clients-1)
					}
				}
			}
			if acked != res.AckedTotal {
				t.Errorf("stores acked %d in all, run %d", acked, res.AckedTotal)
			}
			if res.OverflowSnapshots == 0 && res.DeliveryCount+res.UnresolvedDeliveries > res.Deliveries+uint64(cfg.stores*cfg.clients) {
				t.Errorf("%d delivery latencies for %d deliveries", res.DeliveryCount, res.Deliveries)
			}
			if !strings.Contains(out.String(), `"acked_per_sec":`) || !strings.Contains(out.String(), "PASS sequence") {
				t.Errorf("report lacks the JSON line or the checks:\n%s", out.String())
			}
			checkNoBenchGoroutines(t)
		})
	}
}

// TestRunLoadCancelled checks that a cancelled run (SIGINT) still stops
// cleanly and returns what it has.
func TestRunLoadCancelled(t *testing.T) {
	url := startNode(t)
	cfg, err := parseFlags([]string{"-url", url, "-stores", "1", "-clients", "2", "-duration", "1h", "-warmup", "0s", "-progress", "0"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan *result)
	go func() {
		res, err := runLoad(ctx, cfg)
		if err != nil {
			t.Error(err)
		}
		done <- res
	}()
	// Cancel (as SIGINT does) once the node has seen some traffic.
	testutil.Eventually(t, func() bool {
		m, err := scrapeSum(context.Background(), cfg.metricsURLs)
		return err == nil && m["lily_frames_in_total"] > 100
	}, "no traffic reached the node")
	if n := len(benchGoroutines()); n < 4 {
		t.Errorf("%d bench goroutines during the run, want readers and senders", n)
	}
	cancel()
	res := <-done
	if res == nil {
		t.Fatal("no result")
	}
	if !res.Interrupted || res.AckedTotal == 0 || res.MeasuredSeconds <= 0 {
		t.Errorf("a cancelled run should say it was interrupted and report what it measured: %+v", res)
	}
	if !res.Pass {
		t.Errorf("checks failed after an interrupt: %v", res.checks)
	}
	checkNoBenchGoroutines(t)
}

func TestRunConnectOnly(t *testing.T) {
	url := startNode(t)
	cfg, err := parseFlags([]string{"-url", url, "-connect-only", "30", "-stores", "3", "-hold", "0s", "-settle", "0s", "-connect-rate", "1000"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	res, err := runConnectOnly(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	if err := printConnect(&out, res, false); err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + out.String())
	if !res.Pass {
		t.Errorf("checks failed: %v", res.checks)
	}
	if res.Connections != 30 || res.ServerConnectionsOpen-res.ServerConnectionsBefore != 30 {
		t.Errorf("opened %d, server counted %v -> %v", res.Connections, res.ServerConnectionsBefore, res.ServerConnectionsOpen)
	}
	if res.HeapInuseAfter == 0 || res.RSSAfter == 0 {
		t.Errorf("memory not scraped: %+v", res)
	}
	checkNoBenchGoroutines(t)
}
