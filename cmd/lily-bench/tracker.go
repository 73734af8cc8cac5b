package main

import "fmt"

// seqTracker checks, for one connection, PROTOCOL.md's ordering promise:
// every client sees the store's sequences 1, 2, 3, ... in order (acks for
// its own messages, server_message for the others'), except that a client
// whose outbox overflowed gets a snapshot instead of what it missed.
//
// The first snapshot (the answer to the resync the bench sends right after
// connecting) sets the baseline. From then on each sequenced frame must be
// the previous sequence plus one. A frame that skips ahead opens a gap,
// which only a later snapshot at or beyond it may close (the server dropped
// the frames in between and owes the client a snapshot). A snapshot the
// client did not ask for is an overflow. Anything else, a sequence that
// repeats or goes back, a snapshot older than what the client has, or a gap
// still open at the end, is a violation.
//
// A tracker belongs to the connection's reader goroutine: it is not safe
// for concurrent use.
type seqTracker struct {
	started bool   // the baseline snapshot has arrived
	last    uint64 // the highest sequence seen
	early   int    // sequenced frames before the baseline (judged by it)

	gapOpen bool   // sequences were skipped and no snapshot covered them yet
	gapAt   uint64 // the first sequence missing in the open gap

	overflows      int // snapshots the client did not ask for
	solicitedSkips int // asked-for snapshots that skipped sequences

	violations int
	first      string // the first violation, for the report
}

// sequenced records an acknowledge or server_message with sequence seq.
func (t *seqTracker) sequenced(seq uint64) {
	if !t.started {
		// Before the baseline: the snapshot will tell whether these are
		// covered; anything at or below it is, by construction.
		t.early++
		if seq > t.last {
			t.last = seq
		}
		return
	}
	switch {
	case seq == t.last+1:
		t.last = seq
	case seq > t.last+1:
		if !t.gapOpen {
			t.gapOpen = true
			t.gapAt = t.last + 1
		}
		t.last = seq
	default:
		t.violate("sequence %d after %d (repeated or out of order)", seq, t.last)
	}
}

// snapshot records a snapshot at sequence seq; solicited says whether it
// answers a resync the bench sent.
func (t *seqTracker) snapshot(seq uint64, solicited bool) {
	if !solicited {
		t.overflows++
	}
	if !t.started {
		t.started = true
		if seq < t.last {
			t.violate("baseline snapshot at %d below sequence %d already seen", seq, t.last)
		}
		t.last = max(t.last, seq)
		return
	}
	switch {
	case seq < t.last:
		t.violate("snapshot at %d after sequence %d (went back)", seq, t.last)
		return
	case seq > t.last && solicited && !t.gapOpen:
		// Sequences skipped without a visible gap: fine only if an overflow
		// explains it (checked in finish).
		t.solicitedSkips++
	}
	t.gapOpen = false
	t.last = seq
}

// finish ends the tracking and returns the number of violations and the
// first one's description ("" when there is none).
func (t *seqTracker) finish() (int, string) {
	if t.gapOpen {
		t.violate("sequences from %d were skipped and no snapshot covered them", t.gapAt)
		t.gapOpen = false
	}
	if t.solicitedSkips > 0 && t.overflows == 0 {
		t.violate("a resync's snapshot skipped sequences the client never received, without an overflow")
		t.solicitedSkips = 0
	}
	return t.violations, t.first
}

func (t *seqTracker) violate(format string, args ...any) {
	t.violations++
	if t.first == "" {
		t.first = fmt.Sprintf(format, args...)
	}
}
