// Command storagechoice measures durable append throughput of raftkit's
// purpose-built log (adapters/storage/disk) against the two embedded engines
// the project considered instead: go.etcd.io/bbolt and
// github.com/cockroachdb/pebble/v2. It lives in its own module so that
// neither engine enters raftkit's go.mod.
//
// Workload (identical for every engine): append N batches of B entries, each
// entry a 128-byte payload (the same bytes for all engines) with consecutive
// indexes from 1, together with a small hard state (term, vote, commit) in
// the same durable unit, as Raft does. Each batch is durable (synced) before
// the next one starts; one batch = one durable commit = one "sync" below.
// Each configuration runs for -d (default 3 s) in a fresh directory created
// under -dir (default os.TempDir(); it must be on the filesystem you want to
// measure), which is removed afterwards. Opening and closing are not timed.
//
// Engine configuration (defaults everywhere except what is listed):
//
//   - disk: disk.Open(ctx, dir, disk.Config{}) — 64 MiB segments, NoSync false;
//     one Save(ctx, &hs, batch) per batch (one record, one fdatasync).
//     Entries are raftdata.Entry{Index, Term: 1, Type: EntryNormal, Data}.
//   - bbolt: bbolt.Open(dir/bolt.db, 0o600, nil) — bbolt.DefaultOptions,
//     NoSync false, default FillPercent; one db.Update per batch, which
//     Puts every entry into bucket "entries" (key: big-endian uint64 index,
//     value: the 128-byte payload) and the hard state into bucket "meta"
//     (key "hs", value: 24 bytes big-endian term|vote|commit). The commit
//     writes the pages and fdatasyncs, then writes the meta page and
//     fdatasyncs again.
//   - pebble: pebble.Open(dir, &pebble.Options{}) — all defaults (WAL on,
//     memtable flushes and compactions in the background as they come);
//     one pebble.Batch per batch with Set for every entry (key: "e" +
//     big-endian uint64 index, value: the 128-byte payload) and for the hard
//     state (key "hs", same 24 bytes), then Commit(pebble.Sync).
//
// Engines alternate within each round and their order is rotated from round
// to round (-rounds, default 2). The reported figure is the median over the
// rounds (with 2 rounds, the mean of the two).
package main

import (
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"go.etcd.io/bbolt"

	"github.com/raftkit/raftkit/adapters/storage/disk"
	"github.com/raftkit/raftkit/raft/raftdata"
)

const entrySize = 128

// appender is one open engine: append makes batch and hs durable.
type appender interface {
	append(batch []raftdata.Entry, hs raftdata.HardState) error
	close() error
}

type engine struct {
	name string
	open func(dir string) (appender, error)
}

var engines = []engine{
	{"disk", openDisk},
	{"bbolt", openBolt},
	{"pebble", openPebble},
}

// --- raftkit disk ---

type diskApp struct{ s *disk.Storage }

func openDisk(dir string) (appender, error) {
	s, err := disk.Open(context.Background(), dir, disk.Config{})
	if err != nil {
		return nil, err
	}
	return &diskApp{s}, nil
}

func (d *diskApp) append(batch []raftdata.Entry, hs raftdata.HardState) error {
	return d.s.Save(context.Background(), &hs, batch)
}
func (d *diskApp) close() error { return d.s.Close() }

// --- bbolt ---

var (
	bucketEntries = []byte("entries")
	bucketMeta    = []byte("meta")
	keyHS         = []byte("hs")
)

type boltApp struct{ db *bbolt.DB }

func openBolt(dir string) (appender, error) {
	db, err := bbolt.Open(filepath.Join(dir, "bolt.db"), 0o600, nil)
	if err != nil {
		return nil, err
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		if _, err := tx.CreateBucketIfNotExists(bucketEntries); err != nil {
			return err
		}
		_, err := tx.CreateBucketIfNotExists(bucketMeta)
		return err
	})
	if err != nil {
		db.Close()
		return nil, err
	}
	return &boltApp{db}, nil
}

func (b *boltApp) append(batch []raftdata.Entry, hs raftdata.HardState) error {
	return b.db.Update(func(tx *bbolt.Tx) error {
		eb := tx.Bucket(bucketEntries)
		var k [8]byte
		for i := range batch {
			binary.BigEndian.PutUint64(k[:], batch[i].Index)
			if err := eb.Put(k[:], batch[i].Data); err != nil {
				return err
			}
		}
		return tx.Bucket(bucketMeta).Put(keyHS, encodeHS(hs))
	})
}
func (b *boltApp) close() error { return b.db.Close() }

// --- pebble ---

type pebbleApp struct{ db *pebble.DB }

func openPebble(dir string) (appender, error) {
	db, err := pebble.Open(dir, &pebble.Options{})
	if err != nil {
		return nil, err
	}
	return &pebbleApp{db}, nil
}

func (p *pebbleApp) append(batch []raftdata.Entry, hs raftdata.HardState) error {
	b := p.db.NewBatch()
	defer b.Close()
	var k [9]byte
	k[0] = 'e'
	for i := range batch {
		binary.BigEndian.PutUint64(k[1:], batch[i].Index)
		if err := b.Set(k[:], batch[i].Data, nil); err != nil {
			return err
		}
	}
	if err := b.Set(keyHS, encodeHS(hs), nil); err != nil {
		return err
	}
	return b.Commit(pebble.Sync)
}
func (p *pebbleApp) close() error { return p.db.Close() }

func encodeHS(hs raftdata.HardState) []byte {
	v := make([]byte, 24)
	binary.BigEndian.PutUint64(v[0:], hs.Term)
	binary.BigEndian.PutUint64(v[8:], uint64(hs.Vote))
	binary.BigEndian.PutUint64(v[16:], hs.Commit)
	return v
}

// --- driver ---

type result struct{ entriesPerS, syncsPerS float64 }

// run appends batches of size b to a fresh instance of e for d and returns
// the rates.
func run(e engine, base string, b int, d time.Duration, payload []byte) (result, error) {
	dir, err := os.MkdirTemp(base, "storagechoice-"+e.name+"-")
	if err != nil {
		return result{}, err
	}
	defer os.RemoveAll(dir)
	a, err := e.open(dir)
	if err != nil {
		return result{}, fmt.Errorf("%s: open: %w", e.name, err)
	}
	batch := make([]raftdata.Entry, b)
	for i := range batch {
		batch[i] = raftdata.Entry{Term: 1, Type: raftdata.EntryNormal, Data: payload}
	}
	var next uint64 = 1
	var batches int
	start := time.Now()
	var elapsed time.Duration
	for elapsed < d {
		for i := range batch {
			batch[i].Index = next
			next++
		}
		hs := raftdata.HardState{Term: 1, Vote: 1, Commit: next - 1}
		if err := a.append(batch, hs); err != nil {
			a.close()
			return result{}, fmt.Errorf("%s: append: %w", e.name, err)
		}
		batches++
		elapsed = time.Since(start)
	}
	if err := a.close(); err != nil {
		return result{}, fmt.Errorf("%s: close: %w", e.name, err)
	}
	s := elapsed.Seconds()
	return result{float64(batches*b) / s, float64(batches) / s}, nil
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func main() {
	base := flag.String("dir", os.TempDir(), "directory under which fresh store directories are created")
	dur := flag.Duration("d", 3*time.Second, "duration of each configuration")
	rounds := flag.Int("rounds", 2, "rounds (engine order rotated each round)")
	flag.Parse()

	sizes := []int{1, 16, 64, 256}
	payload := make([]byte, entrySize)
	for i := range payload {
		payload[i] = byte(i*7 + 1)
	}

	// res[engine][size] = one result per round
	res := make(map[string]map[int][]result)
	for _, e := range engines {
		res[e.name] = make(map[int][]result)
	}
	for r := 0; r < *rounds; r++ {
		for _, b := range sizes {
			for k := range engines {
				e := engines[(k+r)%len(engines)]
				x, err := run(e, *base, b, *dur, payload)
				if err != nil {
					log.Fatal(err)
				}
				fmt.Fprintf(os.Stderr, "round %d batch %3d %-6s %10.0f entries/s %7.0f syncs/s\n",
					r+1, b, e.name, x.entriesPerS, x.syncsPerS)
				res[e.name][b] = append(res[e.name][b], x)
			}
		}
	}

	fmt.Printf("\nmedian of %d rounds, %v each, %d-byte entries, every batch synced\n\n", *rounds, *dur, entrySize)
	fmt.Printf("| batch | engine | entries/s | syncs/s | vs disk |\n|---:|---|---:|---:|---:|\n")
	var lines []string
	for _, b := range sizes {
		var diskRate float64
		for _, e := range engines {
			var es, ss []float64
			for _, x := range res[e.name][b] {
				es = append(es, x.entriesPerS)
				ss = append(ss, x.syncsPerS)
			}
			me, ms := median(es), median(ss)
			if e.name == "disk" {
				diskRate = me
			}
			fmt.Printf("| %d | %s | %.0f | %.0f | %.2f× |\n", b, e.name, me, ms, me/diskRate)
			lines = append(lines, fmt.Sprintf("storagechoice engine=%s batch=%d entries_per_s=%.0f syncs_per_s=%.0f", e.name, b, me, ms))
		}
	}
	fmt.Println()
	for _, l := range lines {
		fmt.Println(l)
	}
}
