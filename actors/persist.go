package actors

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/lily-go/lily/journal"
	"github.com/lily-go/lily/transport"
)

// load sets the store's state: the initial model, or with a journal the
// latest snapshot and every record after it.
func (s *storeActor[M, Msg]) load() error {
	s.model = s.st.Initial()
	s.sequence = 0
	s.applied = map[string]journal.Applied{}
	s.epoch = s.cfg.Epoch
	if s.epoch == "" {
		s.epoch = newEpoch()
	}
	defer func() {
		s.durableModel, s.durableSeq = s.model, s.sequence
		s.durableApplied = maps.Clone(s.applied)
		s.snapshot = [3][]byte{}
	}()
	j := s.cfg.Journal
	if j == nil {
		return nil
	}
	if c, ok := j.(journal.Claimer); ok {
		// A shared journal: this activation becomes the store's only
		// writer before it reads anything.
		claimed, err := c.ClaimStore(ctxBackground, s.cfg.Name)
		if err != nil {
			return fmt.Errorf("claim: %w", err)
		}
		j = claimed
	}
	s.journal = j
	info, err := j.Open(ctxBackground, s.cfg.Name)
	if err != nil {
		return fmt.Errorf("open: %w", err)
	}
	s.epoch = info.Epoch
	if snap := info.Snapshot; snap != nil {
		model, err := s.decodeModel(snap.Model, transport.FormatMsgPack)
		if err != nil {
			return &journal.CorruptError{Store: s.cfg.Name, What: "snapshot", Err: fmt.Errorf("the model does not decode: %w", err)}
		}
		s.model, s.sequence = model, snap.Sequence
		maps.Copy(s.applied, snap.Applied)
		s.snapshotSeq = snap.Sequence
	}
	err = j.Read(ctxBackground, s.cfg.Name, s.sequence, func(r journal.Record) error {
		if r.Sequence != s.sequence+1 {
			return &journal.CorruptError{Store: s.cfg.Name, Sequence: s.sequence + 1, What: "record", Err: fmt.Errorf("found sequence %d instead", r.Sequence)}
		}
		msg, err := s.decodeMessage(r.Payload, transport.FormatMsgPack)
		if err != nil {
			return &journal.CorruptError{Store: s.cfg.Name, Sequence: r.Sequence, What: "record", Err: fmt.Errorf("the message does not decode: %w", err)}
		}
		next, err := s.st.Apply(s.model, msg)
		if err != nil {
			// It was applied once: an update function that refuses it
			// now cannot rebuild this store's history.
			return fmt.Errorf("record %d does not apply any more: %w", r.Sequence, err)
		}
		s.model, s.sequence = next, r.Sequence
		if r.MessageID != 0 {
			s.applied[r.ClientID] = journal.Applied{MessageID: r.MessageID, Sequence: r.Sequence}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("replay: %w", err)
	}
	if s.sequence != info.LastSequence {
		return &journal.CorruptError{Store: s.cfg.Name, Sequence: s.sequence + 1, What: "record", Err: fmt.Errorf("missing (the journal ends at %d)", info.LastSequence)}
	}
	return nil
}

// writeDone reports a write of the store's writer goroutine.
type writeDone struct {
	through  uint64 // the last sequence written; 0 when the write held no record
	snapshot uint64 // the sequence of the snapshot written, if any
	err      error
}

// write starts a write unless one is in flight: the records applied since
// the last write, and a snapshot when one is due. The writer goroutine
// reports back with writeDone; what arrives meanwhile goes in the next
// write (group commit).
func (s *storeActor[M, Msg]) write(ctx actor.Context) {
	if s.writing || (len(s.batch) == 0 && !s.snapshotDue) {
		return
	}
	j, name := s.journal, s.cfg.Name
	records := s.batch
	s.batch = nil
	var snap *journal.Snapshot
	var trimThrough uint64
	if s.snapshotDue {
		s.snapshotDue = false
		model, err := s.encodeModel(s.durableModel, transport.FormatMsgPack)
		if err != nil {
			s.logger.Error("cannot encode a snapshot; the store goes on without it", slog.Any("error", err))
		} else {
			snap = &journal.Snapshot{Sequence: s.durableSeq, Model: model, Applied: maps.Clone(s.durableApplied)}
			s.snapshotSeq = s.durableSeq
			if snap.Sequence > s.cfg.Retention {
				trimThrough = snap.Sequence - s.cfg.Retention
			}
		}
	}
	s.writing = true
	self, root := ctx.Self(), ctx.ActorSystem().Root
	s.writes.Add(1)
	go func() {
		defer s.writes.Done()
		done := &writeDone{}
		if len(records) > 0 {
			done.err = j.Append(ctxBackground, name, records)
			done.through = records[len(records)-1].Sequence
		}
		if done.err == nil && snap != nil {
			if err := j.SaveSnapshot(ctxBackground, name, *snap); err != nil {
				done.err = fmt.Errorf("snapshot: %w", err)
			} else {
				done.snapshot = snap.Sequence
				if trimThrough > 0 {
					if err := j.Trim(ctxBackground, name, trimThrough); err != nil {
						done.err = fmt.Errorf("trim: %w", err)
					}
				}
			}
		}
		root.Send(self, done)
	}()
}

// written handles the end of a write: it releases what the journal now
// holds and starts the next write. A failed write restarts the store from
// the journal: nothing it held was acknowledged, and its clients reconnect
// and send again what they have not seen acknowledged.
func (s *storeActor[M, Msg]) written(ctx actor.Context, d *writeDone) {
	s.writing = false
	if d.err != nil && errors.Is(d.err, journal.ErrFenced) {
		// A newer activation (on another node) owns the store now: this
		// one stops, and its clients reconnect to that one. Claiming the
		// store back would have the two take it from each other in turn.
		s.logger.Warn("store: a newer activation claimed this store; stopping", slog.Any("error", d.err))
		s.fenced = true
		s.letGoOfClients()
		ctx.Stop(ctx.Self())
		return
	}
	if d.err != nil {
		if errors.Is(d.err, journal.ErrConflict) {
			s.logger.Error("store: another writer wrote this store's journal; restarting from it", slog.Any("error", d.err))
		} else {
			s.logger.Error("store: journal write failed; restarting from the journal", slog.Any("error", d.err))
		}
		panic(fmt.Errorf("store %s: journal write: %w", s.cfg.Name, d.err))
	}
	if d.through > 0 {
		s.release(ctx, d.through)
	}
	if s.durableSeq >= s.snapshotSeq+s.cfg.SnapshotEvery {
		s.snapshotDue = true
	}
	s.write(ctx)
}

// idle runs when the store has had no message for PassivateAfter: with no
// client and nothing in flight, it snapshots and stops.
func (s *storeActor[M, Msg]) idle(ctx actor.Context) {
	if len(s.clients) > 0 || s.writing || len(s.batch) > 0 || len(s.held) > 0 {
		return
	}
	if s.cfg.Passivate != nil && !s.cfg.Passivate() {
		return
	}
	s.handOff("passivating")
	s.logger.Debug("store passivated", slog.Uint64("seq", s.durableSeq))
	ctx.Stop(ctx.Self())
}

// handOff snapshots the durable state before the store stops (it
// passivates, or its activation stops because its node leaves or the store
// moves), so that the next activation loads it without replaying the
// journal. A store whose journal fenced it off cannot write, and does not
// try.
func (s *storeActor[M, Msg]) handOff(why string) {
	j := s.journal
	if j == nil || s.failed != nil || s.fenced || s.durableSeq <= s.snapshotSeq {
		return
	}
	model, err := s.encodeModel(s.durableModel, transport.FormatMsgPack)
	if err == nil {
		err = j.SaveSnapshot(ctxBackground, s.cfg.Name, journal.Snapshot{Sequence: s.durableSeq, Model: model, Applied: s.durableApplied})
	}
	if err != nil {
		s.logger.Warn("store: no snapshot before "+why+"; the next activation replays the journal", slog.Any("error", err))
		return
	}
	s.snapshotSeq = s.durableSeq
}
