package cluster

import (
	"errors"
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
// bound (a lone frame always fits), writes in order and, when let go,
// calls send(nil) after what was queued.
func TestConnQueue(t *testing.T) {
	var mu sync.Mutex
	var got [][]byte
	var letGo bool
	done := make(chan struct{})
	q := &connQueue{limit: 10, wake: make(chan struct{}, 1), send: func(frames [][]byte) error {
		mu.Lock()
		defer mu.Unlock()
		if frames == nil {
			letGo = true
			return nil
		}
		got = append(got, frames...)
		return nil
	}}
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
	go func() { q.run(); close(done) }()
	<-done
	mu.Lock()
	defer mu.Unlock()
	if want := [][]byte{[]byte("a"), []byte("b"), []byte("c")}; !slices.EqualFunc(got, want, slices.Equal) || !letGo {
		t.Fatalf("got %q, let go %v", got, letGo)
	}
}

func TestFrameType(t *testing.T) {
	for _, format := range []transport.Format{transport.FormatJSON, transport.FormatMsgPack} {
		data, err := transport.Encode(transport.Frame{Type: transport.TypeSnapshot, Sequence: 3, State: []byte(`{"count":1}`), Epoch: "e"}, format)
		if err != nil {
			t.Fatal(err)
		}
		if got := frameType(data); got != transport.TypeSnapshot {
			t.Errorf("%v: got %v", format, got)
		}
	}
	if frameType([]byte("junk")) != 0 {
		t.Error("junk has a type")
	}
}
