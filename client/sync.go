package client

import (
	"log/slog"

	"github.com/lily-go/lily/transport"
)

// The frames of the server, handled on the manager goroutine under mu.
//
// The invariant: local = confirmed + unsure + pending, each applied in
// order (a message the store refuses is skipped). confirmed is the server's
// model at confSeq; the server sends every sequence after it, in order, as
// an acknowledgement (for this client's messages) or a server_message (for
// the others'), unless a snapshot replaces the lot. A frame whose sequence
// does not follow confSeq means something was missed: the client resyncs.

// handle decodes one frame of cn and applies it.
func (c *Client[M, Msg]) handle(cn *conn, data []byte) {
	format := transport.DetectFormat(data)
	f, err := transport.Decode(data, format)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn != cn {
		return
	}
	if err != nil {
		c.logger.Warn("undecodable frame from the server; resyncing", slog.Any("error", err))
		c.requestResyncLocked(false)
		return
	}
	switch f.Type {
	case transport.TypeAcknowledge:
		c.onAckLocked(f)
	case transport.TypeServerMessage:
		c.onServerMessageLocked(f, format)
	case transport.TypeSnapshot:
		c.onSnapshotLocked(cn, f, format)
	case transport.TypeSynced:
		c.onSyncedLocked(cn, f)
	case transport.TypeError:
		c.onErrorLocked(f)
	case transport.TypePush:
		msg, err := c.decodeMessage(f.Payload, format)
		if err != nil {
			c.logger.Warn("undecodable push message", slog.Any("error", err))
			return
		}
		c.events.enqueue(event[M, Msg]{push: &msg})
	default:
		c.logger.Warn("unexpected frame from the server", slog.String("type", f.Type.String()))
	}
}

// onAckLocked confirms the oldest pending message.
func (c *Client[M, Msg]) onAckLocked(f transport.Frame) {
	if len(c.pending) == 0 || f.ID < c.pending[0].id {
		// Not a pending message: an acknowledgement repeated for a message
		// already settled. A sequence the client has not seen is news.
		if f.Sequence > c.confSeq {
			c.requestResyncLocked(true)
		}
		return
	}
	changed := false
	for len(c.pending) > 0 && c.pending[0].id < f.ID {
		// The server has gone past a message it never answered (it cannot
		// apply it any more). Whether it applied it is unknown: keep it
		// in the local model until the resync tells.
		p := c.pending[0]
		c.logger.Warn("the server acknowledged a later message first; resyncing", slog.Uint64("id", p.id), slog.Uint64("acked_id", f.ID))
		c.unsure = append(c.unsure, unsureMsg[Msg]{msg: p.msg})
		c.pending = c.pending[1:]
		c.requestResyncLocked(true)
		changed = true
	}
	if len(c.pending) == 0 || c.pending[0].id != f.ID {
		if changed {
			c.markDirtyLocked()
			c.emitLocked(nil)
		}
		return
	}
	p := c.pending[0]
	c.pending[0] = pendingMsg[Msg]{}
	c.pending = c.pending[1:]
	c.markDirtyLocked()
	placed := false
	if f.Sequence != 0 && f.Sequence == c.confSeq+1 {
		if next, err := c.st.Apply(c.confirmed, p.msg); err == nil {
			c.confirmed, c.confSeq = next, f.Sequence
			placed = true
		} else {
			c.logger.Warn("the store refuses a message the server applied; resyncing", slog.Uint64("id", p.id), slog.Any("error", err))
		}
	}
	if !placed {
		// Applied by the server at a sequence the client cannot place
		// (0: "applied earlier", or past a gap): keep it in the local model
		// until the resync answers.
		c.unsure = append(c.unsure, unsureMsg[Msg]{msg: p.msg, seq: f.Sequence})
		c.requestResyncLocked(true)
	}
	if placed && len(c.unsure) > 0 {
		// p moved from after the unsure messages to before them.
		c.recomputeLocked()
	}
	c.emitLocked(nil)
}

// onServerMessageLocked applies another client's message to the confirmed
// model.
func (c *Client[M, Msg]) onServerMessageLocked(f transport.Frame, format transport.Format) {
	switch {
	case f.Sequence <= c.confSeq:
		return // already in the confirmed model (a delta replay)
	case f.Sequence != c.confSeq+1:
		if !c.syncing {
			c.logger.Info("missed sequences; resyncing", slog.Uint64("seq", f.Sequence), slog.Uint64("confirmed_seq", c.confSeq))
		}
		c.requestResyncLocked(true)
		return
	}
	msg, err := c.decodeMessage(f.Payload, format)
	if err != nil {
		c.logger.Warn("undecodable server message; resyncing", slog.Uint64("seq", f.Sequence), slog.Any("error", err))
		c.requestResyncLocked(false)
		return
	}
	next, err := c.st.Apply(c.confirmed, msg)
	if err != nil {
		c.logger.Warn("the store refuses a message the server applied; resyncing", slog.Uint64("seq", f.Sequence), slog.Any("error", err))
		c.requestResyncLocked(false)
		return
	}
	c.confirmed, c.confSeq = next, f.Sequence
	// One of this client's own messages replayed by a delta resync is now
	// in the confirmed model: it is no longer unsure.
	for i, u := range c.unsure {
		if u.seq == f.Sequence {
			c.unsure = append(c.unsure[:i:i], c.unsure[i+1:]...)
			break
		}
	}
	if len(c.pending) > 0 || len(c.unsure) > 0 {
		c.recomputeLocked()
	} else {
		c.local = c.confirmed
	}
	c.emitLocked(nil)
}

// onSnapshotLocked replaces the confirmed model.
func (c *Client[M, Msg]) onSnapshotLocked(cn *conn, f transport.Frame, format transport.Format) {
	model, err := c.decodeModel(f.State, format)
	if err != nil {
		// Asking again would get the same bytes: report it and carry on
		// with the model the client has.
		c.logger.Error("undecodable snapshot", slog.Uint64("seq", f.Sequence), slog.Any("error", err))
		c.syncing = false
		c.emitLocked(err)
		return
	}
	c.confirmed, c.confSeq, c.epoch = model, f.Sequence, f.Epoch
	c.unsure = nil
	c.syncing = false
	cn.synced = true
	c.recomputeLocked()
	c.emitLocked(nil)
	c.readyOnce.Do(func() { close(c.ready) })
}

// onSyncedLocked ends a delta resync.
func (c *Client[M, Msg]) onSyncedLocked(cn *conn, f transport.Frame) {
	c.syncing = false
	if f.Sequence != c.confSeq {
		c.logger.Info("delta resync ended at another sequence; asking for a snapshot", slog.Uint64("seq", f.Sequence), slog.Uint64("confirmed_seq", c.confSeq))
		c.requestResyncLocked(false)
		return
	}
	c.epoch = f.Epoch
	cn.synced = true
	if len(c.unsure) > 0 {
		c.unsure = nil
		c.recomputeLocked()
	}
	c.emitLocked(nil)
	c.readyOnce.Do(func() { close(c.ready) })
}

// onErrorLocked drops the message an error frame answers, or reports the
// error.
func (c *Client[M, Msg]) onErrorLocked(f transport.Frame) {
	te := &transport.Error{Code: f.Code, Reason: f.Reason}
	if f.ID != 0 {
		for i, p := range c.pending {
			if p.id != f.ID {
				continue
			}
			c.pending = append(c.pending[:i:i], c.pending[i+1:]...)
			c.markDirtyLocked()
			c.recomputeLocked()
			c.logger.Info("the server refused a message; dropped", slog.Uint64("id", p.id), slog.String("code", string(f.Code)), slog.String("reason", f.Reason))
			c.emitLocked(&MessageError{ID: p.id, Message: p.msg, Err: te})
			return
		}
	}
	c.logger.Warn("error from the server", slog.String("code", string(f.Code)), slog.String("reason", f.Reason), slog.Uint64("id", f.ID))
	c.emitLocked(te)
}
