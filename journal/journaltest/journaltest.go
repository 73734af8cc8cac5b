// Package journaltest is the conformance suite every journal.Journal
// passes: the same operations, the same answers, whatever the backend.
package journaltest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"

	"github.com/lily-go/lily/journal"
)

// Factory makes journals for the suite. New returns a fresh, empty journal;
// Reopen, when set, closes j and opens the same data again, to check that
// everything persists.
type Factory struct {
	New    func(t *testing.T) journal.Journal
	Reopen func(t *testing.T, j journal.Journal) journal.Journal
}

// Run runs the suite.
func Run(t *testing.T, f Factory) {
	tests := []struct {
		name string
		fn   func(t *testing.T, f Factory)
	}{
		{"OpenMakesAndKeepsAnEpoch", testOpen},
		{"AppendThenRead", testAppendRead},
		{"AppendIsConditional", testConflict},
		{"Snapshots", testSnapshots},
		{"Trim", testTrim},
		{"StoresAreApart", testIsolation},
		{"ConcurrentStores", testConcurrent},
		{"PayloadsAreCopied", testCopies},
		{"Persists", testPersists},
		{"Closed", testClosed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, f) })
	}
}

var ctx = context.Background()

func records(from, to uint64) []journal.Record {
	var out []journal.Record
	for s := from; s <= to; s++ {
		out = append(out, journal.Record{Sequence: s, ClientID: fmt.Sprint("c", s%3), MessageID: s * 10, Payload: []byte(fmt.Sprintf(`{"_":"Add","0":%d}`, s))})
	}
	return out
}

func readAll(t *testing.T, j journal.Journal, store string, after uint64) []journal.Record {
	t.Helper()
	var got []journal.Record
	if err := j.Read(ctx, store, after, func(r journal.Record) error {
		got = append(got, r)
		return nil
	}); err != nil {
		t.Fatalf("read %s after %d: %v", store, after, err)
	}
	return got
}

func mustAppend(t *testing.T, j journal.Journal, store string, rs []journal.Record) {
	t.Helper()
	if err := j.Append(ctx, store, rs); err != nil {
		t.Fatalf("append %s: %v", store, err)
	}
}

func equalRecords(a, b []journal.Record) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Sequence != b[i].Sequence || a[i].ClientID != b[i].ClientID || a[i].MessageID != b[i].MessageID || string(a[i].Payload) != string(b[i].Payload) {
			return false
		}
	}
	return true
}

func testOpen(t *testing.T, f Factory) {
	j := f.New(t)
	info, err := j.Open(ctx, "counter/a")
	if err != nil {
		t.Fatal(err)
	}
	if info.Epoch == "" || info.Snapshot != nil || info.LastSequence != 0 {
		t.Fatalf("a new store: %+v, want an epoch and nothing else", info)
	}
	again, _ := j.Open(ctx, "counter/a")
	if again.Epoch != info.Epoch {
		t.Fatalf("epoch changed from %q to %q", info.Epoch, again.Epoch)
	}
	other, _ := j.Open(ctx, "counter/b")
	if other.Epoch == info.Epoch {
		t.Fatal("two stores share an epoch")
	}
}

func testAppendRead(t *testing.T, f Factory) {
	j := f.New(t)
	mustAppend(t, j, "s", records(1, 3))
	mustAppend(t, j, "s", records(4, 10))
	if got := readAll(t, j, "s", 0); !equalRecords(got, records(1, 10)) {
		t.Fatalf("read after 0: %+v", got)
	}
	if got := readAll(t, j, "s", 7); !equalRecords(got, records(8, 10)) {
		t.Fatalf("read after 7: %+v", got)
	}
	if got := readAll(t, j, "s", 10); len(got) != 0 {
		t.Fatalf("read after the last: %+v", got)
	}
	if info, _ := j.Open(ctx, "s"); info.LastSequence != 10 {
		t.Fatalf("last sequence %d, want 10", info.LastSequence)
	}
	stop := errors.New("enough")
	n := 0
	err := j.Read(ctx, "s", 0, func(journal.Record) error {
		n++
		if n == 2 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || n != 2 {
		t.Fatalf("read did not stop at fn's error: %v after %d", err, n)
	}
	if got := readAll(t, j, "never-written", 0); len(got) != 0 {
		t.Fatalf("a store never written has records: %+v", got)
	}
}

func testConflict(t *testing.T, f Factory) {
	j := f.New(t)
	mustAppend(t, j, "s", records(1, 2))
	cases := []struct {
		name string
		rs   []journal.Record
	}{
		{"sequence already written", records(2, 3)},
		{"gap", records(4, 5)},
		{"not consecutive within the batch", append(records(3, 3), records(5, 5)...)},
		{"starts at zero", []journal.Record{{Sequence: 0}}},
	}
	for _, tc := range cases {
		if err := j.Append(ctx, "s", tc.rs); !errors.Is(err, journal.ErrConflict) {
			t.Fatalf("%s: %v, want ErrConflict", tc.name, err)
		}
	}
	if got := readAll(t, j, "s", 0); !equalRecords(got, records(1, 2)) {
		t.Fatalf("a refused append wrote something: %+v", got)
	}
	mustAppend(t, j, "s", records(3, 3))
}

func testSnapshots(t *testing.T, f Factory) {
	j := f.New(t)
	mustAppend(t, j, "s", records(1, 5))
	snap := journal.Snapshot{Sequence: 4, Model: []byte(`{"_":"Counter","0":10}`),
		Applied: map[string]journal.Applied{"c1": {MessageID: 40, Sequence: 4}, "c2": {MessageID: 2, Sequence: 2}}}
	if err := j.SaveSnapshot(ctx, "s", snap); err != nil {
		t.Fatal(err)
	}
	info, err := j.Open(ctx, "s")
	if err != nil {
		t.Fatal(err)
	}
	if info.Snapshot == nil || !reflect.DeepEqual(*info.Snapshot, snap) || info.LastSequence != 5 {
		t.Fatalf("open after a snapshot: %+v, want %+v and last 5", info, snap)
	}
	newer := journal.Snapshot{Sequence: 5, Model: []byte("m5"), Applied: map[string]journal.Applied{}}
	if err := j.SaveSnapshot(ctx, "s", newer); err != nil {
		t.Fatal(err)
	}
	if info, _ := j.Open(ctx, "s"); info.Snapshot == nil || info.Snapshot.Sequence != 5 || string(info.Snapshot.Model) != "m5" {
		t.Fatalf("the newer snapshot did not replace the older: %+v", info.Snapshot)
	}
	if err := j.SaveSnapshot(ctx, "s", journal.Snapshot{Sequence: 9}); err == nil {
		t.Fatal("a snapshot past the last record was accepted")
	}
}

func testTrim(t *testing.T, f Factory) {
	j := f.New(t)
	mustAppend(t, j, "s", records(1, 10))
	if err := j.Trim(ctx, "s", 3); err == nil {
		t.Fatal("trim without a snapshot was accepted")
	}
	if err := j.SaveSnapshot(ctx, "s", journal.Snapshot{Sequence: 6, Model: []byte("m")}); err != nil {
		t.Fatal(err)
	}
	if err := j.Trim(ctx, "s", 7); err == nil {
		t.Fatal("trim past the snapshot was accepted")
	}
	if err := j.Trim(ctx, "s", 4); err != nil {
		t.Fatal(err)
	}
	if err := j.Read(ctx, "s", 2, func(journal.Record) error { return nil }); !errors.Is(err, journal.ErrTrimmed) {
		t.Fatalf("read of trimmed records: %v, want ErrTrimmed", err)
	}
	if got := readAll(t, j, "s", 4); !equalRecords(got, records(5, 10)) {
		t.Fatalf("read after the trim point: %+v", got)
	}
	if err := j.Trim(ctx, "s", 2); err != nil {
		t.Fatalf("trimming what is already gone: %v", err)
	}
	mustAppend(t, j, "s", records(11, 11))
	if info, _ := j.Open(ctx, "s"); info.LastSequence != 11 {
		t.Fatalf("last sequence %d after trim and append", info.LastSequence)
	}
}

func testIsolation(t *testing.T, f Factory) {
	j := f.New(t)
	mustAppend(t, j, "kind/a", records(1, 3))
	mustAppend(t, j, "kind/ab", records(1, 1))
	mustAppend(t, j, "kind/a", records(4, 4))
	if got := readAll(t, j, "kind/a", 0); !equalRecords(got, records(1, 4)) {
		t.Fatalf("kind/a: %+v", got)
	}
	if got := readAll(t, j, "kind/ab", 0); !equalRecords(got, records(1, 1)) {
		t.Fatalf("kind/ab: %+v", got)
	}
}

func testConcurrent(t *testing.T, f Factory) {
	j := f.New(t)
	const stores, batches = 20, 25
	var wg sync.WaitGroup
	errs := make(chan error, stores)
	for s := range stores {
		wg.Go(func() {
			name := fmt.Sprint("store-", s)
			for b := range uint64(batches) {
				if err := j.Append(ctx, name, records(b*4+1, b*4+4)); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for s := range stores {
		if got := readAll(t, j, fmt.Sprint("store-", s), 0); !equalRecords(got, records(1, batches*4)) {
			t.Fatalf("store %d: %d records", s, len(got))
		}
	}
}

func testCopies(t *testing.T, f Factory) {
	j := f.New(t)
	rs := records(1, 1)
	mustAppend(t, j, "s", rs)
	rs[0].Payload[0] = 'X'
	if got := readAll(t, j, "s", 0); got[0].Payload[0] == 'X' {
		t.Fatal("the journal kept the caller's payload slice")
	}
}

func testPersists(t *testing.T, f Factory) {
	if f.Reopen == nil {
		t.Log("this journal keeps nothing past Close: nothing to reopen")
		return
	}
	j := f.New(t)
	info, _ := j.Open(ctx, "s")
	mustAppend(t, j, "s", records(1, 8))
	snap := journal.Snapshot{Sequence: 5, Model: []byte("m5"), Applied: map[string]journal.Applied{"c2": {MessageID: 50, Sequence: 5}}}
	if err := j.SaveSnapshot(ctx, "s", snap); err != nil {
		t.Fatal(err)
	}
	if err := j.Trim(ctx, "s", 3); err != nil {
		t.Fatal(err)
	}
	j = f.Reopen(t, j)
	again, err := j.Open(ctx, "s")
	if err != nil {
		t.Fatal(err)
	}
	if again.Epoch != info.Epoch || again.LastSequence != 8 || again.Snapshot == nil || !reflect.DeepEqual(*again.Snapshot, snap) {
		t.Fatalf("after reopening: %+v, want epoch %q, last 8, snapshot %+v", again, info.Epoch, snap)
	}
	if got := readAll(t, j, "s", 3); !equalRecords(got, records(4, 8)) {
		t.Fatalf("records after reopening: %+v", got)
	}
	mustAppend(t, j, "s", records(9, 9))
}

func testClosed(t *testing.T, f Factory) {
	j := f.New(t)
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := j.Open(ctx, "s"); !errors.Is(err, journal.ErrClosed) {
		t.Fatalf("open after close: %v", err)
	}
	if err := j.Append(ctx, "s", records(1, 1)); !errors.Is(err, journal.ErrClosed) {
		t.Fatalf("append after close: %v", err)
	}
}
