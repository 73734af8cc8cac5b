package testutil

import (
	"sync"
	"testing"

	"github.com/lily-go/lily/transport"
)

// frameLog keeps the frames a test client received, in order, and lets the
// test take them one by one. The raw clients (WSClient, SSEClient) embed it.
type frameLog struct {
	tb     testing.TB
	mu     sync.Mutex
	frames []transport.Frame // guarded by mu
	cursor int               // guarded by mu; the next frame Next returns
}

func (l *frameLog) add(f transport.Frame) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.frames = append(l.frames, f)
}

// Next waits for the next frame.
func (l *frameLog) Next() transport.Frame {
	l.tb.Helper()
	Eventually(l.tb, func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		return len(l.frames) > l.cursor
	}, "no frame came")
	l.mu.Lock()
	defer l.mu.Unlock()
	f := l.frames[l.cursor]
	l.cursor++
	return f
}

// NextOf skips frames until one of type t, and returns it.
func (l *frameLog) NextOf(t transport.FrameType) transport.Frame {
	l.tb.Helper()
	for {
		if f := l.Next(); f.Type == t {
			return f
		}
	}
}

// Frames returns every frame received so far.
func (l *frameLog) Frames() []transport.Frame {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]transport.Frame(nil), l.frames...)
}
