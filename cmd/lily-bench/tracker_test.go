package main

import (
	"strconv"
	"strings"
	"testing"
)

func TestSeqTracker(t *testing.T) {
	// Events: "S5" a snapshot at 5 the client asked for, "U5" one it did
	// not ask for (an overflow), "5" an ack or server_message.
	cases := []struct {
		name       string
		events     string
		violations int
		overflows  int
		want       string // in the first violation
	}{
		{"in order from zero", "S0 1 2 3 4", 0, 0, ""},
		{"in order from a baseline", "S41 42 43 S43", 0, 0, ""},
		{"resync at the end with nothing new", "S0 1 2 S2", 0, 0, ""},
		{"repeated sequence", "S0 1 2 2 3", 1, 0, "repeated or out of order"},
		{"sequence goes back", "S0 1 2 3 1", 1, 0, "repeated or out of order"},
		{"gap never covered", "S0 1 2 5 6", 1, 0, "no snapshot covered"},
		{"gap covered by an overflow snapshot", "S0 1 2 5 6 U9 10 11", 0, 1, ""},
		{"gap covered by a snapshot at its end", "S0 1 3 U3 4", 0, 1, ""},
		{"overflow snapshot without a visible gap", "S0 1 2 U6 7", 0, 1, ""},
		{"snapshot goes back", "S0 1 2 3 4 5 S3", 1, 0, "went back"},
		{"overflow snapshot below a gap", "S0 1 5 U4", 2, 1, "went back"},
		{"asked-for snapshot skips without overflow", "S0 1 2 S5 6", 1, 0, "without an overflow"},
		{"asked-for snapshot skips, overflow follows", "S0 1 2 S5 U7 8", 0, 1, ""},
		{"frames before the baseline", "3 4 S4 5 6", 0, 0, ""},
		{"frames before the baseline beyond it", "3 4 S2 3", 2, 0, "below sequence 4"},
		{"nothing but a baseline", "S7", 0, 0, ""},
		{"two gaps, one snapshot", "S0 1 3 6 U8 9", 0, 1, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var tr seqTracker
			for _, ev := range strings.Fields(tc.events) {
				switch ev[0] {
				case 'S', 'U':
					n, err := strconv.ParseUint(ev[1:], 10, 64)
					if err != nil {
						t.Fatal(err)
					}
					tr.snapshot(n, ev[0] == 'S')
				default:
					n, err := strconv.ParseUint(ev, 10, 64)
					if err != nil {
						t.Fatal(err)
					}
					tr.sequenced(n)
				}
			}
			n, first := tr.finish()
			if n != tc.violations {
				t.Errorf("violations = %d (first: %q), want %d", n, first, tc.violations)
			}
			if tr.overflows != tc.overflows {
				t.Errorf("overflows = %d, want %d", tr.overflows, tc.overflows)
			}
			if tc.want != "" && !strings.Contains(first, tc.want) {
				t.Errorf("first violation %q does not mention %q", first, tc.want)
			}
			if tc.violations == 0 && first != "" {
				t.Errorf("unexpected violation %q", first)
			}
		})
	}
}
