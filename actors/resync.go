package actors

import (
	"errors"
	"log/slog"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/lily-go/lily/journal"
	"github.com/lily-go/lily/transport"
)

// resync answers a client's resync: with the server messages it missed and
// synced when it asked for a delta of this store's history and the journal
// still holds them, with a snapshot otherwise.
func (s *storeActor[M, Msg]) resync(ctx actor.Context, c *client, f transport.Frame) {
	if f.Delta && f.Epoch == s.epoch && f.AfterSequence <= s.durableSeq && s.sendDelta(ctx, c, f.AfterSequence) {
		return
	}
	s.push(ctx, c, s.snapshotFrame(c.format), kindReliable)
}

// sendDelta queues the server messages after sequence after and a synced
// frame. It queues nothing and returns false when the journal no longer
// holds them, or when they would not fit the client's outbox (a snapshot
// is smaller then).
func (s *storeActor[M, Msg]) sendDelta(ctx actor.Context, c *client, after uint64) bool {
	var frames [][]byte
	if after < s.durableSeq {
		j := s.journal
		if j == nil {
			return false
		}
		size, budget := 0, s.cfg.OutboxBytes/2
		errTooBig := errors.New("delta larger than a snapshot")
		err := j.Read(ctxBackground, s.cfg.Name, after, func(r journal.Record) error {
			if r.Sequence > s.durableSeq {
				return errDone
			}
			msg, err := s.decodeMessage(r.Payload, transport.FormatMsgPack)
			if err != nil {
				return err
			}
			frame, err := s.serverMessage(r.Sequence, msg, c.format)
			if err != nil {
				return err
			}
			if size += len(frame); size > budget {
				return errTooBig
			}
			frames = append(frames, frame)
			return nil
		})
		if err != nil && !errors.Is(err, errDone) {
			if !errors.Is(err, journal.ErrTrimmed) && !errors.Is(err, errTooBig) {
				s.logger.Warn("cannot read the journal for a delta resync; sending a snapshot", slog.Any("error", err))
			}
			return false
		}
	}
	for _, frame := range frames {
		s.push(ctx, c, frame, kindReliable)
	}
	s.sendFrame(ctx, c, transport.Frame{Type: transport.TypeSynced, Sequence: s.durableSeq, Epoch: s.epoch}, kindReliable)
	return true
}

// errDone stops a journal read early.
var errDone = errors.New("done")

// resend answers an outbox overflow with a fresh snapshot.
func (s *storeActor[M, Msg]) resend(c *client) {
	frame := s.snapshotFrame(c.format)
	if frame == nil {
		return
	}
	if c.out.pushSnapshot(frame) == pushScheduled {
		s.kicks = append(s.kicks, c)
	}
}

// snapshotFrame returns the encoded snapshot frame of the durable model,
// cached until the next release. It returns nil if the model cannot be
// encoded.
func (s *storeActor[M, Msg]) snapshotFrame(format transport.Format) []byte {
	if cached := s.snapshot[format]; cached != nil {
		return cached
	}
	state, err := s.encodeModel(s.durableModel, format)
	var frame []byte
	if err == nil {
		frame, err = transport.Encode(transport.Frame{Type: transport.TypeSnapshot, Sequence: s.durableSeq, State: state, Epoch: s.epoch}, format)
	}
	if err != nil {
		s.logger.Error("cannot encode a snapshot", slog.String("format", format.String()), slog.Any("error", err))
		return nil
	}
	s.snapshot[format] = frame
	return frame
}
