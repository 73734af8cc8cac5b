// Command lily-bench is the load generator of lily: it drives one or more
// lily nodes (lilyd) over real WebSockets, measures throughput and latency,
// and checks at the end that every client converged on the same state.
//
// # Load runs
//
// A run opens -stores x -clients connections (stores are named bench-0,
// bench-1, ...; clients go round-robin over the -url list, so a cluster can
// be loaded through several nodes or a load balancer), asks every client
// for its store's state (a resync: this is the baseline), then lets the
// first -senders clients of each store send messages: in a closed loop
// (-rate 0, each sender sends its next message when the previous one is
// acknowledged) or at -rate messages per second each. After -warmup, it
// measures for -duration.
//
// The messages are the counter kind's Increment, the todo kind's Toggle of
// an item that does not exist, or, with -payload-bytes N, the todo kind's
// Rename of an item that does not exist with an N-byte title (at most
// todo.MaxTitle): a larger payload that leaves the model unchanged.
//
// It reports:
//
//   - acknowledged messages per second and deliveries per second (the
//     server_message frames all clients received);
//   - ack latency, from a sender's write to its acknowledge, and delivery
//     latency, from the sender's write to another client's receipt of that
//     message, as p50/p90/p99/p99.9/max/mean. Payloads carry no timestamp:
//     each sender remembers its send time per message id, the acknowledge
//     maps the id to the store's sequence, and a per-store ring maps the
//     sequence to the send time for the receivers (a receipt that arrives
//     before the acknowledge waits for it);
//   - errors by kind: error frames by code, failed connections, unexpected
//     closes by close code;
//   - overflow snapshots: a client whose outbox overflowed on the server
//     gets a snapshot instead of the messages it missed. This is allowed by
//     the protocol and counted, not an error;
//   - the bench's own CPU use and, from the nodes' /metrics, theirs.
//
// Latencies go into a log-linear histogram (1 ns buckets below 256 ns, then
// 128 buckets per power of two: under 0.4 % error, up to 60 s, 32 KiB).
//
// # Convergence check
//
// When the measurement ends the senders stop, the bench waits (up to
// -drain-timeout) until every message is acknowledged and every client has
// received everything, and every client resyncs once more. The checks, each
// printed as PASS or FAIL:
//
//   - connections: every connection opened and the baseline snapshots of
//     each store agree;
//   - drained: nothing was still in flight after -drain-timeout;
//   - no_errors: no error frame, failed connection or unexpected close;
//   - resync: every open client answered the final resync;
//   - sequence: each snapshot's sequence is the store's starting sequence
//     plus the messages acknowledged to its senders;
//   - agreement: all clients of a store have the same sequence and model;
//   - model: a counter's Count grew by exactly its acknowledged Increments
//     (the todo messages leave the model as it was);
//   - gap_free: every client saw the sequences one by one (acks for its own
//     messages, server_message for the others'), with a snapshot only after
//     an overflow.
//
// The exit status is 0 when every check passed, 1 otherwise, 2 for bad
// flags. The stores must not be written to by anyone else during a run.
//
// # Connect-only runs
//
// With -connect-only N the bench opens N idle connections spread over
// -stores, waits until the nodes count them, lets them settle (-settle),
// scrapes the nodes' /metrics before and after, holds the connections for
// -hold in all and closes them. It reports (after - before) / N for
// go_memstats_heap_inuse_bytes, go_memstats_stack_inuse_bytes,
// process_resident_memory_bytes and go_goroutines, plus lily_connections_open,
// and its own memory per connection.
//
// A process may have at most 20,000 open files on the machines this was
// written for, so one bench process opens at most 18,000 connections (load
// or connect-only); a lilyd has the same limit, so keep a node below about
// 19,000 connections. Use several bench processes for more.
//
// # Output
//
// A human-readable table, then one line of JSON with every number
// ({"acked_per_sec":…,"deliveries_per_sec":…,"ack_p50_ms":…,…}); -json-only
// prints the JSON line alone. Progress lines go to stderr every -progress.
//
// # Behaviour
//
// Each connection has one reader goroutine; a sender writes from its own
// goroutine. Connections are opened at -connect-rate per second. Every
// goroutine ends with the run and every socket is closed with 1000. The
// first SIGINT (or SIGTERM) ends the measurement early: the run still
// drains, checks and prints what it measured; a second one kills the
// process. Memory is bounded for runs of any length: histograms, rings and
// per-connection state are fixed in size. -cpuprofile writes the bench's own
// CPU profile.
//
// # Examples
//
// Build and start a node, then load it:
//
//	go build -o /tmp/lilyd ./cmd/lilyd && go build -o /tmp/lily-bench ./cmd/lily-bench
//	/tmp/lilyd -listen 127.0.0.1:8080 &
//
//	# 1 store, 10 clients, closed loop, 10 s:
//	lily-bench -url ws://127.0.0.1:8080 -stores 1 -clients 10 -duration 10s
//
//	# 100 stores x 10 clients, 10 messages/s per client, MessagePack:
//	lily-bench -stores 100 -clients 10 -rate 10 -format msgpack
//
//	# fan-out: 1 sender and 199 receivers:
//	lily-bench -stores 1 -clients 200 -senders 1
//
//	# 150-byte payloads (todo kind), JSON line only:
//	lily-bench -payload-bytes 150 -json-only
//
//	# a cluster behind three nodes:
//	lily-bench -url ws://127.0.0.1:8080,ws://127.0.0.1:8081,ws://127.0.0.1:8082 -stores 30
//
//	# memory per idle connection on the server:
//	lily-bench -connect-only 5000 -stores 50 -hold 10s
package main
