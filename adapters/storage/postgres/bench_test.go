package postgres_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/raftkit/raftkit/adapters/storage/postgres"
	"github.com/raftkit/raftkit/raft/raftdata"
)

var benchBatches = []int{1, 16, 128, 1024}

const benchEntryBytes = 128

// BenchmarkAppend measures the store's Save of batches of 128-byte entries
// with a hard state, as a follower appends (entries/s is the figure).
// BenchmarkRawInsert, in the same run, measures the same rows written by a
// plain multi-row INSERT and by COPY into a table of the same shape: the
// server's limit for those rows.
func BenchmarkAppend(b *testing.B) {
	for _, n := range benchBatches {
		b.Run(fmt.Sprintf("batch=%d", n), func(b *testing.B) {
			s := openStore(b, postgres.Config{Group: 9, Node: raftdata.NodeID(nextNode.Add(1))})
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

func BenchmarkRawInsert(b *testing.B) {
	pool := sharedPool(b)
	ctx := context.Background()
	table := pgx.Identifier{testSchema, "raw_entries"}
	q := table.Sanitize()
	if _, err := pool.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS `+pgx.Identifier{testSchema}.Sanitize()+`;
		CREATE TABLE IF NOT EXISTS `+q+` (group_id bigint, node_id bigint, idx bigint, term bigint,
		kind smallint, data bytea, PRIMARY KEY (group_id, node_id, idx))`); err != nil {
		b.Fatal(err)
	}
	data := make([]byte, benchEntryBytes)
	for _, n := range benchBatches {
		for _, mode := range []string{"insert", "copy"} {
			b.Run(fmt.Sprintf("%s/batch=%d", mode, n), func(b *testing.B) {
				node := int64(nextNode.Add(1))
				next := int64(1)
				idx, terms, kinds, datas := make([]int64, n), make([]int64, n), make([]int16, n), make([][]byte, n)
				rows := make([][]any, n)
				b.SetBytes(int64(n * benchEntryBytes))
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					for k := 0; k < n; k++ {
						idx[k], terms[k], datas[k] = next+int64(k), 1, data
						rows[k] = []any{int64(9), node, next + int64(k), int64(1), int16(0), data}
					}
					next += int64(n)
					var err error
					if mode == "insert" {
						_, err = pool.Exec(ctx, `INSERT INTO `+q+` SELECT 9, $1, * FROM
							unnest($2::bigint[], $3::bigint[], $4::smallint[], $5::bytea[])`, node, idx, terms, kinds, datas)
					} else {
						_, err = pool.CopyFrom(ctx, table, []string{"group_id", "node_id", "idx", "term", "kind", "data"}, pgx.CopyFromRows(rows))
					}
					if err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "entries/s")
			})
		}
	}
}
