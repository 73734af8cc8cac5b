package tests

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lily-go/lily/client"
	"github.com/lily-go/lily/demo/counter"
	"github.com/lily-go/lily/internal/testutil"
)

// lilyd is killed (SIGKILL) while clients send to 50 stores, and restarted
// on the same data directory. Every message every client sent is applied
// exactly once: the acknowledged ones survived the crash, the pending ones
// were sent again and not applied twice; no client ever saw a confirmed
// sequence go back (a sequence reused after the restart would).
func TestLilydCrashLosesNothingAcknowledged(t *testing.T) {
	addr := freeAddr(t)
	dataDir := t.TempDir()
	node := startLilyd(t, addr, "-data-dir", dataDir, "-snapshot-every", "40")

	const stores, perStore, each = 50, 2, 60
	type sender struct {
		c         *client.Client[counter.Counter, counter.Msg]
		store     int
		wentBack  atomic.Value // a string saying how, once it happened
		confirmed atomic.Uint64
	}
	var senders []*sender
	for s := range stores {
		for range perStore {
			snd := &sender{store: s}
			snd.c = connectCounter(t, fmt.Sprintf("ws://%s/ws/counter/crash-%d", addr, s), client.Options{})
			snd.c.Subscribe(func(ch client.Change[counter.Counter]) {
				if prev := snd.confirmed.Load(); ch.Sequence < prev {
					snd.wentBack.Store(fmt.Sprintf("confirmed sequence went from %d back to %d", prev, ch.Sequence))
				} else {
					snd.confirmed.Store(ch.Sequence)
				}
			})
			senders = append(senders, snd)
		}
	}

	// Everyone sends; the node dies when about a third has been
	// acknowledged, and comes back.
	var sent atomic.Int64
	var wg sync.WaitGroup
	for _, snd := range senders {
		wg.Go(func() {
			for range each {
				if err := snd.c.Send(counter.Increment{}); err != nil {
					t.Errorf("send: %v", err)
					return
				}
				sent.Add(1)
				time.Sleep(2 * time.Millisecond) // a client's pace, not a wait for a result
			}
		})
	}
	total := int64(len(senders) * each)
	testutil.Eventually(t, func() bool { return sent.Load() > total/3 }, "clients did not send")
	node.kill()
	if node.err == nil {
		t.Fatal("lilyd exited cleanly from SIGKILL?")
	}
	acknowledgedBeforeCrash := map[int]uint64{}
	pendingAtCrash, ackedAtCrash := 0, uint64(0)
	for _, snd := range senders {
		if seq := snd.confirmed.Load(); seq > acknowledgedBeforeCrash[snd.store] {
			acknowledgedBeforeCrash[snd.store] = seq
		}
		pendingAtCrash += snd.c.Pending()
	}
	for _, seq := range acknowledgedBeforeCrash {
		ackedAtCrash += seq
	}
	if pendingAtCrash == 0 || ackedAtCrash == 0 {
		t.Fatalf("at the crash %d messages were acknowledged and %d pending: not mid-stream, the test proves nothing", ackedAtCrash, pendingAtCrash)
	}
	t.Logf("at the crash: %d messages acknowledged, %d pending or being sent", ackedAtCrash, pendingAtCrash)
	startLilyd(t, addr, "-data-dir", dataDir, "-snapshot-every", "40")
	wg.Wait()

	for _, snd := range senders {
		flush(t, snd.c)
	}
	for s := range stores {
		observer := testutil.DialWS(t, fmt.Sprintf("ws://%s/ws/counter/crash-%d?client_id=observer", addr, s), nil)
		count, seq := countOf(t, observer)
		if count != perStore*each || seq != uint64(count) {
			t.Errorf("store %d: count %d at sequence %d, want %d messages applied exactly once", s, count, seq, perStore*each)
		}
		if seq < acknowledgedBeforeCrash[s] {
			t.Errorf("store %d: sequence %d after the restart, below the %d acknowledged before the crash", s, seq, acknowledgedBeforeCrash[s])
		}
	}
	for _, snd := range senders {
		if how := snd.wentBack.Load(); how != nil {
			t.Errorf("a client of store %d: %s", snd.store, how)
		}
		if got := snd.c.Model().Count; got != perStore*each {
			t.Errorf("a client of store %d ends at %d, want %d", snd.store, got, perStore*each)
		}
	}
}
