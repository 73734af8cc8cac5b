package testutil

import (
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// Proxy is a TCP proxy on 127.0.0.1 for tests that need a network fault
// between a client and a server: it forwards every connection it accepts
// to a target address, and can stop forwarding the server's bytes or cut
// every connection. Its methods are safe for concurrent use.
type Proxy struct {
	target   string
	ln       net.Listener
	drop     atomic.Bool  // discard server->client bytes
	accepted atomic.Int64 // connections accepted so far
	wg       sync.WaitGroup

	mu     sync.Mutex
	conns  map[net.Conn]struct{} // guarded by mu; both ends of every proxied connection
	closed bool                  // guarded by mu
}

// NewProxy starts a proxy to target (host:port) on a free port of
// 127.0.0.1. It is closed by tb's cleanup.
func NewProxy(tb testing.TB, target string) *Proxy {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("proxy: listen: %v", err)
	}
	p := &Proxy{target: target, ln: ln, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	tb.Cleanup(p.Close)
	return p
}

// Addr returns the proxy's address, host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Accepted returns the number of connections the proxy has accepted.
func (p *Proxy) Accepted() int { return int(p.accepted.Load()) }

// DropDownstream stops forwarding the bytes the server sends: they are
// read and discarded, as if lost. The client's bytes still reach the
// server.
func (p *Proxy) DropDownstream() { p.drop.Store(true) }

// RestoreDownstream forwards the server's bytes again.
func (p *Proxy) RestoreDownstream() { p.drop.Store(false) }

// CutAll closes every proxied connection, both ends. The proxy keeps
// accepting new ones.
func (p *Proxy) CutAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		_ = c.Close()
	}
}

// Close stops accepting, cuts every connection and waits for the proxy's
// goroutines. It is idempotent.
func (p *Proxy) Close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	_ = p.ln.Close()
	p.CutAll()
	p.wg.Wait()
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		down, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.accepted.Add(1)
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = down.Close()
			continue
		}
		if !p.track(down, up) {
			_ = down.Close()
			_ = up.Close()
			return
		}
		p.wg.Add(2)
		go p.pipe(up, down, nil)     // client -> server
		go p.pipe(down, up, &p.drop) // server -> client
	}
}

func (p *Proxy) track(cs ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	for _, c := range cs {
		p.conns[c] = struct{}{}
	}
	return true
}

// pipe copies from src to dst until either fails, discarding what it reads
// while drop is set; then it closes both.
func (p *Proxy) pipe(dst, src net.Conn, drop *atomic.Bool) {
	defer p.wg.Done()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && (drop == nil || !drop.Load()) {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				break
			}
		}
		if err != nil {
			break // EOF, a cut or a reset: the end of this connection
		}
	}
	_ = dst.Close()
	_ = src.Close()
	p.mu.Lock()
	delete(p.conns, dst)
	delete(p.conns, src)
	p.mu.Unlock()
}
