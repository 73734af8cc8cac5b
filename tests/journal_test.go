package tests

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gorilla/websocket"

	"github.com/lily-go/lily/demo/counter"
	"github.com/lily-go/lily/internal/testutil"
	"github.com/lily-go/lily/journal"
	"github.com/lily-go/lily/journal/pebblejournal"
	"github.com/lily-go/lily/transport"
)

// A store whose journal holds a record that no longer decodes refuses its
// clients with an error naming the store and the record, and closes with
// 1012; the node and its other stores keep working.
func TestLilydReportsADamagedStore(t *testing.T) {
	dataDir := t.TempDir()
	j, err := pebblejournal.Open(filepath.Join(dataDir, "journal"), pebblejournal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	good, _ := counterSerialiser.EncodeMessage(counter.Increment{}, transport.FormatMsgPack)
	if err := j.Append(context.Background(), "counter/damaged", []journal.Record{
		{Sequence: 1, ClientID: "a", Payload: good},
		{Sequence: 2, ClientID: "a", Payload: []byte{0x81, 0xa1, '_', 0xa7, 'U', 'n', 'k', 'n', 'o', 'w', 'n'}},
	}); err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}

	node := startLilyd(t, freeAddr(t), "-data-dir", dataDir)
	c := testutil.DialWS(t, node.url("counter", "damaged", "a"), nil)
	f := c.Next()
	if f.Type != transport.TypeError || f.Code != transport.CodeInternal || !strings.Contains(f.Reason, "counter/damaged") || !strings.Contains(f.Reason, "record 2") {
		t.Fatalf("got %+v, want an internal error naming the store and record 2", f)
	}
	if err := c.Closed(); !websocket.IsCloseError(err, websocket.CloseServiceRestart) {
		t.Fatalf("ended with %v, want close 1012", err)
	}
	other := testutil.DialWS(t, node.url("counter", "fine", "a"), nil)
	sendCounter(t, other, counter.Increment{}, 1)
	if ack := other.NextOf(transport.TypeAcknowledge); ack.Sequence != 1 {
		t.Fatalf("another store: %+v", ack)
	}
}

// Passivation with the real binary: an idle store stops, and the next
// connection finds its model and sequence.
func TestLilydPassivatesAndReactivates(t *testing.T) {
	node := startLilyd(t, freeAddr(t), "-passivate-after", "100ms")
	c := testutil.DialWS(t, node.url("counter", "sleepy", "a"), nil)
	for id := uint64(1); id <= 4; id++ {
		sendCounter(t, c, counter.Add{N: 3}, id)
	}
	testutil.Eventually(t, func() bool { return testutil.LastAck(c.Frames()) == 4 }, "not acknowledged")
	_ = c.Conn.Close()
	testutil.Eventually(t, func() bool { return strings.Contains(node.metrics(t), "\nlily_stores_active 0\n") }, "the idle store did not passivate")
	again := testutil.DialWS(t, node.url("counter", "sleepy", "b"), nil)
	if count, seq := countOf(t, again); count != 12 || seq != 4 {
		t.Fatalf("after reactivation: count %d at %d, want 12 at 4", count, seq)
	}
}
