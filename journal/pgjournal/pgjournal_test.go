package pgjournal_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/lily-go/lily/internal/testutil"
	"github.com/lily-go/lily/journal"
	"github.com/lily-go/lily/journal/journaltest"
	"github.com/lily-go/lily/journal/pebblejournal"
	"github.com/lily-go/lily/journal/pgjournal"
)

var ctx = context.Background()

// TestMain keeps one PostgreSQL server for every test of the package.
func TestMain(m *testing.M) {
	release := testutil.KeepPostgres()
	code := m.Run()
	release()
	os.Exit(code)
}

// open opens a journal on connString, closed when the test ends.
func open(tb testing.TB, connString string, opts pgjournal.Options) *pgjournal.Journal {
	tb.Helper()
	j, err := pgjournal.Open(ctx, connString, opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = j.Close() })
	return j
}

func records(from, to uint64) []journal.Record {
	var out []journal.Record
	for s := from; s <= to; s++ {
		out = append(out, journal.Record{Sequence: s, ClientID: "c", MessageID: s, Payload: []byte(fmt.Sprint("m", s))})
	}
	return out
}

func count(t *testing.T, j journal.Journal, store string, after uint64) (int, error) {
	t.Helper()
	n := 0
	err := j.Read(ctx, store, after, func(journal.Record) error { n++; return nil })
	return n, err
}

func TestConformance(t *testing.T) {
	for _, d := range []journal.Durability{journal.Sync, journal.Off} {
		t.Run(d.String(), func(t *testing.T) {
			conns := map[journal.Journal]string{}
			var mu sync.Mutex
			opened := func(t *testing.T, connString string) journal.Journal {
				j := open(t, connString, pgjournal.Options{Durability: d})
				mu.Lock()
				conns[j] = connString
				mu.Unlock()
				return j
			}
			journaltest.Run(t, journaltest.Factory{
				New: func(t *testing.T) journal.Journal { return opened(t, testutil.StartPostgres(t)) },
				Reopen: func(t *testing.T, j journal.Journal) journal.Journal {
					if err := j.Close(); err != nil {
						t.Fatal(err)
					}
					mu.Lock()
					connString := conns[j]
					mu.Unlock()
					return opened(t, connString)
				},
			})
		})
	}
}

// Several nodes opening one database at once all find the schema.
func TestSchemaIsCreatedOnce(t *testing.T) {
	conn := testutil.StartPostgres(t)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Go(func() {
			j, err := pgjournal.Open(ctx, conn, pgjournal.Options{MaxConns: 2})
			if err != nil {
				errs <- err
				return
			}
			errs <- j.Close()
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// A role that may not create tables opens a journal whose tables an
// administrator made.
func TestOpenWithoutCreatePrivilege(t *testing.T) {
	conn := testutil.StartPostgres(t)
	if err := open(t, conn, pgjournal.Options{}).Close(); err != nil { // makes the tables
		t.Fatal(err)
	}
	admin, err := pgx.Connect(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	for _, stmt := range []string{
		`DO $$ BEGIN CREATE ROLE lily_app LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$`,
		`REVOKE CREATE ON SCHEMA public FROM PUBLIC`,
		`GRANT SELECT, INSERT, UPDATE, DELETE ON lily_stores, lily_records TO lily_app`,
	} {
		if _, err := admin.Exec(ctx, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	j := open(t, strings.Replace(conn, "postgres@", "lily_app@", 1), pgjournal.Options{})
	if err := j.Append(ctx, "s", records(1, 2)); err != nil {
		t.Fatal(err)
	}
	if _, err := j.Claim(ctx, "s"); err != nil {
		t.Fatal(err)
	}
}

// A newer claim fences the older view: its writes fail, even for a
// sequence nobody wrote, while the newer view writes and both read.
func TestFencing(t *testing.T) {
	j := open(t, testutil.StartPostgres(t), pgjournal.Options{})
	const store = "counter/fenced"
	older, err := j.ClaimStore(ctx, store)
	if err != nil {
		t.Fatal(err)
	}
	if err := older.Append(ctx, store, records(1, 3)); err != nil {
		t.Fatalf("the only claim cannot append: %v", err)
	}
	newerToken, err := j.Claim(ctx, store)
	if err != nil {
		t.Fatal(err)
	}
	if oldToken := older.(*pgjournal.Fenced).Token(); newerToken <= oldToken {
		t.Fatalf("tokens %d then %d: not increasing", oldToken, newerToken)
	}
	newer := j.Fenced(store, newerToken)

	// The older activation still believes its last sequence is 3: 4 is
	// exactly what it would write next, and nobody wrote it.
	err = older.Append(ctx, store, records(4, 4))
	var fe *pgjournal.FencedError
	if !errors.Is(err, journal.ErrConflict) || !errors.Is(err, journal.ErrFenced) || !errors.As(err, &fe) {
		t.Fatalf("the older claim's append: %v, want a FencedError wrapping ErrConflict", err)
	}
	if fe.Store != store || fe.Current != newerToken || !strings.Contains(err.Error(), "claimed by a newer activation") {
		t.Fatalf("fenced error: %+v (%v)", fe, err)
	}
	t.Logf("refused: %v", err)
	if err := older.SaveSnapshot(ctx, store, journal.Snapshot{Sequence: 3, Model: []byte("m")}); !errors.Is(err, journal.ErrFenced) {
		t.Fatalf("the older claim's snapshot: %v", err)
	}
	if err := older.Trim(ctx, store, 0); !errors.Is(err, journal.ErrFenced) {
		t.Fatalf("the older claim's trim: %v", err)
	}

	if err := newer.Append(ctx, store, records(4, 5)); err != nil {
		t.Fatalf("the newer claim's append: %v", err)
	}
	if err := newer.SaveSnapshot(ctx, store, journal.Snapshot{Sequence: 5, Model: []byte("m5")}); err != nil {
		t.Fatal(err)
	}
	if err := newer.Trim(ctx, store, 2); err != nil {
		t.Fatal(err)
	}
	for name, v := range map[string]journal.Journal{"older": older, "newer": newer} {
		if n, err := count(t, v, store, 2); err != nil || n != 3 {
			t.Fatalf("%s view reads %d records: %v", name, n, err)
		}
		if info, err := v.Open(ctx, store); err != nil || info.LastSequence != 5 || info.Snapshot == nil {
			t.Fatalf("%s view opens: %+v, %v", name, info, err)
		}
	}
	// The plain journal ignores claims; a view serves its store only.
	if err := j.Append(ctx, store, records(6, 6)); err != nil {
		t.Fatal(err)
	}
	if err := newer.Append(ctx, "counter/other", records(1, 1)); err == nil {
		t.Fatal("a view wrote another store")
	}
	// A view of a claim never made is refused too.
	if err := j.Fenced("counter/unclaimed", 1).Append(ctx, "counter/unclaimed", records(1, 1)); !errors.Is(err, journal.ErrConflict) {
		t.Fatalf("append without a claim: %v", err)
	}
	if err := newer.Close(); err != nil {
		t.Fatal(err)
	}
	if err := newer.Append(ctx, store, records(7, 7)); !errors.Is(err, journal.ErrClosed) {
		t.Fatalf("append through a closed view: %v", err)
	}
	if err := j.Append(ctx, store, records(7, 7)); err != nil {
		t.Fatalf("closing a view closed the journal: %v", err)
	}
}

// A claim taken while the older activation appends: every append either
// committed before the claim (and the newer activation sees it) or fails.
func TestFencingRace(t *testing.T) {
	conn := testutil.StartPostgres(t)
	a, b := open(t, conn, pgjournal.Options{}), open(t, conn, pgjournal.Options{})
	const store = "counter/race"
	older, err := a.ClaimStore(ctx, store)
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg      sync.WaitGroup
		written uint64
		lastErr error
	)
	wg.Go(func() {
		for seq := uint64(1); seq <= 2000; seq++ {
			if err := older.Append(ctx, store, records(seq, seq)); err != nil {
				lastErr = err
				return
			}
			written = seq
		}
	})
	testutil.Eventually(t, func() bool {
		info, err := b.Open(ctx, store)
		return err == nil && info.LastSequence >= 20
	}, "the older activation does not write")
	newer, err := b.ClaimStore(ctx, store)
	if err != nil {
		t.Fatal(err)
	}
	info, err := newer.Open(ctx, store)
	if err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if !errors.Is(lastErr, journal.ErrFenced) {
		t.Fatalf("the older activation stopped with %v after %d, want ErrFenced", lastErr, written)
	}
	if info.LastSequence != written {
		t.Fatalf("the newer activation loaded up to %d, the older one wrote up to %d", info.LastSequence, written)
	}
	if err := newer.Append(ctx, store, records(written+1, written+1)); err != nil {
		t.Fatal(err)
	}
	t.Logf("fenced after %d appends", written)
}

// Two nodes append the same sequence to one store at once: exactly one
// wins, the other learns it is stale.
func TestConcurrentWritersConflict(t *testing.T) {
	conn := testutil.StartPostgres(t)
	a, b := open(t, conn, pgjournal.Options{}), open(t, conn, pgjournal.Options{})
	const store = "counter/contested"
	const rounds = 50
	var last uint64
	for round := range rounds {
		// Half the rounds contend for a new store's first record.
		name := store
		if round%2 == 1 {
			name = fmt.Sprint(store, "-new-", round)
		}
		from := last + 1
		if name != store {
			from = 1
		}
		start := make(chan struct{})
		errs := make([]error, 2)
		var wg sync.WaitGroup
		for i, j := range []*pgjournal.Journal{a, b} {
			wg.Go(func() {
				<-start
				rs := records(from, from+uint64(i)) // one writes 1 record, the other 2
				errs[i] = j.Append(ctx, name, rs)
			})
		}
		close(start)
		wg.Wait()
		won := -1
		for i, err := range errs {
			switch {
			case err == nil:
				if won >= 0 {
					t.Fatalf("round %d: both writers wrote sequence %d", round, from)
				}
				won = i
			case !errors.Is(err, journal.ErrConflict):
				t.Fatalf("round %d: writer %d: %v, want ErrConflict", round, i, err)
			}
		}
		if won < 0 {
			t.Fatalf("round %d: nobody wrote: %v", round, errs)
		}
		info, err := a.Open(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if want := from + uint64(won); info.LastSequence != want {
			t.Fatalf("round %d: last %d, want %d (writer %d won)", round, info.LastSequence, want, won)
		}
		if name == store {
			last = info.LastSequence
		}
		if n, err := count(t, b, name, from-1); err != nil || n != won+1 {
			t.Fatalf("round %d: %d records after %d: %v", round, n, from-1, err)
		}
	}
}

// Read fetches pages: a long journal reads whole, from anywhere.
func TestReadPages(t *testing.T) {
	j := open(t, testutil.StartPostgres(t), pgjournal.Options{})
	const store, total = "counter/long", 5000
	for from := uint64(1); from <= total; from += 500 {
		if err := j.Append(ctx, store, records(from, from+499)); err != nil {
			t.Fatal(err)
		}
	}
	for _, after := range []uint64{0, 1, 1023, 1024, 1025, 2047, 4999, 5000} {
		want := after + 1
		err := j.Read(ctx, store, after, func(r journal.Record) error {
			if r.Sequence != want || string(r.Payload) != fmt.Sprint("m", want) {
				return fmt.Errorf("record %d (%q), want %d", r.Sequence, r.Payload, want)
			}
			want++
			return nil
		})
		if err != nil || want != total+1 {
			t.Fatalf("read after %d: stopped at %d: %v", after, want, err)
		}
	}
	// Trimmed while reading: the next page finds its start gone.
	if err := j.SaveSnapshot(ctx, store, journal.Snapshot{Sequence: 4000, Model: []byte("m")}); err != nil {
		t.Fatal(err)
	}
	trimmed := false
	err := j.Read(ctx, store, 0, func(r journal.Record) error {
		if !trimmed {
			trimmed = true
			return j.Trim(ctx, store, 3000)
		}
		return nil
	})
	if !errors.Is(err, journal.ErrTrimmed) {
		t.Fatalf("read across a trim: %v, want ErrTrimmed", err)
	}
}

// Damage a record and a snapshot with SQL: Read and Open report a
// CorruptError naming the store and the sequence; other stores still work.
func TestCorruptDataIsReported(t *testing.T) {
	conn := testutil.StartPostgres(t)
	j := open(t, conn, pgjournal.Options{})
	for _, store := range []string{"counter/bad", "counter/good"} {
		if err := j.Append(ctx, store, records(1, 5)); err != nil {
			t.Fatal(err)
		}
		if err := j.SaveSnapshot(ctx, store, journal.Snapshot{Sequence: 2, Model: []byte("m")}); err != nil {
			t.Fatal(err)
		}
	}
	db, err := pgx.Connect(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(ctx)
	for _, stmt := range []string{
		// Flip the last byte of record 4.
		`UPDATE lily_records SET value = overlay(value PLACING decode(to_hex(255 - get_byte(value, length(value) - 1)), 'hex') FROM length(value))
		 WHERE store = 'counter/bad' AND seq = 4`,
		`UPDATE lily_stores SET snapshot = 'garbage!' WHERE store = 'counter/bad'`,
		// Record 5 of the good store holds record 3's bytes: a valid
		// checksum, the wrong sequence.
		`UPDATE lily_records SET value = (SELECT value FROM lily_records WHERE store = 'counter/good' AND seq = 3)
		 WHERE store = 'counter/good' AND seq = 5`,
	} {
		if tag, err := db.Exec(ctx, stmt); err != nil || tag.RowsAffected() != 1 {
			t.Fatalf("%s: %v, %v", stmt, tag, err)
		}
	}

	var ce *journal.CorruptError
	_, err = j.Open(ctx, "counter/bad")
	if !errors.As(err, &ce) || ce.What != "snapshot" || ce.Store != "counter/bad" || !errors.Is(err, journal.ErrCorrupt) {
		t.Fatalf("open of a store with a damaged snapshot: %v", err)
	}
	err = j.Read(ctx, "counter/bad", 2, func(journal.Record) error { return nil })
	if !errors.As(err, &ce) || ce.What != "record" || ce.Store != "counter/bad" || ce.Sequence != 4 {
		t.Fatalf("read over a damaged record: %v", err)
	}
	t.Logf("reported: %v", err)
	if _, err := j.Open(ctx, "counter/good"); err != nil {
		t.Fatalf("another store suffered: %v", err)
	}
	err = j.Read(ctx, "counter/good", 0, func(journal.Record) error { return nil })
	if !errors.As(err, &ce) || ce.Sequence != 5 {
		t.Fatalf("read over a record holding another sequence: %v", err)
	}
	if n, err := count(t, j, "counter/good", 0); n != 4 || err == nil {
		t.Fatalf("records before the damage: %d, %v", n, err)
	}
}

// BenchmarkAppend appends batches of records to one store, one append at
// a time (100-byte payloads, as in BENCHMARKS.md), through PostgreSQL and,
// for comparison, Pebble.
func BenchmarkAppend(b *testing.B) {
	payload := []byte(strings.Repeat("x", 100))
	backends := []struct {
		name string
		open func(b *testing.B) journal.Journal
	}{
		{"postgres", func(b *testing.B) journal.Journal { return open(b, testutil.StartPostgres(b), pgjournal.Options{}) }},
		{"postgres-async", func(b *testing.B) journal.Journal {
			return open(b, testutil.StartPostgres(b), pgjournal.Options{Durability: journal.Off})
		}},
	}
	backends = append(backends, pebbleBackends...)
	for _, be := range backends {
		for _, batch := range []int{1, 16} {
			b.Run(fmt.Sprintf("%s/batch=%d", be.name, batch), func(b *testing.B) {
				j := be.open(b)
				rs := make([]journal.Record, batch)
				seq := uint64(0)
				b.ResetTimer()
				for b.Loop() {
					for i := range rs {
						seq++
						rs[i] = journal.Record{Sequence: seq, ClientID: "client", MessageID: seq, Payload: payload}
					}
					if err := j.Append(ctx, "bench/store", rs); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/record")
			})
		}
	}
}

// pebbleBackends are BenchmarkAppend's reference: the embedded journal,
// synced and not.
var pebbleBackends = []struct {
	name string
	open func(b *testing.B) journal.Journal
}{
	{"pebble", func(b *testing.B) journal.Journal { return openPebble(b, journal.Sync) }},
	{"pebble-async", func(b *testing.B) journal.Journal { return openPebble(b, journal.Off) }},
}

func openPebble(b *testing.B, d journal.Durability) journal.Journal {
	j, err := pebblejournal.Open(b.TempDir(), pebblejournal.Options{Durability: d})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = j.Close() })
	return j
}
