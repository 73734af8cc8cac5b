package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	protocluster "github.com/asynkron/protoactor-go/cluster"
	"github.com/asynkron/protoactor-go/eventstream"
)

// activationTimeout bounds one activation request of the identity lookup
// (disthash waits a hard-coded 5 s): a request to an owner that died and
// is still a member fails after it, and protoactor's Request tries again
// with its retry action, by then often with the owner gone from the list.
const activationTimeout = time.Second

// placementActorName names every node's placement actor. It is disthash's
// name, and the messages are disthash's, so that nodes running either
// lookup place grains the same way during a rolling upgrade.
const placementActorName = "partition-activator"

// placementStopTimeout bounds how long the placement actor, when it stops,
// waits for its activations to stop (Node.Shutdown has stopped them
// already).
const placementStopTimeout = time.Second

var (
	// errNoOwner: no member serves the kind.
	errNoOwner = errors.New("no member serves the kind")
	// errActivationRefused: the owner could not activate the grain (an
	// unknown kind, or its member list places the identity elsewhere).
	errActivationRefused = errors.New("activation refused by the owner")
)

// lookup is the identity lookup of lily's nodes (protoactor's
// IdentityLookup), a close copy of protoactor's disthash: an identity
// belongs to the member that rendezvous hashing over the members serving
// its kind picks (every node computes the same owner from the same member
// list), and each node's placement actor activates the grains it owns as
// its children. Unlike disthash, an activation request is bounded by a
// timeout (activationTimeout) instead of a hard-coded 5 s, activate
// honours a context, and an owner refuses an identity its own member list
// places elsewhere, so that a node with a stale view cannot make a second
// activation that nothing would stop.
type lookup struct {
	timeout time.Duration
	log     *slog.Logger

	c         *protocluster.Cluster
	rdv       atomic.Pointer[protocluster.Rendezvous]
	placement *actor.PID
	subs      []*eventstream.Subscription
	stopOnce  sync.Once
}

var _ protocluster.IdentityLookup = (*lookup)(nil)

// newLookup returns an identity lookup whose activation requests time out
// after timeout; it logs failed lookups to log at debug level.
func newLookup(timeout time.Duration, log *slog.Logger) *lookup {
	return &lookup{timeout: timeout, log: log}
}

// Setup implements protocluster.IdentityLookup: it starts the placement
// actor and follows the cluster's topology. protoactor calls it from
// StartMember, which reports errors by panicking; so does Setup.
func (l *lookup) Setup(c *protocluster.Cluster, _ []string, _ bool) {
	l.c = c
	l.rdv.Store(protocluster.NewRendezvous())
	system := c.ActorSystem
	pid, err := system.Root.SpawnNamed(actor.PropsFromProducer(func() actor.Actor {
		return &placementActor{c: c, rdv: protocluster.NewRendezvous(), grains: map[string]grainMeta{}, keys: map[string]string{}}
	}), placementActorName)
	if err != nil {
		panic(fmt.Errorf("cluster: identity lookup: spawn the placement actor: %w", err))
	}
	l.placement = pid
	l.subs = append(l.subs,
		system.EventStream.Subscribe(func(ev any) {
			if t, ok := ev.(*protocluster.ClusterTopology); ok {
				rdv := protocluster.NewRendezvous()
				rdv.UpdateMembers(t.Members)
				l.rdv.Store(rdv)
				system.Root.Send(l.placement, t)
			}
		}),
		// Other nodes' placement actors announce the activations that
		// stopped (a moved grain): drop them from the PID cache.
		system.EventStream.Subscribe(func(ev any) {
			if t, ok := ev.(*protocluster.ActivationTerminated); ok && t.ClusterIdentity != nil && t.Pid != nil {
				c.PidCache.RemoveByValue(t.ClusterIdentity.Identity, t.ClusterIdentity.Kind, t.Pid)
			}
		}))
}

// Shutdown implements protocluster.IdentityLookup: it stops following the
// topology and stops the placement actor, which stops this node's
// activations. protoactor may call it twice.
func (l *lookup) Shutdown() {
	l.stopOnce.Do(func() {
		for _, s := range l.subs {
			l.c.ActorSystem.EventStream.Unsubscribe(s)
		}
		if err := l.c.ActorSystem.Root.PoisonFuture(l.placement).Wait(); err != nil {
			l.log.Debug("identity lookup: stop the placement actor", "err", err)
		}
	})
}

// Get implements protocluster.IdentityLookup: it returns the PID of
// identity's activation, activating it on its owner if needed, or nil
// when the owner does not answer within the lookup's timeout (the caller,
// protoactor's Request, tries again after its retry action).
func (l *lookup) Get(identity *protocluster.ClusterIdentity) *actor.PID {
	pid, err := l.activate(context.Background(), identity)
	if err != nil {
		l.log.Debug("identity lookup failed", "identity", identity.AsKey(), "err", err)
		return nil
	}
	return pid
}

// RemovePid implements protocluster.IdentityLookup: it announces to every
// member that pid, identity's activation, is gone.
func (l *lookup) RemovePid(identity *protocluster.ClusterIdentity, pid *actor.PID) {
	l.c.MemberList.BroadcastEvent(&protocluster.ActivationTerminated{Pid: pid, ClusterIdentity: identity}, true)
}

// owner returns the address of the member that owns identity in this
// node's current view, "" if no member serves its kind.
func (l *lookup) owner(identity *protocluster.ClusterIdentity) string {
	return l.rdv.Load().GetByClusterIdentity(identity)
}

// activate asks identity's owner for its activation (activating it there
// if needed) and waits for the answer until the lookup's timeout or ctx's
// end, whichever comes first. When ctx ends first the error wraps ctx's
// error; when the lookup's timeout ends first it wraps actor.ErrTimeout.
func (l *lookup) activate(ctx context.Context, identity *protocluster.ClusterIdentity) (*actor.PID, error) {
	owner := l.owner(identity)
	if owner == "" {
		return nil, fmt.Errorf("cluster: activate %s: %w", identity.AsKey(), errNoOwner)
	}
	fail := func(err error) (*actor.PID, error) {
		return nil, fmt.Errorf("cluster: activate %s on %s: %w", identity.AsKey(), owner, err)
	}
	timeout, ctxBound := l.timeout, false
	if d, ok := ctx.Deadline(); ok {
		if left := time.Until(d); left <= timeout {
			timeout, ctxBound = left, true
		}
	}
	if err := ctx.Err(); err != nil {
		return fail(err)
	}
	if timeout <= 0 {
		return fail(context.DeadlineExceeded)
	}
	f := l.c.ActorSystem.Root.RequestFuture(actor.NewPID(owner, placementActorName),
		&protocluster.ActivationRequest{ClusterIdentity: identity}, timeout)
	type result struct {
		res any
		err error
	}
	var r result
	if ctx.Done() == nil {
		// Get's case: only the timeout ends the wait.
		r.res, r.err = f.Result()
	} else {
		// The future ends by itself within timeout; ctx may end sooner.
		done := make(chan result, 1)
		go func() {
			res, err := f.Result()
			done <- result{res, err}
		}()
		select {
		case r = <-done:
		case <-ctx.Done():
			return fail(ctx.Err())
		}
	}
	if r.err != nil {
		if ctxBound && errors.Is(r.err, actor.ErrTimeout) {
			return fail(fmt.Errorf("%w (%w)", context.DeadlineExceeded, r.err))
		}
		return fail(r.err)
	}
	switch m := r.res.(type) {
	case *protocluster.ActivationResponse:
		if m.Failed || m.Pid == nil {
			return fail(errActivationRefused)
		}
		return m.Pid, nil
	default:
		return fail(fmt.Errorf("unexpected answer %T", r.res))
	}
}

// grainMeta is one activation of the placement actor.
type grainMeta struct {
	identity *protocluster.ClusterIdentity
	pid      *actor.PID
}

// placementActor activates the grains this node owns, as its children, and
// stops those that another member owns after a topology change. Its state
// (the member list's rendezvous, the activations) is its own, so requests
// and topology changes are handled in the order they arrive.
type placementActor struct {
	c      *protocluster.Cluster
	rdv    *protocluster.Rendezvous
	grains map[string]grainMeta // by identity key (kind/identity)
	keys   map[string]string    // identity key by activation PID (String)
}

// Receive implements actor.Actor.
func (p *placementActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *protocluster.ActivationRequest:
		p.onActivationRequest(ctx, m)
	case *protocluster.ClusterTopology:
		p.rdv = protocluster.NewRendezvous()
		p.rdv.UpdateMembers(m.Members)
		me := p.c.ActorSystem.Address()
		for key, g := range p.grains {
			if owner := p.rdv.GetByClusterIdentity(g.identity); owner != me {
				ctx.Logger().Debug("grain moved", slog.String("identity", key), slog.String("owner", owner))
				ctx.Poison(g.pid)
			}
		}
	case *actor.Terminated:
		p.onTerminated(m)
	case *actor.Stopping:
		p.stopGrains(ctx)
	}
}

// onActivationRequest answers with the PID of the requested grain,
// spawning it if it is not active yet. The kind's props carry protoactor's
// cluster middleware, which sends the grain a ClusterInit with its
// identity right after Started. It refuses (Failed) an unknown kind and an
// identity that this node's member list places on another member: the
// requester tries again once the views agree.
func (p *placementActor) onActivationRequest(ctx actor.Context, m *protocluster.ActivationRequest) {
	ci := m.ClusterIdentity
	if ci == nil {
		ctx.Respond(&protocluster.ActivationResponse{Failed: true})
		return
	}
	key := ci.AsKey()
	if owner := p.rdv.GetByClusterIdentity(ci); owner != p.c.ActorSystem.Address() {
		ctx.Logger().Debug("activation refused: owned by another member", slog.String("identity", key), slog.String("owner", owner))
		ctx.Respond(&protocluster.ActivationResponse{Failed: true})
		return
	}
	if g, ok := p.grains[key]; ok {
		ctx.Respond(&protocluster.ActivationResponse{Pid: g.pid})
		return
	}
	kind, ok := p.c.TryGetClusterKind(ci.Kind)
	if !ok {
		ctx.Logger().Error("activation refused: unknown kind", slog.String("kind", ci.Kind))
		ctx.Respond(&protocluster.ActivationResponse{Failed: true})
		return
	}
	pid := ctx.SpawnPrefix(protocluster.WithClusterIdentity(kind.Props, ci), ci.Identity)
	kind.Inc()
	p.grains[key] = grainMeta{identity: ci, pid: pid}
	p.keys[pid.String()] = key
	ctx.Respond(&protocluster.ActivationResponse{Pid: pid})
}

// onTerminated forgets a stopped activation and announces it to every
// member (their PID caches drop it).
func (p *placementActor) onTerminated(m *actor.Terminated) {
	key, ok := p.keys[m.Who.String()]
	if !ok {
		return
	}
	g := p.grains[key]
	delete(p.keys, m.Who.String())
	delete(p.grains, key)
	if kind, ok := p.c.TryGetClusterKind(g.identity.Kind); ok {
		kind.Dec()
	}
	p.c.MemberList.BroadcastEvent(&protocluster.ActivationTerminated{Pid: g.pid, ClusterIdentity: g.identity}, true)
}

// stopGrains lets the activations process what their mailboxes hold and
// stop, waiting at most placementStopTimeout.
func (p *placementActor) stopGrains(ctx actor.Context) {
	var wg sync.WaitGroup
	for _, g := range p.grains {
		f := ctx.PoisonFuture(g.pid)
		wg.Go(func() { _ = f.Wait() })
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	timer := time.NewTimer(placementStopTimeout)
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
		ctx.Logger().Warn("activations did not stop in time", slog.Duration("timeout", placementStopTimeout))
	}
}
