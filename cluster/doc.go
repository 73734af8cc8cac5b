// Package cluster runs lily's stores on a cluster of nodes: nodes find
// each other and detect failures with hashicorp/memberlist, protoactor's
// cluster layer sees the result through a ClusterProvider, every store is a
// grain placed by rendezvous hashing (our identity lookup, lookup.go), and
// a Node is a gateway's Resolver (HasKind, Connect), so a client may
// connect to any node whatever node hosts its store.
//
// # Mental model
//
// A Node is one actor system with protoactor's remote (gRPC) and cluster
// layers, started by Start. Its member id is the actor system's id, fresh
// on every start: protoactor blocks an id that left or failed for good, so
// a restarted node is a new member (it may reuse the address). memberlist
// runs under the same id and carries, as node metadata, the compact JSON
// {id, host, port, kinds} (host and port of the gRPC address; at most 512
// bytes, checked by Start).
//
// memberlist is the single source of membership. Its event delegate only
// pokes a channel; one goroutine rebuilds the member list from
// memberlist's live nodes on every poke and every second and hands it to
// protoactor, which diffs it with the previous topology, blocks the ids
// that left and drops blocked ids. Node.Members is protoactor's resulting
// view. Another goroutine joins the seeds that are not members yet
// (resolving DNS names on every attempt, backing off from 50 ms to 2 s
// while it fails), so nodes can start in any order and a node left alone
// rejoins. Failure detection uses the LANDetection profile: a node that
// dies without leaving is gone from the others' lists in about 1 s.
//
// # Pitfalls handled
//
// The numbers refer to the notes of the protoactor/memberlist spike.
//
//   - Split brain after a stall (3). When a node stalls (SIGSTOP, a long
//     pause, a partition) its peers declare it dead and protoactor blocks
//     its id for good; memberlist lets it refute and rejoin, but protoactor
//     never unblocks it, so it would serve the same stores as the others.
//     Three things stop that: memberlist's alive delegate refuses a peer
//     whose id protoactor has blocked, so it stays out; the refusing node
//     tells that peer so in a memberlist message; and the peer, on that
//     message or when memberlist logs that it refutes a "dead" message
//     about it, closes Node.Done with an error wrapping ErrSplitBrain. Its
//     owner (lilyd) must then shut it down and exit, to be restarted with a
//     new id. The notice is needed: after a real 8 s SIGSTOP, memberlist
//     read a "suspect" message first, refuted it and then ignored the
//     older "dead" one, so the log line alone would have missed it.
//     protoactor's own gossip heartbeat expiration is raised to a minute,
//     leaving memberlist as the detector.
//   - A panic in a gRPC handler (2), such as protoactor's remote
//     dereferencing nil for a message type it does not know, is recovered
//     by interceptors instead of crashing the process.
//   - Shutdown (9): protoactor sleeps a fixed 2 s; Node.Shutdown takes
//     about 2.2 s (plus up to 1 s to stop its stores) and stops the gRPC
//     server at once if its ctx ends first. StartMember panics instead of returning errors: Start recovers and
//     returns them, and checks the ports before it starts anything.
//   - A request to a dead owner (4). protoactor's disthash identity
//     lookup sends its activation request with a hard-coded 5 s timeout
//     that ignores cluster.WithTimeout, so while a dead owner was still a
//     member a request waited 2 s (the dead letter after the failed
//     connection attempt) to 5 s. Nodes use our own lookup instead
//     (lookup.go), a close copy of disthash: the same rendezvous hashing
//     over the members that serve the kind (all nodes agree on the owner),
//     the same placement actor name and messages, and the same props, so
//     a new activation gets its ClusterInit. Its activation request gives
//     up after activationTimeout (1 s, about memberlist's detection time)
//     or when its ctx ends; protoactor's Request then tries again with its
//     retry action, by when memberlist has usually dropped the owner.
//     Measured in process (3 nodes, 12 runs with each lookup): a lookup
//     or a Connect through a survivor right after the owner was halted
//     took 2.0-5.0 s with disthash and 1.0-1.08 s with ours. An owner also
//     refuses an identity its own member list places elsewhere, so a node
//     with a stale view cannot make an activation that no topology change
//     would stop.
//   - A connection to a dead address blocks its endpoint writer for 2 s
//     per retry (10): one try instead of five, since membership comes from
//     memberlist and the next message tries again.
//   - Logs (12) go to the Config's slog.Logger: memberlist's at debug,
//     protoactor's info logs at debug and its connection errors about a
//     member that left or failed at info (the provider logs "member up"
//     and "member gone" itself).
//   - Races inside protoactor (11): the tests that start nodes carry
//     //go:build !race, so `go test -race` skips them; run the package
//     without -race (tests/run lists it in NORACE).
//
// # Stores as grains
//
// Config.StoreKinds are registered as grain kinds: store kind/name is the
// grain of kind "kind" and identity "name". A grain is a thin actor: it
// learns its identity from the ClusterInit that protoactor sends right
// after Started, and only then starts the store actor (actors.StoreProps,
// named "kind/name", with Config.Stores' journal and limits) as its child,
// so that the store loads the right journal. It translates the cluster's
// messages for the store; every message that crosses nodes is a protobuf
// message of package messages (pitfall 1).
//
// With StoreSettings.PassivateAfter, an activation with no client and no
// message for that long snapshots and stops, and the store is activated
// again on its next connection (TestGrainPassivates); lilyd passes its
// -passivate-after.
//
// # Data flow
//
// A socket on node A for store counter/x hosted on node B:
//
//  1. The gateway on A calls Node.Connect. A spawns a connection actor
//     that owns the gateway's send and a bounded outbox
//     (Config.Stores.OutboxBytes) drained by a writer goroutine, and sends
//     messages.Connect{client_id, connection: its PID, connection_id} to
//     the grain through the cluster (a request with a deadline, explicit
//     timeout, retry count and millisecond backoff: pitfalls 4-5). The
//     grain attaches the client to its store (actors.Attach whose Sink
//     sends messages.Deliver to the connection PID), watches the
//     connection actor and answers messages.Connected{store: the grain's
//     PID}. Connection ids are random, so that ids made on different nodes
//     never collide.
//  2. The client's frames (incoming) go through the connection actor, as
//     messages.ClientFrame, to that PID: no lookup per frame. The
//     connection actor keeps the client's messages with an id until their
//     acknowledgement (or error) passes back, for re-attaching (below).
//     disconnect has the connection actor send messages.Disconnect after
//     the frames before it, and stop.
//  3. The store applies, and its child for the client (on B) drains the
//     client's outbox into the Sink: a Deliver with the encoded frames
//     goes to the connection actor on A, which queues them for send. The
//     Sink never blocks, so the store side never overflows; the
//     connection actor's outbox does: it drops what it holds, sends
//     messages.Overflowed to the store and drops server messages and
//     pushes (it decodes frames only then) until the store's fresh
//     snapshot arrives.
//  4. The store lets the connection go (a replacing connection of the same
//     client id, a store that failed or restarts after a fault, a store
//     fenced off by a newer activation) with an empty Deliver; the
//     connection actor writes what it holds, then calls send(nil): the
//     gateway closes the socket with 1012 and the client reconnects,
//     resends and resyncs.
//
// # Re-attaching
//
// When the store's activation goes away (Terminated from the watch: its
// node died, left, or the store moved to a node that joined), the
// connection actor re-attaches: it sends Connect again, with the same
// connection id, until the store's next activation attaches it (retrying
// with backoff for up to Config.ReattachTimeout, 15 s by default: a dead
// node must first be declared dead, a leaving one refuses). The client's
// frames wait meanwhile (bounded by the outbox size). Then it sends the
// new activation, in order: the client's unanswered messages (each
// message id is applied once, so one the old activation did apply is
// only acknowledged again), a resync for the client, and the frames that
// waited. The resync asks for a delta after the last sequence queued for
// the client when the client itself asks for deltas (lily's Go and JS
// clients do), for a snapshot otherwise, or after an overflow. The
// socket stays open: the client sees acknowledgements, the server
// messages it missed and a synced (or snapshot) frame, as after a resync
// of its own. Nothing acknowledged is lost: a store acknowledges and
// broadcasts only what the shared journal holds, and the journal fences
// an older activation off.
//
// A connection also re-attaches when the answer to one of its client's
// messages has not come for Config.AnswerTimeout (5 s by default):
// Proto.Actor delivers at most once between nodes, and a rolling restart
// (a node back on the same address) was seen to lose frames, and to fire
// a grain's watch of a live connection actor so that the store forgot the
// connection. The grain then attaches the connection again (the store
// keeps a client's child for a repeated connection id), and the resent
// messages are answered (TestLostAnswerReattaches).
//
// The connection actor decodes each client frame once (for its id and
// whether it asks for a delta), and of the store's frames, whose type
// transport.PeekType reads from their first bytes, only
// acknowledgements, errors, snapshots and synced frames: server messages
// (broadcasts) are not decoded; the latest one is kept and decoded only
// when re-attaching. A message without an id cannot be told apart from a
// replay and is not resent (at most once, as for any client that sends no
// ids). A connection that has more unanswered messages than fit its
// outbox size is let go instead of re-attached (1012): its client resends
// them itself.
//
// # Nodes coming and going
//
//   - The node hosting a store dies: the connection actor watches the
//     grain's PID and gets Terminated (about 1 ms after the process is
//     gone, from the broken stream; in the tests 6 ms after a halt), and
//     re-attaches. That succeeds once memberlist has declared the node
//     dead (about 1 s: TestStoreHostFails's client had the answer to a
//     message sent at the halt 1.0 s later) and the store is activated on
//     a survivor, where it reloads its model and sequence from the shared
//     journal.
//   - The node hosting a store leaves (Node.Shutdown): it first stops its
//     store activations (up to 1 s), so they finish their journal writes
//     and snapshot their state (a hand-off: the next activation loads the
//     snapshot) while its remote layer still runs; their connections
//     re-attach, and an activation on the leaving node refuses Connect
//     ("node leaving") until the others see it gone (TestStoreHostLeaves:
//     the answer to a message sent as the node began to leave came
//     160 ms later).
//   - The node holding a socket dies: the grain watches the connection
//     actor and detaches the client on Terminated.
//   - A node joins: some identities move to it; the old node's placement
//     actor (lookup.go) stops the moved activations when it processes the
//     new topology (TestLookupActivatesOnce), and their connections
//     re-attach to the new owner
//     (TestStoreMovesToJoiningNode). Two activations may briefly coexist
//     (pitfall 6): the journal must fence them, as pgjournal's activation
//     tokens do. This package's tests share a memjournal, which stands in
//     for PostgreSQL and does not fence; the multi-process tests in tests/
//     (lilyd over PostgreSQL: SIGKILL, rolling restart, SIGSTOP split
//     brain, a node joining) check the journal for exactly-once.
//
// # Limits
//
//   - Delivery is at-most-once between the store and a connection actor
//     (a Deliver lost with a broken stream is not resent); the resync sent
//     on re-attaching, or the client's own when it notices a gap, recovers
//     it. A Connect delivered twice by a retry is recognised and not
//     attached again.
package cluster
