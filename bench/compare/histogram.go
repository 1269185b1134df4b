package main

import "math/bits"

// histogram counts latencies in microseconds in log-linear buckets: 64
// buckets per power of two, so a percentile is off by under 2%, in a few
// kilobytes whatever the run's length (a list of samples would grow by
// gigabytes over a 10-minute run and distort the memory it measures).
type histogram struct {
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

func (h *histogram) add(us uint64) {
	b := bucketOf(us)
	if b >= len(h.counts) {
		b = len(h.counts) - 1
	}
	h.counts[b]++
	h.total++
}

func (h *histogram) merge(o *histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.total += o.total
}

// percentile returns the latency below which a fraction p of samples lie.
func (h *histogram) percentile(p float64) uint64 {
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
