// Package cluster is lily's membership layer: nodes find each other and
// detect failures with hashicorp/memberlist, and protoactor's cluster layer
// (where stores will become grains, placed by disthash) sees the result
// through a ClusterProvider. Grain kinds come in the next part.
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
//     about 2.2 s and stops the gRPC server at once if its ctx ends first.
//     StartMember panics instead of returning errors: Start recovers and
//     returns them, and checks the ports before it starts anything.
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
// Start registers no grain kind: protoactor does not need one (it
// registers its own pub-sub kind, "prototopic", which members advertise
// and Members leaves out). Config.Kinds are only advertised for now.
package cluster
