//go:build !race

// The identity lookup across in-process nodes (no -race: see
// cluster_test.go).

package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	protocluster "github.com/asynkron/protoactor-go/cluster"
)

// lookupOf returns n's identity lookup.
func lookupOf(t *testing.T, n *Node) *lookup {
	t.Helper()
	l, ok := n.c.IdentityLookup.(*lookup)
	if !ok {
		t.Fatalf("%s: identity lookup is %T, want *lookup", n.cfg.NodeName, n.c.IdentityLookup)
	}
	return l
}

// isMember reports whether observer lists m as a member.
func isMember(observer, m *Node) bool {
	return slices.ContainsFunc(observer.Members(), func(i MemberInfo) bool { return i.ID == m.ID() })
}

// activatedOn returns the nodes (by name) on which store kind/name has an
// activation.
func activatedOn(nodes []*Node, store string) []string {
	var on []string
	for _, n := range nodes {
		if slices.Contains(n.Activations(), store) {
			on = append(on, n.cfg.NodeName)
		}
	}
	return on
}

// checkOnce fails unless every store of names has exactly one activation
// among nodes, on the member that every node's lookup names as its owner,
// and every node's lookup returns that activation.
func checkOnce(t *testing.T, nodes []*Node, names []string) {
	t.Helper()
	for _, name := range names {
		ci := protocluster.NewClusterIdentity(name, "counter")
		owner := lookupOf(t, nodes[0]).owner(ci)
		var pids []*actor.PID
		for _, n := range nodes {
			if o := lookupOf(t, n).owner(ci); o != owner {
				t.Fatalf("%s: %s says %s owns it, %s says %s", name, nodes[0].cfg.NodeName, owner, n.cfg.NodeName, o)
			}
			pid := n.Cluster().Get(name, "counter")
			if pid == nil {
				t.Fatalf("%s: no activation through %s", name, n.cfg.NodeName)
			}
			pids = append(pids, pid)
		}
		for _, pid := range pids[1:] {
			if !pid.Equal(pids[0]) {
				t.Fatalf("%s: the nodes' lookups return different activations: %v", name, pids)
			}
		}
		if pids[0].Address != owner {
			t.Fatalf("%s: activation %v is not on its owner %s", name, pids[0], owner)
		}
		// A node records an activation when its grain got ClusterInit
		// with its identity (just after the lookup answered): this checks
		// that too.
		waitFor(t, name+" gets its ClusterInit", func() bool { return len(activatedOn(nodes, "counter/"+name)) > 0 })
		if on := activatedOn(nodes, "counter/"+name); len(on) != 1 {
			t.Fatalf("%s: activated on %v, want exactly one node", name, on)
		}
	}
}

// activations returns the number of counter activations that the
// placement actors of nodes hold (counted when they spawn one, before
// they answer).
func activations(nodes []*Node) int {
	total := 0
	for _, n := range nodes {
		if k, ok := n.c.TryGetClusterKind("counter"); ok {
			total += int(k.Count())
		}
	}
	return total
}

// TestLookupActivatesOnce: many concurrent lookups of the same stores
// through every node activate each store exactly once, on the owner that
// all nodes agree on; a node that joins takes some stores over, whose old
// activations stop; an owner refuses to activate a store it does not own.
func TestLookupActivatesOnce(t *testing.T) {
	ns := newNodes(t)
	ab := startStoreNodes(t, ns, "a", "b")
	var names []string
	for i := range 24 {
		names = append(names, fmt.Sprintf("once%d", i))
	}
	getAll := func(nodes []*Node) {
		var wg sync.WaitGroup
		for _, n := range nodes {
			for _, name := range names {
				for range 3 {
					wg.Go(func() { n.Cluster().Get(name, "counter") })
				}
			}
		}
		wg.Wait()
	}
	getAll(ab)
	if got := activations(ab); got != len(names) {
		t.Fatalf("%d activations for %d stores", got, len(names))
	}
	checkOnce(t, ab, names)

	// An owner refuses an identity its member list places elsewhere.
	a, b := ab[0], ab[1]
	var notA string
	for _, name := range names {
		if lookupOf(t, a).owner(protocluster.NewClusterIdentity(name, "counter")) != a.Address() {
			notA = name
			break
		}
	}
	if notA == "" {
		t.Fatal("all stores on a")
	}
	res, err := a.system.Root.RequestFuture(actor.NewPID(a.Address(), placementActorName),
		&protocluster.ActivationRequest{ClusterIdentity: protocluster.NewClusterIdentity(notA, "counter")}, patience).Result()
	if r, ok := res.(*protocluster.ActivationResponse); err != nil || !ok || !r.Failed {
		t.Fatalf("a asked to activate %s, owned by b: %v, %v; want a Failed response", notA, res, err)
	}
	// So does it for a kind it does not serve, and a lookup of such a
	// kind finds no owner.
	res, err = a.system.Root.RequestFuture(actor.NewPID(a.Address(), placementActorName),
		&protocluster.ActivationRequest{ClusterIdentity: protocluster.NewClusterIdentity("x", "todo")}, patience).Result()
	if r, ok := res.(*protocluster.ActivationResponse); err != nil || !ok || !r.Failed {
		t.Fatalf("a asked to activate todo/x: %v, %v; want a Failed response", res, err)
	}
	if _, err := lookupOf(t, a).activate(context.Background(), protocluster.NewClusterIdentity("x", "todo")); !errors.Is(err, errNoOwner) {
		t.Fatalf("activate todo/x = %v, want errNoOwner", err)
	}
	checkOnce(t, ab, names)

	// c joins: the stores it now owns stop on a and b.
	c := ns.start(Config{NodeName: "c", Seeds: []string{a.GossipAddress()}, StoreKinds: a.cfg.StoreKinds, Stores: a.cfg.Stores})[0]
	all := []*Node{a, b, c}
	waitFor(t, "all see three", see(all, all...))
	moved := 0
	for _, name := range names {
		if lookupOf(t, a).owner(protocluster.NewClusterIdentity(name, "counter")) == c.Address() {
			moved++
			waitFor(t, name+" stops on a and b", func() bool { return len(activatedOn(ab, "counter/"+name)) == 0 })
		}
	}
	if moved == 0 {
		t.Fatal("no store moved to c")
	}
	getAll(all)
	// The moved activations are forgotten when they have stopped; a
	// second activation of a store would stay.
	waitFor(t, "one activation per store", func() bool { return activations(all) == len(names) })
	checkOnce(t, all, names)
	t.Logf("%d of %d stores moved to c", moved, len(names))
}

// TestLookupDeadOwner: right after a store's owner died, before the others
// drop it from their member lists, a lookup of the store gives up after
// the lookup's timeout, or sooner when its ctx ends (disthash waited 5 s
// whatever the caller's timeout); once the owner is dropped, the store is
// activated once on a survivor.
func TestLookupDeadOwner(t *testing.T) {
	ns := newNodes(t)
	all := startStoreNodes(t, ns, "a", "b", "c")
	a, b, c := all[0], all[1], all[2]
	name := storeOn(t, all, 1, "dead")
	ci := protocluster.NewClusterIdentity(name, "counter")
	l := lookupOf(t, a)

	b.halt()
	if !isMember(a, b) || l.owner(ci) != b.Address() {
		t.Skip("a dropped b before the lookup could be tried")
	}

	// A ctx shorter than the lookup's timeout ends the request.
	ctx, cancel := context.WithTimeout(context.Background(), activationTimeout/10)
	defer cancel()
	begin := time.Now()
	pid, err := l.activate(ctx, ci)
	short := time.Since(begin)
	if pid != nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("activate with a short ctx on the dead owner = %v, %v; want an error wrapping DeadlineExceeded", pid, err)
	}
	// So does a ctx canceled before the request is sent.
	canceled, cancelNow := context.WithCancel(context.Background())
	cancelNow()
	if pid, err := l.activate(canceled, ci); pid != nil || !errors.Is(err, context.Canceled) {
		t.Fatalf("activate with a canceled ctx = %v, %v; want an error wrapping Canceled", pid, err)
	}

	// Without a deadline, the lookup's own timeout ends it: the answer is
	// the future's timeout, not a dead letter after the connection
	// attempt (2 s) nor disthash's 5 s.
	stillMember := isMember(a, b)
	begin = time.Now()
	pid, err = l.activate(context.Background(), ci)
	own := time.Since(begin)
	switch {
	case pid == nil && errors.Is(err, actor.ErrTimeout) && !errors.Is(err, context.DeadlineExceeded):
	case !stillMember || l.owner(ci) != b.Address():
		t.Logf("a dropped b before the lookup without a deadline: %v, %v", pid, err)
	default:
		t.Fatalf("activate on the dead owner = %v, %v; want an error wrapping actor.ErrTimeout only", pid, err)
	}

	// As protoactor's Request does: try again until a survivor owns it.
	attempts := 0
	begin = time.Now()
	waitFor(t, "a survivor activates "+name, func() bool {
		attempts++
		pid = a.Cluster().Get(name, "counter")
		return pid != nil
	})
	t.Logf("dead owner: a lookup with a %v ctx gave up after %v, one without after %v (lookup timeout %v); then %d attempts over %v found %v",
		activationTimeout/10, short.Round(time.Millisecond), own.Round(time.Millisecond), activationTimeout,
		attempts, time.Since(begin).Round(time.Millisecond), pid)
	if isMember(a, b) || pid.Address == b.Address() {
		t.Fatalf("activation %v while a still lists b", pid)
	}
	waitFor(t, "a and c drop b", see([]*Node{a, c}, a, c))
	checkOnce(t, []*Node{a, c}, []string{name})
}
