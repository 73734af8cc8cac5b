// Package pgjournal is a journal.Journal in PostgreSQL (through
// github.com/jackc/pgx/v5), shared by the nodes of a cluster: a store
// activated on any node finds the history its previous activations wrote,
// whichever node they ran on.
//
// # Schema
//
// Open creates two tables when they are missing (CREATE TABLE IF NOT
// EXISTS in one transaction holding an advisory lock, so that nodes
// starting together do not race; a role that may only read and write them
// works once they exist):
//
//	lily_stores(store text PRIMARY KEY, epoch text, token bigint,
//	            last_seq bigint, snapshot bytea, snapshot_seq bigint)
//	lily_records(store text, seq bigint, value bytea, PRIMARY KEY (store, seq))
//
// Values are journal.EncodeRecord and journal.EncodeSnapshot's checksummed
// forms: damage is reported as a *journal.CorruptError naming the store
// and the sequence.
//
// # Conditional appends
//
// An append is one statement, so one transaction and one round trip: it
// moves the store's last_seq from the sequence before the batch to its
// last one and inserts the records (unnest of two arrays). The row lock on
// the store's row orders concurrent writers, the condition on last_seq
// makes the second writer of sequence N write nothing, and the primary key
// of lily_records refuses a record written twice whatever happens: both
// are reported as an error wrapping journal.ErrConflict.
//
// # Activation tokens (fencing)
//
// Claim increments a store's token and returns it; Fenced (or ClaimStore,
// both at once) returns a view of the journal for that store whose
// Append, SaveSnapshot and Trim also require the store's token to still be
// theirs, in the same statement. An activation that claims the store when
// it starts, before it loads, therefore wins over every older one: once
// its claim has committed, no write of an older activation can commit (the
// claim takes the row lock the writes take), and every write committed
// before it is in what the new activation loads. A stale activation's
// write fails with a *FencedError, which wraps journal.ErrFenced and
// journal.ErrConflict; it must stop rather than claim again, or the two
// activations would take the store from each other in turn.
//
// The Journal itself (not a view) ignores tokens: it is for a node that is
// the only writer of its stores, and for the conformance suite.
//
// # Durability
//
// With journal.Sync (the default) the journal leaves synchronous_commit at
// the server's setting: on by default, a commit returns once PostgreSQL has
// flushed it to disk (or, as configured, to its synchronous replicas too).
// journal.Batch and
// journal.Off both set synchronous_commit = off for the journal's sessions:
// a commit returns before its WAL is flushed, and a crash of the database
// server may lose the last few hundred milliseconds of commits (three times
// wal_writer_delay at most), never the consistency of what remains.
package pgjournal

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/lily-go/lily/journal"
)

// DefaultStatementTimeout is the statement timeout when
// Options.StatementTimeout is zero.
const DefaultStatementTimeout = 30 * time.Second

// Options configure a journal. The zero value works.
type Options struct {
	// MaxConns bounds the pool's connections to the database. Zero value:
	// the connection string's pool_max_conns, else pgxpool's default (4,
	// or the number of CPUs when greater).
	MaxConns int32
	// StatementTimeout bounds each statement on the server (PostgreSQL's
	// statement_timeout, set for the journal's sessions; it takes
	// precedence over one in the connection string). Zero value means
	// DefaultStatementTimeout (30 s); a negative value, none.
	StatementTimeout time.Duration
	// Durability: journal.Sync (the zero value) leaves synchronous_commit
	// at the server's setting (on by default); journal.Batch and
	// journal.Off set it off (see the package documentation).
	Durability journal.Durability
	// Logger receives the journal's logs: Open's (info), claims (debug)
	// and writes refused to a stale claim (warn). Nil discards them.
	Logger *slog.Logger
}

// Journal is a journal in a PostgreSQL database, safe for concurrent use.
// Use Open.
type Journal struct {
	pool   *pgxpool.Pool
	logger *slog.Logger
	closed atomic.Bool
}

var _ journal.Claimer = (*Journal)(nil)

// FencedError is the error of a write through a Fenced view whose claim
// is no longer the store's newest. It wraps journal.ErrFenced and
// journal.ErrConflict.
type FencedError struct {
	Store   string
	Token   int64 // the view's claim
	Current int64 // the store's newest claim
}

// Error says which claim won: "journal: store counter/a was claimed by a
// newer activation (token 3 > 2)".
func (e *FencedError) Error() string {
	return fmt.Sprintf("journal: store %s was claimed by a newer activation (token %d > %d)", e.Store, e.Current, e.Token)
}

// Unwrap returns journal.ErrFenced and journal.ErrConflict.
func (e *FencedError) Unwrap() []error { return []error{journal.ErrFenced, journal.ErrConflict} }

// schemaLock is the key of the advisory lock held while creating the
// schema ("lilyjrnl" in ASCII).
const schemaLock int64 = 0x6c696c796a726e6c

// readPage is how many records Read fetches per statement: it holds no
// connection while fn runs.
const readPage = 1024

const (
	createStores = `CREATE TABLE IF NOT EXISTS lily_stores (
	store        text PRIMARY KEY,
	epoch        text NOT NULL,
	token        bigint NOT NULL DEFAULT 0,
	last_seq     bigint NOT NULL DEFAULT 0,
	snapshot     bytea,
	snapshot_seq bigint NOT NULL DEFAULT 0
)`
	createRecords = `CREATE TABLE IF NOT EXISTS lily_records (
	store text NOT NULL,
	seq   bigint NOT NULL,
	value bytea NOT NULL,
	PRIMARY KEY (store, seq)
)`

	// $1 store, $2 a new epoch. One row, or none when another session
	// made the store between this statement's snapshot and its insert.
	openSQL = `WITH made AS (
	INSERT INTO lily_stores (store, epoch) VALUES ($1::text, $2::text)
	ON CONFLICT (store) DO NOTHING
	RETURNING epoch, last_seq, snapshot_seq, snapshot
)
SELECT epoch, last_seq, snapshot_seq, snapshot FROM made
UNION ALL
SELECT epoch, last_seq, snapshot_seq, snapshot FROM lily_stores WHERE store = $1`

	// $1 store, $2 a new epoch.
	claimSQL = `INSERT INTO lily_stores (store, epoch, token) VALUES ($1::text, $2::text, 1)
ON CONFLICT (store) DO UPDATE SET token = lily_stores.token + 1
RETURNING token`

	// $1 store, $2 a new epoch, $3 the sequence before the batch, $4 the
	// batch's last, $5 the view's token (0: none), $6 the sequences, $7
	// the values. Returns how many records it wrote: all or none.
	appendSQL = `WITH moved AS (
	UPDATE lily_stores SET last_seq = $4::bigint
	WHERE store = $1 AND last_seq = $3::bigint AND ($5::bigint = 0 OR token = $5::bigint)
	RETURNING store
), made AS (
	INSERT INTO lily_stores (store, epoch, last_seq)
	SELECT $1::text, $2::text, $4::bigint WHERE $3::bigint = 0 AND $5::bigint = 0 AND NOT EXISTS (SELECT FROM moved)
	ON CONFLICT (store) DO NOTHING
	RETURNING store
), written AS (
	INSERT INTO lily_records (store, seq, value)
	SELECT w.store, r.seq, r.value
	FROM (SELECT store FROM moved UNION ALL SELECT store FROM made) AS w,
		unnest($6::bigint[], $7::bytea[]) AS r(seq, value)
	RETURNING 1
)
SELECT count(*) FROM written`

	// $1 store, $2 a new epoch, $3 the snapshot, $4 its sequence, $5 the
	// view's token (0: none). Returns 1 when saved, else 0.
	snapshotSQL = `WITH saved AS (
	UPDATE lily_stores SET snapshot = $3, snapshot_seq = $4::bigint
	WHERE store = $1 AND last_seq >= $4::bigint AND ($5::bigint = 0 OR token = $5::bigint)
	RETURNING 1
), made AS (
	INSERT INTO lily_stores (store, epoch, snapshot, snapshot_seq)
	SELECT $1::text, $2::text, $3::bytea, $4::bigint WHERE $4::bigint = 0 AND $5::bigint = 0 AND NOT EXISTS (SELECT FROM saved)
	ON CONFLICT (store) DO NOTHING
	RETURNING 1
)
SELECT (SELECT count(*) FROM saved) + (SELECT count(*) FROM made)`

	// $1 store, $2 through, $3 the view's token (0: none). Returns the
	// store's snapshot sequence and token (no row: no such store); it
	// deleted the records when the snapshot covers them and the token is
	// the view's.
	trimSQL = `WITH s AS (
	SELECT snapshot_seq, token FROM lily_stores WHERE store = $1 FOR SHARE
), gone AS (
	DELETE FROM lily_records
	WHERE store = $1 AND seq <= $2::bigint
		AND EXISTS (SELECT FROM s WHERE s.snapshot_seq >= $2::bigint AND ($3::bigint = 0 OR s.token = $3::bigint))
)
SELECT snapshot_seq, token FROM s`

	// $1 store, $2 the first sequence wanted, $3 the last one wanted, $4
	// how many. One row per record (with the store's last sequence), or
	// one row with a null sequence when there is none; no row when there
	// is no such store.
	readSQL = `SELECT s.last_seq, r.seq, r.value
FROM lily_stores AS s
LEFT JOIN LATERAL (
	SELECT seq, value FROM lily_records
	WHERE store = s.store AND seq >= $2::bigint AND seq <= least(s.last_seq, $3::bigint)
	ORDER BY seq
	LIMIT $4
) AS r ON true
WHERE s.store = $1`

	// $1 store.
	stateSQL = `SELECT last_seq, token FROM lily_stores WHERE store = $1`
)

// Open connects to the database named by connString (a postgres:// URL or
// a "key=value" string, as pgx accepts), creating the journal's tables when
// they are missing.
func Open(ctx context.Context, connString string, opts Options) (*Journal, error) {
	cfg, err := pgxpool.ParseConfig(connString)
	if err != nil {
		return nil, fmt.Errorf("journal: postgres: %w", err)
	}
	if opts.MaxConns > 0 {
		cfg.MaxConns = opts.MaxConns
	}
	params := cfg.ConnConfig.RuntimeParams
	switch t := opts.StatementTimeout; {
	case t == 0:
		params["statement_timeout"] = strconv.FormatInt(DefaultStatementTimeout.Milliseconds(), 10)
	case t > 0:
		params["statement_timeout"] = strconv.FormatInt(max(t.Milliseconds(), 1), 10)
	default:
		params["statement_timeout"] = "0"
	}
	if opts.Durability != journal.Sync {
		params["synchronous_commit"] = "off"
	}
	if params["application_name"] == "" {
		params["application_name"] = "lily"
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("journal: postgres: %w", err)
	}
	j := &Journal{pool: pool, logger: logger}
	if err := j.createSchema(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	logger.Info("journal: postgres ready", slog.String("host", cfg.ConnConfig.Host),
		slog.String("database", cfg.ConnConfig.Database), slog.String("durability", opts.Durability.String()))
	return j, nil
}

// createSchema creates the tables unless they exist, one node at a time.
// Tables made beforehand (by an administrator) need no CREATE privilege.
func (j *Journal) createSchema(ctx context.Context) error {
	var exist bool
	err := j.pool.QueryRow(ctx, `SELECT to_regclass('lily_stores') IS NOT NULL AND to_regclass('lily_records') IS NOT NULL`).Scan(&exist)
	if err != nil {
		return fmt.Errorf("journal: postgres: %w", err)
	}
	if exist {
		return nil
	}
	err = pgx.BeginFunc(ctx, j.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, schemaLock); err != nil {
			return err
		}
		for _, stmt := range []string{createStores, createRecords} {
			if _, err := tx.Exec(ctx, stmt); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("journal: postgres: create schema: %w", err)
	}
	return nil
}

func newEpoch() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand documents it)
	return hex.EncodeToString(b[:])
}

// fail turns a database error into the journal's: ErrClosed once closed,
// ErrConflict for a unique violation.
func (j *Journal) fail(op, store string, err error) error {
	if j.closed.Load() {
		return journal.ErrClosed
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "23505" { // unique_violation
		return fmt.Errorf("journal: %s %s: %w (%v)", op, store, journal.ErrConflict, err)
	}
	return fmt.Errorf("journal: %s %s: %w", op, store, err)
}

func (j *Journal) check() error {
	if j.closed.Load() {
		return journal.ErrClosed
	}
	return nil
}

// Open implements journal.Journal.
func (j *Journal) Open(ctx context.Context, store string) (journal.Info, error) {
	if err := j.check(); err != nil {
		return journal.Info{}, err
	}
	// No row means that another session made the store after this
	// statement's snapshot: the next attempt sees it.
	for range 3 {
		var (
			info    journal.Info
			last    int64
			snapSeq int64
			snap    []byte
		)
		err := j.pool.QueryRow(ctx, openSQL, store, newEpoch()).Scan(&info.Epoch, &last, &snapSeq, &snap)
		if errors.Is(err, pgx.ErrNoRows) {
			continue
		}
		if err != nil {
			return journal.Info{}, j.fail("open", store, err)
		}
		info.LastSequence = uint64(last)
		if snap != nil {
			s, err := journal.DecodeSnapshot(snap)
			if err != nil {
				return journal.Info{}, &journal.CorruptError{Store: store, What: "snapshot", Err: err}
			}
			if s.Sequence != uint64(snapSeq) {
				return journal.Info{}, &journal.CorruptError{Store: store, What: "snapshot", Err: fmt.Errorf("holds sequence %d, stored as %d", s.Sequence, snapSeq)}
			}
			info.Snapshot = &s
		}
		return info, nil
	}
	return journal.Info{}, fmt.Errorf("journal: open %s: the store's row is not visible after it was made", store)
}

// Append implements journal.Journal.
func (j *Journal) Append(ctx context.Context, store string, records []journal.Record) error {
	return j.append(ctx, store, records, 0)
}

func (j *Journal) append(ctx context.Context, store string, records []journal.Record, token int64) error {
	if err := j.check(); err != nil {
		return err
	}
	if len(records) == 0 {
		return nil
	}
	first, last := records[0].Sequence, records[len(records)-1].Sequence
	if first == 0 {
		return fmt.Errorf("journal: append %s seq 0: %w", store, journal.ErrConflict)
	}
	// Consecutive within the batch; the database checks that it follows
	// the store's last.
	if err := journal.CheckAppend(store, first-1, records); err != nil {
		return err
	}
	if last > math.MaxInt64 {
		return fmt.Errorf("journal: append %s seq %d: sequences end at %d here", store, last, int64(math.MaxInt64))
	}
	seqs := make([]int64, len(records))
	values := make([][]byte, len(records))
	for i, r := range records {
		v, err := journal.EncodeRecord(r)
		if err != nil {
			return fmt.Errorf("journal: append %s seq %d: %w", store, r.Sequence, err)
		}
		seqs[i], values[i] = int64(r.Sequence), v
	}
	var n int64
	err := j.pool.QueryRow(ctx, appendSQL, store, newEpoch(), int64(first-1), int64(last), token, seqs, values).Scan(&n)
	if err != nil {
		return j.fail("append", store, err)
	}
	if n == int64(len(records)) {
		return nil
	}
	return j.refused(ctx, "append", store, token, func(lastSeq int64) error {
		if err := journal.CheckAppend(store, uint64(lastSeq), records); err != nil {
			return err
		}
		return fmt.Errorf("journal: append %s seq %d: another writer moved the store meanwhile: %w", store, first, journal.ErrConflict)
	})
}

// refused explains a write that changed nothing: the view's claim lost,
// or else what conflict says given the store's last sequence.
func (j *Journal) refused(ctx context.Context, op, store string, token int64, conflict func(last int64) error) error {
	var last, current int64
	err := j.pool.QueryRow(ctx, stateSQL, store).Scan(&last, &current)
	if errors.Is(err, pgx.ErrNoRows) {
		if token != 0 {
			return fmt.Errorf("journal: %s %s: the store has no claim (token %d): %w", op, store, token, journal.ErrConflict)
		}
		last = 0
	} else if err != nil {
		return j.fail(op, store, err)
	}
	if token != 0 && current != token {
		j.logger.Warn("journal: write refused: the store was claimed by a newer activation",
			slog.String("store", store), slog.String("op", op), slog.Int64("token", token), slog.Int64("current", current))
		return &FencedError{Store: store, Token: token, Current: current}
	}
	return conflict(last)
}

// Read implements journal.Journal. It fetches the records a page at a
// time and holds no connection while fn runs.
func (j *Journal) Read(ctx context.Context, store string, after uint64, fn func(journal.Record) error) error {
	if err := j.check(); err != nil {
		return err
	}
	if after >= math.MaxInt64 {
		return nil
	}
	type row struct {
		seq   int64
		value []byte
	}
	var (
		last  uint64 // the store's last sequence when the read began
		want  = after + 1
		bound = int64(math.MaxInt64)
		page  = make([]row, 0, readPage)
	)
	for first := true; ; first = false {
		// After the first page, fetch from the last record delivered: if
		// it is gone, the records were trimmed meanwhile.
		from := want
		if !first {
			from = want - 1
		}
		rows, err := j.pool.Query(ctx, readSQL, store, int64(from), bound, readPage)
		if err != nil {
			return j.fail("read", store, err)
		}
		page = page[:0]
		var (
			storeLast int64
			seq       *int64
			value     []byte
			found     bool
		)
		_, err = pgx.ForEachRow(rows, []any{&storeLast, &seq, &value}, func() error {
			found = true
			if seq != nil {
				page = append(page, row{*seq, value})
			}
			return nil
		})
		if err != nil {
			return j.fail("read", store, err)
		}
		if !found { // no such store
			return nil
		}
		todo := page
		if first {
			last = uint64(storeLast)
			if after >= last {
				return nil
			}
			bound = storeLast
		} else {
			if len(page) == 0 || uint64(page[0].seq) != want-1 {
				return fmt.Errorf("journal: read %s after %d: trimmed while reading at %d: %w", store, after, want, journal.ErrTrimmed)
			}
			todo = page[1:]
		}
		for _, r := range todo {
			if err := ctx.Err(); err != nil {
				return err
			}
			if uint64(r.seq) != want {
				if want == after+1 {
					return fmt.Errorf("journal: read %s after %d (first held %d): %w", store, after, r.seq, journal.ErrTrimmed)
				}
				return &journal.CorruptError{Store: store, Sequence: want, What: "record", Err: errors.New("missing")}
			}
			rec, err := journal.DecodeRecord(r.value)
			if err != nil {
				return &journal.CorruptError{Store: store, Sequence: want, What: "record", Err: err}
			}
			if rec.Sequence != want {
				return &journal.CorruptError{Store: store, Sequence: want, What: "record", Err: fmt.Errorf("holds sequence %d", rec.Sequence)}
			}
			if err := fn(rec); err != nil {
				return err
			}
			want++
		}
		if want > last {
			return nil
		}
		if len(page) < readPage {
			// The records ended before the last one.
			if want == after+1 {
				return fmt.Errorf("journal: read %s after %d: %w", store, after, journal.ErrTrimmed)
			}
			return &journal.CorruptError{Store: store, Sequence: want, What: "record", Err: errors.New("missing")}
		}
	}
}

// SaveSnapshot implements journal.Journal.
func (j *Journal) SaveSnapshot(ctx context.Context, store string, s journal.Snapshot) error {
	return j.saveSnapshot(ctx, store, s, 0)
}

func (j *Journal) saveSnapshot(ctx context.Context, store string, s journal.Snapshot, token int64) error {
	if err := j.check(); err != nil {
		return err
	}
	pastLast := func(last int64) error {
		return fmt.Errorf("journal: snapshot of %s at %d is past the last record %d", store, s.Sequence, last)
	}
	if s.Sequence > math.MaxInt64 {
		return j.refused(ctx, "snapshot", store, token, pastLast)
	}
	v, err := journal.EncodeSnapshot(s)
	if err != nil {
		return fmt.Errorf("journal: snapshot %s: %w", store, err)
	}
	var n int64
	if err := j.pool.QueryRow(ctx, snapshotSQL, store, newEpoch(), v, int64(s.Sequence), token).Scan(&n); err != nil {
		return j.fail("snapshot", store, err)
	}
	if n == 1 {
		return nil
	}
	return j.refused(ctx, "snapshot", store, token, pastLast)
}

// Trim implements journal.Journal.
func (j *Journal) Trim(ctx context.Context, store string, through uint64) error {
	return j.trim(ctx, store, through, 0)
}

func (j *Journal) trim(ctx context.Context, store string, through uint64, token int64) error {
	if err := j.check(); err != nil {
		return err
	}
	if through > math.MaxInt64 {
		return fmt.Errorf("journal: trim %s through %d: not covered by a snapshot", store, through)
	}
	var snapSeq, current int64
	err := j.pool.QueryRow(ctx, trimSQL, store, int64(through), token).Scan(&snapSeq, &current)
	if errors.Is(err, pgx.ErrNoRows) && token != 0 {
		return fmt.Errorf("journal: trim %s: the store has no claim (token %d): %w", store, token, journal.ErrConflict)
	}
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return j.fail("trim", store, err)
	}
	if token != 0 && current != token {
		j.logger.Warn("journal: write refused: the store was claimed by a newer activation",
			slog.String("store", store), slog.String("op", "trim"), slog.Int64("token", token), slog.Int64("current", current))
		return &FencedError{Store: store, Token: token, Current: current}
	}
	if through > uint64(snapSeq) {
		return fmt.Errorf("journal: trim %s through %d: not covered by a snapshot (latest at %d)", store, through, snapSeq)
	}
	return nil
}

// Close implements journal.Journal: it closes the pool, waiting for the
// statements in progress.
func (j *Journal) Close() error {
	if j.closed.Swap(true) {
		return nil
	}
	j.pool.Close()
	return nil
}

// Claim claims store for a new activation: it increments the store's
// token in the database (making the store when it is new) and returns it.
// Writes through a Fenced view of an older token fail from then on.
func (j *Journal) Claim(ctx context.Context, store string) (int64, error) {
	if err := j.check(); err != nil {
		return 0, err
	}
	var token int64
	if err := j.pool.QueryRow(ctx, claimSQL, store, newEpoch()).Scan(&token); err != nil {
		return 0, j.fail("claim", store, err)
	}
	j.logger.Debug("journal: store claimed", slog.String("store", store), slog.Int64("token", token))
	return token, nil
}

// Fenced returns a view of the journal for store whose writes succeed
// only while token is the store's newest claim.
func (j *Journal) Fenced(store string, token int64) *Fenced {
	return &Fenced{j: j, store: store, token: token}
}

// ClaimStore claims store (Claim) and returns the Fenced view of the
// claim, as a journal.Journal: what an activation of the store writes
// through, from its load on.
func (j *Journal) ClaimStore(ctx context.Context, store string) (journal.Journal, error) {
	token, err := j.Claim(ctx, store)
	if err != nil {
		return nil, err
	}
	return j.Fenced(store, token), nil
}

// Fenced is a view of a Journal for one store and one claim of it. Open
// and Read are the Journal's; Append, SaveSnapshot and Trim also require
// the claim to be the store's newest, in the same statement, and fail with
// a *FencedError otherwise. It serves only its store: a call for another
// one is an error. Close closes the view, not the Journal.
type Fenced struct {
	j      *Journal
	store  string
	token  int64
	closed atomic.Bool
}

// Store returns the store of the view.
func (f *Fenced) Store() string { return f.store }

// Token returns the claim of the view.
func (f *Fenced) Token() int64 { return f.token }

func (f *Fenced) check(store string) error {
	if f.closed.Load() {
		return journal.ErrClosed
	}
	if store != f.store {
		return fmt.Errorf("journal: the view of store %s (token %d) was used for store %s", f.store, f.token, store)
	}
	return nil
}

// Open implements journal.Journal.
func (f *Fenced) Open(ctx context.Context, store string) (journal.Info, error) {
	if err := f.check(store); err != nil {
		return journal.Info{}, err
	}
	return f.j.Open(ctx, store)
}

// Append implements journal.Journal: it writes only while the view's
// claim is the store's newest.
func (f *Fenced) Append(ctx context.Context, store string, records []journal.Record) error {
	if err := f.check(store); err != nil {
		return err
	}
	return f.j.append(ctx, store, records, f.token)
}

// Read implements journal.Journal.
func (f *Fenced) Read(ctx context.Context, store string, after uint64, fn func(journal.Record) error) error {
	if err := f.check(store); err != nil {
		return err
	}
	return f.j.Read(ctx, store, after, fn)
}

// SaveSnapshot implements journal.Journal: it saves only while the view's
// claim is the store's newest.
func (f *Fenced) SaveSnapshot(ctx context.Context, store string, s journal.Snapshot) error {
	if err := f.check(store); err != nil {
		return err
	}
	return f.j.saveSnapshot(ctx, store, s, f.token)
}

// Trim implements journal.Journal: it trims only while the view's claim
// is the store's newest.
func (f *Fenced) Trim(ctx context.Context, store string, through uint64) error {
	if err := f.check(store); err != nil {
		return err
	}
	return f.j.trim(ctx, store, through, f.token)
}

// Close implements journal.Journal: later calls on the view return
// journal.ErrClosed. The Journal stays open.
func (f *Fenced) Close() error {
	f.closed.Store(true)
	return nil
}

var (
	_ journal.Journal = (*Journal)(nil)
	_ journal.Journal = (*Fenced)(nil)
)
