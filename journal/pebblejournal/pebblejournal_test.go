package pebblejournal_test

import (
	"context"
	"errors"
	"testing"

	"github.com/cockroachdb/pebble"

	"github.com/lily-go/lily/journal"
	"github.com/lily-go/lily/journal/journaltest"
	"github.com/lily-go/lily/journal/pebblejournal"
)

func TestConformance(t *testing.T) {
	for _, d := range []journal.Durability{journal.Sync, journal.Batch, journal.Off} {
		t.Run(d.String(), func(t *testing.T) {
			dirs := map[journal.Journal]string{}
			open := func(t *testing.T, dir string) journal.Journal {
				j, err := pebblejournal.Open(dir, pebblejournal.Options{Durability: d})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = j.Close() })
				dirs[j] = dir
				return j
			}
			journaltest.Run(t, journaltest.Factory{
				New: func(t *testing.T) journal.Journal { return open(t, t.TempDir()) },
				Reopen: func(t *testing.T, j journal.Journal) journal.Journal {
					if err := j.Close(); err != nil {
						t.Fatal(err)
					}
					return open(t, dirs[j])
				},
			})
		})
	}
}

// Damage one record and the snapshot on disk: each is reported as a
// CorruptError naming the store and the sequence; other stores still work.
func TestCorruptDataIsReported(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	j, err := pebblejournal.Open(dir, pebblejournal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, store := range []string{"counter/bad", "counter/good"} {
		var rs []journal.Record
		for s := uint64(1); s <= 5; s++ {
			rs = append(rs, journal.Record{Sequence: s, ClientID: "c", Payload: []byte{byte(s)}})
		}
		if err := j.Append(ctx, store, rs); err != nil {
			t.Fatal(err)
		}
		if err := j.SaveSnapshot(ctx, store, journal.Snapshot{Sequence: 2, Model: []byte("m")}); err != nil {
			t.Fatal(err)
		}
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}

	// Flip bytes behind the journal's back.
	db, err := pebble.Open(dir, &pebble.Options{Logger: quiet{}})
	if err != nil {
		t.Fatal(err)
	}
	recordKey := append([]byte("r/counter/bad\x00"), 0, 0, 0, 0, 0, 0, 0, 4)
	v, closer, err := db.Get(recordKey)
	if err != nil {
		t.Fatal(err)
	}
	damaged := append([]byte(nil), v...)
	closer.Close()
	damaged[len(damaged)-1] ^= 0xff
	if err := db.Set(recordKey, damaged, pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := db.Set([]byte("s/counter/bad"), []byte("garbage!"), pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	j, err = pebblejournal.Open(dir, pebblejournal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	var ce *journal.CorruptError
	_, err = j.Open(ctx, "counter/bad")
	if !errors.As(err, &ce) || ce.What != "snapshot" || ce.Store != "counter/bad" || !errors.Is(err, journal.ErrCorrupt) {
		t.Fatalf("open of a store with a damaged snapshot: %v", err)
	}
	err = j.Read(ctx, "counter/bad", 2, func(journal.Record) error { return nil })
	if !errors.As(err, &ce) || ce.What != "record" || ce.Sequence != 4 {
		t.Fatalf("read over a damaged record: %v", err)
	}
	t.Logf("reported: %v", err)
	if _, err := j.Open(ctx, "counter/good"); err != nil {
		t.Fatalf("another store suffered: %v", err)
	}
	n := 0
	if err := j.Read(ctx, "counter/good", 0, func(journal.Record) error { n++; return nil }); err != nil || n != 5 {
		t.Fatalf("another store's records: %d, %v", n, err)
	}
}

type quiet struct{}

func (quiet) Infof(string, ...any)         {}
func (quiet) Errorf(string, ...any)        {}
func (quiet) Fatalf(f string, args ...any) { panic(f) }
