package actors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/lily-go/lily/journal"
	"github.com/lily-go/lily/store"
	"github.com/lily-go/lily/transport"
)

func (s *storeActor[M, Msg]) handleFrame(ctx actor.Context, clientID string, data []byte) {
	format := transport.DetectFormat(data)
	c := s.clients[clientID]
	if c != nil {
		c.format = format
	}
	if s.failed != nil {
		s.sendError(ctx, c, transport.Errorf(transport.CodeInternal, "store %s is unavailable: %v", s.cfg.Name, s.failed), 0)
		return
	}
	f, err := transport.Decode(data, format)
	if err != nil {
		s.sendError(ctx, c, err, 0)
		return
	}
	switch f.Type {
	case transport.TypeClientMessage:
		if s.cfg.Observer != nil {
			start := time.Now()
			defer func() { s.cfg.Observer.ObserveApply(time.Since(start)) }()
		}
		s.apply(ctx, c, clientID, f, format)
	case transport.TypeResync:
		if c != nil {
			s.resync(ctx, c, f)
		}
	default:
		s.sendError(ctx, c, transport.Errorf(transport.CodeBadFrame, "a client may not send %q frames", f.Type), 0)
	}
}

// apply applies one client message: at once to the model, and then holds
// its acknowledgement, broadcast and hooks until the journal holds it.
func (s *storeActor[M, Msg]) apply(ctx actor.Context, c *client, clientID string, f transport.Frame, format transport.Format) {
	if f.ID != 0 {
		if last, ok := s.applied[clientID]; ok && f.ID <= last.MessageID {
			// Already applied: acknowledge again (once the original is
			// durable), apply nothing.
			seq := uint64(0)
			if f.ID == last.MessageID {
				seq = last.Sequence
			}
			s.hold(ctx, held[M, Msg]{sequence: last.Sequence, clientID: clientID, id: f.ID, reack: true, ackSeq: seq})
			return
		}
	}
	msg, err := s.decodeMessage(f.Payload, format)
	if err != nil {
		s.sendError(ctx, c, err, f.ID)
		return
	}
	next, err := s.st.Apply(s.model, msg)
	if err != nil {
		s.logger.Warn("message rejected", slog.String("client_id", clientID), slog.Any("error", err))
		var pe *store.PanicError
		if errors.As(err, &pe) && s.logger.Enabled(context.Background(), slog.LevelDebug) {
			s.logger.Debug("update panic stack", slog.String("stack", string(pe.Stack)))
		}
		s.sendError(ctx, c, &transport.Error{Code: transport.CodeRejected, Reason: err.Error()}, f.ID)
		return
	}
	if s.cfg.Journal != nil {
		payload := f.Payload
		if format != transport.FormatMsgPack {
			if payload, err = s.encodeMessage(msg, transport.FormatMsgPack); err != nil {
				s.sendError(ctx, c, transport.Errorf(transport.CodeInternal, "cannot journal the message: %v", err), f.ID)
				return
			}
		}
		s.batch = append(s.batch, journal.Record{Sequence: s.sequence + 1, ClientID: clientID, MessageID: f.ID, Payload: payload})
	}
	s.model = next
	s.sequence++
	if f.ID != 0 {
		s.applied[clientID] = journal.Applied{MessageID: f.ID, Sequence: s.sequence}
	}
	s.hold(ctx, held[M, Msg]{sequence: s.sequence, clientID: clientID, id: f.ID, msg: msg, model: next})
}

// hold queues what an applied message (or a repeated acknowledgement)
// releases once the journal holds its sequence; without a journal that is
// at once.
func (s *storeActor[M, Msg]) hold(ctx actor.Context, h held[M, Msg]) {
	if s.cfg.Journal == nil || (h.sequence <= s.durableSeq && len(s.held) == 0) {
		s.releaseOne(ctx, h)
		return
	}
	s.held = append(s.held, h)
	s.write(ctx)
}

// release releases every held message up to sequence upTo, in order.
func (s *storeActor[M, Msg]) release(ctx actor.Context, upTo uint64) {
	n := 0
	for n < len(s.held) && s.held[n].sequence <= upTo {
		s.releaseOne(ctx, s.held[n])
		n++
	}
	clear(s.held[:n])
	s.held = s.held[n:]
	if len(s.held) == 0 {
		s.held = nil
	}
}

// releaseOne acknowledges a message to its sender, broadcasts it to the
// other clients and runs the hooks.
func (s *storeActor[M, Msg]) releaseOne(ctx actor.Context, h held[M, Msg]) {
	c := s.clients[h.clientID]
	if h.reack {
		if c != nil {
			s.sendFrame(ctx, c, transport.Frame{Type: transport.TypeAcknowledge, Sequence: h.ackSeq, ID: h.id}, kindReliable)
		}
		return
	}
	s.durableModel = h.model
	s.durableSeq = h.sequence
	if h.id != 0 {
		s.durableApplied[h.clientID] = journal.Applied{MessageID: h.id, Sequence: h.sequence}
	}
	s.snapshot = [3][]byte{}
	if c != nil {
		kind := kindReliable
		if h.id != 0 {
			kind = kindAck // implies the acknowledgement of the client's earlier ids
		}
		s.sendFrame(ctx, c, transport.Frame{Type: transport.TypeAcknowledge, Sequence: h.sequence, ID: h.id}, kind)
	}
	s.broadcast(ctx, h.clientID, h.sequence, h.msg)
	s.runHooks(h.msg, h.model, h.clientID, h.sequence)
}

// broadcast sends a server_message to every client but the sender, encoding
// it once per envelope format in use.
func (s *storeActor[M, Msg]) broadcast(ctx actor.Context, sender string, seq uint64, msg Msg) {
	var frames [3][]byte
	for id, c := range s.clients {
		if id == sender {
			continue
		}
		frame := frames[c.format]
		if frame == nil {
			var err error
			frame, err = s.serverMessage(seq, msg, c.format)
			if err != nil {
				s.logger.Error("cannot encode a server_message; the client will get a snapshot",
					slog.String("format", c.format.String()), slog.Any("error", err))
				if c.out.overflow() == pushScheduled {
					s.kicks = append(s.kicks, c)
				}
				continue
			}
			frames[c.format] = frame
		}
		s.push(ctx, c, frame, kindDroppable)
	}
}

func (s *storeActor[M, Msg]) serverMessage(seq uint64, msg Msg, format transport.Format) ([]byte, error) {
	payload, err := s.encodeMessage(msg, format)
	if err != nil {
		return nil, err
	}
	return transport.Encode(transport.Frame{Type: transport.TypeServerMessage, Sequence: seq, Payload: payload}, format)
}

func (s *storeActor[M, Msg]) runHooks(msg Msg, model M, clientID string, seq uint64) {
	for _, hook := range s.hooks.list {
		func() {
			defer func() {
				if r := recover(); r != nil {
					s.logger.Error("on-message hook panicked; the store keeps serving",
						slog.String("client_id", clientID), slog.Uint64("seq", seq), slog.Any("panic", r))
				}
			}()
			hook(msg, model, clientID)
		}()
	}
}

func (s *storeActor[M, Msg]) sendError(ctx actor.Context, c *client, err error, id uint64) {
	var te *transport.Error
	if !errors.As(err, &te) {
		te = &transport.Error{Code: transport.CodeInternal, Reason: err.Error()}
	}
	if s.cfg.Observer != nil {
		s.cfg.Observer.CountError(string(te.Code))
	}
	s.sendFrame(ctx, c, transport.Frame{Type: transport.TypeError, Code: te.Code, Reason: te.Reason, ID: id}, kindReliable)
}

func (s *storeActor[M, Msg]) sendFrame(ctx actor.Context, c *client, f transport.Frame, kind frameKind) {
	if c == nil {
		return
	}
	data, err := transport.Encode(f, c.format)
	if err != nil {
		s.logger.Error("cannot encode a frame", slog.String("type", f.Type.String()), slog.Any("error", err))
		return
	}
	s.push(ctx, c, data, kind)
}

func (s *storeActor[M, Msg]) push(ctx actor.Context, c *client, data []byte, kind frameKind) {
	if data == nil {
		return
	}
	switch c.out.push(data, kind) {
	case pushScheduled:
		s.kicks = append(s.kicks, c)
	case pushCutOff:
		s.logger.Warn("client cut off: its outbox is full of frames that cannot be dropped",
			slog.String("client_id", c.id), slog.Int("limit_bytes", s.cfg.OutboxBytes))
		s.detach(ctx, c, true)
	}
}

// flush tells the actors of the clients that have new frames to drain them.
func (s *storeActor[M, Msg]) flush(ctx actor.Context) {
	for i, c := range s.kicks {
		ctx.Send(c.pid, drainOutbox{})
		s.kicks[i] = nil
	}
	s.kicks = s.kicks[:0]
	s.handled = 0
}

// The serialiser is application code: a panic in it is bad input, not a
// reason to lose the store.

func (s *storeActor[M, Msg]) decodeMessage(data []byte, format transport.Format) (msg Msg, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = transport.Errorf(transport.CodeBadPayload, "serialiser panicked: %v", r)
		}
	}()
	msg, err = s.ser.DecodeMessage(data, format)
	if err != nil {
		var te *transport.Error
		if !errors.As(err, &te) {
			err = transport.Errorf(transport.CodeBadPayload, "%v", err)
		}
	}
	return msg, err
}

func (s *storeActor[M, Msg]) encodeMessage(msg Msg, format transport.Format) (data []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("serialiser panicked: %v", r)
		}
	}()
	return s.ser.EncodeMessage(msg, format)
}

func (s *storeActor[M, Msg]) encodeModel(model M, format transport.Format) (data []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("serialiser panicked: %v", r)
		}
	}()
	return s.ser.EncodeModel(model, format)
}

func (s *storeActor[M, Msg]) decodeModel(data []byte, format transport.Format) (model M, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("serialiser panicked: %v", r)
		}
	}()
	return s.ser.DecodeModel(data, format)
}
