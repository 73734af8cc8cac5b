package cluster

import (
	"errors"
	"runtime"
	"slices"
	"sync"
	"testing"

	"github.com/lily-go/lily/actors"
	"github.com/lily-go/lily/demo/counter"
	"github.com/lily-go/lily/transport"
)

// These tests start no node and run with or without -race.

func TestStoreKindsValidation(t *testing.T) {
	ser := transport.Automatic[counter.Counter, counter.Msg](counter.Variants...)
	k := actors.NewKind("counter", counter.Store(), ser)
	for _, cfg := range []Config{
		{StoreKinds: []actors.Kind{k, k}},
		{StoreKinds: []actors.Kind{k}, Kinds: []string{"counter"}},
		{StoreKinds: []actors.Kind{actors.NewKind("bad/name", counter.Store(), ser)}},
		{Stores: StoreSettings{OutboxBytes: -1}},
	} {
		if err := cfg.withDefaults().validate(); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%+v: got %v, want ErrInvalidConfig", cfg, err)
		}
	}
	if err := (Config{StoreKinds: []actors.Kind{k}, Kinds: []string{"todo"}}).withDefaults().validate(); err != nil {
		t.Fatal(err)
	}
}

// TestConnQueue: the connection actor's outbox refuses a frame past its
// bound (a lone frame always fits), writes in order, one writer at a time,
// and, when let go, calls send(nil) once after what was queued.
func TestConnQueue(t *testing.T) {
	var mu sync.Mutex
	var got [][]byte
	lettingGo := 0
	first, gate, done := make(chan struct{}), make(chan struct{}), make(chan struct{})
	calls := 0
	q := &connQueue{limit: 10, send: func(frames [][]byte) error {
		mu.Lock()
		calls++
		n := calls
		mu.Unlock()
		if n == 1 {
			close(first)
			<-gate // the writer is busy while the test fills the queue
		}
		mu.Lock()
		defer mu.Unlock()
		if frames == nil {
			lettingGo++
			close(done)
			return nil
		}
		got = append(got, frames...)
		return nil
	}}
	q.push([]byte("busy"))
	<-first
	if !q.push([]byte("0123456789abc")) { // alone: fits
		t.Fatal("a lone frame was refused")
	}
	if q.push([]byte("x")) {
		t.Fatal("a frame past the bound was accepted")
	}
	q.drop()
	for _, f := range []string{"a", "b", "c"} {
		if !q.push([]byte(f)) {
			t.Fatal("refused")
		}
	}
	q.finish(true)
	q.finish(true)
	close(gate)
	<-done
	q.mu.Lock()
	for q.writing { // let the writer end
		q.mu.Unlock()
		runtime.Gosched()
		q.mu.Lock()
	}
	q.mu.Unlock()
	mu.Lock()
	defer mu.Unlock()
	if want := [][]byte{[]byte("busy"), []byte("a"), []byte("b"), []byte("c")}; !slices.EqualFunc(got, want, slices.Equal) || lettingGo != 1 {
		t.Fatalf("got %q, let go %d times", got, lettingGo)
	}
}
