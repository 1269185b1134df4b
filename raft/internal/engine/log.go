package engine

import "fmt"

// termRun says that every entry from index start up to the next run's start
// has term term. Terms change rarely, so a handful of runs gives the term of
// every entry in the log without reading storage.
type termRun struct {
	start uint64
	term  uint64
}

// raftLog is the engine's view of the log: the term of every entry from the
// snapshot onward (as runs), and a bounded cache of the newest entries that
// always holds every entry not yet durable.
//
// Slices of the cache are handed out (to messages, to the apply path, to the
// persist path) and never written again: truncation reallocates instead of
// overwriting, and appends only write past every handed-out slice.
type raftLog struct {
	snapIndex uint64 // last index covered by the latest snapshot
	snapTerm  uint64
	first     uint64 // first index held in storage or cache
	last      uint64
	runs      []termRun // cover [first-1 or snapIndex, last]

	committed uint64
	applying  uint64 // highest index handed to the apply path
	persisted uint64 // highest index known durable locally
	handedOff uint64 // highest index handed to the persist path

	blocks     []block // cached entries [cacheFirst, last], in order
	cacheFirst uint64
	cacheBytes int
	cacheLimit int
}

// blockEntries is how many entries a cache block holds. Appending fills
// the newest block in place; a full block is followed by a new one, so no
// append ever copies what is already cached.
const blockEntries = 1024

// block is a run of consecutive cached entries starting at index start.
// Slices handed out of a block have their capacity cut to their length, so
// filling the block's spare capacity never touches them; a block cut by a
// truncation gets its capacity cut too and is never written again.
type block struct {
	start uint64
	ents  []Entry
}

func (b *block) end() uint64 { return b.start + uint64(len(b.ents)) } // one past the last

func newLog(cacheLimit int) *raftLog {
	return &raftLog{first: 1, cacheFirst: 1, cacheLimit: cacheLimit}
}

// restore sets the log to what storage holds. runs must cover [first, last];
// tail, if any, are the newest stored entries to seed the cache with.
func (l *raftLog) restore(snap SnapshotMeta, first, last, commit uint64, runs []termRun, tail []Entry) error {
	if first == 0 || first > last+1 || first > snap.Index+1 && snap.Index > 0 || last < snap.Index {
		return fmt.Errorf("engine: inconsistent log bounds first=%d last=%d snapshot=%d", first, last, snap.Index)
	}
	l.snapIndex, l.snapTerm = snap.Index, snap.Term
	l.first, l.last = first, last
	l.runs = l.runs[:0]
	if snap.Index > 0 {
		l.runs = append(l.runs, termRun{start: snap.Index, term: snap.Term})
	}
	for _, r := range runs {
		if r.start < first || r.start > last {
			return fmt.Errorf("engine: term run at %d outside log [%d, %d]", r.start, first, last)
		}
		l.setRun(r.start, r.term)
	}
	if last >= first && (len(l.runs) == 0 || l.runs[0].start > first) {
		return fmt.Errorf("engine: no term known for index %d", first)
	}
	l.committed = max(min(commit, last), snap.Index)
	l.applying = snap.Index
	l.persisted, l.handedOff = last, last
	l.cacheFirst, l.blocks, l.cacheBytes = last+1, nil, 0
	if len(tail) > 0 && tail[len(tail)-1].Index == last {
		l.cacheFirst = tail[0].Index
		ents := append([]Entry(nil), tail...)
		l.blocks = []block{{start: tail[0].Index, ents: ents[:len(ents):len(ents)]}}
		for i := range tail {
			l.cacheBytes += tail[i].Size()
		}
	}
	return nil
}

// setRun records that entries from index start have term t, replacing every
// run at or after start.
func (l *raftLog) setRun(start, t uint64) {
	i := len(l.runs)
	for i > 0 && l.runs[i-1].start >= start {
		i--
	}
	l.runs = l.runs[:i]
	if i > 0 && l.runs[i-1].term == t {
		return
	}
	l.runs = append(l.runs, termRun{start: start, term: t})
}

// lastTerm is the term of the last entry (or of the snapshot).
func (l *raftLog) lastTerm() uint64 {
	if len(l.runs) == 0 {
		return 0
	}
	return l.runs[len(l.runs)-1].term
}

// term returns the term of entry i and whether it is known. Index 0 has term
// 0; indexes compacted away (other than the snapshot's) are unknown.
func (l *raftLog) term(i uint64) (uint64, bool) {
	if i == 0 {
		return 0, true
	}
	if i > l.last {
		return 0, false
	}
	if i == l.snapIndex {
		return l.snapTerm, true
	}
	if i < l.first {
		return 0, false
	}
	lo, hi := 0, len(l.runs)
	for lo < hi { // first run starting after i
		mid := (lo + hi) / 2
		if l.runs[mid].start <= i {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	if lo == 0 {
		return 0, false
	}
	return l.runs[lo-1].term, true
}

func (l *raftLog) matchTerm(i, t uint64) bool {
	lt, ok := l.term(i)
	return ok && lt == t
}

// isUpToDate reports whether a log ending at (index, term) is at least as
// up to date as ours (Raft paper §5.4.1).
func (l *raftLog) isUpToDate(index, term uint64) bool {
	lt := l.lastTerm()
	return term > lt || term == lt && index >= l.last
}

// findConflictByTerm returns the largest index j ≤ index whose term is ≤
// term, or the oldest known index if none is known to be. It lets a leader
// and a follower skip a whole term of conflicting entries in one round trip.
func (l *raftLog) findConflictByTerm(index, term uint64) uint64 {
	index = min(index, l.last)
	for i := len(l.runs) - 1; i >= 0; i-- {
		r := l.runs[i]
		if r.start > index {
			continue
		}
		if r.term <= term {
			return index
		}
		if r.start == 0 {
			return 0
		}
		index = r.start - 1
	}
	if l.first > 0 {
		return min(index, l.first-1)
	}
	return 0
}

// append adds entries after a possible truncation: entries[0].Index may be
// at or below last, in which case the suffix from there is replaced. The
// caller has checked that entries[0].Index-1 matches. The entries are
// copied into the cache.
func (l *raftLog) append(ents []Entry) {
	if len(ents) == 0 {
		return
	}
	from := ents[0].Index
	if from <= l.last {
		l.truncate(from)
	}
	if len(l.blocks) == 0 {
		l.cacheFirst = from
	}
	for i := range ents {
		if i == 0 || ents[i].Term != ents[i-1].Term {
			l.setRun(ents[i].Index, ents[i].Term)
		}
		l.cacheBytes += ents[i].Size()
	}
	rest := ents
	if n := len(l.blocks); n > 0 {
		b := &l.blocks[n-1]
		if k := min(cap(b.ents)-len(b.ents), len(rest)); k > 0 {
			b.ents = append(b.ents, rest[:k]...)
			rest = rest[k:]
		}
	}
	for len(rest) > 0 {
		k := min(len(rest), blockEntries)
		b := block{start: rest[0].Index, ents: make([]Entry, k, max(k, blockEntries))}
		copy(b.ents, rest[:k])
		l.blocks = append(l.blocks, b)
		rest = rest[k:]
	}
	l.last = ents[len(ents)-1].Index
	l.evict()
}

// truncate drops entries with index ≥ from. It never overwrites memory a
// handed-out slice can see: the block holding from is cut with its
// capacity, so the next append starts a new block.
func (l *raftLog) truncate(from uint64) {
	if from <= l.committed {
		panic(fmt.Sprintf("engine: truncating committed entry %d (committed %d)", from, l.committed))
	}
	if from <= l.cacheFirst {
		l.blocks, l.cacheBytes, l.cacheFirst = nil, 0, from
	} else {
		i := l.blockOf(from)
		b := &l.blocks[i]
		k := int(from - b.start)
		for j := k; j < len(b.ents); j++ {
			l.cacheBytes -= b.ents[j].Size()
		}
		b.ents = b.ents[:k:k]
		for _, later := range l.blocks[i+1:] {
			for j := range later.ents {
				l.cacheBytes -= later.ents[j].Size()
			}
		}
		clear(l.blocks[i+1:])
		l.blocks = l.blocks[:i+1]
	}
	l.last = from - 1
	i := len(l.runs)
	for i > 0 && l.runs[i-1].start > l.last {
		i--
	}
	l.runs = l.runs[:i]
	l.persisted = min(l.persisted, l.last)
	l.handedOff = min(l.handedOff, l.last)
}

// blockOf returns the position of the block holding cached index i.
func (l *raftLog) blockOf(i uint64) int {
	// Nearly every lookup is for a recent entry: try the newest blocks
	// first, then search.
	n := len(l.blocks)
	for j := n - 1; j >= 0 && j >= n-4; j-- {
		if l.blocks[j].start <= i {
			return j
		}
	}
	lo, hi := 0, n
	for lo < hi { // first block starting after i
		mid := (lo + hi) / 2
		if l.blocks[mid].start <= i {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return max(lo-1, 0)
}

// evict drops the oldest cached entries beyond the byte limit, but only ones
// that are durable and already handed to the apply path, and always keeps
// the newest entry.
func (l *raftLog) evict() {
	limit := min(l.persisted, l.applying, l.last-1)
	for l.cacheBytes > l.cacheLimit && len(l.blocks) > 0 && l.cacheFirst <= limit {
		b := &l.blocks[0]
		// Drop whole entries up to the limit from the oldest block.
		k := 0
		for k < len(b.ents) && l.cacheBytes > l.cacheLimit && b.start+uint64(k) <= limit {
			l.cacheBytes -= b.ents[k].Size()
			k++
		}
		if k == len(b.ents) {
			l.blocks[0] = block{}
			l.blocks = l.blocks[1:]
		} else {
			b.ents = b.ents[k:]
			b.start += uint64(k)
		}
		l.cacheFirst += uint64(k)
	}
}

// cached returns entries from lo, at most up to hi (exclusive) and at most
// maxBytes of them (at least one), and whether lo is cached at all. The
// result may stop early at the end of a cache block; its capacity equals
// its length.
func (l *raftLog) cached(lo, hi uint64, maxBytes int) ([]Entry, bool) {
	if lo < l.cacheFirst || lo > l.last || hi <= lo || len(l.blocks) == 0 {
		return nil, false
	}
	b := &l.blocks[l.blockOf(lo)]
	hi = min(hi, b.end())
	a, z := int(lo-b.start), int(hi-b.start)
	if maxBytes > 0 {
		size := 0
		for i := a; i < z; i++ {
			size += b.ents[i].Size()
			if size > maxBytes && i > a {
				z = i
				break
			}
		}
	}
	return b.ents[a:z:z], true
}

// slice returns cached entries [lo, hi) as one slice: a view when they lie
// in one block, a copy when they span several. lo must be cached.
func (l *raftLog) slice(lo, hi uint64) []Entry {
	ents, ok := l.cached(lo, hi, 0)
	if !ok {
		panic(fmt.Sprintf("engine: entries [%d, %d) not cached (cache from %d)", lo, hi, l.cacheFirst))
	}
	if next := lo + uint64(len(ents)); next < hi {
		out := make([]Entry, 0, hi-lo)
		out = append(out, ents...)
		for next < hi {
			more, _ := l.cached(next, hi, 0)
			out = append(out, more...)
			next += uint64(len(more))
		}
		return out
	}
	return ents
}

// unpersisted returns the entries not yet handed to the persist path and
// marks them handed off.
func (l *raftLog) unpersisted() []Entry {
	if l.handedOff >= l.last {
		return nil
	}
	ents := l.slice(l.handedOff+1, l.last+1)
	l.handedOff = l.last
	return ents
}

// persistedTo records that entries up to index, with term at index, are
// durable. A report about entries since replaced is ignored.
func (l *raftLog) persistedTo(index, t uint64) {
	if index > l.persisted && l.matchTerm(index, t) {
		l.persisted = index
		l.evict()
	}
}

// commitTo advances the commit index; it never goes back.
func (l *raftLog) commitTo(i uint64) bool {
	if i > l.committed {
		if i > l.last {
			panic(fmt.Sprintf("engine: commit %d beyond last index %d", i, l.last))
		}
		l.committed = i
		return true
	}
	return false
}

// compactTo records that storage dropped entries up to index, which a
// snapshot covers.
func (l *raftLog) compactTo(index uint64) {
	if index < l.first || index > l.snapIndex {
		return
	}
	l.first = index + 1
	i := 0
	for i+1 < len(l.runs) && l.runs[i+1].start <= l.first {
		i++
	}
	l.runs = l.runs[i:]
}

// installSnapshot makes the log start after snap, a snapshot received from
// the leader and already durable. If the log holds snap's last entry, the
// entries after it stay (Raft paper §7); otherwise the whole log is gone.
func (l *raftLog) installSnapshot(snap SnapshotMeta) {
	if snap.Index <= l.last && l.matchTerm(snap.Index, snap.Term) {
		l.snapIndex, l.snapTerm = snap.Index, snap.Term
		l.committed = max(l.committed, snap.Index)
		l.applying = max(l.applying, snap.Index)
		return
	}
	l.snapIndex, l.snapTerm = snap.Index, snap.Term
	l.first, l.last = snap.Index+1, snap.Index
	l.runs = append(l.runs[:0], termRun{start: snap.Index, term: snap.Term})
	l.committed = max(l.committed, snap.Index)
	l.applying, l.persisted, l.handedOff = snap.Index, snap.Index, snap.Index
	clear(l.blocks)
	l.blocks, l.cacheBytes, l.cacheFirst = nil, 0, snap.Index+1
}
