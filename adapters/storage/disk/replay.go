package disk

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"

	"github.com/raftkit/raftkit/raft/raftdata"
)

// entryLoc is the in-memory index of one log entry: its term and type and
// where its data lies in the log.
type entryLoc struct {
	term uint64
	seg  *segment
	off  int64
	n    uint32
	typ  raftdata.EntryType
}

// replay rebuilds the log's state from the write-ahead log's records.
type replay struct {
	hs raftdata.HardState
	// markIndex and markTerm identify the latest snapshot the log records
	// as committed (by a recSnapshot or recCompact record).
	markIndex, markTerm uint64
	first               uint64     // FirstIndex
	start               uint64     // the index of ents[0]
	ents                []entryLoc // start .. start+len(ents)-1
	scratch             []savedEntry
}

// last returns the index of the last entry replayed.
func (r *replay) last() uint64 { return r.start + uint64(len(r.ents)) - 1 }

// openSegments lists dir's segments in log order and opens them.
func openSegments(dir string, log *slog.Logger) ([]*segment, error) {
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("disk: reading wal directory: %w", err)
	}
	var segs []*segment
	for _, de := range des {
		first, seq, ok := parseSegmentName(de.Name())
		if !ok {
			log.Warn("disk: ignoring unexpected file in wal directory", "name", de.Name())
			continue
		}
		segs = append(segs, &segment{seq: seq, first: first, path: filepath.Join(dir, de.Name())})
	}
	slices.SortFunc(segs, func(a, b *segment) int { return cmpUint(a.seq, b.seq) })
	for _, sg := range segs {
		if sg.f, err = os.OpenFile(sg.path, os.O_RDWR, 0); err != nil {
			closeSegments(segs)
			return nil, fmt.Errorf("disk: opening segment: %w", err)
		}
	}
	return segs, nil
}

// closeSegments closes every open segment file.
func closeSegments(segs []*segment) {
	for _, sg := range segs {
		if sg.f != nil {
			_ = sg.f.Close()
		}
	}
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// readSegment applies every record of sg. A record length of 0 marks the
// end of data (real records have at least their type byte); everything
// after it up to the end of the file must be zeros, the space written ahead
// for later records. In the last segment a bad record followed only by
// zeros is a torn write: it is zeroed and appending resumes there.
// Anything else is corruption.
func (r *replay) readSegment(sg *segment, isLast, noSync bool, log *slog.Logger) error {
	fi, err := sg.f.Stat()
	if err != nil {
		return fmt.Errorf("disk: %w", err)
	}
	size := fi.Size()
	sg.alloc = size
	br := bufio.NewReaderSize(io.NewSectionReader(sg.f, 0, size), 1<<20)
	var hdr [recHeader]byte
	var payload []byte
	off := int64(0)
	for off < size {
		h := hdr[:min(size-off, recHeader)]
		if _, err := io.ReadFull(br, h); err != nil {
			return fmt.Errorf("disk: reading %s: %w", sg.path, err)
		}
		if allZero(h) {
			return r.endOfData(sg, br, off, size, h)
		}
		bad := ""
		var n int64
		recEnd := size // where the bad record ends, as far as can be told
		if len(h) >= 4 && binary.LittleEndian.Uint32(h) == 0 {
			bad, recEnd = "record of length 0 with a non-zero header", off+int64(len(h))
		} else if len(h) < recHeader {
			bad = "short record header"
		} else if n = int64(binary.LittleEndian.Uint32(h)); n > maxRecord || n > size-off-recHeader {
			bad = "record length past the end of the file"
		} else {
			recEnd = off + recHeader + n
			payload = slices.Grow(payload[:0], int(n))[:n]
			if _, err := io.ReadFull(br, payload); err != nil {
				return fmt.Errorf("disk: reading %s: %w", sg.path, err)
			}
			crc := crc32.Update(crc32.Update(0, castagnoli, hdr[8:9]), castagnoli, payload)
			if crc != binary.LittleEndian.Uint32(hdr[4:]) {
				bad = "checksum mismatch"
			}
		}
		if bad != "" {
			return r.badRecord(sg, off, recEnd, size, bad, isLast, noSync, log)
		}
		if err := r.apply(sg, off, hdr[8], payload); err != nil {
			return corruptf("%s at offset %d: %v", sg.path, off, err)
		}
		off += recHeader + n
	}
	sg.size = size
	return nil
}

// endOfData handles the end-of-data marker at off in sg (a zero record
// header, whose bytes h have been read from br): the rest of the file must
// be zeros.
func (r *replay) endOfData(sg *segment, br *bufio.Reader, off, size int64, h []byte) error {
	buf := make([]byte, 64<<10)
	for pos := off + int64(len(h)); pos < size; {
		b := buf[:min(size-pos, int64(len(buf)))]
		if _, err := io.ReadFull(br, b); err != nil {
			return fmt.Errorf("disk: reading %s: %w", sg.path, err)
		}
		if p := firstNonZero(b); p >= 0 {
			return corruptf("%s: non-zero data at offset %d after the end of the data at offset %d",
				sg.path, pos+int64(p), off)
		}
		pos += int64(len(b))
	}
	sg.size = off
	return nil
}

// badRecord handles a bad record at off in sg, which ends at recEnd as far
// as its header tells: in the last segment, when nothing but zeros follows
// it, it is a torn write and is zeroed; anything else is corruption.
func (r *replay) badRecord(sg *segment, off, recEnd, size int64, why string, isLast, noSync bool, log *slog.Logger) error {
	if !isLast {
		return corruptf("%s at offset %d: %s (not the last segment)", sg.path, off, why)
	}
	tail := make([]byte, size-off)
	if _, err := sg.f.ReadAt(tail, off); err != nil {
		return fmt.Errorf("disk: reading %s: %w", sg.path, err)
	}
	if p := findRecord(tail); p >= 0 {
		return corruptf("%s at offset %d: %s, followed by a valid record at offset %d", sg.path, off, why, off+int64(p))
	}
	if p := firstNonZero(tail[recEnd-off:]); p >= 0 {
		return corruptf("%s at offset %d: %s, followed by non-zero data at offset %d", sg.path, off, why, recEnd+int64(p))
	}
	log.Warn("disk: discarding a torn write at the end of the log",
		"segment", sg.path, "offset", off, "bytes", recEnd-off, "reason", why)
	if err := writeZeros(sg.f, off, recEnd); err != nil {
		return fmt.Errorf("disk: zeroing torn tail: %w", err)
	}
	if !noSync {
		if err := sg.f.Sync(); err != nil {
			return fmt.Errorf("disk: zeroing torn tail: %w", err)
		}
	}
	sg.size = off
	return nil
}

// allZero tells whether b holds only zeros.
func allZero(b []byte) bool { return firstNonZero(b) < 0 }

// firstNonZero returns the offset of the first non-zero byte of b, or -1.
func firstNonZero(b []byte) int {
	i := 0
	for i+8 <= len(b) && binary.LittleEndian.Uint64(b[i:]) == 0 {
		i += 8
	}
	for ; i < len(b); i++ {
		if b[i] != 0 {
			return i
		}
	}
	return -1
}

// findRecord returns the offset of the first valid record in b after
// offset 0, or -1.
func findRecord(b []byte) int {
	for p := 1; p+recHeader <= len(b); p++ {
		t := b[p+8]
		if t < recSave || t > recSnapshot {
			continue
		}
		n := int(binary.LittleEndian.Uint32(b[p:]))
		if n > len(b)-p-recHeader {
			continue
		}
		if crc32.Checksum(b[p+8:p+recHeader+n], castagnoli) == binary.LittleEndian.Uint32(b[p+4:]) {
			return p
		}
	}
	return -1
}

// apply applies one valid record, found at off in sg, to the replay state.
func (r *replay) apply(sg *segment, off int64, typ byte, payload []byte) error {
	switch typ {
	case recSave:
		hs, lo, ents, err := decodeSave(payload, r.scratch[:0])
		r.scratch = ents[:0]
		if err != nil {
			return err
		}
		if hs != nil {
			r.hs = *hs
		}
		if len(ents) == 0 {
			return nil
		}
		if lo == 0 {
			return errors.New("save record at index 0")
		}
		if lo <= r.start || lo > r.last()+1 {
			// Everything before lo is gone: it was in segments deleted
			// by a compaction whose record comes later.
			r.ents, r.start = r.ents[:0], lo
		} else {
			r.ents = r.ents[:lo-r.start]
		}
		for _, e := range ents {
			r.ents = append(r.ents, entryLoc{
				term: e.term, typ: e.typ, seg: sg, n: uint32(e.n),
				off: off + recHeader + int64(e.off),
			})
		}
		sg.maxIndex = max(sg.maxIndex, r.last())
	case recCompact, recSnapshot:
		st, err := decodeState(payload)
		if err != nil {
			return err
		}
		r.hs, r.markIndex, r.markTerm = st.hs, st.snapIndex, st.snapTerm
		switch {
		case typ == recSnapshot && st.discardLog:
			r.resetTo(st.snapIndex)
		case typ == recCompact:
			r.compact(st.upTo)
		}
	default:
		return fmt.Errorf("unknown record type %d", typ)
	}
	return nil
}

// resetTo discards the log, leaving FirstIndex = LastIndex+1 = index+1.
func (r *replay) resetTo(index uint64) {
	r.ents, r.start, r.first = r.ents[:0], index+1, index+1
}

// compact discards the entries ≤ upTo.
func (r *replay) compact(upTo uint64) {
	r.first = max(r.first, upTo+1)
	if r.start >= r.first {
		return
	}
	drop := r.first - r.start
	if drop >= uint64(len(r.ents)) {
		r.ents, r.start = r.ents[:0], r.first
		return
	}
	r.ents, r.start = r.ents[drop:], r.first
}

// finish checks that the log is whole from FirstIndex to LastIndex and
// returns its entries.
func (r *replay) finish() ([]entryLoc, error) {
	if r.start > r.first {
		return nil, corruptf("log entries [%d, %d) are missing", r.first, r.start)
	}
	r.compact(r.first - 1)
	return slices.Clip(r.ents), nil
}
