//go:build !race

package cluster

import (
	"context"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lily-go/lily/client"
	"github.com/lily-go/lily/demo/counter"
	"github.com/lily-go/lily/gateway"
)

// serve puts a gateway in front of n on a loopback port and returns its
// WebSocket URL for store counter/name, and a function that shuts the
// gateway down.
func serve(t *testing.T, n *Node, name string) (url string, stop func()) {
	t.Helper()
	gw, err := gateway.New(n, gateway.Config{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gw)
	stop = func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = gw.Shutdown(ctx)
		srv.Close()
	}
	t.Cleanup(stop)
	return "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws/counter/" + name, stop
}

func dial(t *testing.T, url string) *client.Client[counter.Counter, counter.Msg] {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	c, err := client.Connect(ctx, url, counter.Store(), counterSer,
		client.Options{Backoff: client.Backoff{Base: 50 * time.Millisecond, Max: 500 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func confirmed(c *client.Client[counter.Counter, counter.Msg], count int, seq uint64) func() bool {
	return func() bool {
		m, s := c.Confirmed()
		return m.Count == count && s == seq
	}
}

// TestGatewayOverCluster: lily's Go client through a gateway whose
// Resolver is a cluster node. Clients on gateways of nodes a and b share
// a store hosted on b; b leaves; the client on a keeps its socket (the
// connection re-attaches to the store's next activation, on a, which
// reloads the model and sequence from the shared journal) and its further
// messages are applied there.
func TestGatewayOverCluster(t *testing.T) {
	ns := newNodes(t)
	all := startStoreNodes(t, ns, "a", "b")
	a, b := all[0], all[1]
	name := storeOn(t, all, 1, "g")
	urlA, _ := serve(t, a, name)
	urlB, stopB := serve(t, b, name)

	ca := dial(t, urlA)
	cb := dial(t, urlB)
	var dropped atomic.Int32
	ca.Subscribe(func(ch client.Change[counter.Counter]) {
		if ch.State != client.Connected {
			dropped.Add(1)
		}
	})
	for range 5 {
		if err := ca.Send(counter.Increment{}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "b sees 5", confirmed(cb, 5, 5))
	waitFor(t, "a confirmed 5", confirmed(ca, 5, 5))

	stopB()
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	if err := b.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := ca.Send(counter.Add{N: 10}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a confirmed 15 after the move", confirmed(ca, 15, 6))
	cc := dial(t, urlA)
	waitFor(t, "a new client sees 15", confirmed(cc, 15, 6))
	if n := dropped.Load(); n != 0 {
		t.Fatalf("the client through a saw %d state changes away from connected; want its socket kept", n)
	}
}
