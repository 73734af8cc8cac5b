// Package actors holds lily's actors: the store actor, which owns a store's
// model and applies client messages one at a time, and the client actor, a
// child of the store actor per connection, which owns the connection's Sink
// and drains its bounded outbox.
//
// # Store actor
//
// It takes messages.ClientFrame (a client's raw frame), Attach (a local
// connection), messages.Disconnect, AddHook and GetState. For each
// client_message it decodes the payload, applies it (a panic or a
// validator's refusal rejects it with an error frame and changes nothing),
// assigns the next sequence, acknowledges the sender, encodes the
// server_message once per envelope format in use and queues it for every
// other client, then runs the hooks (a panic in a hook is logged). A resync
// gets the snapshot frame, encoded once and cached until the next apply. A
// message with an id not above the last one applied for its client id is
// acknowledged again and not applied. The actor recovers from any other
// panic itself, so a restart never resets the model.
//
// # Client actor
//
// The store actor pushes encoded frames into the client's outbox without
// blocking, and the child drains them into its Sink in batches. The outbox
// is bounded in bytes: on overflow it drops the queued server messages and
// every later one, and once what remains has been written the child asks
// the store for a fresh snapshot, after which live messages flow again. A
// client whose acknowledgements and errors alone overflow it is cut off.
// The store actor supervises its children with a stop directive: a panic in
// a Sink stops that client only.
//
// Attach, AddHook and GetState carry Go values (functions, a generic model)
// and never leave the node; everything that may cross nodes is a protobuf
// message of package messages.
package actors
