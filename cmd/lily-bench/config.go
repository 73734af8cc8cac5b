package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	"github.com/lily-go/lily/demo/todo"
	"github.com/lily-go/lily/transport"
)

// maxConnsPerProcess bounds the connections one bench process opens: the
// machine allows 20,000 open files per process, and the bench needs a few
// for itself (listeners, profiles, /metrics scrapes).
const maxConnsPerProcess = 18000

// config is one bench run's settings, from the command line.
type config struct {
	urls        []string         // base WebSocket URLs, clients spread round-robin
	kind        string           // "counter" or "todo"
	stores      int              // stores, named storePrefix+"0", ...
	storePrefix string           // prefix of the store names
	clients     int              // clients per store
	senders     int              // sending clients per store (the others only receive)
	rate        float64          // messages/s per sender; 0 = closed loop
	maxInflight int              // open loop: unacknowledged messages a sender may have
	duration    time.Duration    // measured time
	warmup      time.Duration    // time before the measurement, excluded from the stats
	payload     int              // >0: todo Rename of a missing id with a title of this many bytes
	format      transport.Format // envelope format
	connectRate float64          // connections opened per second
	dialTimeout time.Duration    // bound of one WebSocket handshake
	drain       time.Duration    // bound of the end's drain and of the final resync
	fullDecode  bool             // decode every frame with transport.Decode
	jsonOnly    bool             // print only the JSON line
	progress    time.Duration    // interval of progress lines on stderr; 0 = none
	cpuProfile  string           // file for the bench's own CPU profile

	connectOnly int           // >0: connect-only mode with this many connections
	hold        time.Duration // connect-only: how long to hold the connections
	settle      time.Duration // connect-only: wait after all are open before scraping
	metricsURLs []string      // the servers' /metrics; default: derived from urls

	log io.Writer // progress and notes; nil discards
}

// usageHeader is printed before the flags by -help.
const usageHeader = `Usage: lily-bench [flags]

lily-bench loads lily nodes over real WebSockets and reports throughput,
latency percentiles, errors and a convergence check. See the package
documentation (go doc ./cmd/lily-bench) for examples.

`

// parseFlags reads the command line. It returns flag.ErrHelp for -help.
func parseFlags(args []string, output io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("lily-bench", flag.ContinueOnError)
	fs.SetOutput(output)
	urls := fs.String("url", "ws://127.0.0.1:8080", "comma-separated base WebSocket URLs of the nodes (ws:// or wss://); clients are spread over them round-robin")
	fs.StringVar(&c.kind, "kind", "counter", "store kind: counter (sends Increment) or todo (sends Toggle of a missing item, or Rename with -payload-bytes)")
	fs.IntVar(&c.stores, "stores", 1, "number of stores, named <store-prefix>0, <store-prefix>1, ...")
	fs.StringVar(&c.storePrefix, "store-prefix", "bench-", "prefix of the store names")
	fs.IntVar(&c.clients, "clients", 10, "WebSocket clients per store")
	fs.IntVar(&c.senders, "senders", 0, "clients per store that send (the first ones); 0 = all. For fan-out use 1 sender and many clients")
	fs.Float64Var(&c.rate, "rate", 0, "messages per second per sender; 0 = closed loop (each sender sends its next message when the previous is acknowledged)")
	fs.IntVar(&c.maxInflight, "max-inflight", 1024, "with -rate: unacknowledged messages a sender may have before it waits (the wait is counted as a stall); also at most 10 s worth of messages at -rate (and at least 16)")
	fs.DurationVar(&c.duration, "duration", 10*time.Second, "measured time, after the warm-up")
	fs.DurationVar(&c.warmup, "warmup", time.Second, "load time before the measurement, excluded from the stats")
	fs.IntVar(&c.payload, "payload-bytes", 0, fmt.Sprintf("0 = the kind's small default message; N > 0 = the todo kind's Rename of a missing item with an N-byte title (1..%d; the model does not change); implies -kind todo", todo.MaxTitle))
	format := fs.String("format", "json", "envelope format: json (text frames) or msgpack (binary frames)")
	fs.Float64Var(&c.connectRate, "connect-rate", 500, "connections opened per second, so the server is not flooded with handshakes")
	fs.DurationVar(&c.dialTimeout, "dial-timeout", 10*time.Second, "bound of one WebSocket handshake")
	fs.DurationVar(&c.drain, "drain-timeout", 10*time.Second, "at the end: how long to wait for outstanding acks and deliveries, and then for the final resync's snapshots")
	fs.BoolVar(&c.fullDecode, "full-decode", false, "decode every frame with transport.Decode instead of the bench's fast scanner (slower; for checking)")
	fs.BoolVar(&c.jsonOnly, "json-only", false, "print only the JSON line of results on stdout")
	fs.DurationVar(&c.progress, "progress", 5*time.Second, "interval of progress lines on stderr; 0 = none")
	fs.StringVar(&c.cpuProfile, "cpuprofile", "", "write the bench's own CPU profile to this file")
	fs.IntVar(&c.connectOnly, "connect-only", 0, fmt.Sprintf("connect-only mode: open N idle connections (spread over -stores), hold them and report the server's memory per connection from its /metrics; N <= %d per bench process (20,000 open files per process; lilyd has the same limit, so keep N below ~19,000 per node)", maxConnsPerProcess))
	fs.DurationVar(&c.hold, "hold", 10*time.Second, "connect-only: how long to hold the connections once all are open")
	fs.DurationVar(&c.settle, "settle", 2*time.Second, "connect-only: wait after all connections are open before scraping /metrics")
	metrics := fs.String("metrics", "", "comma-separated URLs of the servers' /metrics (scraped for server CPU and memory); default: http://HOST:PORT/metrics of each -url; \"off\" = none")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usageHeader)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("lily-bench: unexpected arguments %q", fs.Args())
	}
	kindGiven := false
	fs.Visit(func(f *flag.Flag) { kindGiven = kindGiven || f.Name == "kind" })
	if c.payload > 0 && !kindGiven {
		c.kind = "todo"
	}
	c.urls = splitList(*urls)
	switch *format {
	case "json":
		c.format = transport.FormatJSON
	case "msgpack":
		c.format = transport.FormatMsgPack
	default:
		return c, fmt.Errorf("lily-bench: -format must be json or msgpack, got %q", *format)
	}
	switch *metrics {
	case "off":
	case "":
		for _, u := range c.urls {
			if m, err := metricsURL(u); err == nil {
				c.metricsURLs = append(c.metricsURLs, m)
			}
		}
	default:
		c.metricsURLs = splitList(*metrics)
	}
	c.metricsURLs = dedupe(c.metricsURLs) // two -url of one node: scrape it once
	return c, c.validate()
}

// splitList splits a comma-separated list, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// dedupe returns list without repeated items, in order.
func dedupe(list []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, s := range list {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// validate checks the settings; the error names the flag.
func (c config) validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("lily-bench: "+format, args...)) }
	if len(c.urls) == 0 {
		bad("-url: give at least one ws:// URL")
	}
	for _, u := range c.urls {
		if err := checkWSURL(u); err != nil {
			bad("-url %q: %v", u, err)
		}
	}
	if c.kind != "counter" && c.kind != "todo" {
		bad("-kind must be counter or todo, got %q", c.kind)
	}
	if c.stores < 1 {
		bad("-stores must be at least 1, got %d", c.stores)
	}
	if !transport.ValidName(c.storePrefix + "0") {
		bad("-store-prefix %q: store names must be 1-128 chars of [A-Za-z0-9._-]", c.storePrefix)
	}
	if c.connectRate <= 0 {
		bad("-connect-rate must be positive, got %g", c.connectRate)
	}
	if c.dialTimeout <= 0 || c.drain <= 0 {
		bad("-dial-timeout and -drain-timeout must be positive")
	}
	if c.progress < 0 {
		bad("-progress must not be negative")
	}
	if c.format != transport.FormatJSON && c.format != transport.FormatMsgPack {
		bad("-format must be json or msgpack")
	}
	if c.connectOnly < 0 {
		bad("-connect-only must not be negative, got %d", c.connectOnly)
	}
	if c.connectOnly > 0 {
		if c.connectOnly > maxConnsPerProcess {
			bad("-connect-only %d: at most %d connections per bench process (the limit is 20,000 open files per process and cannot be raised); run several bench processes, and keep each lilyd below ~19,000 connections for the same reason", c.connectOnly, maxConnsPerProcess)
		}
		if c.hold < 0 || c.settle < 0 {
			bad("-hold and -settle must not be negative")
		}
		return errors.Join(errs...)
	}
	if c.clients < 1 {
		bad("-clients must be at least 1, got %d", c.clients)
	}
	if c.senders < 0 || c.senders > c.clients {
		bad("-senders must be between 0 (all) and -clients (%d), got %d", c.clients, c.senders)
	}
	if total := c.stores * c.clients; c.stores > 0 && c.clients > 0 && (total > maxConnsPerProcess || total/c.clients != c.stores) {
		bad("-stores x -clients = %d connections: at most %d per bench process (20,000 open files per process, which cannot be raised); run several bench processes", total, maxConnsPerProcess)
	}
	if c.rate < 0 {
		bad("-rate must not be negative, got %g", c.rate)
	}
	if c.rate > 0 && c.maxInflight < 1 {
		bad("-max-inflight must be at least 1, got %d", c.maxInflight)
	}
	if c.duration <= 0 {
		bad("-duration must be positive, got %v", c.duration)
	}
	if c.warmup < 0 {
		bad("-warmup must not be negative, got %v", c.warmup)
	}
	if c.payload < 0 {
		bad("-payload-bytes must not be negative, got %d", c.payload)
	}
	if c.payload > todo.MaxTitle {
		bad("-payload-bytes %d: the todo kind refuses titles longer than todo.MaxTitle = %d bytes", c.payload, todo.MaxTitle)
	}
	if c.payload > 0 && c.kind != "todo" {
		bad("-payload-bytes needs -kind todo (it sends the todo kind's Rename), got -kind %s", c.kind)
	}
	return errors.Join(errs...)
}

// sendersPerStore returns how many clients of each store send.
func (c config) sendersPerStore() int {
	if c.senders == 0 {
		return c.clients
	}
	return c.senders
}

// checkWSURL checks a base URL: ws or wss, with a host, and no query.
func checkWSURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return err
	}
	if u.Scheme != "ws" && u.Scheme != "wss" {
		return errors.New("the scheme must be ws or wss")
	}
	if u.Host == "" {
		return errors.New("missing host")
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return errors.New("a base URL takes no query or fragment")
	}
	return nil
}

// storeURL returns the WebSocket URL of one client of a store.
func storeURL(base, kind, name, clientID string) string {
	return strings.TrimSuffix(base, "/") + "/ws/" + kind + "/" + name + "?client_id=" + clientID
}

// metricsURL returns http(s)://HOST:PORT/metrics for a ws(s) base URL.
func metricsURL(base string) (string, error) {
	u, err := url.Parse(base)
	if err != nil {
		return "", err
	}
	scheme := "http"
	if u.Scheme == "wss" {
		scheme = "https"
	}
	return scheme + "://" + u.Host + "/metrics", nil
}
