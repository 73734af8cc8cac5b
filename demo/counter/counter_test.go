package counter_test

import (
	"testing"

	"github.com/lily-go/lily/demo/counter"
)

func TestUpdate(t *testing.T) {
	cases := []struct {
		name  string
		model counter.Counter
		msg   counter.Msg
		want  counter.Counter
	}{
		{"increment", counter.Counter{Count: 1}, counter.Increment{}, counter.Counter{Count: 2}},
		{"decrement below zero", counter.Counter{}, counter.Decrement{}, counter.Counter{Count: -1}},
		{"add", counter.Counter{Count: 2}, counter.Add{N: 40}, counter.Counter{Count: 42}},
		{"add negative", counter.Counter{Count: 2}, counter.Add{N: -5}, counter.Counter{Count: -3}},
		{"reset", counter.Counter{Count: 9}, counter.Reset{}, counter.Counter{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := counter.Update(tc.model, tc.msg); got != tc.want {
				t.Fatalf("Update(%+v, %#v) = %+v, want %+v", tc.model, tc.msg, got, tc.want)
			}
		})
	}
}
