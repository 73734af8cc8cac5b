package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

// These tests start no node and run with or without -race.

func TestConfigValidation(t *testing.T) {
	manyKinds := make([]string, 40)
	for i := range manyKinds {
		manyKinds[i] = fmt.Sprintf("kind-number-%02d", i)
	}
	tests := []struct {
		name  string
		cfg   Config
		field string // "" means valid
		is    error
	}{
		{"zero value", Config{}, "", nil},
		{"full", Config{ClusterName: "c", BindHost: "0.0.0.0", AdvertiseHost: "10.0.0.7", GossipPort: 7946, RemotePort: 7947,
			Seeds: []string{"10.0.0.8:7946", "lily-seeds", "lily-seeds.svc:7000", "[::1]:7946", "::1"}, Kinds: []string{"counter", "todo"}}, "", nil},
		{"bind host name", Config{BindHost: "localhost"}, "BindHost", ErrInvalidConfig},
		{"wildcard without advertise", Config{BindHost: "0.0.0.0"}, "AdvertiseHost", ErrInvalidConfig},
		{"gossip port", Config{GossipPort: -1}, "GossipPort", ErrInvalidConfig},
		{"remote port", Config{RemotePort: 70000}, "RemotePort", ErrInvalidConfig},
		{"same ports", Config{GossipPort: 7000, RemotePort: 7000}, "RemotePort", ErrInvalidConfig},
		{"seed", Config{Seeds: []string{"a:b:c"}}, "Seeds", ErrInvalidConfig},
		{"seed port", Config{Seeds: []string{"host:0"}}, "Seeds", ErrInvalidConfig},
		{"empty kind", Config{Kinds: []string{""}}, "Kinds", ErrInvalidConfig},
		{"kind twice", Config{Kinds: []string{"a", "a"}}, "Kinds", ErrInvalidConfig},
		{"probe timeout", Config{Detection: Detection{ProbeInterval: 100 * time.Millisecond, ProbeTimeout: 200 * time.Millisecond}}, "Detection.ProbeTimeout", ErrInvalidConfig},
		{"metadata", Config{Kinds: manyKinds}, "Kinds", ErrMetadataTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.withDefaults().validate()
			if tt.field == "" {
				if err != nil {
					t.Fatalf("validate: %v", err)
				}
				return
			}
			if !errors.Is(err, tt.is) || !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tt.field+":") {
				t.Fatalf("validate = %v, want %v naming %s", err, tt.is, tt.field)
			}
		})
	}
}

func TestStartRejectsAnInvalidConfig(t *testing.T) {
	_, err := Start(context.Background(), Config{BindHost: "nowhere"})
	if !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("Start = %v, want ErrInvalidConfig", err)
	}
}

func TestMetadataFitsMemberlist(t *testing.T) {
	m := metadata{ID: "0123456789012345678901", Host: "10.0.0.1", Port: 7947, Kinds: advertised([]string{"todo", "counter"}, []string{"counter"})}
	b, err := m.encode()
	if err != nil {
		t.Fatal(err)
	}
	want := `{"id":"0123456789012345678901","host":"10.0.0.1","port":7947,"kinds":["counter","prototopic","todo"]}`
	if string(b) != want {
		t.Fatalf("metadata = %s, want %s", b, want)
	}
	m.Kinds = []string{strings.Repeat("k", memberlist.MetaMaxSize)}
	if _, err := m.encode(); !errors.Is(err, ErrMetadataTooLarge) {
		t.Fatalf("encode = %v, want ErrMetadataTooLarge", err)
	}
}

func TestResolveSeeds(t *testing.T) {
	lookup := func(_ context.Context, host string) ([]string, error) {
		switch host {
		case "lily-seeds": // a headless service: one name, several nodes
			return []string{"10.0.0.1", "10.0.0.2", "10.0.0.3"}, nil
		}
		return nil, errors.New("no such host")
	}
	skip := map[string]bool{"10.0.0.2:7946": true} // this node, or a live peer
	got := resolveSeeds(context.Background(), []string{"lily-seeds", "10.0.0.1:7946", "unknown:7946", "10.0.0.9:7000"},
		lookup, skip, slog.New(slog.DiscardHandler))
	want := []string{"10.0.0.1:7946", "10.0.0.3:7946", "10.0.0.9:7000"}
	if !slices.Equal(got, want) {
		t.Fatalf("resolveSeeds = %v, want %v", got, want)
	}
}

// TestSplitBrainSignals feeds the provider the situations of a node its
// peers declared dead (a stall, a partition) directly; TestCluster drives
// the notice end to end through memberlist, in process. A real stall was
// checked by hand (three node processes, SIGSTOP of one for 8 s: the
// others dropped it after 0.77 s; 3-11 ms after SIGCONT it refuted a
// suspect message, the others refused its alive message and told it, and
// its Done closed with ErrSplitBrain); lilyd's multi-process tests should
// pin that.
func TestSplitBrainSignals(t *testing.T) {
	var fatal []error
	p := newProvider(Config{}, slog.New(slog.DiscardHandler), func(err error) { fatal = append(fatal, err) })
	p.self = "me"
	p.blocked = func(id string) bool { return id == "zombie" || id == "me" }
	w := &logWriter{log: slog.New(slog.DiscardHandler), refuted: p.refutedDead}

	// A suspicion refuted in time is harmless: the peers never blocked us.
	fmt.Fprintln(w, "[WARN] memberlist: Refuting a suspect message (from: other)")
	p.NotifyMsg(append(slices.Clone(blockedNotice), "zombie"...)) // about another id
	if len(fatal) != 0 {
		t.Fatalf("fatal events %v, want none", fatal)
	}

	// 1. memberlist refutes a dead message about this node.
	fmt.Fprintln(w, "[WARN] memberlist: Refuting a dead message (from: other)")
	// 2. A peer tells this node that protoactor blocked its id.
	p.NotifyMsg(append(slices.Clone(blockedNotice), "me"...))
	if len(fatal) != 2 || !errors.Is(fatal[0], ErrSplitBrain) || !errors.Is(fatal[1], ErrSplitBrain) {
		t.Fatalf("fatal events %v, want two ErrSplitBrain", fatal)
	}

	// 3. The alive delegate refuses a blocked peer and queues a notice for
	// it; it accepts others, and never refuses this node itself.
	if err := p.NotifyAlive(&memberlist.Node{Name: "zombie"}); err == nil {
		t.Fatal("NotifyAlive accepted a blocked peer")
	}
	if peer := <-p.notices; peer.Name != "zombie" {
		t.Fatalf("notice for %q, want zombie", peer.Name)
	}
	for _, name := range []string{"fresh", "me"} {
		if err := p.NotifyAlive(&memberlist.Node{Name: name}); err != nil {
			t.Fatalf("NotifyAlive(%s) = %v", name, err)
		}
	}
}

func TestFatalClosesDone(t *testing.T) {
	n := &Node{done: make(chan struct{}), stopped: make(chan struct{}), log: slog.New(slog.DiscardHandler)}
	if n.Err() != nil {
		t.Fatal("Err before Done")
	}
	n.fatal(fmt.Errorf("%w: test", ErrSplitBrain))
	n.fatal(errors.New("second")) // ignored
	<-n.Done()
	if !errors.Is(n.Err(), ErrSplitBrain) {
		t.Fatalf("Err = %v", n.Err())
	}

	// Once shutting down, a leave is not a split.
	n = &Node{done: make(chan struct{}), stopped: make(chan struct{}), log: slog.New(slog.DiscardHandler)}
	n.stopping.Store(true)
	n.fatal(ErrSplitBrain)
	n.finish()
	<-n.Done()
	if n.Err() != nil {
		t.Fatalf("Err after a shutdown = %v", n.Err())
	}
}
