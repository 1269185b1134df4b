package latency

import "testing"

func TestHistogramPercentiles(t *testing.T) {
	var h Histogram
	for us := uint64(1); us <= 100000; us++ {
		h.Add(us)
	}
	for _, c := range []struct {
		p    float64
		want uint64
	}{{0.5, 50000}, {0.99, 99000}, {0.01, 1000}} {
		got := h.Percentile(c.p)
		if got < c.want*97/100 || got > c.want*103/100 {
			t.Errorf("p%v = %d, want about %d", c.p*100, got, c.want)
		}
	}
	for us := uint64(0); us < 200; us++ {
		if v := bucketValue(bucketOf(us)); v != us && us < 128 {
			t.Errorf("bucket of %d holds %d", us, v)
		}
	}
}
