package server_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/lily-go/lily/journal"
	"github.com/lily-go/lily/journal/pebblejournal"
	"github.com/lily-go/lily/server"
	"github.com/lily-go/lily/transport"
)

// BenchmarkRecovery measures how long a store of 100,000 journaled messages
// takes to come back (start, load, answer State) from a Pebble journal:
// replaying every message, or loading a snapshot taken after the last one.
func BenchmarkRecovery(b *testing.B) {
	const messages = 100000
	for _, withSnapshot := range []bool{false, true} {
		b.Run(fmt.Sprintf("messages=%d/snapshot=%v", messages, withSnapshot), func(b *testing.B) {
			dir := b.TempDir()
			j, err := pebblejournal.Open(dir, pebblejournal.Options{})
			if err != nil {
				b.Fatal(err)
			}
			ser := counterSerialiser()
			payload, _ := ser.EncodeMessage(Increment{}, transport.FormatMsgPack)
			ctx := context.Background()
			const name = "counter/recover"
			for from := uint64(1); from <= messages; from += 1000 {
				batch := make([]journal.Record, 0, 1000)
				for s := from; s < from+1000; s++ {
					batch = append(batch, journal.Record{Sequence: s, ClientID: "c", MessageID: s, Payload: payload})
				}
				if err := j.Append(ctx, name, batch); err != nil {
					b.Fatal(err)
				}
			}
			if withSnapshot {
				model, _ := ser.EncodeModel(Counter{Count: messages}, transport.FormatMsgPack)
				if err := j.SaveSnapshot(ctx, name, journal.Snapshot{Sequence: messages, Model: model,
					Applied: map[string]journal.Applied{"c": {MessageID: messages, Sequence: messages}}}); err != nil {
					b.Fatal(err)
				}
			}
			defer j.Close()
			cfg := server.Config{Name: name, Journal: j}
			b.ResetTimer()
			for b.Loop() {
				srv, err := server.StartWithConfig(counterStore(), ser, cfg)
				if err != nil {
					b.Fatal(err)
				}
				m, seq, _, err := srv.State(ctx)
				if err != nil || m.Count != messages || seq != messages {
					b.Fatalf("recovered count %d at %d (%v)", m.Count, seq, err)
				}
				b.StopTimer()
				srv.Stop()
				b.StartTimer()
			}
		})
	}
}
