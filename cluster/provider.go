package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"sync"
	"time"

	protocluster "github.com/asynkron/protoactor-go/cluster"
	"github.com/hashicorp/memberlist"
)

const (
	// refreshInterval is how often the member list is rebuilt without a
	// memberlist event.
	refreshInterval = time.Second
	// Joining seeds that are not members yet: backoff bounds after a
	// failed attempt, and the interval after a successful one.
	joinBackoffMin = 50 * time.Millisecond
	joinBackoffMax = 2 * time.Second
	joinInterval   = time.Second
	// leaveTimeout bounds the wait for the leave message to go out.
	leaveTimeout = time.Second
	// tcpTimeout bounds memberlist's TCP exchanges (joins, push/pull,
	// fallback pings); it also bounds how long Shutdown waits for a join
	// in progress.
	tcpTimeout = time.Second
	// pushPullInterval is how often a node syncs its full state with a
	// random peer (memberlist's LAN default is 30 s).
	pushPullInterval = 5 * time.Second
	// noticeInterval limits the notices sent to one blocked member.
	noticeInterval = time.Second
)

// blockedNotice prefixes the user message a member sends to a peer whose id
// protoactor has blocked, followed by that id.
var blockedNotice = []byte("lily-cluster-blocked:")

// metadata is what a member advertises in memberlist's node metadata.
type metadata struct {
	ID    string   `json:"id"`
	Host  string   `json:"host"`
	Port  int      `json:"port"`
	Kinds []string `json:"kinds"`
}

func (m metadata) encode() ([]byte, error) {
	b, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	if len(b) > memberlist.MetaMaxSize {
		return nil, fmt.Errorf("%w: %d bytes, memberlist allows %d (id, address and kinds as JSON)",
			ErrMetadataTooLarge, len(b), memberlist.MetaMaxSize)
	}
	return b, nil
}

// advertised returns the kinds a member advertises: the configured ones
// and those registered with protoactor (its pub-sub kind at least), sorted.
func advertised(configured, registered []string) []string {
	kinds := append(slices.Clone(configured), registered...)
	kinds = append(kinds, protocluster.TopicActorKind)
	slices.Sort(kinds)
	return slices.Compact(kinds)
}

// provider is a protoactor ClusterProvider on memberlist. memberlist's node
// name is the actor system id and its metadata carries the member's gRPC
// address and kinds; one goroutine turns memberlist's view into protoactor's
// topology, another joins the seeds. It is also memberlist's delegate
// (metadata, user messages), event delegate and alive delegate.
type provider struct {
	cfg        Config
	log        *slog.Logger
	fatal      func(error)
	lookupHost func(ctx context.Context, host string) ([]string, error)

	// Set by StartMember, before memberlist starts.
	c       *protocluster.Cluster
	self    string
	meta    []byte
	blocked func(id string) bool
	ml      *memberlist.Memberlist

	poke    chan struct{}        // membership changed (capacity 1)
	notices chan memberlist.Node // blocked peers to tell
	stop    chan struct{}
	wg      sync.WaitGroup
	once    sync.Once
}

func newProvider(cfg Config, log *slog.Logger, fatal func(error)) *provider {
	return &provider{
		cfg:        cfg,
		log:        log,
		fatal:      fatal,
		lookupHost: net.DefaultResolver.LookupHost,
		poke:       make(chan struct{}, 1),
		notices:    make(chan memberlist.Node, 16),
		stop:       make(chan struct{}),
	}
}

var _ protocluster.ClusterProvider = (*provider)(nil)

// StartMember starts memberlist, publishes the first topology (this node
// alone) and starts the goroutines.
func (p *provider) StartMember(c *protocluster.Cluster) error {
	host, port, err := c.ActorSystem.GetHostPort()
	if err != nil {
		return fmt.Errorf("provider: actor system address: %w", err)
	}
	p.c = c
	p.self = c.ActorSystem.ID
	p.blocked = c.Remote.BlockList().IsBlocked
	p.meta, err = metadata{ID: p.self, Host: host, Port: port, Kinds: advertised(p.cfg.Kinds, c.GetClusterKinds())}.encode()
	if err != nil {
		return fmt.Errorf("provider: %w", err)
	}

	mc := memberlist.DefaultLANConfig()
	mc.Name = p.self
	mc.Label = p.cfg.ClusterName
	mc.BindAddr, mc.BindPort = p.cfg.BindHost, p.cfg.GossipPort
	mc.AdvertiseAddr, mc.AdvertisePort = p.cfg.AdvertiseHost, p.cfg.GossipPort // port 0: memberlist picks
	mc.ProbeInterval = p.cfg.Detection.ProbeInterval
	mc.ProbeTimeout = p.cfg.Detection.ProbeTimeout
	mc.SuspicionMult = p.cfg.Detection.SuspicionMult
	mc.GossipInterval = p.cfg.Detection.GossipInterval
	mc.PushPullInterval = pushPullInterval
	mc.TCPTimeout = tcpTimeout
	mc.Delegate = p
	mc.Events = p
	mc.Alive = p
	mc.Logger = log.New(&logWriter{log: p.log.With("lib", "memberlist"), refuted: p.refutedDead}, "", 0)
	p.ml, err = memberlist.Create(mc)
	if err != nil {
		return fmt.Errorf("provider: memberlist on %s (GossipPort): %w",
			net.JoinHostPort(p.cfg.BindHost, strconv.Itoa(p.cfg.GossipPort)), err)
	}
	p.update(nil)
	p.wg.Add(2)
	go p.membersLoop()
	go p.joinLoop()
	return nil
}

// StartClient is not supported: every node is a member.
func (p *provider) StartClient(*protocluster.Cluster) error {
	return errors.New("provider: client mode is not supported")
}

// Shutdown stops the goroutines, leaves (when graceful) and stops
// memberlist. protoactor calls it only for a graceful shutdown, and
// ignores its error (so it is logged here); the node calls it otherwise.
// Calls after the first do nothing.
func (p *provider) Shutdown(graceful bool) error {
	var err error
	p.once.Do(func() {
		if p.ml == nil {
			return // never started
		}
		close(p.stop)
		p.wg.Wait()
		if graceful {
			if e := p.ml.Leave(leaveTimeout); e != nil {
				err = fmt.Errorf("provider: leave: %w", e)
			}
		}
		if e := p.ml.Shutdown(); e != nil {
			err = errors.Join(err, fmt.Errorf("provider: memberlist shutdown: %w", e))
		}
		if err != nil {
			p.log.Warn("leaving the cluster", "err", err)
		}
	})
	return err
}

func (p *provider) gossipAddress() string {
	if p.ml == nil {
		return ""
	}
	return p.ml.LocalNode().Address()
}

// membersLoop rebuilds the topology on every memberlist event and every
// refreshInterval, and tells blocked peers that they are.
func (p *provider) membersLoop() {
	defer p.wg.Done()
	tick := time.NewTicker(refreshInterval)
	defer tick.Stop()
	known := map[string]bool{p.self: true}
	told := map[string]time.Time{}
	for {
		select {
		case <-p.stop:
			return
		case <-p.poke:
			p.update(known)
		case <-tick.C:
			p.update(known)
		case peer := <-p.notices:
			if time.Since(told[peer.Name]) < noticeInterval {
				continue
			}
			told[peer.Name] = time.Now()
			p.log.Warn("a blocked member is still gossiping; telling it to stop", "peer", peer.Name, "gossip", peer.Address())
			if err := p.ml.SendBestEffort(&peer, append(slices.Clone(blockedNotice), peer.Name...)); err != nil {
				p.log.Debug("notice to a blocked member", "peer", peer.Name, "err", err)
			}
		}
	}
}

// update hands protoactor the members memberlist reports alive; protoactor
// diffs it with the previous topology and drops blocked ids. When known is
// not nil, update logs the changes against it and updates it.
func (p *provider) update(known map[string]bool) {
	nodes := p.ml.Members()
	members := make([]*protocluster.Member, 0, len(nodes))
	for _, node := range nodes {
		var m metadata
		if err := json.Unmarshal(node.Meta, &m); err != nil || m.ID != node.Name {
			p.log.Warn("ignoring a member with bad metadata", "name", node.Name, "gossip", node.Address(), "err", err)
			continue
		}
		members = append(members, &protocluster.Member{Id: m.ID, Host: m.Host, Port: int32(m.Port), Kinds: m.Kinds})
	}
	p.c.MemberList.UpdateClusterTopology(members)
	if known == nil {
		return
	}
	seen := make(map[string]bool, len(members))
	for _, m := range members {
		seen[m.Id] = true
		if !known[m.Id] {
			known[m.Id] = true
			p.log.Info("member up", "peer", m.Id, "address", m.Address(), "kinds", m.Kinds)
		}
	}
	for id := range known {
		if !seen[id] {
			delete(known, id)
			p.log.Info("member gone", "peer", id)
		}
	}
}

// joinLoop joins the seeds that are not members, resolving their names on
// every attempt: with a growing delay while an attempt fails, every
// joinInterval otherwise.
func (p *provider) joinLoop() {
	defer p.wg.Done()
	if len(p.cfg.Seeds) == 0 {
		return
	}
	backoff := joinBackoffMin
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-timer.C:
		}
		wait := joinInterval
		if addrs := p.seedsToJoin(); len(addrs) > 0 {
			n, err := p.ml.Join(addrs)
			if n > 0 {
				p.log.Info("joined seeds", "contacted", n, "seeds", addrs)
			}
			if err != nil {
				p.log.Debug("joining seeds", "addresses", addrs, "err", err)
				wait, backoff = backoff, min(2*backoff, joinBackoffMax)
			} else {
				backoff = joinBackoffMin
			}
		} else {
			backoff = joinBackoffMin
		}
		timer.Reset(wait)
	}
}

// seedsToJoin returns the seeds' addresses that are neither this node nor
// one of its live peers.
func (p *provider) seedsToJoin() []string {
	skip := map[string]bool{p.ml.LocalNode().Address(): true}
	for _, node := range p.ml.Members() {
		skip[node.Address()] = true
	}
	ctx, cancel := context.WithTimeout(context.Background(), tcpTimeout)
	defer cancel()
	return resolveSeeds(ctx, p.cfg.Seeds, p.lookupHost, skip, p.log)
}

// resolveSeeds resolves the seeds (validated by Start) into "ip:port"
// addresses, leaving out those in skip and duplicates.
func resolveSeeds(ctx context.Context, seeds []string, lookup func(context.Context, string) ([]string, error), skip map[string]bool, log *slog.Logger) []string {
	var out []string
	for _, seed := range seeds {
		host, port, _ := splitSeed(seed)
		ips := []string{host}
		if net.ParseIP(host) == nil {
			var err error
			if ips, err = lookup(ctx, host); err != nil {
				log.Debug("resolving a seed", "seed", seed, "err", err)
				continue
			}
		}
		for _, ip := range ips {
			addr := net.JoinHostPort(ip, strconv.Itoa(port))
			if !skip[addr] {
				skip[addr] = true
				out = append(out, addr)
			}
		}
	}
	return out
}

// refutedDead is called when memberlist refutes a "dead" message about
// this node: the others declared it dead and protoactor on their side has
// blocked its id for good.
func (p *provider) refutedDead(line string) {
	p.fatal(fmt.Errorf("%w: memberlist refuted a dead message about this node (%s)", ErrSplitBrain, line))
}

// The memberlist delegates. memberlist calls them synchronously, some under
// its locks: they only read, poke channels or call fatal.

// NodeMeta returns this member's metadata (checked against the limit by
// StartMember and by Config validation).
func (p *provider) NodeMeta(limit int) []byte { return p.meta }

// NotifyMsg receives user messages: a notice that a peer blocked this id.
func (p *provider) NotifyMsg(msg []byte) {
	if id, ok := bytes.CutPrefix(msg, blockedNotice); ok && string(id) == p.self {
		p.fatal(fmt.Errorf("%w: a peer reports that protoactor blocked this member's id", ErrSplitBrain))
	}
}

// GetBroadcasts has nothing to broadcast.
func (p *provider) GetBroadcasts(overhead, limit int) [][]byte { return nil }

// LocalState has no state to exchange.
func (p *provider) LocalState(join bool) []byte { return nil }

// MergeRemoteState has no state to merge.
func (p *provider) MergeRemoteState(buf []byte, join bool) {}

// NotifyJoin pokes the members loop.
func (p *provider) NotifyJoin(*memberlist.Node) { p.kick() }

// NotifyLeave pokes the members loop.
func (p *provider) NotifyLeave(*memberlist.Node) { p.kick() }

// NotifyUpdate pokes the members loop.
func (p *provider) NotifyUpdate(*memberlist.Node) { p.kick() }

func (p *provider) kick() {
	select {
	case p.poke <- struct{}{}:
	default:
	}
}

// NotifyAlive refuses a peer whose id protoactor has blocked (it left, or
// was declared dead and came back after a stall): memberlist keeps it out
// instead of re-adding it, and the members loop tells it to stop.
func (p *provider) NotifyAlive(peer *memberlist.Node) error {
	if peer.Name == p.self || p.blocked == nil || !p.blocked(peer.Name) {
		return nil
	}
	select {
	case p.notices <- *peer:
	default:
	}
	return fmt.Errorf("member %s is blocked by protoactor", peer.Name)
}
