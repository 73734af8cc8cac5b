package client_test

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/lily-go/lily/client"
)

func TestBackoffDelay(t *testing.T) {
	lily := client.Backoff{} // lily's defaults: 1s, 30s, x2, ±25%
	custom := client.Backoff{Base: 100 * time.Millisecond, Max: time.Second, Multiplier: 3, Jitter: -1}
	tests := []struct {
		name    string
		b       client.Backoff
		attempt int
		random  float64
		want    time.Duration
	}{
		{"base", lily, 0, 0.5, time.Second},
		{"base, low jitter", lily, 0, 0, 750 * time.Millisecond},
		{"base, high jitter", lily, 0, 1, 1250 * time.Millisecond},
		{"doubled", lily, 1, 0.5, 2 * time.Second},
		{"doubled again", lily, 2, 0.5, 4 * time.Second},
		{"16s", lily, 4, 0.5, 16 * time.Second},
		{"16s, high jitter", lily, 4, 1, 20 * time.Second},
		{"capped", lily, 5, 0.5, 30 * time.Second},
		{"capped, low jitter", lily, 5, 0, 22500 * time.Millisecond},
		{"capped, jitter never exceeds max", lily, 5, 1, 30 * time.Second},
		{"far past the cap", lily, 10000, 0.5, 30 * time.Second},
		{"negative attempt", lily, -3, 0.5, time.Second},
		{"random out of range", lily, 0, 7, 1250 * time.Millisecond},
		{"no jitter", custom, 0, 0, 100 * time.Millisecond},
		{"times three", custom, 1, 0.99, 300 * time.Millisecond},
		{"times nine", custom, 2, 0.3, 900 * time.Millisecond},
		{"custom cap", custom, 3, 0.5, time.Second},
		{"multiplier one", client.Backoff{Base: time.Second, Multiplier: 1, Jitter: -1}, 50, 0.5, time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.b.Delay(tt.attempt, tt.random); got != tt.want {
				t.Fatalf("Delay(%d, %v) = %v, want %v", tt.attempt, tt.random, got, tt.want)
			}
		})
	}
}

// With a random source, every delay stays within the jitter bounds and
// the cap, and the delays spread.
func TestBackoffJitterBounds(t *testing.T) {
	b := client.Backoff{Base: 10 * time.Millisecond, Max: 500 * time.Millisecond, Multiplier: 2, Jitter: 0.5}
	rng := rand.New(rand.NewPCG(1, 2))
	for attempt := range 8 {
		plain := min(10*time.Millisecond<<attempt, 500*time.Millisecond)
		low, high := plain/2, min(plain*3/2, 500*time.Millisecond)
		seen := map[time.Duration]bool{}
		for range 100 {
			d := b.Delay(attempt, rng.Float64())
			if d < low || d > high {
				t.Fatalf("attempt %d: delay %v outside [%v, %v]", attempt, d, low, high)
			}
			seen[d] = true
		}
		if len(seen) < 10 {
			t.Fatalf("attempt %d: only %d distinct delays in 100", attempt, len(seen))
		}
	}
}
