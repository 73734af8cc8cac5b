package client_test

import (
	"path/filepath"
	"testing"

	"github.com/lily-go/lily/client"
	"github.com/lily-go/lily/demo/counter"
)

// BenchmarkSend measures Send, which returns once the message is applied
// locally and queued (and, with a PendingStore, saved), then waits for
// every acknowledgement.
func BenchmarkSend(b *testing.B) {
	for _, tc := range []struct {
		name     string
		parallel bool
		file     bool
	}{
		{"store=none", false, false},
		{"store=file", false, true},
		{"store=file/parallel", true, true},
	} {
		b.Run(tc.name, func(b *testing.B) {
			reg := newRegistry(b)
			n := startNode(b, reg, nil)
			var opts client.Options
			if tc.file {
				opts.PendingStore = client.FilePendingStore(filepath.Join(b.TempDir(), "pending.json"))
			}
			c := connectCounter(b, storeURL(n.addr(), "counter", "bench"), opts)
			b.ReportAllocs()
			b.ResetTimer()
			if tc.parallel {
				b.SetParallelism(8)
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if err := c.Send(counter.Increment{}); err != nil {
							b.Error(err)
							return
						}
					}
				})
			} else {
				for b.Loop() {
					if err := c.Send(counter.Increment{}); err != nil {
						b.Fatal(err)
					}
				}
			}
			flush(b, c)
		})
	}
}
