package testutil

import (
	"slices"
	"sync"
	"testing"

	"github.com/lily-go/lily/transport"
)

// FrameLog keeps the frames a test client received, in order, and lets the
// test take them one by one. The raw clients (WSClient, SSEClient) embed
// one; an in-process client adds to one from its send function.
type FrameLog struct {
	tb     testing.TB
	mu     sync.Mutex
	frames []transport.Frame // guarded by mu
	cursor int               // guarded by mu; the next frame Next returns
}

// NewFrameLog returns an empty log that fails tb when a wait times out.
func NewFrameLog(tb testing.TB) *FrameLog { return &FrameLog{tb: tb} }

// Add appends a received frame.
func (l *FrameLog) Add(f transport.Frame) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.frames = append(l.frames, f)
}

// Next waits for the next frame.
func (l *FrameLog) Next() transport.Frame {
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

// NextOf skips frames until one of the given types, and returns it.
func (l *FrameLog) NextOf(types ...transport.FrameType) transport.Frame {
	l.tb.Helper()
	for {
		if f := l.Next(); slices.Contains(types, f.Type) {
			return f
		}
	}
}

// Skip makes Next return only frames that arrive after this call.
func (l *FrameLog) Skip() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cursor = len(l.frames)
}

// Count returns how many frames were received so far.
func (l *FrameLog) Count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.frames)
}

// Frames returns every frame received so far.
func (l *FrameLog) Frames() []transport.Frame {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]transport.Frame(nil), l.frames...)
}
