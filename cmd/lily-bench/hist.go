package main

import (
	"math"
	"math/bits"
	"sync/atomic"
	"time"
)

// The histogram is log-linear, like HdrHistogram: values below 2^histSubBits
// nanoseconds have a bucket each; above, every power of two is split into
// 2^(histSubBits-1) equal buckets. A bucket's width is therefore at most
// 1/2^(histSubBits-1) of its lower bound (0.8 % with 8 bits), and the value
// reported for it, its midpoint, is within 0.4 % of any value it holds.
const (
	histSubBits  = 8
	histSubCount = 1 << histSubBits        // exact buckets: 0 .. 255 ns
	histHalf     = histSubCount / 2        // buckets per power of two above
	histMax      = int64(60 * time.Second) // larger values count as histMax
	// histBuckets covers 0 .. histMax: bits.Len64(60e9) = 36.
	histBuckets = histSubCount + (36-histSubBits)*histHalf
)

// histogram records durations with a few-per-mille error and fixed memory
// (about 32 KiB). record is lock-free and safe for concurrent use; the
// readers (quantile, count, ...) may run concurrently with it and then see
// a slightly stale but consistent-enough picture.
type histogram struct {
	counts [histBuckets]atomic.Uint64
	total  atomic.Uint64
	sum    atomic.Uint64 // nanoseconds, saturating in practice after 584 years
	min    atomic.Int64  // math.MaxInt64 while empty
	max    atomic.Int64
}

// newHistogram returns an empty histogram.
func newHistogram() *histogram {
	h := new(histogram)
	h.min.Store(math.MaxInt64)
	return h
}

// bucketOf returns the bucket of a value in nanoseconds (0 <= v <= histMax).
func bucketOf(v int64) int {
	u := uint64(v)
	if u < histSubCount {
		return int(u)
	}
	shift := bits.Len64(u) - histSubBits // >= 1
	m := u >> uint(shift)                // in [histHalf, histSubCount)
	return histSubCount + (shift-1)*histHalf + int(m) - histHalf
}

// bucketRange returns the smallest and largest value of bucket i.
func bucketRange(i int) (lo, hi int64) {
	if i < histSubCount {
		return int64(i), int64(i)
	}
	j := i - histSubCount
	shift := j/histHalf + 1
	m := int64(j%histHalf + histHalf)
	lo = m << uint(shift)
	hi = lo + (int64(1) << uint(shift)) - 1
	return lo, hi
}

// record adds one duration; negative ones count as zero and those above
// 60 s as 60 s (min and max stay exact).
func (h *histogram) record(d time.Duration) {
	v := int64(d)
	if v < 0 {
		v = 0
	}
	for {
		m := h.max.Load()
		if v <= m || h.max.CompareAndSwap(m, v) {
			break
		}
	}
	for {
		m := h.min.Load()
		if v >= m || h.min.CompareAndSwap(m, v) {
			break
		}
	}
	h.sum.Add(uint64(v))
	if v > histMax {
		v = histMax
	}
	h.counts[bucketOf(v)].Add(1)
	h.total.Add(1)
}

// count returns the number of values recorded.
func (h *histogram) count() uint64 { return h.total.Load() }

// mean returns the average value, or 0 when empty.
func (h *histogram) mean() time.Duration {
	n := h.total.Load()
	if n == 0 {
		return 0
	}
	return time.Duration(h.sum.Load() / n)
}

// maxValue returns the largest value recorded, or 0 when empty.
func (h *histogram) maxValue() time.Duration {
	if h.total.Load() == 0 {
		return 0
	}
	return time.Duration(h.max.Load())
}

// quantile returns the value at quantile q (0 <= q <= 1): the value of the
// ceil(q*n)-th smallest recorded value (the smallest one for q = 0), to
// within the bucket error, and never outside [min, max]. It returns 0 when
// the histogram is empty.
func (h *histogram) quantile(q float64) time.Duration {
	n := h.total.Load()
	if n == 0 {
		return 0
	}
	lo, hi := h.min.Load(), h.max.Load()
	if q <= 0 {
		return time.Duration(lo)
	}
	if q >= 1 {
		return time.Duration(hi)
	}
	rank := uint64(math.Ceil(q * float64(n)))
	if rank < 1 {
		rank = 1
	}
	var seen uint64
	for i := range h.counts {
		seen += h.counts[i].Load()
		if seen >= rank {
			blo, bhi := bucketRange(i)
			v := blo + (bhi-blo)/2
			return time.Duration(min(max(v, lo), hi))
		}
	}
	return time.Duration(hi) // only when counts raced ahead of total
}
