package server_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/lily-go/lily/internal/testutil"
	"github.com/lily-go/lily/journal"
	"github.com/lily-go/lily/journal/memjournal"
	"github.com/lily-go/lily/server"
	"github.com/lily-go/lily/transport"
)

// claimingJournal is a journal.Claimer over an in-memory journal: the
// shape of pgjournal's fencing, without a database.
type claimingJournal struct {
	*memjournal.Journal
	mu     sync.Mutex
	tokens map[string]int
}

type claimedView struct {
	*claimingJournal
	token int
}

func (c *claimingJournal) ClaimStore(_ context.Context, store string) (journal.Journal, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.tokens[store]++
	return &claimedView{claimingJournal: c, token: c.tokens[store]}, nil
}

func (v *claimedView) Append(ctx context.Context, store string, rs []journal.Record) error {
	v.mu.Lock()
	current := v.tokens[store]
	v.mu.Unlock()
	if current != v.token {
		return fmt.Errorf("store %s claimed by token %d, this view has %d: %w, %w", store, current, v.token, journal.ErrFenced, journal.ErrConflict)
	}
	return v.Journal.Append(ctx, store, rs)
}

// Two activations of one store share a journal (say, on two sides of a
// partition): the newer one claims the store, the older one's next write is
// fenced, and it stops and lets its clients go instead of taking the store
// back.
func TestNewerActivationFencesTheOlder(t *testing.T) {
	j := &claimingJournal{Journal: memjournal.New(), tokens: map[string]int{}}
	cfg := server.Config{Name: "counter/shared", Journal: j}
	older := start(t, counterStore(), counterSerialiser(), cfg)
	alice := connectSink(t, older, "alice")
	older.Incoming("alice", clientMessage(t, counterSerialiser(), CounterMsg(Add{N: 1}), 1, transport.FormatJSON))
	wantAck(t, alice.Next(), 1, 1)

	newer := start(t, counterStore(), counterSerialiser(), cfg)
	if m, seq := state(t, newer); m.Count != 1 || seq != 1 {
		t.Fatalf("the newer activation loaded count %d at %d", m.Count, seq)
	}
	older.Incoming("alice", clientMessage(t, counterSerialiser(), CounterMsg(Add{N: 10}), 2, transport.FormatJSON))
	testutil.Eventually(t, func() bool { return alice.letGo.Load() == 1 }, "the fenced activation did not let its client go")
	if n := alice.Count(); n != 1 {
		t.Fatalf("the fenced activation answered a message it could not write: %+v", alice.Frames())
	}
	// The client reconnects to the newer activation and sends again.
	bob := connectSink(t, newer, "alice")
	newer.Incoming("alice", clientMessage(t, counterSerialiser(), CounterMsg(Add{N: 10}), 2, transport.FormatJSON))
	wantAck(t, bob.Next(), 2, 2)
	if m, seq := state(t, newer); m.Count != 11 || seq != 2 {
		t.Fatalf("count %d at %d, want 11 at 2", m.Count, seq)
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.tokens["counter/shared"] != 2 {
		t.Fatalf("the store was claimed %d times: the fenced activation claimed it back", j.tokens["counter/shared"])
	}
}
