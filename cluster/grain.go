package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	protocluster "github.com/asynkron/protoactor-go/cluster"

	"github.com/lily-go/lily/actors"
	"github.com/lily-go/lily/journal"
	"github.com/lily-go/lily/messages"
)

// StoreSettings configure the stores a node hosts as grains (see
// actors.Config; each store is named "kind/name").
type StoreSettings struct {
	// Journal persists the stores. In a cluster every node must use the
	// same journal (PostgreSQL), so that a store reloads its model and
	// sequence on whichever node hosts it next. Nil: each activation
	// starts empty (tests only).
	Journal journal.Journal
	// OutboxBytes bounds the frames queued for one client, both on the
	// store's side and in the connection actor on the socket's node.
	// Zero value: actors.DefaultOutboxBytes.
	OutboxBytes int
	// SnapshotEvery and Retention: see actors.Config.
	SnapshotEvery uint64
	Retention     uint64
	// Observer: see actors.Config.
	Observer actors.Observer
	// PassivateAfter, when positive, stops an activation that has had no
	// client and no message for that long, after a snapshot (see
	// actors.Config); the store is activated again, wherever it is
	// placed then, on its next connection. Zero value: activations live
	// until their node leaves or dies.
	PassivateAfter time.Duration
}

// grainProps returns the props of kind's grain: a thin actor that learns
// its identity from ClusterInit (which protoactor sends right after
// Started) and only then starts the store actor as its child, named
// "kind/identity", so that the store loads the right journal.
func (n *Node) grainProps(kind actors.Kind) *actor.Props {
	return actor.PropsFromProducer(func() actor.Actor {
		return &grainActor{node: n, kind: kind}
	})
}

// grainActor is the activation of one store: it owns the store actor as a
// child and translates the cluster's messages (all protobuf) for it.
type grainActor struct {
	node  *Node
	kind  actors.Kind
	name  string
	store *actor.PID
	// conns maps each watched connection actor (by PID string) to its
	// client; when one dies (its node died), the client is detached.
	conns map[string]*messages.Disconnect
	// leaving is set when the activation started on a node that is
	// shutting down.
	leaving bool
}

// errLeaving is the error of a Connected from a node that is leaving.
const errLeaving = "node leaving"

// Receive implements actor.Actor.
func (g *grainActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *protocluster.ClusterInit:
		if g.store != nil || m.Identity == nil {
			return
		}
		if g.node.stopping.Load() {
			// The node is leaving: it must not take stores on. Connect
			// is refused with errLeaving (the caller retries); this
			// storeless activation goes with the node.
			g.leaving = true
			return
		}
		g.name = g.kind.Name() + "/" + m.Identity.Identity
		g.conns = map[string]*messages.Disconnect{}
		s := g.node.cfg.Stores
		g.store = ctx.SpawnPrefix(g.kind.Props(actors.Config{
			Name:           g.name,
			OutboxBytes:    s.OutboxBytes,
			Journal:        s.Journal,
			SnapshotEvery:  s.SnapshotEvery,
			Retention:      s.Retention,
			PassivateAfter: s.PassivateAfter,
			Logger:         g.node.log,
			Observer:       s.Observer,
		}), "store")
		ctx.Watch(g.store)
		g.node.grains.Store(ctx.Self().String(), activation{pid: ctx.Self(), store: g.name})
		g.node.log.Debug("store activated", slog.String("store", g.name))
	case *messages.Connect:
		g.connect(ctx, m)
	case *messages.ClientFrame:
		g.forward(ctx, m)
	case *messages.Disconnect:
		g.forward(ctx, m)
	case *messages.Overflowed:
		g.forward(ctx, m)
	case *actor.Terminated:
		if g.store != nil && m.Who.Equal(g.store) {
			// The store stopped by itself (it passivated, or a newer
			// activation fenced it off): the activation goes too, and
			// connections still watching it re-attach.
			ctx.Stop(ctx.Self())
			return
		}
		if d := g.conns[m.Who.String()]; d != nil {
			delete(g.conns, m.Who.String())
			g.forward(ctx, d)
		}
	case *actor.Stopped:
		g.node.grains.Delete(ctx.Self().String())
		g.node.log.Debug("store deactivated", slog.String("store", g.name))
	}
}

func (g *grainActor) forward(ctx actor.Context, m any) {
	if g.store != nil {
		ctx.Send(g.store, m)
	}
}

// connect attaches a remote (or local) connection actor: the store's
// child for the client sends its frames to it in Deliver messages, and
// nil frames (the store let the connection go) as an empty Deliver.
func (g *grainActor) connect(ctx actor.Context, m *messages.Connect) {
	if g.leaving {
		ctx.Respond(&messages.Connected{Error: errLeaving})
		return
	}
	if g.store == nil || m.Connection == nil {
		ctx.Respond(&messages.Connected{Error: fmt.Sprintf("store %s not ready or no connection", g.name)})
		return
	}
	conn := m.Connection
	root := ctx.ActorSystem().Root
	sink := func(frames [][]byte) error {
		// The client actor reuses the batch's slice once the Sink
		// returns, and the remote layer serialises later: copy it.
		root.Send(conn, &messages.Deliver{Frames: slices.Clone(frames)})
		return nil
	}
	key := conn.String()
	if _, ok := g.conns[key]; !ok {
		ctx.Watch(conn)
	}
	// A Connect of a connection already attached (a retried request
	// delivered twice, or a connection re-attaching after lost answers)
	// is attached again: the store keeps a client's child when the
	// connection id is the same, and attaches it when the store lost it.
	g.conns[key] = &messages.Disconnect{ClientId: m.ClientId, ConnectionId: m.ConnectionId}
	ctx.Send(g.store, &actors.Attach{ClientID: m.ClientId, ConnectionID: m.ConnectionId, Sink: sink})
	ctx.Respond(&messages.Connected{Store: ctx.Self()})
}

// activation is one store activation of this node.
type activation struct {
	pid   *actor.PID
	store string // "kind/name"
}

// Activations returns the stores ("kind/name") activated on this node,
// sorted. In a stable cluster each store is activated on exactly one node.
func (n *Node) Activations() []string {
	var stores []string
	n.grains.Range(func(_, v any) bool {
		stores = append(stores, v.(activation).store)
		return true
	})
	slices.Sort(stores)
	return stores
}

// retryBackoff is the retry action of every grain request: it sleeps
// 10 ms, 20 ms, 40 ms ... up to 500 ms (protoactor's default sleeps
// nanoseconds, pitfall 5).
func retryBackoff(i int) int {
	d := 10 * time.Millisecond << min(i, 6)
	time.Sleep(min(d, 500*time.Millisecond))
	return i + 1
}

// stopGrains stops the store activations of this node, each after what
// its mailbox holds, so that their connections are let go (an empty
// Deliver reaches them while this node's remote layer still runs) and
// their journal writes finish. It waits at most 1 s, or until ctx ends.
func (n *Node) stopGrains(ctx context.Context) {
	var wg sync.WaitGroup
	n.grains.Range(func(_, v any) bool {
		f := n.system.Root.PoisonFuture(v.(activation).pid)
		wg.Go(func() { _ = f.Wait() })
		return true
	})
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	timer := time.NewTimer(time.Second)
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
		n.log.Warn("stores did not stop within 1 s; leaving anyway")
	case <-ctx.Done():
	}
}
