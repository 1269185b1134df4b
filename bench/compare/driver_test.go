package main

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// fakeCluster acknowledges every write, fails write number failAt (if not
// zero), and reports applied minus lose as applied.
type fakeCluster struct {
	failAt, lose uint64
	count        atomic.Uint64
}

func (f *fakeCluster) propose(ctx context.Context, cmd []byte) error {
	if len(cmd) != payloadSize {
		return errors.New("wrong payload size")
	}
	if n := f.count.Add(1); f.failAt != 0 && n >= f.failAt {
		return errors.New("boom")
	}
	time.Sleep(time.Microsecond)
	return nil
}

func (f *fakeCluster) applied() uint64 { return f.count.Load() - f.lose }
func (f *fakeCluster) stop() error     { return nil }

func TestDrive(t *testing.T) {
	res, err := drive(&fakeCluster{}, 4, 10*time.Millisecond, 50*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if res.ops == 0 || res.acked < uint64(res.ops) || res.applied < res.acked {
		t.Fatalf("implausible result %+v", res)
	}
}

func TestDriveFailedWriteAborts(t *testing.T) {
	_, err := drive(&fakeCluster{failAt: 100}, 4, 10*time.Millisecond, 50*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("got %v, want the failed write", err)
	}
}

func TestDriveLostWriteAborts(t *testing.T) {
	_, err := drive(&fakeCluster{lose: 1}, 4, 10*time.Millisecond, 50*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "fewer than") {
		t.Fatalf("got %v, want the applied check to fail", err)
	}
}

func TestMedian(t *testing.T) {
	for _, c := range []struct {
		in   []float64
		want float64
	}{{[]float64{3, 1, 2}, 2}, {[]float64{4, 1}, 2.5}, {[]float64{7}, 7}, {nil, 0}} {
		if got := median(c.in); got != c.want {
			t.Errorf("median(%v) = %v, want %v", c.in, got, c.want)
		}
	}
}
