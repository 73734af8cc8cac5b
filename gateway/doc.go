// Package gateway is the HTTP side of a lily node: it serves WebSocket
// connections at GET /ws/{kind}/{name}?client_id=ID (PROTOCOL.md), the
// HTTP fallback on the same address for networks that block WebSockets (an
// event stream of the server's frames for GET with Accept:
// text/event-stream, the client's frames by POST), the browser client at
// /lily.js, and /healthz, /readyz and /metrics (Prometheus).
//
// # Mental model
//
// The gateway knows nothing of how stores run: it reaches them through a
// Resolver (a single node's server.Registry, or a cluster node). For each
// connection it validates the request before the upgrade (store name,
// client id, origin, authentication), attaches the connection to its store
// and hands every frame the client sends to the store. Frames for the client
// come back through the send function it gave the store, which writes every
// frame queued for the client in one writev system call. JSON envelopes go
// out in text frames, MessagePack ones in binary frames.
//
// An event stream is a connection like a WebSocket: it is attached
// through the same Resolver.Connect, after the same checks, and counted,
// limited and shut down with the WebSockets. A POST hands its frames to
// the store of its client's open stream; POSTs of one client are handled
// one at a time, in order.
//
// # Limits and slow clients
//
// A frame over Config.ReadLimit closes the connection with 1009. A socket
// that accepts nothing for Config.WriteTimeout is closed with 1013; a client
// that is only slow is handled by its store (it gets a fresh snapshot
// instead of the frames it missed). Idle clients are pinged every
// Config.PingInterval and dropped after two silent intervals. Shutdown
// closes every connection with 1001.
//
// # Concurrency
//
// Each connection owns one goroutine, its reader; writes come from the
// store's side and from the ping timer, one at a time. Every method of
// Gateway is safe for concurrent use.
//
// # Example
//
//	registry, _ := server.NewRegistry(server.Config{}, actors.NewKind("counter", counter.Store(), ser))
//	gw, _ := gateway.New(registry, gateway.Config{})
//	srv := &http.Server{Addr: ":8080", Handler: gw}
//	go srv.ListenAndServe()
//	...
//	gw.Shutdown(ctx) // 1001 to every client
//	srv.Shutdown(ctx)
//	registry.Stop()
package gateway
