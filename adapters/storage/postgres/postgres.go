// Package postgres is a raft.Storage that keeps a node's log, hard state and
// snapshots in PostgreSQL, through github.com/jackc/pgx/v5.
//
// Many nodes and many Raft groups can share one database and one schema:
// every row is keyed by group and node. Open creates and migrates the schema
// (safely when several nodes open at once), checks that the server's
// settings make acknowledged commits durable, and takes ownership of the
// node's rows, fencing off any store that opened them before.
//
// A Save is one round trip: one pipelined, implicitly transactional batch
// that checks ownership, deletes any conflicting suffix, inserts the
// entries with a single multi-row INSERT and updates the hard state.
// Snapshots are written and read in chunks, so neither side ever holds a
// whole snapshot in memory.
package postgres

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/raftkit/raftkit/adapters/storage/internal/storeutil"
	"github.com/raftkit/raftkit/raft"
	"github.com/raftkit/raftkit/raft/raftdata"
)

// DefaultSchema is the schema the tables live in unless Config.Schema says
// otherwise.
const DefaultSchema = "raftkit"

// DefaultChunkBytes is the size of the rows a snapshot is stored in.
const DefaultChunkBytes = 1 << 20

// maxChunkBytes bounds Config.ChunkBytes well below PostgreSQL's 1 GB
// limit on a bytea value.
const maxChunkBytes = 256 << 20

// Config configures a Storage. Exactly one of DSN and Pool is set.
type Config struct {
	// DSN is a PostgreSQL connection string (URL or key=value form, as
	// pgxpool.ParseConfig reads it). Open creates a pool from it, checks
	// every connection the pool makes, and closes the pool on Close.
	DSN string

	// Pool is an existing pool to use instead of DSN. The Storage does not
	// close it. Open checks the durability settings on one of its
	// connections; every connection of the pool is assumed to see the same
	// settings (do not SET synchronous_commit on some of them).
	Pool *pgxpool.Pool

	// Group and Node name the log: rows are keyed by both, so any number of
	// groups and nodes share one schema. Opening a group and node that
	// another live Storage has open takes the rows over, and the other
	// store's changes fail with ErrFenced from then on.
	Group raftdata.GroupID
	Node  raftdata.NodeID

	// Schema holds the tables; DefaultSchema when empty. It must be a
	// lower-case SQL identifier ([a-z_][a-z0-9_]*, at most 63 bytes).
	Schema string

	// ChunkBytes is the size of the rows snapshots are stored in, and the
	// most a SnapshotWriter buffers; DefaultChunkBytes when 0.
	ChunkBytes int

	// AllowUnsafeDurability opens the store even when fsync,
	// synchronous_commit or full_page_writes is off. Acknowledged writes
	// can then be lost in a crash, which breaks Raft's safety: only for
	// tests and throwaway clusters.
	AllowUnsafeDurability bool

	// Logger receives the store's few log lines; none when nil.
	Logger *slog.Logger
}

// Storage is a raft.Storage in PostgreSQL. Create one with Open. All methods
// are safe for concurrent use.
type Storage struct {
	pool     *pgxpool.Pool
	ownsPool bool
	q        string // the schema, quoted
	group    int64
	node     int64
	owner    []byte // this store's fencing token
	chunk    int
	log      *slog.Logger
	closed   atomic.Bool

	// wmu serializes changes (Save, Compact, snapshot Commit).
	wmu sync.Mutex
	// gen is odd while a change is being made and counts changes: a read
	// that finds rows missing retries when a change overlapped it, because
	// the database moves before the bounds below do.
	gen atomic.Uint64

	// mu guards the state below; changes hold wmu too.
	mu     sync.RWMutex
	hs     raftdata.HardState
	first  uint64
	last   uint64
	snap   raftdata.SnapshotMeta
	snapID int64
}

// Compile-time check that *Storage implements raft.Storage.
var _ raft.Storage = (*Storage)(nil)

// Open connects, migrates the schema, checks durability and takes
// ownership of the node's rows. It fails with an error wrapping
// ErrUnsafeDurability when the server can lose acknowledged commits (unless
// opts.AllowUnsafeDurability), raft.ErrInvalidArgument for bad options,
// ErrSchemaVersion for a schema newer than this package, and the pgx error
// when the server cannot be reached.
func Open(ctx context.Context, opts Config) (*Storage, error) {
	s := &Storage{
		q: pgx.Identifier{DefaultSchema}.Sanitize(), group: int64(opts.Group), node: int64(opts.Node),
		chunk: opts.ChunkBytes, log: opts.Logger,
	}
	schema := opts.Schema
	if schema == "" {
		schema = DefaultSchema
	}
	if !schemaName.MatchString(schema) {
		return nil, fmt.Errorf("%w: schema %q is not a lower-case SQL identifier", raft.ErrInvalidArgument, schema)
	}
	s.q = pgx.Identifier{schema}.Sanitize()
	if s.chunk == 0 {
		s.chunk = DefaultChunkBytes
	}
	if s.chunk < 0 || s.chunk > maxChunkBytes {
		return nil, fmt.Errorf("%w: ChunkBytes %d outside [1, %d]", raft.ErrInvalidArgument, s.chunk, maxChunkBytes)
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	switch {
	case (opts.DSN == "") == (opts.Pool == nil):
		return nil, fmt.Errorf("%w: set exactly one of Config.DSN and Config.Pool", raft.ErrInvalidArgument)
	case opts.Pool != nil:
		s.pool = opts.Pool
	default:
		cfg, err := pgxpool.ParseConfig(opts.DSN)
		if err != nil {
			return nil, fmt.Errorf("%w: DSN: %w", raft.ErrInvalidArgument, err)
		}
		if !opts.AllowUnsafeDurability {
			cfg.AfterConnect = func(ctx context.Context, c *pgx.Conn) error {
				return checkDurability(ctx, c)
			}
		}
		if s.pool, err = pgxpool.NewWithConfig(ctx, cfg); err != nil {
			return nil, fmt.Errorf("postgres: open: %w", err)
		}
		s.ownsPool = true
	}
	if err := s.open(ctx, schema, opts.AllowUnsafeDurability); err != nil {
		if s.ownsPool {
			s.pool.Close()
		}
		return nil, err
	}
	return s, nil
}

func (s *Storage) open(ctx context.Context, schema string, unsafe bool) error {
	if !unsafe {
		if err := checkDurability(ctx, s.pool); err != nil {
			return err
		}
	}
	if err := migrate(ctx, s.pool, schema); err != nil {
		return err
	}
	s.owner = make([]byte, 16)
	_, _ = rand.Read(s.owner)
	// Take the rows over and drop snapshots that a crashed writer left
	// uncommitted, in one transaction.
	b := &pgx.Batch{}
	b.Queue(`INSERT INTO `+s.q+`.nodes (group_id, node_id, owner) VALUES ($1, $2, $3)
		ON CONFLICT (group_id, node_id) DO UPDATE SET owner = EXCLUDED.owner, opened_at = now()`,
		s.group, s.node, s.owner)
	b.Queue(`DELETE FROM `+s.q+`.snapshot_chunks c USING `+s.q+`.snapshots p
		WHERE p.group_id = $1 AND p.node_id = $2 AND NOT p.committed
		AND c.group_id = p.group_id AND c.node_id = p.node_id AND c.snapshot_id = p.snapshot_id`, s.group, s.node)
	b.Queue(`DELETE FROM `+s.q+`.snapshots WHERE group_id = $1 AND node_id = $2 AND NOT committed`, s.group, s.node)
	// Chunks whose snapshot row is gone: a writer fenced off mid-write.
	b.Queue(`DELETE FROM `+s.q+`.snapshot_chunks c WHERE c.group_id = $1 AND c.node_id = $2
		AND NOT EXISTS (SELECT 1 FROM `+s.q+`.snapshots p
			WHERE p.group_id = c.group_id AND p.node_id = c.node_id AND p.snapshot_id = c.snapshot_id)`, s.group, s.node)
	if err := s.pool.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("postgres: open: %w", err)
	}
	return s.load(ctx)
}

// load reads the node's state into memory.
func (s *Storage) load(ctx context.Context) error {
	var (
		term, vote, commit, first int64
		snapID, snapIdx, snapTerm *int64
		membership                []byte
		last                      *int64
	)
	err := s.pool.QueryRow(ctx, `SELECT n.term, n.vote, n.commit_index, n.first_index,
			n.snapshot_id, p.idx, p.term, p.membership,
			(SELECT max(idx) FROM `+s.q+`.entries e WHERE e.group_id = n.group_id AND e.node_id = n.node_id)
		FROM `+s.q+`.nodes n LEFT JOIN `+s.q+`.snapshots p
			ON p.group_id = n.group_id AND p.node_id = n.node_id AND p.snapshot_id = n.snapshot_id
		WHERE n.group_id = $1 AND n.node_id = $2`, s.group, s.node).
		Scan(&term, &vote, &commit, &first, &snapID, &snapIdx, &snapTerm, &membership, &last)
	if err != nil {
		return fmt.Errorf("postgres: reading state: %w", err)
	}
	s.hs = raftdata.HardState{Term: uint64(term), Vote: raftdata.NodeID(vote), Commit: uint64(commit)}
	s.first = uint64(first)
	s.last = s.first - 1
	if last != nil {
		if uint64(*last) < s.first {
			return corruptf("group %d node %d: last entry %d below first index %d", s.group, s.node, *last, first)
		}
		s.last = uint64(*last)
	}
	if snapID != nil {
		if snapIdx == nil {
			return corruptf("group %d node %d: snapshot %d is missing", s.group, s.node, *snapID)
		}
		m, err := raftdata.DecodeMembership(membership)
		if err != nil {
			return fmt.Errorf("postgres: snapshot %d membership: %w", *snapID, err)
		}
		s.snapID = *snapID
		s.snap = raftdata.SnapshotMeta{Index: uint64(*snapIdx), Term: uint64(*snapTerm), Membership: m}
	}
	return nil
}

func (s *Storage) check(ctx context.Context, op string) error {
	return storeutil.Check(ctx, s.closed.Load(), "postgres", op)
}

// dbErr wraps an error from the server, recognising the fence.
func (s *Storage) dbErr(op string, err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == fenceCode {
		return fmt.Errorf("postgres: %s: %w (group %d node %d)", op, ErrFenced, s.group, s.node)
	}
	return fmt.Errorf("postgres: %s: %w", op, err)
}

// InitialState returns what the store holds. For an empty log LastIndex is
// FirstIndex-1, so a new store reports FirstIndex 1 and LastIndex 0.
func (s *Storage) InitialState(ctx context.Context) (raft.State, error) {
	if err := s.check(ctx, "initial state"); err != nil {
		return raft.State{}, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return raft.State{HardState: s.hs, Snapshot: cloneMeta(s.snap), FirstIndex: s.first, LastIndex: s.last}, nil
}

// Save writes entries and the hard state in one transaction and one round
// trip. A Save whose outcome is unknown (the connection broke after the
// batch was sent) can be repeated: it replaces whatever of it was written.
func (s *Storage) Save(ctx context.Context, hs *raftdata.HardState, entries []raftdata.Entry) error {
	if err := s.check(ctx, "save"); err != nil {
		return err
	}
	if err := storeutil.ValidateBatch(entries); err != nil {
		return err
	}
	if hs == nil && len(entries) == 0 {
		return nil
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.mu.RLock()
	first, last := s.first, s.last
	s.mu.RUnlock()
	b := &pgx.Batch{}
	b.Queue(`SELECT `+s.q+`.fence($1, $2, $3)`, s.group, s.node, s.owner)
	if len(entries) > 0 {
		lo := entries[0].Index
		switch {
		case lo < first:
			return fmt.Errorf("postgres: save at index %d: %w (first index is %d)", lo, raft.ErrCompacted, first)
		case lo > last+1:
			return fmt.Errorf("postgres: save at index %d: %w: %w (last index is %d)", lo, raft.ErrInvalidArgument, raft.ErrUnavailable, last)
		}
		// Always delete from lo on: a conflicting suffix goes, and so do
		// rows of an earlier attempt at this Save whose outcome was lost.
		b.Queue(`DELETE FROM `+s.q+`.entries WHERE group_id = $1 AND node_id = $2 AND idx >= $3`, s.group, s.node, int64(lo))
		idx := make([]int64, len(entries))
		terms := make([]int64, len(entries))
		kinds := make([]int16, len(entries))
		data := make([][]byte, len(entries))
		for i := range entries {
			e := &entries[i]
			idx[i], terms[i], kinds[i], data[i] = int64(e.Index), int64(e.Term), int16(e.Type), e.Data
			if data[i] == nil {
				data[i] = []byte{} // the column is NOT NULL
			}
		}
		b.Queue(`INSERT INTO `+s.q+`.entries (group_id, node_id, idx, term, kind, data)
			SELECT $1, $2, * FROM unnest($3::bigint[], $4::bigint[], $5::smallint[], $6::bytea[])`,
			s.group, s.node, idx, terms, kinds, data)
	}
	if hs != nil {
		b.Queue(`UPDATE `+s.q+`.nodes SET term = $3, vote = $4, commit_index = $5 WHERE group_id = $1 AND node_id = $2`,
			s.group, s.node, int64(hs.Term), int64(hs.Vote), int64(hs.Commit))
	}
	s.gen.Add(1)
	defer s.gen.Add(1)
	if err := s.pool.SendBatch(ctx, b).Close(); err != nil {
		return s.dbErr("save", err)
	}
	s.mu.Lock()
	if len(entries) > 0 {
		s.last = entries[len(entries)-1].Index
	}
	if hs != nil {
		s.hs = *hs
	}
	s.mu.Unlock()
	return nil
}

// minEntrySize is the smallest Entry.Size: an entry with no data.
var minEntrySize = (&raftdata.Entry{}).Size()

// Entries returns the entries in [lo, hi), at most maxBytes of them when
// maxBytes > 0 (but at least one), with one query.
func (s *Storage) Entries(ctx context.Context, lo, hi uint64, maxBytes int) ([]raftdata.Entry, error) {
	if err := s.check(ctx, "entries"); err != nil {
		return nil, err
	}
	if lo > hi {
		return nil, fmt.Errorf("%w: entries [%d, %d): lo > hi", raft.ErrInvalidArgument, lo, hi)
	}
	for attempt := 0; ; attempt++ {
		gen := s.gen.Load()
		if err := s.bounds("entries", lo, hi); err != nil {
			return nil, err
		}
		if lo == hi {
			return nil, nil
		}
		out, complete, err := s.readEntries(ctx, lo, hi, maxBytes)
		if err != nil || complete {
			return out, err
		}
		// Rows are missing: the log changed while we read (compacted or
		// truncated), or the table lost rows.
		if !s.changed(gen, attempt) {
			return nil, corruptf("group %d node %d: entry %d is missing from the log", s.group, s.node, lo+uint64(len(out)))
		}
	}
}

// changed reports whether a change overlapped a read that began at gen, in
// which case the read is retried (after a pause if the change is still
// being made).
func (s *Storage) changed(gen uint64, attempt int) bool {
	now := s.gen.Load()
	if now == gen && gen%2 == 0 || attempt >= 1000 {
		return false
	}
	if now%2 == 1 {
		time.Sleep(100 * time.Microsecond)
	}
	return true
}

// readEntries runs the query of Entries; complete is false when rows that
// should be there are missing.
func (s *Storage) readEntries(ctx context.Context, lo, hi uint64, maxBytes int) (out []raftdata.Entry, complete bool, err error) {
	limit := hi - lo
	if maxBytes > 0 {
		// No entry is smaller than minEntrySize: this many always pass
		// maxBytes, and one more is the first row past the cut, so the
		// LIMIT never cuts a result short.
		limit = min(limit, uint64(maxBytes/minEntrySize)+2)
	}
	// With maxBytes, the server cuts the result: rows come with "fits"
	// while the running size stays within maxBytes (the first always), and
	// the first row past the cut comes without its data, which tells a cut
	// by size from rows missing (large entries past the limit are never
	// sent; octet_length reads a TOASTed value's size without decompressing
	// it). Without maxBytes every row fits.
	rows, err := s.pool.Query(ctx, `SELECT idx, term, kind, CASE WHEN fits THEN data END, fits FROM (
			SELECT idx, term, kind, data, fits, lag(fits, 1, true) OVER (ORDER BY idx) AS prev_fits FROM (
				SELECT idx, term, kind, data,
					sum(octet_length(data) + $7) OVER (ORDER BY idx) <= $6 OR idx = $3 AS fits
				FROM (SELECT idx, term, kind, data FROM `+s.q+`.entries
					WHERE group_id = $1 AND node_id = $2 AND idx >= $3 AND idx < $4 ORDER BY idx LIMIT $5) r) f) t
		WHERE fits OR prev_fits ORDER BY idx`,
		s.group, s.node, int64(lo), int64(hi), int64(limit), int64(byteLimit(maxBytes)), int64(minEntrySize))
	if err != nil {
		return nil, false, s.dbErr("entries", err)
	}
	defer rows.Close()
	out = make([]raftdata.Entry, 0, min(limit, 1024))
	for rows.Next() {
		var idx, term int64
		var kind int16
		var data []byte
		var fits bool
		if err := rows.Scan(&idx, &term, &kind, &data, &fits); err != nil {
			return nil, false, s.dbErr("entries", err)
		}
		if uint64(idx) != lo+uint64(len(out)) {
			return out, false, nil // a gap
		}
		if !fits {
			return out, true, nil // the next entry would pass maxBytes
		}
		out = append(out, raftdata.Entry{Index: uint64(idx), Term: uint64(term), Type: raftdata.EntryType(kind), Data: data})
	}
	if err := rows.Err(); err != nil {
		return nil, false, s.dbErr("entries", err)
	}
	return out, uint64(len(out)) == hi-lo, nil
}

// byteLimit is maxBytes for the query: no limit when maxBytes ≤ 0.
func byteLimit(maxBytes int) int {
	if maxBytes <= 0 {
		return math.MaxInt64
	}
	return maxBytes
}

// bounds checks [lo, hi) against the log's current bounds.
func (s *Storage) bounds(op string, lo, hi uint64) error {
	s.mu.RLock()
	first, last := s.first, s.last
	s.mu.RUnlock()
	if lo < first {
		return fmt.Errorf("postgres: %s [%d, %d): %w (first index is %d)", op, lo, hi, raft.ErrCompacted, first)
	}
	if hi > last+1 {
		return fmt.Errorf("postgres: %s [%d, %d): %w (last index is %d)", op, lo, hi, raft.ErrUnavailable, last)
	}
	return nil
}

// Term returns the term of the entry at index, answering for the latest
// snapshot's index from its metadata and for index 0 with 0 while nothing
// was compacted.
func (s *Storage) Term(ctx context.Context, index uint64) (uint64, error) {
	if err := s.check(ctx, "term"); err != nil {
		return 0, err
	}
	for attempt := 0; ; attempt++ {
		gen := s.gen.Load()
		s.mu.RLock()
		first, last, snap := s.first, s.last, s.snap
		s.mu.RUnlock()
		switch {
		case index >= first && index <= last:
		case index == snap.Index && snap.Index > 0:
			return snap.Term, nil
		case index == 0 && first == 1:
			return 0, nil
		default:
			return 0, s.bounds("term", index, index+1)
		}
		var term int64
		err := s.pool.QueryRow(ctx, `SELECT term FROM `+s.q+`.entries WHERE group_id = $1 AND node_id = $2 AND idx = $3`,
			s.group, s.node, int64(index)).Scan(&term)
		if err == nil {
			return uint64(term), nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return 0, s.dbErr("term", err)
		}
		if !s.changed(gen, attempt) {
			return 0, corruptf("group %d node %d: entry %d is missing from the log", s.group, s.node, index)
		}
	}
}

// Compact deletes the entries with index ≤ upTo in one transaction. upTo must
// not exceed the latest snapshot's index (else an error wrapping
// raft.ErrUnavailable); upTo < FirstIndex is a no-op. The deleted rows' space
// is reclaimed by (auto)vacuum.
func (s *Storage) Compact(ctx context.Context, upTo uint64) error {
	if err := s.check(ctx, "compact"); err != nil {
		return err
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.mu.RLock()
	first, snapIndex := s.first, s.snap.Index
	s.mu.RUnlock()
	if upTo > snapIndex {
		return fmt.Errorf("postgres: compact up to %d: %w (latest snapshot index is %d)", upTo, raft.ErrUnavailable, snapIndex)
	}
	if upTo < first {
		return nil
	}
	b := &pgx.Batch{}
	b.Queue(`SELECT `+s.q+`.fence($1, $2, $3)`, s.group, s.node, s.owner)
	b.Queue(`DELETE FROM `+s.q+`.entries WHERE group_id = $1 AND node_id = $2 AND idx <= $3`, s.group, s.node, int64(upTo))
	b.Queue(`UPDATE `+s.q+`.nodes SET first_index = $3 WHERE group_id = $1 AND node_id = $2`, s.group, s.node, int64(upTo+1))
	s.gen.Add(1)
	defer s.gen.Add(1)
	if err := s.pool.SendBatch(ctx, b).Close(); err != nil {
		return s.dbErr("compact", err)
	}
	s.mu.Lock()
	s.first = upTo + 1
	s.last = max(s.last, upTo)
	s.mu.Unlock()
	return nil
}

// Close releases the pool when Open created it. The data stays in the
// database. Readers and writers of snapshots still open fail from then on.
func (s *Storage) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	if s.ownsPool {
		s.pool.Close()
	}
	return nil
}

func cloneMeta(m raftdata.SnapshotMeta) raftdata.SnapshotMeta {
	m.Membership = m.Membership.Clone()
	return m
}

// Group returns the group whose log the store holds.
func (s *Storage) Group() raftdata.GroupID { return raftdata.GroupID(s.group) }

// Node returns the node whose log the store holds.
func (s *Storage) Node() raftdata.NodeID { return raftdata.NodeID(s.node) }
