// Package latency records the latencies of benchmark writes in a histogram of
// fixed size, shared by bench/cluster and bench/compare.
package latency

import "math/bits"

// Histogram counts latencies in microseconds in log-linear buckets: 64
// buckets per power of two, so a percentile is off by under 2%, in a few
// kilobytes whatever the run's length (a list of samples would grow by
// gigabytes over a 10-minute run and distort the memory it measures).
type Histogram struct {
	counts [64 * 64]uint64
	total  uint64
}

func bucketOf(us uint64) int {
	if us < 64 {
		return int(us) // exact below 64 µs
	}
	e := bits.Len64(us) - 7 // keep 7 significant bits: 64 buckets per octave
	return 64 + e*64 + int(us>>uint(e)) - 64
}

func bucketValue(b int) uint64 {
	if b < 64 {
		return uint64(b)
	}
	e := (b - 64) / 64
	m := uint64((b-64)%64 + 64)
	return m << uint(e)
}

// Add counts one latency of us microseconds.
func (h *Histogram) Add(us uint64) {
	b := bucketOf(us)
	if b >= len(h.counts) {
		b = len(h.counts) - 1
	}
	h.counts[b]++
	h.total++
}

// Merge adds o's counts to h.
func (h *Histogram) Merge(o *Histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.total += o.total
}

// Percentile returns the latency below which a fraction p of samples lie.
func (h *Histogram) Percentile(p float64) uint64 {
	if h.total == 0 {
		return 0
	}
	rank := uint64(float64(h.total) * p)
	var seen uint64
	for b, c := range h.counts {
		seen += c
		if seen > rank {
			return bucketValue(b)
		}
	}
	return bucketValue(len(h.counts) - 1)
}
