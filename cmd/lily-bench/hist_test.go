package main

import (
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"
)

func TestBucketsAreContiguous(t *testing.T) {
	for i := 0; i < histBuckets-1; i++ {
		_, hi := bucketRange(i)
		lo, _ := bucketRange(i + 1)
		if hi+1 != lo {
			t.Fatalf("bucket %d ends at %d but bucket %d starts at %d", i, hi, i+1, lo)
		}
	}
	if b := bucketOf(histMax); b >= histBuckets {
		t.Fatalf("bucketOf(histMax) = %d, beyond %d buckets", b, histBuckets)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 100000 {
		v := rng.Int64N(histMax + 1)
		lo, hi := bucketRange(bucketOf(v))
		if v < lo || v > hi {
			t.Fatalf("value %d in bucket %d = [%d, %d]", v, bucketOf(v), lo, hi)
		}
		if hi-lo > lo/128 && lo >= histSubCount {
			t.Fatalf("bucket [%d, %d] wider than 1/128 of its start", lo, hi)
		}
	}
}

func TestHistogramQuantiles(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	gen := func(n int, f func() int64) []int64 {
		out := make([]int64, n)
		for i := range out {
			out[i] = f()
		}
		return out
	}
	cases := []struct {
		name   string
		values []int64
	}{
		{"one value", []int64{1234567}},
		{"constant", gen(1000, func() int64 { return 250_000 })},
		{"exact small values", gen(5000, func() int64 { return rng.Int64N(256) })},
		{"uniform 0-10ms", gen(20000, func() int64 { return rng.Int64N(int64(10 * time.Millisecond)) })},
		{"log-uniform 1ns-60s", gen(50000, func() int64 {
			return int64(math.Exp(rng.Float64() * math.Log(float64(histMax))))
		})},
		{"bimodal with a tail", gen(30000, func() int64 {
			switch r := rng.Float64(); {
			case r < 0.7:
				return 100_000 + rng.Int64N(50_000)
			case r < 0.99:
				return 2_000_000 + rng.Int64N(1_000_000)
			default:
				return 500_000_000 + rng.Int64N(int64(time.Second))
			}
		})},
		{"two values", []int64{10, 5_000_000}},
	}
	quantiles := []float64{0, 0.01, 0.5, 0.9, 0.99, 0.999, 1}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHistogram()
			var sum int64
			for _, v := range tc.values {
				h.record(time.Duration(v))
				sum += v
			}
			sorted := slices.Clone(tc.values)
			slices.Sort(sorted)
			n := len(sorted)
			if h.count() != uint64(n) {
				t.Fatalf("count = %d, want %d", h.count(), n)
			}
			if got, want := h.maxValue(), time.Duration(sorted[n-1]); got != want {
				t.Errorf("max = %v, want %v", got, want)
			}
			if got, want := h.mean(), time.Duration(sum/int64(n)); got != want {
				t.Errorf("mean = %v, want %v", got, want)
			}
			for _, q := range quantiles {
				rank := max(int(math.Ceil(q*float64(n))), 1)
				want := sorted[rank-1]
				got := int64(h.quantile(q))
				if diff := got - want; diff < -(want/128+1) || diff > want/128+1 {
					t.Errorf("quantile(%g) = %d, want %d (the %d-th of %d) within 1/128", q, got, want, rank, n)
				}
			}
		})
	}
}

func TestHistogramEdges(t *testing.T) {
	h := newHistogram()
	if h.quantile(0.5) != 0 || h.maxValue() != 0 || h.mean() != 0 {
		t.Fatal("an empty histogram should report zeros")
	}
	h.record(-time.Second) // counts as 0
	h.record(2 * time.Minute)
	if got := h.quantile(0); got != 0 {
		t.Errorf("min = %v, want 0", got)
	}
	if got := h.maxValue(); got != 2*time.Minute {
		t.Errorf("max = %v, want 2m (exact beyond the histogram's range)", got)
	}
	if got := h.quantile(0.99); got < 59*time.Second || got > 2*time.Minute {
		t.Errorf("quantile(0.99) = %v, want in the top bucket", got)
	}
}

func TestHistogramConcurrentRecord(t *testing.T) {
	h := newHistogram()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 1000 {
				h.record(time.Duration(g*1000+i) * time.Microsecond)
			}
		}()
	}
	wg.Wait()
	if h.count() != 8000 {
		t.Fatalf("count = %d, want 8000", h.count())
	}
	if got := h.maxValue(); got != 7999*time.Microsecond {
		t.Fatalf("max = %v", got)
	}
}
