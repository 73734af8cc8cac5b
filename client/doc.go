// Package client is a Go client of a lily server, mirroring lily's browser
// client: it keeps a local copy of one store's model in sync over a
// WebSocket, applies the messages it sends optimistically, keeps editing
// while offline, and reconnects by itself.
//
// # Mental model
//
// A Client holds two models. The confirmed model is the server's, at a
// sequence: it moves with every acknowledgement of the client's own
// messages and every server_message carrying another client's, and is
// replaced by a snapshot when the client resyncs. The local model is the
// confirmed one with the pending messages (sent, not yet acknowledged)
// applied on top; it is what an application shows. Send applies a message
// to the local model at once and queues it; it leaves the queue when the
// server acknowledges it (it is then part of the confirmed model) or
// refuses it (it is then dropped from the local model, and reported as a
// *MessageError in Change.Err). The client keeps the local model up to
// date step by step, and recomputes it from the confirmed one only when
// the confirmed model changes under pending messages.
//
// Every message gets an id, strictly increasing for the client id, which
// stays the same across reconnects (PROTOCOL.md's exactly-once extension).
// On every (re)connection the client first resends every pending message
// with its original id, then asks for a resync after its confirmed
// sequence: the server applies the messages it has not seen and only
// acknowledges the others again, so a message whose acknowledgement was
// lost with the connection is applied exactly once. A PendingStore
// extends that across process restarts: it saves the client id, the id
// counter and the pending messages, so that offline edits survive a
// restart and are applied exactly once when the client reconnects.
//
// A client connects over a WebSocket, or, with Options.Transport, over
// the HTTP fallback (an event stream and POSTs, for networks that block
// WebSockets), or over a WebSocket that falls back to it after failed
// attempts. The guarantees are the same over both.
//
// Connections are retried with exponential backoff and jitter (Backoff)
// after any loss, except when the server refuses the client for good
// (HTTP 400, 401, 403 or 404 before the upgrade, close code 4404 after
// it): the client then closes itself, and Err says why.
//
// # What a PendingStore guarantees
//
// With a PendingStore, Send returns nil only once the message is saved,
// and a message is written to the socket only once it is saved: a message
// the server has seen is always one the client can resend. Saves are
// atomic (FilePendingStore writes a temporary file, fsyncs it and renames
// it), and concurrent Sends share one save. Acknowledgements are saved
// soon after they arrive, by a saver goroutine, and by Close: a crash in
// between only means that a few acknowledged messages are resent after the
// restart, and the server acknowledges them without applying them again.
// Without a PendingStore, pending messages live in memory and Close drops
// them.
//
// # Concurrency
//
// Every method is safe for concurrent use. A client owns one manager
// goroutine (it dials, waits out backoff delays and reads the open
// connection), one writer goroutine per open connection (the only writer
// of data frames; pings, pongs and the close frame go through gorilla's
// concurrent-safe WriteControl), one goroutine that runs callbacks and,
// with a PendingStore, one saver goroutine. Close stops them all and waits
// for them.
//
// Callbacks (Subscribe, OnPush) run on the client's callback goroutine,
// one at a time, in the order of the changes, with no lock held. They may
// call the client's methods, except Close, and must not block for long.
//
// Models are shared, not copied: Model, Confirmed and Change.Model return
// values the client keeps using. The store's update function must not
// change the model it is given (lily's rule: the same model and message
// give the same result), and callers must not change the models they get.
//
// # Example
//
//	c, err := client.Connect(ctx, "ws://localhost:8080/ws/counter/demo",
//		counter.Store(), transport.Automatic[counter.Counter, counter.Msg](counter.Variants...),
//		client.Options{})
//	if err != nil { ... }
//	defer c.Close()
//	unsubscribe := c.Subscribe(func(ch client.Change[counter.Counter]) {
//		fmt.Println(ch.State, ch.Model.Count, ch.Pending)
//	})
//	defer unsubscribe()
//	if err := c.Send(counter.Increment{}); err != nil { ... }
//	_ = c.Flush(ctx) // wait for the acknowledgement
package client
