// Command fsync measures what the file system under -dir allows a log that
// syncs every write: for 1 and for 3 concurrent writers (the nodes of a
// cluster in one process share one disk), each appending -size bytes to a
// file of its own and calling fdatasync after each write, it prints the
// fdatasync rate and latency percentiles:
//
//	go run ./bench/fsync -dir /var/tmp -duration 4s
//
// bench/README.md uses it to show the limit of the durable benchmarks.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"time"
)

func main() {
	dir := flag.String("dir", os.TempDir(), "directory on the file system to measure")
	duration := flag.Duration("duration", 4*time.Second, "measured time per writer count")
	size := flag.Int("size", 16<<10, "bytes per write")
	flag.Parse()
	tmp, err := os.MkdirTemp(*dir, "fsync")
	if err != nil {
		fmt.Fprintln(os.Stderr, "fsync:", err)
		os.Exit(1)
	}
	defer os.RemoveAll(tmp)
	for _, writers := range []int{1, 3} {
		lats, err := measure(tmp, writers, *size, *duration)
		if err != nil {
			fmt.Fprintln(os.Stderr, "fsync:", err)
			os.Exit(1)
		}
		slices.Sort(lats)
		rate := float64(len(lats)) / duration.Seconds()
		fmt.Printf("writers=%d fdatasync_per_s=%.0f per_writer=%.0f p50=%v p99=%v\n", writers, rate, rate/float64(writers),
			lats[len(lats)/2].Round(time.Microsecond), lats[len(lats)*99/100].Round(time.Microsecond))
	}
}

// measure runs writers goroutines for d and returns every fdatasync's latency.
func measure(dir string, writers, size int, d time.Duration) ([]time.Duration, error) {
	var mu sync.Mutex
	var all []time.Duration
	var firstErr error
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lats, err := writeLoop(filepath.Join(dir, fmt.Sprintf("w%d-%d", writers, w)), size, d)
			mu.Lock()
			defer mu.Unlock()
			all = append(all, lats...)
			if err != nil && firstErr == nil {
				firstErr = err
			}
		}()
	}
	wg.Wait()
	if firstErr == nil && len(all) == 0 {
		firstErr = fmt.Errorf("no write completed")
	}
	return all, firstErr
}

// writeLoop appends size bytes at a time to a preallocated file and syncs
// each write, as a write-ahead log does, until d has passed.
func writeLoop(path string, size int, d time.Duration) ([]time.Duration, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if err := f.Truncate(256 << 20); err != nil {
		return nil, err
	}
	if err := f.Sync(); err != nil {
		return nil, err
	}
	buf := make([]byte, size)
	var lats []time.Duration
	off := int64(0)
	for end := time.Now().Add(d); time.Now().Before(end); {
		if _, err := f.WriteAt(buf, off); err != nil {
			return lats, err
		}
		off = (off + int64(size)) % (256 << 20)
		t := time.Now()
		if err := syscall.Fdatasync(int(f.Fd())); err != nil {
			return lats, err
		}
		lats = append(lats, time.Since(t))
	}
	return lats, nil
}
