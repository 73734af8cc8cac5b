//go:build !race

package cluster

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/lily-go/lily/demo/counter"
	"github.com/lily-go/lily/transport"
)

// BenchmarkAckLatency measures a client's round trip through Node.Connect
// on node a: a closed loop (one message in flight) of increments of a
// store hosted on a itself (local) or on node b (remote: the client's
// frames and the store's answers cross the nodes' gRPC streams). Both
// nodes run in this process on 127.0.0.1 and share an in-memory journal,
// so the numbers are the actor and network path, not durability. It
// reports the acknowledgement latency's p50 and p99.
func BenchmarkAckLatency(b *testing.B) {
	for _, placement := range []string{"local", "remote"} {
		b.Run(placement, func(b *testing.B) {
			ns := newNodes(b)
			all := startStoreNodes(b, ns, "a", "b")
			host := 0
			if placement == "remote" {
				host = 1
			}
			name := storeOn(b, all, host, "bench")
			acks := make(chan struct{}, 1)
			send := func(frames [][]byte) error {
				for _, f := range frames {
					if transport.PeekType(f) == transport.TypeAcknowledge {
						acks <- struct{}{}
					}
				}
				return nil
			}
			ctx, cancel := context.WithTimeout(context.Background(), patience)
			defer cancel()
			incoming, disconnect, err := all[0].Connect(ctx, "counter", name, "bench", send)
			if err != nil {
				b.Fatal(err)
			}
			defer disconnect()
			payload, err := counterSer.EncodeMessage(counter.Increment{}, transport.FormatJSON)
			if err != nil {
				b.Fatal(err)
			}
			frame := func(id uint64) []byte {
				f, err := transport.Encode(transport.Frame{Type: transport.TypeClientMessage, ID: id, Payload: payload}, transport.FormatJSON)
				if err != nil {
					b.Fatal(err)
				}
				return f
			}
			// Warm up: the store's activation and the streams.
			for id := uint64(1); id <= 100; id++ {
				incoming(frame(id))
				<-acks
			}
			latencies := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := range b.N {
				f := frame(uint64(101 + i))
				start := time.Now()
				incoming(f)
				<-acks
				latencies = append(latencies, time.Since(start))
			}
			b.StopTimer()
			slices.Sort(latencies)
			at := func(q float64) float64 {
				return float64(latencies[int(q*float64(len(latencies)-1))].Microseconds())
			}
			b.ReportMetric(at(0.50), "p50-µs")
			b.ReportMetric(at(0.99), "p99-µs")
			b.Logf("%s: %d acks, p50 %vµs p99 %vµs", placement, len(latencies), at(0.50), at(0.99))
		})
	}
}
