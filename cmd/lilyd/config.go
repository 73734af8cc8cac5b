package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/lily-go/lily/cluster"
	"github.com/lily-go/lily/journal"
	"github.com/lily-go/lily/journal/pebblejournal"
	"github.com/lily-go/lily/journal/pgjournal"
)

// config is lilyd's configuration: every flag can also be set with the
// environment variable LILY_<FLAG> (upper case, '-' as '_'); a flag given on
// the command line wins over the environment.
type config struct {
	listen          string
	logLevel        string
	logFormat       string
	allowedOrigins  string
	readLimit       int64
	writeTimeout    time.Duration
	pingInterval    time.Duration
	outboxBytes     int
	shutdownTimeout time.Duration
	pprofListen     string
	dataDir         string
	durability      string
	batchInterval   time.Duration
	snapshotEvery   uint64
	retention       uint64
	passivateAfter  time.Duration
	journalURL      string
	clusterName     string
	nodeName        string
	bind            string
	advertise       string
	gossipPort      int
	remotePort      int
	seeds           string
	probeInterval   time.Duration
	probeTimeout    time.Duration
	suspicionMult   int
}

// envName returns the environment variable of a flag: LILY_LISTEN for
// -listen.
func envName(flagName string) string {
	return "LILY_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// parseConfig reads flags from args and the environment from getenv.
func parseConfig(args []string, getenv func(string) string, output io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("lilyd", flag.ContinueOnError)
	fs.SetOutput(output)
	fs.StringVar(&c.listen, "listen", ":8080", "address to serve HTTP and WebSockets on")
	fs.StringVar(&c.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.StringVar(&c.logFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&c.allowedOrigins, "allowed-origins", "", "comma-separated browser origins allowed to connect (\"*\" for any); empty: same origin only")
	fs.Int64Var(&c.readLimit, "read-limit", 1<<20, "largest frame a client may send, in bytes (larger: close 1009)")
	fs.DurationVar(&c.writeTimeout, "write-timeout", 10*time.Second, "how long a socket may accept nothing before it is closed with 1013")
	fs.DurationVar(&c.pingInterval, "ping-interval", 30*time.Second, "how often idle clients are pinged; silent for two intervals: closed")
	fs.IntVar(&c.outboxBytes, "outbox-bytes", 1<<20, "bound of one client's queue of frames, in bytes (overflow: a fresh snapshot instead)")
	fs.DurationVar(&c.shutdownTimeout, "shutdown-timeout", 10*time.Second, "how long a graceful shutdown may take")
	fs.StringVar(&c.pprofListen, "pprof-listen", "", "debug address: Go's /debug/pprof profiles and, in a cluster, /debug/activations (e.g. 127.0.0.1:6060); empty: off")
	fs.StringVar(&c.dataDir, "data-dir", "./data", "directory of the node's journal (created if missing); empty: stores live in memory only")
	fs.StringVar(&c.durability, "durability", "sync", "when a message counts as durable: sync (fsync before the acknowledgement), batch (fsync every -batch-interval), off")
	fs.DurationVar(&c.batchInterval, "batch-interval", 10*time.Millisecond, "how often the journal syncs to disk with -durability batch")
	fs.Uint64Var(&c.snapshotEvery, "snapshot-every", 1000, "messages a store applies between snapshots")
	fs.Uint64Var(&c.retention, "retention", 10000, "messages a store keeps behind its latest snapshot for delta resyncs")
	fs.DurationVar(&c.passivateAfter, "passivate-after", 5*time.Minute, "a store with no client and no message for this long snapshots and stops (0: never)")
	fs.StringVar(&c.journalURL, "journal", "", "a shared journal, postgres://user@host:port/db (required with -cluster-name); empty: the local one under -data-dir")
	fs.StringVar(&c.clusterName, "cluster-name", "", "join the cluster of this name (nodes with the same name and seeds form one); empty: a single node")
	fs.StringVar(&c.nodeName, "node-name", "", "this node's name in logs (cluster mode)")
	fs.StringVar(&c.bind, "bind", "127.0.0.1", "host the cluster's gossip and remote ports bind to (cluster mode)")
	fs.StringVar(&c.advertise, "advertise", "", "host other nodes reach this one at (cluster mode); empty: -bind")
	fs.IntVar(&c.gossipPort, "gossip-port", 7946, "memberlist port, TCP and UDP (cluster mode)")
	fs.IntVar(&c.remotePort, "remote-port", 8090, "Proto.Actor remote (gRPC) port (cluster mode)")
	fs.StringVar(&c.seeds, "seeds", "", "comma-separated host:port gossip addresses (or DNS names) of nodes to join (cluster mode)")
	lan := cluster.LANDetection()
	fs.DurationVar(&c.probeInterval, "probe-interval", lan.ProbeInterval, "failure detection: how often a node probes one peer (cluster mode)")
	fs.DurationVar(&c.probeTimeout, "probe-timeout", lan.ProbeTimeout, "failure detection: how long a probe waits for its answer before others are asked to probe (cluster mode)")
	fs.IntVar(&c.suspicionMult, "suspicion-mult", lan.SuspicionMult, "failure detection: a suspected node has this many probe intervals to refute before it is declared dead (cluster mode)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: lilyd [flags]\n\nEvery flag can also be set as an environment variable, e.g. -listen as %s.\n\n", envName("listen"))
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("lilyd: unexpected arguments %q", fs.Args())
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if given[f.Name] {
			return
		}
		if v := getenv(envName(f.Name)); v != "" {
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("lilyd: %s=%q: %w", envName(f.Name), v, err))
			}
		}
	})
	if err := errors.Join(errs...); err != nil {
		return c, err
	}
	return c, c.validate()
}

func (c config) validate() error {
	if _, err := c.level(); err != nil {
		return err
	}
	if c.logFormat != "text" && c.logFormat != "json" {
		return fmt.Errorf("lilyd: -log-format must be text or json, got %q", c.logFormat)
	}
	if c.readLimit <= 0 || c.outboxBytes <= 0 {
		return errors.New("lilyd: -read-limit and -outbox-bytes must be positive")
	}
	if _, err := journal.ParseDurability(c.durability); err != nil {
		return fmt.Errorf("lilyd: -durability: %w", err)
	}
	if c.snapshotEvery == 0 || c.retention == 0 || c.batchInterval <= 0 || c.passivateAfter < 0 {
		return errors.New("lilyd: -snapshot-every, -retention and -batch-interval must be positive, -passivate-after not negative")
	}
	if c.clusterName != "" && !strings.HasPrefix(c.journalURL, "postgres://") && !strings.HasPrefix(c.journalURL, "postgresql://") {
		return errors.New("lilyd: -cluster-name needs -journal postgres://...: a store moving between nodes must find its journal on every node")
	}
	if c.journalURL != "" && !strings.HasPrefix(c.journalURL, "postgres://") && !strings.HasPrefix(c.journalURL, "postgresql://") {
		return fmt.Errorf("lilyd: -journal must be a postgres:// URL, got %q", c.journalURL)
	}
	if c.probeInterval <= 0 || c.probeTimeout <= 0 || c.probeTimeout >= c.probeInterval || c.suspicionMult <= 0 {
		return errors.New("lilyd: -probe-interval, -probe-timeout and -suspicion-mult must be positive, -probe-timeout below -probe-interval")
	}
	if c.writeTimeout <= 0 || c.pingInterval <= 0 || c.shutdownTimeout <= 0 {
		return errors.New("lilyd: -write-timeout, -ping-interval and -shutdown-timeout must be positive")
	}
	return nil
}

func (c config) level() (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(c.logLevel)); err != nil {
		return l, fmt.Errorf("lilyd: -log-level must be debug, info, warn or error, got %q", c.logLevel)
	}
	return l, nil
}

func (c config) logger() *slog.Logger {
	level, _ := c.level()
	opts := &slog.HandlerOptions{Level: level}
	if c.logFormat == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}

func (c config) origins() []string {
	var out []string
	for _, o := range strings.Split(c.allowedOrigins, ",") {
		if o = strings.TrimSpace(o); o != "" {
			out = append(out, o)
		}
	}
	return out
}

// openJournal opens the node's journal: PostgreSQL with -journal, Pebble
// under -data-dir, or nil (the registry's in-memory journal) when -data-dir
// is empty.
func (c config) openJournal(logger *slog.Logger) (journal.Journal, func() error, error) {
	if c.journalURL != "" {
		durability, _ := journal.ParseDurability(c.durability)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		j, err := pgjournal.Open(ctx, c.journalURL, pgjournal.Options{Durability: durability, Logger: logger})
		if err != nil {
			return nil, nil, fmt.Errorf("lilyd: -journal: %w", err)
		}
		return j, j.Close, nil
	}
	if c.dataDir == "" {
		return nil, func() error { return nil }, nil
	}
	durability, _ := journal.ParseDurability(c.durability)
	if err := os.MkdirAll(c.dataDir, 0o755); err != nil {
		return nil, nil, fmt.Errorf("lilyd: -data-dir: %w", err)
	}
	j, err := pebblejournal.Open(filepath.Join(c.dataDir, "journal"), pebblejournal.Options{
		Durability: durability, BatchInterval: c.batchInterval, Logger: logger,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("lilyd: %w", err)
	}
	return j, j.Close, nil
}

func (c config) seedList() []string {
	var out []string
	for _, s := range strings.Split(c.seeds, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}
