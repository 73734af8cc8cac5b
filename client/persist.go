package client

import (
	"fmt"
	"log/slog"
)

// Saving with a PendingStore.
//
// A message is written to a connection only once it is durable: the writer
// sends pending messages up to durableID, which only grows past a message
// once a Save that included it has returned. Saves run one at a time under
// saveMu, each of the latest state, so concurrent Sends share a save (group
// commit), and a failed save is retried by the next Send or by the saver.
// Acknowledgements and errors only mark the state dirty: the saver goroutine
// saves it soon after, and Close saves it last. A crash before that save
// loses nothing: the messages it would have removed are resent after the
// restart, and the server acknowledges them again without applying them.

// durableStateLocked returns the state to save and the highest message id
// it covers.
func (c *Client[M, Msg]) durableStateLocked() (PendingState, uint64) {
	st := PendingState{
		ClientID: c.clientID,
		NextID:   c.nextID,
		Format:   c.opts.Format,
		Pending:  make([]PendingMessage, len(c.pending)),
	}
	for i, p := range c.pending {
		st.Pending[i] = PendingMessage{ID: p.id, Payload: p.payload}
	}
	return st, c.nextID - 1
}

// persist returns once message id is saved. If the save fails, the message
// is taken back (removed from the pending messages and the local model)
// and the error returned.
func (c *Client[M, Msg]) persist(id uint64) error {
	c.saveMu.Lock()
	defer c.saveMu.Unlock()
	c.mu.Lock()
	if c.durableID >= id {
		c.mu.Unlock()
		return nil // an earlier save covered it
	}
	st, covered := c.durableStateLocked()
	c.dirty = false
	c.mu.Unlock()

	err := c.pstore.Save(st)

	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		c.dirty = true
		for i, p := range c.pending {
			if p.id == id {
				c.pending = append(c.pending[:i:i], c.pending[i+1:]...)
				c.recomputeLocked()
				c.emitLocked(nil)
				break
			}
		}
		return fmt.Errorf("client: send: save: %w", err)
	}
	c.savedLocked(covered)
	return nil
}

// saveDirty saves the state if it changed since the last save.
func (c *Client[M, Msg]) saveDirty() error {
	c.saveMu.Lock()
	defer c.saveMu.Unlock()
	c.mu.Lock()
	if !c.dirty {
		c.mu.Unlock()
		return nil
	}
	st, covered := c.durableStateLocked()
	c.dirty = false
	c.mu.Unlock()

	err := c.pstore.Save(st)

	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		c.dirty = true
		return fmt.Errorf("client: save pending state: %w", err)
	}
	c.savedLocked(covered)
	return nil
}

// savedLocked records a successful save covering ids up to covered.
func (c *Client[M, Msg]) savedLocked(covered uint64) {
	if covered > c.durableID {
		c.durableID = covered
		c.kickWriterLocked()
	}
}

// markDirtyLocked notes a change to save and wakes the saver.
func (c *Client[M, Msg]) markDirtyLocked() {
	c.dirty = true
	if c.pstore == nil {
		return
	}
	select {
	case c.saveKick <- struct{}{}:
	default:
	}
}

// saveLoop is the saver goroutine: it saves the state after
// acknowledgements and errors, coalescing those that arrive during a save.
func (c *Client[M, Msg]) saveLoop() {
	defer close(c.saverDone)
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-c.saveKick:
			if err := c.saveDirty(); err != nil {
				c.logger.Warn("cannot save the pending state; the next change retries", slog.Any("error", err))
			}
		}
	}
}
