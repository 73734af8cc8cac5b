// Package memjournal is a journal.Journal in memory: what it holds lasts as
// long as the process. It serves tests and nodes run without a data
// directory: a store that passivates comes back with its state, a restart
// of the process starts every store afresh (with a new epoch).
package memjournal

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/lily-go/lily/journal"
)

// Journal is an in-memory journal. Use New.
type Journal struct {
	mu     sync.Mutex
	stores map[string]*store // guarded by mu
	closed bool              // guarded by mu
}

type store struct {
	epoch    string
	snapshot *journal.Snapshot
	first    uint64 // sequence of records[0]
	records  []journal.Record
	last     uint64
}

// New returns an empty journal.
func New() *Journal {
	return &Journal{stores: map[string]*store{}}
}

func (j *Journal) get(name string, create bool) (*store, error) {
	if j.closed {
		return nil, journal.ErrClosed
	}
	s := j.stores[name]
	if s == nil && create {
		var b [8]byte
		_, _ = rand.Read(b[:])
		s = &store{epoch: hex.EncodeToString(b[:]), first: 1}
		j.stores[name] = s
	}
	return s, nil
}

// Open implements journal.Journal.
func (j *Journal) Open(_ context.Context, name string) (journal.Info, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	s, err := j.get(name, true)
	if err != nil {
		return journal.Info{}, err
	}
	info := journal.Info{Epoch: s.epoch, LastSequence: s.last}
	if s.snapshot != nil {
		snap := copySnapshot(*s.snapshot)
		info.Snapshot = &snap
	}
	return info, nil
}

// Append implements journal.Journal.
func (j *Journal) Append(_ context.Context, name string, records []journal.Record) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	s, err := j.get(name, true)
	if err != nil {
		return err
	}
	if err := journal.CheckAppend(name, s.last, records); err != nil {
		return err
	}
	for _, r := range records {
		r.Payload = slices.Clone(r.Payload)
		s.records = append(s.records, r)
	}
	s.last += uint64(len(records))
	return nil
}

// Read implements journal.Journal.
func (j *Journal) Read(ctx context.Context, name string, after uint64, fn func(journal.Record) error) error {
	j.mu.Lock()
	s, err := j.get(name, false)
	if err != nil || s == nil {
		j.mu.Unlock()
		return err
	}
	if after+1 < s.first && after < s.last {
		j.mu.Unlock()
		return fmt.Errorf("journal: read %s after %d (first held %d): %w", name, after, s.first, journal.ErrTrimmed)
	}
	var todo []journal.Record
	if after+1 >= s.first {
		todo = slices.Clone(s.records[min(int(after+1-s.first), len(s.records)):])
	}
	j.mu.Unlock()
	for _, r := range todo {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	return nil
}

// SaveSnapshot implements journal.Journal.
func (j *Journal) SaveSnapshot(_ context.Context, name string, snap journal.Snapshot) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	s, err := j.get(name, true)
	if err != nil {
		return err
	}
	if snap.Sequence > s.last {
		return fmt.Errorf("journal: snapshot of %s at %d is past the last record %d", name, snap.Sequence, s.last)
	}
	c := copySnapshot(snap)
	s.snapshot = &c
	return nil
}

// Trim implements journal.Journal.
func (j *Journal) Trim(_ context.Context, name string, through uint64) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	s, err := j.get(name, false)
	if err != nil || s == nil {
		return err
	}
	if s.snapshot == nil || through > s.snapshot.Sequence {
		return fmt.Errorf("journal: trim %s through %d: not covered by a snapshot", name, through)
	}
	if through < s.first {
		return nil
	}
	n := int(through - s.first + 1)
	s.records = slices.Clone(s.records[n:])
	s.first = through + 1
	return nil
}

// Close implements journal.Journal.
func (j *Journal) Close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.closed = true
	j.stores = nil
	return nil
}

func copySnapshot(s journal.Snapshot) journal.Snapshot {
	s.Model = slices.Clone(s.Model)
	s.Applied = maps.Clone(s.Applied)
	return s
}
