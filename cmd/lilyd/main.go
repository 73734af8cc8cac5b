// Command lilyd runs a lily node: stores of the demo kinds "counter" and
// "todo", served over WebSockets at /ws/{kind}/{name}, with /healthz,
// /readyz and /metrics. Run it with no arguments to serve on :8080; -help
// lists the flags (each also read from a LILY_* environment variable).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lily-go/lily/actors"
	"github.com/lily-go/lily/cluster"
	"github.com/lily-go/lily/demo/counter"
	"github.com/lily-go/lily/demo/todo"
	"github.com/lily-go/lily/gateway"
	"github.com/lily-go/lily/journal"
	"github.com/lily-go/lily/server"
	"github.com/lily-go/lily/transport"
	"github.com/lily-go/lily/web"
)

func main() {
	if code, ok := probeMode(os.Args[1:], os.Getenv, os.Stderr); ok {
		os.Exit(code) // lilyd -probe URL: a health check (probe.go)
	}
	cfg, err := parseConfig(os.Args[1:], os.Getenv, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// demoKinds are the store kinds lilyd serves.
func demoKinds() []actors.Kind {
	return []actors.Kind{
		actors.NewKind("counter", counter.Store(), transport.Automatic[counter.Counter, counter.Msg](counter.Variants...)),
		actors.NewKind("todo", todo.Store(), transport.Automatic[todo.Model, todo.Msg](todo.Variants...)),
	}
}

// run serves until ctx is done, then shuts down gracefully: it stops
// accepting, closes every socket with 1001 and stops the stores.
func run(ctx context.Context, cfg config) error {
	logger := cfg.logger()
	jrnl, closeJournal, err := cfg.openJournal(logger.With(slog.String("component", "journal")))
	if err != nil {
		return err
	}
	defer func() {
		if err := closeJournal(); err != nil {
			logger.Error("closing the journal", slog.Any("error", err))
		}
	}()
	metrics := gateway.NewMetrics(nil)
	stores, err := startStores(ctx, cfg, jrnl, metrics, logger)
	if err != nil {
		return err
	}
	gw, err := gateway.New(stores.resolver, gateway.Config{
		ReadLimit:      cfg.readLimit,
		WriteTimeout:   cfg.writeTimeout,
		PingInterval:   cfg.pingInterval,
		AllowedOrigins: cfg.origins(),
		Metrics:        metrics,
		Logger:         logger,
	})
	if err != nil {
		stores.stop(context.Background())
		return err
	}
	// The demo page at / (the gateway serves the browser client, /lily.js).
	web.Mount(gw)
	ln, err := net.Listen("tcp", cfg.listen)
	if err != nil {
		return fmt.Errorf("lilyd: listen: %w", err)
	}
	if cfg.pprofListen != "" {
		stopProfiles, err := serveDebug(cfg.pprofListen, stores.activations, logger)
		if err != nil {
			return err
		}
		defer stopProfiles()
	}
	httpServer := &http.Server{Handler: gw, ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}
	served := make(chan error, 1)
	go func() { served <- httpServer.Serve(ln) }()
	logger.Info("lilyd serving", slog.String("addr", ln.Addr().String()), slog.String("kinds", "counter, todo"),
		slog.String("data_dir", cfg.dataDir), slog.String("durability", cfg.durability))

	var failed error
	select {
	case err := <-served:
		stores.stop(context.Background())
		return fmt.Errorf("lilyd: serve: %w", err)
	case <-ctx.Done():
	case <-stores.done:
		// The cluster told this node to stop (it was declared dead while
		// stalled): exit, to be restarted with a new identity.
		failed = stores.err()
		logger.Error("lilyd: leaving", slog.Any("error", failed))
	}
	logger.Info("lilyd shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.shutdownTimeout)
	defer cancel()
	if err := gw.Shutdown(shutdownCtx); err != nil {
		logger.Warn("connections did not all close in time", slog.Any("error", err))
	}
	if err := httpServer.Shutdown(shutdownCtx); err != nil {
		logger.Warn("http server did not stop in time", slog.Any("error", err))
	}
	stores.stop(shutdownCtx)
	<-served
	logger.Info("lilyd stopped")
	return failed
}

// storeHost is where the node's stores run: a registry (single node) or a
// cluster node.
type storeHost struct {
	resolver gateway.Resolver
	stop     func(ctx context.Context)
	done     <-chan struct{} // closed when the cluster requires this node to stop
	err      func() error
	// activations lists the stores activated on this node (nil: not a
	// cluster node).
	activations func() []string
}

// startStores starts the stores: a registry, or with -cluster-name a
// cluster node that joins its peers (and returns once it has joined).
func startStores(ctx context.Context, cfg config, jrnl journal.Journal, metrics *gateway.Metrics, logger *slog.Logger) (*storeHost, error) {
	if cfg.clusterName == "" {
		registry, err := server.NewRegistry(server.Config{
			OutboxBytes:    cfg.outboxBytes,
			Logger:         logger,
			Observer:       metrics,
			System:         server.NewActorSystem(logger.With(slog.String("component", "actors"))),
			Journal:        jrnl,
			SnapshotEvery:  cfg.snapshotEvery,
			Retention:      cfg.retention,
			PassivateAfter: cfg.passivateAfter,
		}, demoKinds()...)
		if err != nil {
			return nil, err
		}
		metrics.CountStores(registry.Stores)
		return &storeHost{resolver: registry, stop: func(context.Context) { registry.Stop() }, done: make(chan struct{}), err: func() error { return nil }}, nil
	}
	requests := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "lily_cluster_request_seconds",
		Help:    "Attach requests to stores' grains (a connection's first, or its re-attach after a store moved), by where the grain answered from (local or remote node) and result (ok or error).",
		Buckets: []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10},
	}, []string{"placement", "result"})
	metrics.Registry().MustRegister(requests)
	node, err := cluster.Start(ctx, cluster.Config{
		ClusterName:   cfg.clusterName,
		NodeName:      cfg.nodeName,
		BindHost:      cfg.bind,
		AdvertiseHost: cfg.advertise,
		GossipPort:    cfg.gossipPort,
		RemotePort:    cfg.remotePort,
		Seeds:         cfg.seedList(),
		Detection: cluster.Detection{
			ProbeInterval: cfg.probeInterval,
			ProbeTimeout:  cfg.probeTimeout,
			SuspicionMult: cfg.suspicionMult,
		},
		StoreKinds: demoKinds(),
		Stores: cluster.StoreSettings{
			Journal:        jrnl,
			OutboxBytes:    cfg.outboxBytes,
			SnapshotEvery:  cfg.snapshotEvery,
			Retention:      cfg.retention,
			Observer:       metrics,
			PassivateAfter: cfg.passivateAfter,
		},
		ObserveRequest: func(remote bool, d time.Duration, err error) {
			placement, result := "local", "ok"
			if remote {
				placement = "remote"
			}
			if err != nil {
				placement, result = "unknown", "error"
			}
			requests.WithLabelValues(placement, result).Observe(d.Seconds())
		},
		Logger: logger,
	})
	if err != nil {
		return nil, fmt.Errorf("lilyd: cluster: %w", err)
	}
	metrics.Registry().MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "lily_cluster_members", Help: "Members of the cluster this node sees (itself included).",
	}, func() float64 { return float64(len(node.Members())) }))
	metrics.Registry().MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "lily_cluster_activations", Help: "Store activations (grains) hosted on this node.",
	}, func() float64 { return float64(len(node.Activations())) }))
	logger.Info("joined the cluster", slog.String("cluster", cfg.clusterName), slog.String("node", node.ID()),
		slog.String("gossip", node.GossipAddress()), slog.Int("members", len(node.Members())))
	stop := func(ctx context.Context) {
		if err := node.Shutdown(ctx); err != nil {
			logger.Warn("leaving the cluster", slog.Any("error", err))
		}
	}
	return &storeHost{resolver: node, stop: stop, done: node.Done(), err: node.Err, activations: node.Activations}, nil
}

// serveDebug serves Go's runtime profiles (net/http/pprof) on addr, apart
// from the public listener, and, on a cluster node, /debug/activations:
// the stores activated on this node as a JSON array. It returns the
// function that stops it.
func serveDebug(addr string, activations func() []string, logger *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("lilyd: pprof listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	if activations != nil {
		mux.HandleFunc("/debug/activations", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(activations())
		})
	}
	srv := &http.Server{Handler: mux}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	logger.Info("profiles served", slog.String("addr", ln.Addr().String()))
	return func() {
		_ = srv.Close()
		<-done
	}, nil
}
