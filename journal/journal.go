// Package journal is how a store persists itself: the messages it applied,
// in sequence order, and snapshots of its model. A store actor appends each
// batch of applied messages before it acknowledges them, loads the latest
// snapshot and replays the messages after it when it starts, and answers a
// delta resync from the messages it still holds.
//
// # Implementations
//
// journal/memjournal keeps everything in memory (tests, and nodes run with
// no data directory); journal/pebblejournal keeps everything in a local
// Pebble database, one per node, the embedded default. Every implementation
// passes the conformance suite in journal/journaltest.
//
// # Fencing
//
// Append is conditional: the first record's sequence must follow the last
// one written for the store, or nothing is written and ErrConflict is
// returned. Two writers (say two activations of one store on two nodes)
// can therefore never both write sequence N: the second one learns it is
// stale and must reload.
//
// # Concurrency
//
// A Journal is safe for concurrent use by many stores. The methods for one
// store are called by one actor at a time.
package journal

import (
	"context"
	"errors"
	"fmt"
)

// Record is one applied client message.
type Record struct {
	Sequence  uint64
	ClientID  string
	MessageID uint64 // the client's id of the message; 0 = none
	Payload   []byte // the message, encoded by the store's serialiser (MessagePack form)
}

// Applied is the last message applied for a client id.
type Applied struct {
	MessageID uint64
	Sequence  uint64
}

// Snapshot is a store's model after Sequence.
type Snapshot struct {
	Sequence uint64
	Model    []byte             // encoded by the store's serialiser (MessagePack form)
	Applied  map[string]Applied // the last message applied per client id, up to Sequence
}

// Info is what a journal holds of one store.
type Info struct {
	// Epoch names the store's history. It is made on the first Open of a
	// store and kept for as long as the journal holds the store.
	Epoch string
	// Snapshot is the latest snapshot, or nil.
	Snapshot *Snapshot
	// LastSequence is the sequence of the last record written (or of the
	// snapshot, when every record it covers was trimmed); 0 for none.
	LastSequence uint64
}

// Journal persists stores, each named by a string such as "counter/demo".
type Journal interface {
	// Open returns what the journal holds of a store, making its epoch
	// when the store is new.
	Open(ctx context.Context, store string) (Info, error)
	// Append writes records, whose sequences must be consecutive and
	// follow the store's last one; otherwise it writes nothing and returns
	// an error wrapping ErrConflict. When it returns nil the records are as
	// durable as the journal's Durability promises.
	Append(ctx context.Context, store string, records []Record) error
	// Read calls fn with each record after sequence after, in order, up to
	// the last one written, stopping at the first error fn returns. It
	// returns an error wrapping ErrTrimmed when records after after are no
	// longer held, and one wrapping ErrCorrupt for a damaged record.
	Read(ctx context.Context, store string, after uint64, fn func(Record) error) error
	// SaveSnapshot saves s as the store's latest snapshot. Its sequence
	// must not be above the last record written.
	SaveSnapshot(ctx context.Context, store string, s Snapshot) error
	// Trim deletes the records up to and including sequence through, which
	// a snapshot must cover.
	Trim(ctx context.Context, store string, through uint64) error
	// Close releases the journal. Calls after Close return ErrClosed.
	Close() error
}

// Durability says when an append counts as durable.
type Durability uint8

const (
	// Sync: each append is on disk (fsync) before it returns. The default.
	Sync Durability = iota
	// Batch: appends return once written to the operating system, and the
	// journal syncs to disk at most every batch interval: a process crash
	// loses nothing, a machine crash may lose the last interval.
	Batch
	// Off: appends return once written to the operating system and the
	// journal never forces a sync: a machine crash may lose more.
	Off
)

// String returns "sync", "batch" or "off".
func (d Durability) String() string {
	switch d {
	case Sync:
		return "sync"
	case Batch:
		return "batch"
	case Off:
		return "off"
	}
	return fmt.Sprintf("Durability(%d)", uint8(d))
}

// ParseDurability parses "sync", "batch" or "off".
func ParseDurability(s string) (Durability, error) {
	switch s {
	case "sync":
		return Sync, nil
	case "batch":
		return Batch, nil
	case "off":
		return Off, nil
	}
	return 0, fmt.Errorf("journal: durability must be sync, batch or off, got %q", s)
}

// The errors of a journal.
var (
	// ErrConflict: the sequence was already written (or a gap would open);
	// the writer is stale and must reload the store.
	ErrConflict = errors.New("journal: sequence already written")
	// ErrTrimmed: the records asked for are no longer held.
	ErrTrimmed = errors.New("journal: records trimmed")
	// ErrCorrupt: a record or snapshot cannot be decoded.
	ErrCorrupt = errors.New("journal: corrupt data")
	// ErrClosed: the journal was closed.
	ErrClosed = errors.New("journal: closed")
	// ErrFenced: a newer activation of the store claimed it (see Claimer);
	// this one must stop, not claim again. Errors wrapping it wrap
	// ErrConflict too.
	ErrFenced = errors.New("journal: store claimed by a newer activation")
)

// Claimer is implemented by journals shared between nodes. ClaimStore makes
// the caller the store's newest activation and returns a view of the
// journal whose writes fail with an error wrapping ErrFenced once a newer
// activation has claimed the store: of two activations (say one on each
// side of a network partition), only the newest can write.
type Claimer interface {
	ClaimStore(ctx context.Context, store string) (Journal, error)
}

// CorruptError reports damaged data of one store. It wraps ErrCorrupt.
type CorruptError struct {
	Store    string
	Sequence uint64 // the record's sequence; 0 for the snapshot or the store's metadata
	What     string // "record", "snapshot", "metadata"
	Err      error
}

// Error describes the damage: "journal: corrupt data: store counter/a record 17: ...".
func (e *CorruptError) Error() string {
	if e.What == "record" {
		return fmt.Sprintf("%v: store %s record %d: %v", ErrCorrupt, e.Store, e.Sequence, e.Err)
	}
	return fmt.Sprintf("%v: store %s %s: %v", ErrCorrupt, e.Store, e.What, e.Err)
}

// Unwrap returns ErrCorrupt and the cause.
func (e *CorruptError) Unwrap() []error { return []error{ErrCorrupt, e.Err} }

// CheckAppend validates a batch against the store's last sequence: the
// records must be consecutive and follow last. Implementations call it
// inside their write.
func CheckAppend(store string, last uint64, records []Record) error {
	for i, r := range records {
		if r.Sequence != last+1+uint64(i) {
			return fmt.Errorf("journal: append %s seq %d (last written %d): %w", store, r.Sequence, last+uint64(i), ErrConflict)
		}
	}
	return nil
}
