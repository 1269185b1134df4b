package disk

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/raftkit/raftkit/raft/raftdata"
)

// Record types of the write-ahead log.
const (
	// recSave holds an optional hard state and a contiguous run of entries.
	recSave byte = 1
	// recCompact raises the first index; it also carries the hard state and
	// the latest snapshot's identity, so that older segments may be deleted.
	recCompact byte = 2
	// recSnapshot marks a committed snapshot; with its discard flag set it
	// discards the whole log (the RESET of the design). It also carries the
	// hard state, like recCompact.
	recSnapshot byte = 3
)

// recHeader is the size of a record's header: u32 length of the payload,
// u32 CRC-32C of type and payload, u8 type.
const recHeader = 9

// maxRecord bounds a record's payload, so a corrupt length cannot make
// replay allocate without limit.
const maxRecord = 1 << 30

// castagnoli is the CRC-32C table used for records and snapshots.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// saveHasHS is the SAVE record flag telling that a hard state follows.
const saveHasHS = 1

// segment is one file of the write-ahead log.
type segment struct {
	seq   uint64 // position in the log, from the file name
	first uint64 // the first index the segment was created for (name only)
	path  string
	f     *os.File
	size  int64 // bytes of valid records: the end of data
	// alloc is the size of the file: the bytes from size to alloc are
	// zeros written ahead of time, so that appending a record there and
	// syncing it changes no file metadata.
	alloc int64
	// maxIndex is the highest entry index written into the segment, 0 if
	// none: once it is compacted away, nothing in the segment is needed.
	maxIndex uint64
}

// segmentName returns the file name of a segment.
func segmentName(first, seq uint64) string {
	return fmt.Sprintf("%016x-%016x.log", first, seq)
}

// parseSegmentName parses a segment file name.
func parseSegmentName(name string) (first, seq uint64, ok bool) {
	return parsePair(name, ".log")
}

// parsePair parses "<16 hex>-<16 hex><ext>".
func parsePair(name, ext string) (a, b uint64, ok bool) {
	base, found := strings.CutSuffix(name, ext)
	if !found || len(base) != 33 || base[16] != '-' {
		return 0, 0, false
	}
	a, err1 := strconv.ParseUint(base[:16], 16, 64)
	b, err2 := strconv.ParseUint(base[17:], 16, 64)
	return a, b, err1 == nil && err2 == nil
}

// stateRec is the payload of recCompact and recSnapshot records.
type stateRec struct {
	hs         raftdata.HardState
	snapIndex  uint64
	snapTerm   uint64
	upTo       uint64 // recCompact: entries ≤ upTo are discarded
	discardLog bool   // recSnapshot: the log is discarded
}

// sealRecord fills in the header at buf[start:start+recHeader] of a record
// of type typ whose payload is buf[start+recHeader:].
func sealRecord(buf []byte, start int, typ byte) {
	payload := buf[start+recHeader:]
	buf[start+8] = typ
	crc := crc32.Update(0, castagnoli, buf[start+8:])
	binary.LittleEndian.PutUint32(buf[start:], uint32(len(payload)))
	binary.LittleEndian.PutUint32(buf[start+4:], crc)
}

// encodeState returns a recCompact or recSnapshot record.
func encodeState(buf []byte, typ byte, r stateRec) []byte {
	buf = append(buf[:0], make([]byte, recHeader)...)
	buf = binary.AppendUvarint(buf, r.hs.Term)
	buf = binary.AppendUvarint(buf, uint64(r.hs.Vote))
	buf = binary.AppendUvarint(buf, r.hs.Commit)
	buf = binary.AppendUvarint(buf, r.snapIndex)
	buf = binary.AppendUvarint(buf, r.snapTerm)
	buf = binary.AppendUvarint(buf, r.upTo)
	flag := byte(0)
	if r.discardLog {
		flag = 1
	}
	buf = append(buf, flag)
	sealRecord(buf, 0, typ)
	return buf
}

// decodeState parses the payload of a recCompact or recSnapshot record.
func decodeState(p []byte) (stateRec, error) {
	d := decoder{b: p}
	var r stateRec
	r.hs.Term = d.uvarint()
	r.hs.Vote = raftdata.NodeID(d.uvarint())
	r.hs.Commit = d.uvarint()
	r.snapIndex = d.uvarint()
	r.snapTerm = d.uvarint()
	r.upTo = d.uvarint()
	flag := d.byte()
	if d.err != nil || len(d.b) != 0 || flag > 1 {
		return stateRec{}, fmt.Errorf("malformed state record")
	}
	r.discardLog = flag == 1
	return r, nil
}

// encodeSave returns a SAVE record for hs (optional) and entries, and the
// offset of each entry's data within the record (appended to offs).
func encodeSave(buf []byte, hs *raftdata.HardState, entries []raftdata.Entry, offs []int) ([]byte, []int) {
	buf = append(buf[:0], make([]byte, recHeader)...)
	if hs != nil {
		buf = append(buf, saveHasHS)
		buf = binary.AppendUvarint(buf, hs.Term)
		buf = binary.AppendUvarint(buf, uint64(hs.Vote))
		buf = binary.AppendUvarint(buf, hs.Commit)
	} else {
		buf = append(buf, 0)
	}
	var first uint64
	if len(entries) > 0 {
		first = entries[0].Index
	}
	buf = binary.AppendUvarint(buf, first)
	buf = binary.AppendUvarint(buf, uint64(len(entries)))
	for i := range entries {
		e := &entries[i]
		buf = binary.AppendUvarint(buf, e.Term)
		buf = append(buf, byte(e.Type))
		buf = binary.AppendUvarint(buf, uint64(len(e.Data)))
		offs = append(offs, len(buf))
		buf = append(buf, e.Data...)
	}
	sealRecord(buf, 0, recSave)
	return buf, offs
}

// savedEntry is one entry of a decoded SAVE record; off is the offset of
// its data within the payload.
type savedEntry struct {
	term uint64
	typ  raftdata.EntryType
	off  int
	n    int
}

// decodeSave parses the payload of a SAVE record.
func decodeSave(p []byte, ents []savedEntry) (hs *raftdata.HardState, first uint64, _ []savedEntry, _ error) {
	d := decoder{b: p}
	flags := d.byte()
	if flags&saveHasHS != 0 {
		hs = &raftdata.HardState{Term: d.uvarint(), Vote: raftdata.NodeID(d.uvarint()), Commit: d.uvarint()}
	}
	first = d.uvarint()
	n := d.uvarint()
	if d.err != nil || flags&^saveHasHS != 0 || n > uint64(len(p)) {
		return nil, 0, nil, fmt.Errorf("malformed save record header")
	}
	for range n {
		term := d.uvarint()
		typ := d.byte()
		size := d.uvarint()
		if d.err != nil || size > uint64(len(d.b)) {
			return nil, 0, nil, fmt.Errorf("malformed entry in save record")
		}
		ents = append(ents, savedEntry{term: term, typ: raftdata.EntryType(typ), off: len(p) - len(d.b), n: int(size)})
		d.b = d.b[size:]
	}
	if len(d.b) != 0 {
		return nil, 0, nil, fmt.Errorf("%d trailing bytes in save record", len(d.b))
	}
	return hs, first, ents, nil
}

// decoder reads uvarints and bytes, remembering the first error.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = fmt.Errorf("bad uvarint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) byte() byte {
	if d.err != nil {
		return 0
	}
	if len(d.b) == 0 {
		d.err = fmt.Errorf("short record")
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

// syncDir fsyncs a directory, making the creation, removal and renaming of
// its entries durable. It is a variable so that tests can observe which
// directories are synced; it is fsyncDir otherwise.
var syncDir = fsyncDir

// createSegment creates an empty segment file in dir and makes its
// creation durable.
func createSegment(dir string, first, seq uint64) (*segment, error) {
	path := filepath.Join(dir, segmentName(first, seq))
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, fmt.Errorf("disk: creating segment: %w", err)
	}
	if err := syncDir(dir); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("disk: syncing wal directory: %w", err)
	}
	return &segment{seq: seq, first: first, path: path, f: f}, nil
}
