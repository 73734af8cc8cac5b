// Package server is lily's server in Go: it holds a store's authoritative
// model and keeps connected clients in sync with it. It mirrors lily's
// lily/server module: Start, Connect, Disconnect, Incoming, OnMessage,
// AutoLogMessages, Stop and GenerateClientID map to start, connect,
// disconnect, incoming, on_message, auto_log_messages, stop and
// generate_client_id (methods instead of functions taking the server).
//
// # Mental model
//
// A Server runs its store in a Proto.Actor actor. Incoming enqueues a
// client's frame; the actor decodes it, applies the message with the store's
// update function, gives it the next sequence number, acknowledges the
// sender, sends a server_message to every other client and runs the
// on-message hooks. A resync is answered with a snapshot of the model. Each
// connected client is a child actor of the store's actor that owns the
// client's send function and a bounded outbox, so a slow send never holds up
// the store: a client that falls too far behind gets a fresh snapshot
// instead of what it missed.
//
// Bad input never changes the model: an undecodable frame or payload, or a
// message the update function panics on, gets an error frame (PROTOCOL.md:
// bad_frame, bad_payload, rejected) and uses no sequence number.
//
// Messages that carry an "id" are applied at most once per client id: a
// resent message is acknowledged again and not applied.
//
// # Concurrency
//
// Every method is safe for concurrent use and, except State and Stop, only
// enqueues. Hooks run on the store's actor, one at a time, in sequence
// order. Send functions run on their client's actor, one call at a time.
// After Stop, every method does nothing.
//
// # Example
//
//	srv, err := server.Start(store.New(Counter{}, update), transport.Automatic[Counter, Msg](Increment{}, Add{}))
//	if err != nil { ... }
//	defer srv.Stop()
//	id := server.GenerateClientID()
//	srv.Connect(id, func(frame []byte) { ws.WriteMessage(websocket.TextMessage, frame) })
//	srv.Incoming(id, frameFromTheSocket)
package server
