package cluster

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	protocluster "github.com/asynkron/protoactor-go/cluster"
	"github.com/asynkron/protoactor-go/remote"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/lily-go/lily/actors"
	"github.com/lily-go/lily/transport"
)

// DefaultGossipPort is the port assumed for a seed given without one.
const DefaultGossipPort = 7946

// heartbeatExpiration raises protoactor's gossip heartbeat expiration (20 s)
// so that memberlist stays the failure detector; a member blocked this way
// anyway is told so by its peers and stops (see doc.go).
const heartbeatExpiration = time.Minute

// Config holds a node's settings. The zero value starts a single node on
// 127.0.0.1 with free ports.
type Config struct {
	// ClusterName keeps clusters that share a network apart: nodes gossip
	// only with nodes of the same name (memberlist's label, at most 255
	// bytes) and protoactor uses it as the cluster's name. Zero value:
	// "lily".
	ClusterName string
	// NodeName labels this node in logs. Members are identified by their
	// actor system id, fresh on every start, never by this name. Zero
	// value: the host name.
	NodeName string
	// BindHost is the IP address both listeners (gossip and gRPC) bind.
	// Zero value: "127.0.0.1".
	BindHost string
	// AdvertiseHost is the IP address peers reach this node at. Zero
	// value: BindHost, which then must not be a wildcard (0.0.0.0, ::).
	AdvertiseHost string
	// GossipPort is memberlist's port (TCP and UDP). Zero value: a free
	// port (see Node.GossipAddress); a cluster's seeds need fixed ports.
	GossipPort int
	// RemotePort is protoactor's gRPC port. Zero value: a free port.
	RemotePort int
	// Seeds are gossip addresses of other nodes, "host:port" (the port
	// defaults to DefaultGossipPort); a DNS name may resolve to several
	// addresses and is resolved again on every attempt. The node keeps
	// trying to join the seeds it is not connected to in the background,
	// so nodes may start in any order. This node's own address is skipped.
	// Zero value: none (the node waits for others to join it).
	Seeds []string
	// Kinds are names of grain kinds this node advertises to the other
	// members without serving them. Zero value: none.
	Kinds []string
	// StoreKinds are the kinds of stores this node hosts as grains (and
	// advertises): store kind/name is the grain of kind "kind" and
	// identity "name", placed by rendezvous hashing (lookup.go).
	// Node.Connect reaches the stores of these kinds. Zero value: none.
	StoreKinds []actors.Kind
	// Stores configures the stores of StoreKinds.
	Stores StoreSettings
	// Detection tunes failure detection. Zero fields take LANDetection's.
	Detection Detection
	// ReattachTimeout is how long a connection whose store's activation
	// went away (its node left or died, or the store moved) keeps trying
	// to reach the store's next activation before it lets the client go
	// (the gateway closes the socket with 1012). Zero value:
	// DefaultReattachTimeout.
	ReattachTimeout time.Duration
	// AnswerTimeout is how long a connection waits for the answer
	// (acknowledgement or error) to a client message with an id before it
	// re-attaches to the store, resending what is unanswered: messages
	// between nodes are delivered at most once. Zero value:
	// DefaultAnswerTimeout.
	AnswerTimeout time.Duration
	// ObserveRequest, when set, is called after every attach request to a
	// store's grain (made by Connect and by re-attaching connections) with
	// whether the grain answered from another node, how long the request
	// took and its error. It must be quick and safe for concurrent use.
	ObserveRequest func(remote bool, d time.Duration, err error)
	// Logger receives the node's logs; protoactor's info logs and all of
	// memberlist's logs arrive at debug level. Nil discards them.
	Logger *slog.Logger
}

// Detection tunes memberlist's failure detector (SWIM): every
// ProbeInterval a node pings one peer, waits ProbeTimeout for the ack, then
// asks others to ping it indirectly; a peer that stays silent is suspected,
// and declared dead after SuspicionMult × max(1, log10(n)) × ProbeInterval
// unless it refutes. GossipInterval is how often state changes are spread.
type Detection struct {
	// ProbeInterval is the time between two probes of one node.
	ProbeInterval time.Duration
	// ProbeTimeout is how long a direct probe waits for its ack.
	ProbeTimeout time.Duration
	// SuspicionMult scales how long a suspect has to refute before it is
	// declared dead.
	SuspicionMult int
	// GossipInterval is the time between two gossip rounds.
	GossipInterval time.Duration
}

// LANDetection is the profile for nodes on one LAN (memberlist's own LAN
// profile is about 4 times slower): probe every 250 ms, 100 ms probe
// timeout, suspicion multiplier 2, gossip every 100 ms. A node that stops
// without leaving (killed, or stalled by SIGSTOP) is suspected at its next
// probe and declared dead 500 ms later. Measured on 2 shared cores, nodes
// on 127.0.0.1: it disappeared from the others' member lists 0.8-1.05 s
// after it was killed (in process, go test -v ./cluster/) and 0.77 s
// after a SIGSTOP (three processes); a node that leaves gracefully
// disappears within about 100 ms.
func LANDetection() Detection {
	return Detection{
		ProbeInterval:  250 * time.Millisecond,
		ProbeTimeout:   100 * time.Millisecond,
		SuspicionMult:  2,
		GossipInterval: 100 * time.Millisecond,
	}
}

func (c Config) withDefaults() Config {
	if c.ClusterName == "" {
		c.ClusterName = "lily"
	}
	if c.NodeName == "" {
		c.NodeName, _ = os.Hostname()
	}
	if c.BindHost == "" {
		c.BindHost = "127.0.0.1"
	}
	if c.AdvertiseHost == "" {
		c.AdvertiseHost = c.BindHost
	}
	lan := LANDetection()
	if c.Detection.ProbeInterval == 0 {
		c.Detection.ProbeInterval = lan.ProbeInterval
	}
	if c.Detection.ProbeTimeout == 0 {
		c.Detection.ProbeTimeout = lan.ProbeTimeout
	}
	if c.Detection.SuspicionMult == 0 {
		c.Detection.SuspicionMult = lan.SuspicionMult
	}
	if c.Detection.GossipInterval == 0 {
		c.Detection.GossipInterval = lan.GossipInterval
	}
	if c.ReattachTimeout <= 0 {
		c.ReattachTimeout = DefaultReattachTimeout
	}
	if c.AnswerTimeout <= 0 {
		c.AnswerTimeout = DefaultAnswerTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// validate checks a Config with its defaults applied.
func (c Config) validate() error {
	invalid := func(field, format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrInvalidConfig, field, fmt.Sprintf(format, args...))
	}
	if len(c.ClusterName) > 255 {
		return invalid("ClusterName", "longer than 255 bytes")
	}
	if net.ParseIP(c.BindHost) == nil {
		return invalid("BindHost", "%q is not an IP address", c.BindHost)
	}
	if ip := net.ParseIP(c.AdvertiseHost); ip == nil {
		return invalid("AdvertiseHost", "%q is not an IP address", c.AdvertiseHost)
	} else if ip.IsUnspecified() {
		return invalid("AdvertiseHost", "required when BindHost is a wildcard (%s)", c.BindHost)
	}
	if c.GossipPort < 0 || c.GossipPort > 65535 {
		return invalid("GossipPort", "%d is not a port", c.GossipPort)
	}
	if c.RemotePort < 0 || c.RemotePort > 65535 {
		return invalid("RemotePort", "%d is not a port", c.RemotePort)
	}
	if c.GossipPort != 0 && c.GossipPort == c.RemotePort {
		return invalid("RemotePort", "same as GossipPort (%d)", c.GossipPort)
	}
	for _, s := range c.Seeds {
		if _, _, err := splitSeed(s); err != nil {
			return invalid("Seeds", "%v", err)
		}
	}
	for i, k := range c.Kinds {
		if k == "" {
			return invalid("Kinds", "empty name")
		}
		if slices.Contains(c.Kinds[:i], k) || k == protocluster.TopicActorKind {
			return invalid("Kinds", "%q twice or reserved", k)
		}
	}
	for i, k := range c.StoreKinds {
		if !transport.ValidName(k.Name()) {
			return invalid("StoreKinds", "name %q is not 1-128 chars of [A-Za-z0-9._-]", k.Name())
		}
		if slices.ContainsFunc(c.StoreKinds[:i], func(o actors.Kind) bool { return o.Name() == k.Name() }) ||
			slices.Contains(c.Kinds, k.Name()) || k.Name() == protocluster.TopicActorKind {
			return invalid("StoreKinds", "%q twice or reserved", k.Name())
		}
	}
	if c.Stores.OutboxBytes < 0 {
		return invalid("Stores.OutboxBytes", "negative")
	}
	d := c.Detection
	if d.ProbeInterval < 0 || d.ProbeTimeout < 0 || d.SuspicionMult < 0 || d.GossipInterval < 0 {
		return invalid("Detection", "negative value")
	}
	if d.ProbeTimeout >= d.ProbeInterval {
		return invalid("Detection.ProbeTimeout", "%v is not shorter than ProbeInterval (%v)", d.ProbeTimeout, d.ProbeInterval)
	}
	// The id is a 22-character shortuuid; 32 leaves room.
	probe := metadata{ID: "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", Host: c.AdvertiseHost, Port: 65535, Kinds: advertised(c.Kinds, storeKindNames(c.StoreKinds))}
	if _, err := probe.encode(); err != nil {
		return fmt.Errorf("%w: Kinds: %w", ErrInvalidConfig, err)
	}
	return nil
}

// storeKindNames returns the names of kinds.
func storeKindNames(kinds []actors.Kind) []string {
	names := make([]string, 0, len(kinds))
	for _, k := range kinds {
		names = append(names, k.Name())
	}
	return names
}

// splitSeed returns a seed's host and port.
func splitSeed(seed string) (string, int, error) {
	host, portText, err := net.SplitHostPort(seed)
	if err != nil {
		// A host without a port, or a bare IPv6 address.
		if seed == "" || strings.Contains(seed, ":") && net.ParseIP(seed) == nil {
			return "", 0, fmt.Errorf("seed %q: want host:port", seed)
		}
		host, portText = seed, strconv.Itoa(DefaultGossipPort)
	}
	port, err := strconv.Atoi(portText)
	if err != nil || port <= 0 || port > 65535 || host == "" {
		return "", 0, fmt.Errorf("seed %q: want host:port", seed)
	}
	return host, port, nil
}

// MemberInfo describes one member of the cluster as this node sees it.
type MemberInfo struct {
	// ID is the member's actor system id, fresh on every start.
	ID string
	// Address is the member's gRPC address (host:port), where its actors
	// are reached.
	Address string
	// Kinds are the grain kinds the member serves.
	Kinds []string
}

// Node is one member of a cluster: an actor system with protoactor's remote
// and cluster layers, whose membership comes from memberlist. Start returns
// one; Shutdown stops it.
type Node struct {
	cfg      Config
	log      *slog.Logger
	system   *actor.ActorSystem
	c        *protocluster.Cluster
	provider *provider

	storeKinds map[string]actors.Kind
	grains     sync.Map     // this node's store activations: PID string → activation
	conns      atomic.Int64 // connections attached through Connect, not yet disconnected

	doneOnce sync.Once
	done     chan struct{} // closed by fatal or at the end of a shutdown
	err      error         // written before done is closed

	stopping atomic.Bool
	stopOnce sync.Once
	stopped  chan struct{} // closed once the shutdown finished
}

// Start starts a node, joins its seeds in the background and returns once
// the node sees itself in the cluster's member list. It takes at least a
// second (protoactor's StartMember sleeps 1 s). When ctx ends first, it
// stops what it started and returns an error wrapping ErrNotJoined.
func Start(ctx context.Context, cfg Config) (*Node, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotJoined, err)
	}
	remotePort, err := reservePort(cfg.BindHost, cfg.RemotePort)
	if err != nil {
		return nil, fmt.Errorf("cluster: start: RemotePort: %w", err)
	}

	n := &Node{cfg: cfg, done: make(chan struct{}), stopped: make(chan struct{}), storeKinds: map[string]actors.Kind{}}
	n.system = actor.NewActorSystem(actor.WithLoggerFactory(func(s *actor.ActorSystem) *slog.Logger {
		return slog.New(demoteInfo{cfg.Logger.Handler()}).With("lib", "protoactor", "member", s.ID)
	}))
	n.log = cfg.Logger.With("member", n.system.ID, "node", cfg.NodeName)

	rc := remote.Configure(cfg.BindHost, remotePort,
		// A failed connection attempt blocks its endpoint writer (and a
		// shutdown waiting for it) for 2 s per try; membership comes from
		// memberlist, and the next message to that address tries again.
		withMaxRetryCount(1),
		remote.WithAdvertisedHost(net.JoinHostPort(cfg.AdvertiseHost, strconv.Itoa(remotePort))),
		remote.WithServerOptions(
			grpc.ChainStreamInterceptor(recoverStream(n.log)),
			grpc.ChainUnaryInterceptor(recoverUnary(n.log)),
		))
	n.provider = newProvider(cfg, n.log, n.fatal)
	var kinds []*protocluster.Kind
	for _, k := range cfg.StoreKinds {
		n.storeKinds[k.Name()] = k
		kinds = append(kinds, protocluster.NewKind(k.Name(), n.grainProps(k)))
	}
	cc := protocluster.Configure(cfg.ClusterName, n.provider, newLookup(activationTimeout, n.log), rc,
		protocluster.WithHeartbeatExpiration(heartbeatExpiration),
		protocluster.WithKinds(kinds...))
	n.c = protocluster.New(n.system, cc)

	begin := time.Now()
	// StartMember panics instead of returning errors (from the gRPC listener
	// or the provider).
	if err := catch(n.c.StartMember); err != nil {
		n.halt()
		return nil, fmt.Errorf("cluster: start: %w", err)
	}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !n.c.MemberList.ContainsMemberID(n.system.ID) {
		select {
		case <-ctx.Done():
			n.halt()
			return nil, fmt.Errorf("%w: %w", ErrNotJoined, ctx.Err())
		case <-tick.C:
		}
	}
	n.log.Info("cluster node started", "address", n.Address(), "gossip", n.GossipAddress(),
		"seeds", cfg.Seeds, "kinds", cfg.Kinds, "took", time.Since(begin).Round(time.Millisecond))
	return n, nil
}

// ID returns this member's id (its actor system id, fresh on every start).
func (n *Node) ID() string { return n.system.ID }

// Address returns this node's gRPC address (host:port), where its actors
// are reached.
func (n *Node) Address() string { return n.system.Address() }

// GossipAddress returns this node's memberlist address (host:port), the
// one other nodes list in their Seeds.
func (n *Node) GossipAddress() string { return n.provider.gossipAddress() }

// Cluster returns protoactor's cluster, for the grain layer.
func (n *Node) Cluster() *protocluster.Cluster { return n.c }

// Members returns the cluster's members as protoactor sees them (the
// members memberlist reports alive, minus those protoactor has blocked),
// this node included, sorted by address.
func (n *Node) Members() []MemberInfo {
	ms := n.c.MemberList.Members().Members()
	out := make([]MemberInfo, 0, len(ms))
	for _, m := range ms {
		kinds := slices.DeleteFunc(slices.Clone(m.Kinds), func(k string) bool { return k == protocluster.TopicActorKind })
		out = append(out, MemberInfo{ID: m.Id, Address: m.Address(), Kinds: kinds})
	}
	slices.SortFunc(out, func(a, b MemberInfo) int {
		return cmp.Or(strings.Compare(a.Address, b.Address), strings.Compare(a.ID, b.ID))
	})
	return out
}

// Ready reports whether the node is a member of the cluster: it sees
// itself in the member list, it was not declared dead (see Done) and it is
// not shutting down.
func (n *Node) Ready() bool {
	select {
	case <-n.done:
		return false
	default:
	}
	return !n.stopping.Load() && n.c.MemberList.ContainsMemberID(n.system.ID)
}

// Done returns a channel that is closed when the node must no longer
// serve: after a fatal event (Err returns an error wrapping ErrSplitBrain;
// the owner should Shutdown and exit, to be restarted with a new id) or
// once Shutdown has finished (Err returns nil).
func (n *Node) Done() <-chan struct{} { return n.done }

// Err returns why Done was closed: nil before that and after a Shutdown,
// an error wrapping ErrSplitBrain after a fatal event.
func (n *Node) Err() error {
	select {
	case <-n.done:
		return n.err
	default:
		return nil
	}
}

// fatal closes Done with err, unless the node is shutting down. It is
// called from memberlist's goroutines (some holding its locks): it must not
// call into memberlist.
func (n *Node) fatal(err error) {
	if n.stopping.Load() {
		return
	}
	n.doneOnce.Do(func() {
		n.err = err
		close(n.done)
		n.log.Error("cluster node must stop", "err", err)
	})
}

// Shutdown leaves the cluster gracefully: it first stops this node's store
// activations (up to 1 s; they let their connections go), then the other
// members drop this node within about 100 ms instead of detecting its
// failure. It takes about
// 2.2 s (protoactor sleeps a fixed 2 s to let grains move); budget 2-4 s. When ctx ends first,
// it stops the gRPC server at once and returns ctx's error, still waiting
// for that sleep to end. Calling it again waits for the first call.
func (n *Node) Shutdown(ctx context.Context) error {
	n.stopOnce.Do(func() {
		n.stopping.Store(true)
		go func() {
			defer close(n.stopped)
			// Stops this node's stores first, so that they let their
			// connections go and finish their writes (up to 1 s each).
			n.stopGrains(ctx)
			// Stops the actor system, calls the provider's Shutdown(true)
			// (memberlist Leave), sleeps 2 s, stops gossip and gRPC.
			if err := catch(func() { n.c.Shutdown(true) }); err != nil {
				n.log.Warn("cluster shutdown", "err", err)
			}
			n.finish()
		}()
	})
	select {
	case <-n.stopped:
		return nil
	case <-ctx.Done():
		_ = catch(func() { n.c.Remote.Shutdown(false) })
		<-n.stopped
		return fmt.Errorf("cluster: shutdown: %w", ctx.Err())
	}
}

// halt stops the node without leaving, as if its process had died: the
// others detect its failure. Start uses it when it fails half-way.
func (n *Node) halt() {
	n.stopOnce.Do(func() {
		n.stopping.Store(true)
		defer close(n.stopped)
		// Stops the actor system and the gRPC server; skips the provider.
		_ = catch(func() { n.c.Shutdown(false) })
		// Closes the streams this node opened to others, as a dead
		// process's would be.
		_ = catch(func() { n.c.Remote.Shutdown(true) })
		_ = n.provider.Shutdown(false)
		n.finish()
	})
}

// finish closes Done (with a nil Err) if no fatal event closed it before.
func (n *Node) finish() {
	n.doneOnce.Do(func() { close(n.done) })
	n.log.Info("cluster node stopped")
}

// catch runs f and returns the panic it raised, if any, as an error.
func catch(f func()) (err error) {
	defer func() {
		if r := recover(); r != nil {
			if e, ok := r.(error); ok {
				err = e
			} else {
				err = fmt.Errorf("panic: %v", r)
			}
		}
	}()
	f()
	return nil
}

// reservePort checks that host:port is free, picking a free port when port
// is 0. protoactor's remote opens its own listener (and needs the port
// before that, for the advertised address); another process could take the
// port in between.
func reservePort(host string, port int) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// withMaxRetryCount sets how often an endpoint writer tries to connect
// before giving up (protoactor has no option for the field).
func withMaxRetryCount(n int) remote.ConfigOption {
	return func(c *remote.Config) { c.MaxRetryCount = n }
}

// recoverStream keeps a panic in a gRPC stream handler from crashing the
// process: protoactor's remote dereferences nil when a peer sends a message
// type this node does not know.
func recoverStream(log *slog.Logger) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
		defer func() {
			if r := recover(); r != nil {
				log.Error("recovered a panic in a gRPC stream", "method", info.FullMethod, "panic", r, "stack", string(debug.Stack()))
				err = status.Errorf(codes.Internal, "panic: %v", r)
			}
		}()
		return handler(srv, ss)
	}
}

// recoverUnary is recoverStream for unary calls.
func recoverUnary(log *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
		defer func() {
			if r := recover(); r != nil {
				log.Error("recovered a panic in a gRPC call", "method", info.FullMethod, "panic", r, "stack", string(debug.Stack()))
				err = status.Errorf(codes.Internal, "panic: %v", r)
			}
		}()
		return handler(ctx, req)
	}
}
