package disk

import (
	"context"
	"fmt"
	"slices"

	"github.com/raftkit/raftkit/adapters/storage/internal/storeutil"
	"github.com/raftkit/raftkit/raft"
	"github.com/raftkit/raftkit/raft/raftdata"
)

// Save writes entries and, when hs is non-nil, the hard state as one log
// record, and fsyncs it before returning: after a crash either all of it is
// there or none of it is.
//
// entries must have contiguous, ascending indexes and non-decreasing terms
// (else raft.ErrInvalidArgument). The first index must lie in
// [FirstIndex, LastIndex+1]: below it Save fails with an error wrapping
// raft.ErrCompacted, above it with one wrapping raft.ErrUnavailable. Stored
// entries from the first index onward are replaced, even where the batch is
// shorter than what it replaces. Save copies the entries and does not
// retain the slice or the Data. With hs nil and no entries it does nothing.
//
// If writing or fsyncing fails, the store refuses every later change
// (ErrFailed): what reached the disk is unknown until it is reopened.
func (s *Storage) Save(ctx context.Context, hs *raftdata.HardState, entries []raftdata.Entry) error {
	if err := s.check(ctx, "save"); err != nil {
		return err
	}
	if hs == nil && len(entries) == 0 {
		return nil
	}
	if err := validateBatch(entries); err != nil {
		return err
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if err := s.writable("save"); err != nil {
		return err
	}
	var lo uint64
	if len(entries) > 0 {
		lo = entries[0].Index
		switch last := s.lastIndex(); {
		case lo < s.first:
			return fmt.Errorf("disk: save at index %d: %w (first index is %d)", lo, raft.ErrCompacted, s.first)
		case lo > last+1:
			return fmt.Errorf("disk: save at index %d: %w (last index is %d)", lo, raft.ErrUnavailable, last)
		}
	}
	s.buf, s.offs = encodeSave(s.buf, hs, entries, s.offs[:0])
	sg, off, err := s.appendAt(s.buf)
	if err != nil {
		return s.fail("save", err)
	}
	locs := s.locs[:0]
	for i := range entries {
		e := &entries[i]
		locs = append(locs, entryLoc{term: e.Term, typ: e.Type, seg: sg, off: off + int64(s.offs[i]), n: uint32(len(e.Data))})
	}
	s.locs = locs
	if len(s.buf) > 4<<20 {
		s.buf = nil // do not keep a huge batch's buffer alive
	}

	s.mu.Lock()
	if hs != nil {
		s.hs = *hs
	}
	if len(entries) > 0 {
		s.ents = append(s.ents[:lo-s.first], locs...)
		sg.maxIndex = max(sg.maxIndex, entries[len(entries)-1].Index)
	}
	s.mu.Unlock()
	s.saved.Add(uint64(len(entries)))
	return nil
}

// validateBatch checks what every adapter checks (storeutil.ValidateBatch)
// and that the batch fits in one record.
func validateBatch(entries []raftdata.Entry) error {
	size := 0
	for i := range entries {
		size += len(entries[i].Data) + 32
		if size > maxRecord {
			return fmt.Errorf("%w: save: batch of more than %d bytes", raft.ErrInvalidArgument, maxRecord)
		}
	}
	return storeutil.ValidateBatch(entries)
}

// Entries returns the entries with indexes in [lo, hi), read back from the
// log files into newly allocated memory the caller may keep. When maxBytes >
// 0 it stops before the total Entry.Size would exceed maxBytes, but returns
// at least one entry when lo < hi.
//
// It fails with an error wrapping raft.ErrCompacted when lo < FirstIndex, one
// wrapping raft.ErrUnavailable when hi > LastIndex+1, and one wrapping
// raft.ErrInvalidArgument when lo > hi.
func (s *Storage) Entries(ctx context.Context, lo, hi uint64, maxBytes int) ([]raftdata.Entry, error) {
	if err := s.check(ctx, "entries"); err != nil {
		return nil, err
	}
	if lo > hi {
		return nil, fmt.Errorf("%w: entries [%d, %d): lo > hi", raft.ErrInvalidArgument, lo, hi)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed.Load() {
		return nil, fmt.Errorf("disk: entries: %w", raft.ErrClosed)
	}
	if lo < s.first {
		return nil, fmt.Errorf("disk: entries [%d, %d): %w (first index is %d)", lo, hi, raft.ErrCompacted, s.first)
	}
	if last := s.lastIndex(); hi > last+1 {
		return nil, fmt.Errorf("disk: entries [%d, %d): %w (last index is %d)", lo, hi, raft.ErrUnavailable, last)
	}
	a, b := int(lo-s.first), int(hi-s.first)
	if maxBytes > 0 {
		size := 0
		for i := a; i < b; i++ {
			size += int(s.ents[i].n) + entryOverhead
			if size > maxBytes && i > a {
				b = i
				break
			}
		}
	}
	if a == b {
		return nil, nil
	}
	return s.read(s.ents[a:b], lo)
}

// entryOverhead matches raftdata.Entry.Size's allowance beyond the payload.
var entryOverhead = (&raftdata.Entry{}).Size()

// Reads of neighbouring entries are merged when the bytes between them are
// at most maxReadGap, up to maxReadSpan bytes per read.
const (
	maxReadGap  = 4 << 10
	maxReadSpan = 4 << 20
)

// read reads the data of locs, the entries from index lo on, merging reads
// of neighbouring entries. The caller holds s.mu for reading.
func (s *Storage) read(locs []entryLoc, lo uint64) ([]raftdata.Entry, error) {
	out := make([]raftdata.Entry, len(locs))
	for i := 0; i < len(locs); {
		first := &locs[i]
		end := first.off + int64(first.n)
		j := i + 1
		for ; j < len(locs); j++ {
			l := &locs[j]
			if l.seg != first.seg || l.off < end || l.off-end > maxReadGap || l.off+int64(l.n)-first.off > maxReadSpan {
				break
			}
			end = l.off + int64(l.n)
		}
		buf := make([]byte, end-first.off)
		if len(buf) > 0 {
			if _, err := first.seg.f.ReadAt(buf, first.off); err != nil {
				return nil, fmt.Errorf("disk: reading entries from %s: %w", first.seg.path, err)
			}
		}
		for k := i; k < j; k++ {
			l := &locs[k]
			e := raftdata.Entry{Index: lo + uint64(k), Term: l.term, Type: l.typ}
			if l.n > 0 {
				p := l.off - first.off
				e.Data = buf[p : p+int64(l.n) : p+int64(l.n)]
			}
			out[k] = e
		}
		i = j
	}
	return out, nil
}

// Term returns the term of the entry at index. It answers for the latest
// snapshot's index with the snapshot's term even when that entry has been
// compacted away, and for index 0 with 0 while nothing has been compacted
// (FirstIndex is 1). Otherwise it fails with an error wrapping
// raft.ErrCompacted for indexes below FirstIndex and one wrapping
// raft.ErrUnavailable for indexes above LastIndex.
func (s *Storage) Term(ctx context.Context, index uint64) (uint64, error) {
	if err := s.check(ctx, "term"); err != nil {
		return 0, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed.Load() {
		return 0, fmt.Errorf("disk: term: %w", raft.ErrClosed)
	}
	last := s.lastIndex()
	switch {
	case index >= s.first && index <= last:
		return s.ents[index-s.first].term, nil
	case index == s.snap.meta.Index && index < s.first:
		return s.snap.meta.Term, nil
	case index == 0 && s.first == 1:
		return 0, nil
	case index < s.first:
		return 0, fmt.Errorf("disk: term of %d: %w (first index is %d)", index, raft.ErrCompacted, s.first)
	default:
		return 0, fmt.Errorf("disk: term of %d: %w (last index is %d)", index, raft.ErrUnavailable, last)
	}
}

// Compact discards the entries with index ≤ upTo: it appends and fsyncs a
// record of the compaction, then deletes the leading segments that hold
// nothing above upTo (segments are never rewritten, so space comes back a
// segment at a time). upTo must not exceed the latest snapshot's index, or
// Compact fails with an error wrapping raft.ErrUnavailable; upTo <
// FirstIndex is a no-op.
func (s *Storage) Compact(ctx context.Context, upTo uint64) error {
	if err := s.check(ctx, "compact"); err != nil {
		return err
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if err := s.writable("compact"); err != nil {
		return err
	}
	if upTo > s.snap.meta.Index {
		return fmt.Errorf("disk: compact up to %d: %w (latest snapshot index is %d)",
			upTo, raft.ErrUnavailable, s.snap.meta.Index)
	}
	if upTo < s.first {
		return nil
	}
	rec := stateRec{hs: s.hs, snapIndex: s.snap.meta.Index, snapTerm: s.snap.meta.Term, upTo: upTo}
	s.buf = encodeState(s.buf, recCompact, rec)
	if err := s.appendRecord(s.buf); err != nil {
		return s.fail("compact", err)
	}
	s.mu.Lock()
	if k := upTo + 1 - s.first; k >= uint64(len(s.ents)) {
		s.ents = nil
	} else {
		s.ents = slices.Clone(s.ents[k:])
	}
	s.first = upTo + 1
	dead := s.detachSegments(upTo)
	s.mu.Unlock()
	s.removeSegments(dead)
	return nil
}
