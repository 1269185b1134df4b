package redis_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/raftkit/raftkit/adapters/storage/redis"
	"github.com/raftkit/raftkit/raft/raftdata"
)

var benchBatches = []int{1, 16, 128, 1024}

const benchEntryBytes = 128

// BenchmarkAppend measures the store's Save of batches of 128-byte entries
// with a hard state, as a follower appends (entries/s is the figure), on
// the tests' server (append-only file fsynced on every write).
// BenchmarkRawPush, in the same run, writes the same bytes (the 17-byte
// header and the data of each entry) with one RPUSH per batch (one round
// trip, as a pipeline of one command): the server's limit for them.
func BenchmarkAppend(b *testing.B) {
	for _, n := range benchBatches {
		b.Run(fmt.Sprintf("batch=%d", n), func(b *testing.B) {
			s := openStore(b, redis.Config{Group: 9, Node: raftdata.NodeID(nextNode.Add(1))})
			defer s.Close()
			data := make([]byte, benchEntryBytes)
			batch := make([]raftdata.Entry, n)
			next := uint64(1)
			ctx := context.Background()
			b.SetBytes(int64(n * benchEntryBytes))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				for k := range batch {
					batch[k] = raftdata.Entry{Index: next + uint64(k), Term: 1, Data: data}
				}
				next += uint64(n)
				if err := s.Save(ctx, &raftdata.HardState{Term: 1, Vote: 1, Commit: next - 1}, batch); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "entries/s")
		})
	}
}

func BenchmarkRawPush(b *testing.B) {
	c := shared.srv.client(b)
	ctx := context.Background()
	for _, n := range benchBatches {
		b.Run(fmt.Sprintf("batch=%d", n), func(b *testing.B) {
			key := fmt.Sprintf("{raw:%d}:log", nextNode.Add(1))
			defer c.Del(ctx, key)
			elems := make([]any, n)
			next := uint64(1)
			b.SetBytes(int64(n * benchEntryBytes))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				for k := range elems {
					e := make([]byte, 17+benchEntryBytes)
					binary.BigEndian.PutUint64(e, next+uint64(k))
					binary.BigEndian.PutUint64(e[8:], 1)
					elems[k] = e
				}
				next += uint64(n)
				if err := c.RPush(ctx, key, elems...).Err(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "entries/s")
		})
	}
}
