package actors

import (
	"bytes"
	"testing"
)

func frame(n int, b byte) []byte { return bytes.Repeat([]byte{b}, n) }

func TestOutbox(t *testing.T) {
	type step struct {
		push     []byte
		kind     frameKind
		snapshot bool
		take     bool
		want     pushResult
		wantTake [][]byte
		resync   bool
	}
	cases := []struct {
		name  string
		steps []step
	}{
		{"first push schedules, later ones queue", []step{
			{push: frame(10, 'a'), kind: kindDroppable, want: pushScheduled},
			{push: frame(10, 'b'), kind: kindReliable, want: pushQueued},
			{take: true, wantTake: [][]byte{frame(10, 'a'), frame(10, 'b')}},
			{take: true},
			{push: frame(10, 'c'), kind: kindDroppable, want: pushScheduled},
		}},
		{"overflow drops server messages and asks for a snapshot once drained", []step{
			{push: frame(40, 'a'), kind: kindDroppable, want: pushScheduled},
			{push: frame(40, 'b'), kind: kindReliable, want: pushQueued},
			{push: frame(40, 'c'), kind: kindDroppable, want: pushDropped},
			{push: frame(10, 'd'), kind: kindDroppable, want: pushDropped},
			{push: frame(10, 'e'), kind: kindReliable, want: pushQueued},
			{take: true, wantTake: [][]byte{frame(40, 'b'), frame(10, 'e')}},
			{take: true, resync: true},
			{push: frame(10, 'f'), kind: kindDroppable, want: pushDropped},
			{push: frame(30, 's'), snapshot: true, want: pushScheduled},
			{push: frame(10, 'g'), kind: kindDroppable, want: pushQueued},
			{take: true, wantTake: [][]byte{frame(30, 's'), frame(10, 'g')}},
			{take: true},
		}},
		{"a lone frame over the limit overflows and schedules the snapshot request", []step{
			{push: frame(200, 'a'), kind: kindDroppable, want: pushScheduled},
			{take: true, resync: true},
		}},
		{"after an overflow only the newest acknowledgement with an id is kept", []step{
			{push: frame(20, '1'), kind: kindAck, want: pushScheduled},
			{push: frame(20, 'e'), kind: kindReliable, want: pushQueued},
			{push: frame(20, '2'), kind: kindAck, want: pushQueued},
			{push: frame(20, 'm'), kind: kindDroppable, want: pushQueued},
			{push: frame(30, 'x'), kind: kindDroppable, want: pushDropped}, // overflow: m dropped, 1 implied by 2
			{push: frame(20, '3'), kind: kindAck, want: pushQueued},        // replaces 2
			{push: frame(20, '4'), kind: kindAck, want: pushQueued},        // replaces 3
			{take: true, wantTake: [][]byte{frame(20, 'e'), frame(20, '4')}},
			{take: true, resync: true},
		}},
		{"reliable frames alone over the limit cut the client off", []step{
			{push: frame(60, 'a'), kind: kindReliable, want: pushScheduled},
			{push: frame(60, 'b'), kind: kindReliable, want: pushCutOff},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := newOutbox(100)
			for i, s := range tc.steps {
				switch {
				case s.take:
					got, next := o.take(nil)
					resync := next == drainResync
					if len(got) != len(s.wantTake) || resync != s.resync {
						t.Fatalf("step %d: take gave %d frames, resync %v; want %d, %v", i, len(got), resync, len(s.wantTake), s.resync)
					}
					for j := range got {
						if !bytes.Equal(got[j], s.wantTake[j]) {
							t.Fatalf("step %d: frame %d is %q, want %q", i, j, got[j], s.wantTake[j])
						}
					}
				case s.snapshot:
					if got := o.pushSnapshot(s.push); got != s.want {
						t.Fatalf("step %d: pushSnapshot = %v, want %v", i, got, s.want)
					}
				default:
					if got := o.push(s.push, s.kind); got != s.want {
						t.Fatalf("step %d: push = %v, want %v", i, got, s.want)
					}
				}
			}
		})
	}
}

func TestClosedOutboxDropsEverything(t *testing.T) {
	o := newOutbox(100)
	o.push(frame(10, 'a'), kindReliable)
	o.close(false)
	if got := o.push(frame(10, 'b'), kindReliable); got != pushDropped {
		t.Fatalf("push after close = %v", got)
	}
	if got := o.pushSnapshot(frame(10, 'c')); got != pushDropped {
		t.Fatalf("pushSnapshot after close = %v", got)
	}
	if got, next := o.take(nil); got != nil || next != drainIdle {
		t.Fatalf("take after close = %q, %v", got, next)
	}
}

func TestFinishLetsGoOnceDrained(t *testing.T) {
	o := newOutbox(100)
	o.push(frame(10, 'e'), kindReliable)
	if got := o.finish(); got != pushQueued {
		t.Fatalf("finish = %v, want the drain already scheduled", got)
	}
	if got := o.push(frame(10, 'x'), kindReliable); got != pushDropped {
		t.Fatalf("push after finish = %v", got)
	}
	if got, next := o.take(nil); len(got) != 1 || next != drainIdle {
		t.Fatalf("first take = %q, %v", got, next)
	}
	if got, next := o.take(nil); got != nil || next != drainFinish || !o.lettingGo() {
		t.Fatalf("second take = %q, %v, letting go %v", got, next, o.lettingGo())
	}
}
