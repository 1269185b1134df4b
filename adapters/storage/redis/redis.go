// Package redis is a raft.Storage that keeps a node's log, hard state and
// snapshots in Redis, through github.com/redis/go-redis/v9.
//
// Each node's keys share one hash tag, so they live in one Redis Cluster
// slot, and every operation is one Lua script: atomic on the server and one
// round trip. The log is a list (append, range reads, suffix replacement and
// prefix compaction are LTRIM and RPUSH); snapshots are lists of chunks,
// written and read a chunk at a time.
//
// Redis acknowledges writes before they are durable unless it runs with the
// append-only file fsynced on every write: Open checks appendonly,
// appendfsync and maxmemory-policy and refuses a server that could lose an
// acknowledged write.
package redis

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/raftkit/raftkit/adapters/storage/internal/storeutil"
	"github.com/raftkit/raftkit/raft"
	"github.com/raftkit/raftkit/raft/raftdata"
)

// DefaultPrefix starts every key unless Config.Prefix says otherwise.
const DefaultPrefix = "raftkit"

// DefaultChunkBytes is the size of the list elements a snapshot is stored in.
const DefaultChunkBytes = 1 << 20

// DefaultOldSnapshotTTL is how long a replaced snapshot stays readable.
const DefaultOldSnapshotTTL = time.Minute

// maxChunkBytes bounds Config.ChunkBytes well below Redis's 512 MB string
// limit and its default 1 GB client query buffer.
const maxChunkBytes = 64 << 20

// layoutVersion is the key layout this package writes.
const layoutVersion = 1

// headerBytes is the fixed part of a log element: index, term, type.
const headerBytes = 17

var prefixPattern = regexp.MustCompile(`^[A-Za-z0-9_.:-]{1,64}$`)

// Config configures a Storage. Exactly one of Client and Redis is set.
type Config struct {
	// Client is an existing client: a *goredis.Client (a server, or
	// Sentinel's failover client) or a *goredis.ClusterClient; not a Ring.
	// The Storage does not close it.
	Client goredis.UniversalClient

	// Redis configures a client the Storage creates and closes: every
	// go-redis connection option (addresses, username and password, TLS,
	// timeouts, pool sizes) passes through.
	Redis *goredis.UniversalOptions

	// Group and Node name the log: keys carry both, so any number of groups
	// and nodes share one Redis. Opening a group and node that another live
	// Storage has open takes the keys over, and the other store's changes
	// fail with ErrFenced from then on.
	Group raftdata.GroupID
	Node  raftdata.NodeID

	// Prefix starts every key; DefaultPrefix when empty. Letters, digits
	// and _ . : - only, at most 64 bytes.
	Prefix string

	// ChunkBytes is the size of the elements snapshots are stored in, and
	// the most a SnapshotWriter buffers; DefaultChunkBytes when 0.
	ChunkBytes int

	// OldSnapshotTTL is how long a snapshot replaced by a newer one stays
	// readable for readers opened before the replacement (a leader sending
	// it to a follower); DefaultOldSnapshotTTL when 0. Memory for about
	// OldSnapshotTTL / (time between snapshots) old snapshots is needed.
	OldSnapshotTTL time.Duration

	// AllowUnsafeDurability opens the store even when the server can lose
	// acknowledged writes (or its settings cannot be read). That breaks
	// Raft's safety: only for tests and throwaway clusters.
	AllowUnsafeDurability bool

	// Logger receives the store's few log lines; none when nil.
	Logger *slog.Logger
}

// Storage is a raft.Storage in Redis. Create one with Open. All methods are
// safe for concurrent use.
type Storage struct {
	c        goredis.UniversalClient
	ownsConn bool
	tag      string // "{prefix:group:node}"
	meta     string
	logKey   string
	pending  string
	group    raftdata.GroupID
	node     raftdata.NodeID
	owner    string
	chunk    int
	oldTTL   time.Duration
	log      *slog.Logger
	closed   atomic.Bool

	// wmu serializes changes; snapID (the latest snapshot's ID) is read
	// and written under it.
	wmu    sync.Mutex
	snapID int64

	state raft.State // read by Open for InitialState
}

// Compile-time check that *Storage implements raft.Storage.
var _ raft.Storage = (*Storage)(nil)

// Open connects, checks durability, takes ownership of the node's keys and
// reads its state. It fails with an error wrapping ErrUnsafeDurability when
// the server can lose acknowledged writes (unless
// opts.AllowUnsafeDurability), raft.ErrInvalidArgument for bad options,
// ErrLayoutVersion for keys written by a newer package, and the go-redis
// error when the server cannot be reached.
func Open(ctx context.Context, opts Config) (*Storage, error) {
	prefix := opts.Prefix
	if prefix == "" {
		prefix = DefaultPrefix
	}
	if !prefixPattern.MatchString(prefix) {
		return nil, fmt.Errorf("%w: prefix %q: letters, digits and _ . : - only, at most 64 bytes", raft.ErrInvalidArgument, prefix)
	}
	s := &Storage{group: opts.Group, node: opts.Node, chunk: opts.ChunkBytes, oldTTL: opts.OldSnapshotTTL, log: opts.Logger}
	if s.chunk == 0 {
		s.chunk = DefaultChunkBytes
	}
	if s.chunk < 0 || s.chunk > maxChunkBytes {
		return nil, fmt.Errorf("%w: ChunkBytes %d outside [1, %d]", raft.ErrInvalidArgument, s.chunk, maxChunkBytes)
	}
	if s.oldTTL == 0 {
		s.oldTTL = DefaultOldSnapshotTTL
	}
	if s.oldTTL < time.Millisecond {
		return nil, fmt.Errorf("%w: OldSnapshotTTL %v below 1ms", raft.ErrInvalidArgument, s.oldTTL)
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.tag = fmt.Sprintf("{%s:%d:%d}", prefix, uint64(opts.Group), uint64(opts.Node))
	s.meta, s.logKey, s.pending = s.tag+":meta", s.tag+":log", s.tag+":pending"
	switch {
	case (opts.Client == nil) == (opts.Redis == nil):
		return nil, fmt.Errorf("%w: set exactly one of Config.Client and Config.Redis", raft.ErrInvalidArgument)
	case opts.Client != nil:
		if _, ring := opts.Client.(*goredis.Ring); ring {
			// A Ring moves a shard's keys elsewhere while it is down: a
			// node would find an empty log there.
			return nil, fmt.Errorf("%w: a goredis.Ring cannot keep a node's keys in one place; use a Client or a ClusterClient", raft.ErrInvalidArgument)
		}
		s.c = opts.Client
	default:
		s.c, s.ownsConn = goredis.NewUniversalClient(opts.Redis), true
	}
	if err := s.open(ctx, opts.AllowUnsafeDurability); err != nil {
		if s.ownsConn {
			_ = s.c.Close()
		}
		return nil, err
	}
	return s, nil
}

func (s *Storage) open(ctx context.Context, unsafe bool) error {
	if !unsafe {
		if err := checkDurability(ctx, s.c); err != nil {
			return err
		}
	}
	var tok [16]byte
	_, _ = rand.Read(tok[:])
	s.owner = hex.EncodeToString(tok[:])
	ids, err := openScript.Run(ctx, s.c, []string{s.meta, s.pending}, s.owner, layoutVersion).StringSlice()
	if err != nil {
		if strings.HasPrefix(err.Error(), "LAYOUT ") {
			return fmt.Errorf("%w: %s has layout %s, this package writes %d", ErrLayoutVersion, s.tag, strings.TrimPrefix(err.Error(), "LAYOUT "), layoutVersion)
		}
		return fmt.Errorf("redis: open: %w", err)
	}
	if len(ids) > 0 {
		keys := []string{s.meta, s.pending}
		args := []any{s.owner}
		for _, id := range ids {
			keys = append(keys, s.chunkKey(id))
			args = append(args, id)
		}
		if err := dropPendingScript.Run(ctx, s.c, keys, args...).Err(); err != nil {
			return s.scriptErr("open", err)
		}
	}
	return s.load(ctx)
}

func (s *Storage) chunkKey(id string) string { return s.tag + ":snap:" + id }

// load reads the node's state.
func (s *Storage) load(ctx context.Context) error {
	res, err := stateScript.Run(ctx, s.c, []string{s.meta, s.logKey}).Slice()
	if err != nil {
		return fmt.Errorf("redis: reading state: %w", err)
	}
	flat, _ := res[0].([]any)
	length, _ := res[1].(int64)
	m := map[string]string{}
	for i := 0; i+1 < len(flat); i += 2 {
		k, _ := flat[i].(string)
		v, _ := flat[i+1].(string)
		m[k] = v
	}
	num := func(k string) (uint64, error) {
		v, ok := m[k]
		if !ok || v == "" {
			return 0, nil
		}
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return 0, corruptf("%s field %s = %q", s.meta, k, v)
		}
		return n, nil
	}
	var st raft.State
	var vote, snapID uint64
	for k, p := range map[string]*uint64{"term": &st.HardState.Term, "commit": &st.HardState.Commit, "first": &st.FirstIndex,
		"snapidx": &st.Snapshot.Index, "snapterm": &st.Snapshot.Term, "vote": &vote, "snap": &snapID} {
		if *p, err = num(k); err != nil {
			return err
		}
	}
	st.HardState.Vote = raftdata.NodeID(vote)
	if st.FirstIndex == 0 {
		return corruptf("%s has no first index", s.meta)
	}
	st.LastIndex = st.FirstIndex + uint64(length) - 1
	if snapID > 0 {
		if st.Snapshot.Membership, err = raftdata.DecodeMembership([]byte(m["snapmem"])); err != nil {
			return fmt.Errorf("redis: snapshot %d membership: %w", snapID, err)
		}
	}
	s.state, s.snapID = st, int64(snapID)
	return nil
}

func (s *Storage) check(ctx context.Context, op string) error {
	return storeutil.Check(ctx, s.closed.Load(), "redis", op)
}

// scriptErr maps a script's error replies to the package's errors.
func (s *Storage) scriptErr(op string, err error) error {
	msg := err.Error()
	word, rest, _ := strings.Cut(msg, " ")
	switch word {
	case "FENCED":
		return fmt.Errorf("redis: %s: %w (%s: %s)", op, ErrFenced, s.tag, rest)
	case "COMPACTED":
		return fmt.Errorf("redis: %s: %w (first index is %s)", op, raft.ErrCompacted, rest)
	case "GAP":
		return fmt.Errorf("redis: %s: %w: %w (last index is %s)", op, raft.ErrInvalidArgument, raft.ErrUnavailable, rest)
	case "UNAVAILABLE":
		return fmt.Errorf("redis: %s: %w (latest snapshot index is %s)", op, raft.ErrUnavailable, rest)
	case "STALE":
		return fmt.Errorf("redis: %s: %w (latest snapshot index is %s)", op, raft.ErrStaleSnapshot, rest)
	}
	return fmt.Errorf("redis: %s: %w", op, err)
}

// InitialState returns what the store held when it was opened. For an empty
// log LastIndex is FirstIndex-1, so a new store reports FirstIndex 1 and
// LastIndex 0.
func (s *Storage) InitialState(ctx context.Context) (raft.State, error) {
	if err := s.check(ctx, "initial state"); err != nil {
		return raft.State{}, err
	}
	st := s.state
	st.Snapshot.Membership = st.Snapshot.Membership.Clone()
	return st, nil
}

// encodeEntry is a log element: index, term, type, data.
func encodeEntry(e *raftdata.Entry) []byte {
	b := make([]byte, headerBytes, headerBytes+len(e.Data))
	binary.BigEndian.PutUint64(b, e.Index)
	binary.BigEndian.PutUint64(b[8:], e.Term)
	b[16] = byte(e.Type)
	return append(b, e.Data...)
}

func decodeEntry(b string, want uint64) (raftdata.Entry, error) {
	if len(b) < headerBytes {
		return raftdata.Entry{}, corruptf("log element of %d bytes", len(b))
	}
	e := raftdata.Entry{
		Index: binary.BigEndian.Uint64([]byte(b[:8])),
		Term:  binary.BigEndian.Uint64([]byte(b[8:16])),
		Type:  raftdata.EntryType(b[16]),
		Data:  []byte(b[headerBytes:]),
	}
	if e.Index != want {
		return raftdata.Entry{}, corruptf("log element at index %d holds index %d", want, e.Index)
	}
	return e, nil
}

// Save writes entries and the hard state atomically in one script and one
// round trip. A Save whose outcome is unknown (the connection broke) can be
// repeated: it replaces whatever of it was written.
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
	args := make([]any, 6, 6+len(entries))
	args[0], args[1], args[5] = s.owner, "0", "0"
	if hs != nil {
		args[1], args[2], args[3], args[4] = "1", hs.Term, uint64(hs.Vote), hs.Commit
	} else {
		args[2], args[3], args[4] = "0", "0", "0"
	}
	if len(entries) > 0 {
		args[5] = entries[0].Index
		for i := range entries {
			args = append(args, encodeEntry(&entries[i]))
		}
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if err := saveScript.Run(ctx, s.c, []string{s.meta, s.logKey}, args...).Err(); err != nil {
		return s.scriptErr("save", err)
	}
	return nil
}

// extraSize is what a log element's length lacks of its Entry.Size.
var extraSize = (&raftdata.Entry{}).Size() - headerBytes

// Entries returns the entries in [lo, hi), at most maxBytes of them when
// maxBytes > 0 (but at least one); the server cuts the range, so entries
// past maxBytes are never sent.
func (s *Storage) Entries(ctx context.Context, lo, hi uint64, maxBytes int) ([]raftdata.Entry, error) {
	if err := s.check(ctx, "entries"); err != nil {
		return nil, err
	}
	if lo > hi {
		return nil, fmt.Errorf("%w: entries [%d, %d): lo > hi", raft.ErrInvalidArgument, lo, hi)
	}
	res, err := entriesScript.Run(ctx, s.c, []string{s.meta, s.logKey}, lo, hi, max(maxBytes, 0), extraSize).Slice()
	if err != nil {
		return nil, s.scriptErr("entries", err)
	}
	if err := boundsErr("entries", res, lo, hi); err != nil {
		return nil, err
	}
	if len(res) == 1 {
		return nil, nil
	}
	out := make([]raftdata.Entry, 0, len(res)-1)
	for i, v := range res[1:] {
		b, _ := v.(string)
		e, err := decodeEntry(b, lo+uint64(i))
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

// boundsErr turns a script's 'C' or 'U' answer into the contract's errors.
func boundsErr(op string, res []any, lo, hi uint64) error {
	if len(res) == 0 {
		return corruptf("%s: empty script reply", op)
	}
	tag, _ := res[0].(string)
	var at string
	if len(res) > 1 {
		at, _ = res[1].(string)
	}
	switch tag {
	case "C":
		return fmt.Errorf("redis: %s [%d, %d): %w (first index is %s)", op, lo, hi, raft.ErrCompacted, at)
	case "U":
		return fmt.Errorf("redis: %s [%d, %d): %w (last index is %s)", op, lo, hi, raft.ErrUnavailable, at)
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
	res, err := termScript.Run(ctx, s.c, []string{s.meta, s.logKey}, index).Slice()
	if err != nil {
		return 0, s.scriptErr("term", err)
	}
	if err := boundsErr("term", res, index, index+1); err != nil {
		return 0, err
	}
	if len(res) < 2 {
		return 0, corruptf("term of %d: short script reply", index)
	}
	v, _ := res[1].(string)
	if res[0] == "T" {
		if len(v) != 8 {
			return 0, corruptf("log element at index %d is too short", index)
		}
		return binary.BigEndian.Uint64([]byte(v)), nil
	}
	t, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, corruptf("%s snapterm = %q", s.meta, v)
	}
	return t, nil
}

// Compact drops the entries with index ≤ upTo (LTRIM) in one script. upTo
// must not exceed the latest snapshot's index (else an error wrapping
// raft.ErrUnavailable); upTo < FirstIndex is a no-op.
func (s *Storage) Compact(ctx context.Context, upTo uint64) error {
	if err := s.check(ctx, "compact"); err != nil {
		return err
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if err := compactScript.Run(ctx, s.c, []string{s.meta, s.logKey}, s.owner, upTo).Err(); err != nil {
		return s.scriptErr("compact", err)
	}
	return nil
}

// Close closes the client when Open created it. The keys stay in Redis.
func (s *Storage) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	if s.ownsConn {
		return s.c.Close()
	}
	return nil
}

// Group returns the group whose log the store holds.
func (s *Storage) Group() raftdata.GroupID { return s.group }

// Node returns the node whose log the store holds.
func (s *Storage) Node() raftdata.NodeID { return s.node }

// isNil reports a missing key or field.
func isNil(err error) bool { return errors.Is(err, goredis.Nil) }
