package wire

import (
	"encoding/binary"
	"fmt"

	"github.com/raftkit/raftkit/raft/raftdata"
)

// DecodeMessage decodes one message from the front of b, as written by
// AppendMessage, and returns it with the number of bytes it occupied. Bytes
// after the message are left alone.
//
// Aliasing: the Data of every decoded entry and of the snapshot chunk point
// into b (capacity-limited, so appending to them never overwrites b). The
// caller must not modify or reuse b while the message is in use; copy the
// data first if the buffer is recycled. Empty byte fields decode as nil.
// Everything else, including the snapshot membership, is copied out.
//
// Any malformed input yields an error wrapping raftdata.ErrCorrupt: ErrVersion
// for an unknown version byte, ErrTooLarge when the message exceeds lim
// (whose zero fields take their defaults), and a plain raftdata.ErrCorrupt
// error otherwise. DecodeMessage never panics, and it allocates only after
// checking each count and length against both lim and the bytes remaining.
func DecodeMessage(b []byte, lim Limits) (m raftdata.Message, n int, err error) {
	lim = lim.withDefaults()
	n, err = decodeMessage(b, &lim, &m)
	return m, n, err
}

// DecodeBatch decodes a batch frame written by AppendBatch. The frame must be
// exactly b: trailing bytes are an error.
//
// A frame stamped with a cluster ID other than clusterID yields an error
// wrapping ErrClusterMismatch (and not raftdata.ErrCorrupt). An unknown magic or
// malformed bytes yield errors wrapping raftdata.ErrCorrupt, an unknown version
// ErrVersion, and a frame over lim (whose zero fields take their defaults)
// ErrTooLarge. Each message is held to lim.MaxMessageBytes and
// lim.MaxEntries on its own. DecodeBatch never panics, and it allocates only
// after checking each count and length against both lim and the bytes
// remaining.
//
// Aliasing: as with DecodeMessage, decoded byte slices point into b, which
// the caller must not modify or reuse while the messages are in use.
func DecodeBatch(b []byte, clusterID uint64, lim Limits) ([]raftdata.Message, error) {
	lim = lim.withDefaults()
	if len(b) < 2 || b[0] != batchMagic0 || b[1] != batchMagic1 {
		return nil, corruptf("batch: bad magic")
	}
	if len(b) < 3 {
		return nil, corruptf("batch: truncated header")
	}
	if b[2] != Version {
		return nil, fmt.Errorf("%w: batch version %d", ErrVersion, b[2])
	}
	if len(b) < batchFixedHeader {
		return nil, corruptf("batch: truncated header")
	}
	if id := binary.LittleEndian.Uint64(b[3:]); id != clusterID {
		return nil, fmt.Errorf("%w: frame from cluster %#x, want %#x", ErrClusterMismatch, id, clusterID)
	}
	rest := b[batchFixedHeader:]
	count, k := binary.Uvarint(rest)
	if k <= 0 {
		return nil, corruptf("batch: bad message count")
	}
	rest = rest[k:]
	if count > uint64(lim.MaxBatchMessages) {
		return nil, fmt.Errorf("%w: batch of %d messages, limit %d", ErrTooLarge, count, lim.MaxBatchMessages)
	}
	if count > uint64(len(rest)/minMessageSize) {
		return nil, corruptf("batch: %d messages cannot fit in %d bytes", count, len(rest))
	}
	msgs := make([]raftdata.Message, count)
	for i := range msgs {
		n, err := decodeMessage(rest, &lim, &msgs[i])
		if err != nil {
			return nil, fmt.Errorf("batch message %d: %w", i, err)
		}
		rest = rest[n:]
	}
	if len(rest) != 0 {
		return nil, corruptf("batch: %d trailing bytes", len(rest))
	}
	return msgs, nil
}

// decoder reads fields from the front of a message. b is the input clipped
// to the message size limit; clipped records whether that cut anything off,
// so that running out of bytes can be told apart as too large or truncated.
// The first error sticks in err: once it is set, reads return zero values
// and consume nothing.
type decoder struct {
	b       []byte
	pos     int
	clipped bool
	max     int
	err     error
}

// fail records err unless an earlier error is already recorded.
func (d *decoder) fail(err error) {
	if d.err == nil {
		d.err = err
	}
}

// short records that a field runs past the end of d.b.
func (d *decoder) short() {
	if d.clipped {
		d.fail(fmt.Errorf("%w: message exceeds %d bytes", ErrTooLarge, d.max))
	} else {
		d.fail(corruptf("message truncated at byte %d of %d", d.pos, len(d.b)))
	}
}

// byte reads one byte.
func (d *decoder) byte() byte {
	if p := d.pos; uint(p) < uint(len(d.b)) {
		d.pos++
		return d.b[p]
	}
	return d.byteSlow()
}

// byteSlow is byte past the end of the input.
//
//go:noinline
func (d *decoder) byteSlow() byte {
	d.short()
	return 0
}

// uvarint reads one varint. Its fast path, for values below 128, inlines.
func (d *decoder) uvarint() uint64 {
	if p := d.pos; uint(p) < uint(len(d.b)) && d.b[p] < 0x80 {
		d.pos++
		return uint64(d.b[p])
	}
	return d.uvarintSlow()
}

// uvarintSlow is uvarint for multi-byte values and errors.
//
//go:noinline
func (d *decoder) uvarintSlow() uint64 {
	if d.err != nil {
		return 0
	}
	v, k := binary.Uvarint(d.b[d.pos:])
	switch {
	case k > 0:
		d.pos += k
		return v
	case k == 0:
		d.short()
	default:
		d.fail(corruptf("varint at byte %d overflows 64 bits", d.pos))
	}
	return 0
}

// bytes reads a length-prefixed byte field, aliasing d.b with its capacity
// capped at its length. An empty field yields nil.
func (d *decoder) bytes() []byte {
	l := d.uvarint()
	if l == 0 || d.err != nil {
		return nil
	}
	if l > uint64(d.max) {
		d.fail(fmt.Errorf("%w: field of %d bytes, message limit %d", ErrTooLarge, l, d.max))
		return nil
	}
	if l > uint64(len(d.b)-d.pos) {
		d.short()
		return nil
	}
	end := d.pos + int(l)
	s := d.b[d.pos:end:end]
	d.pos = end
	return s
}

// decodeMessage implements DecodeMessage for limits already defaulted,
// decoding into *m, which must be zero. On error *m is left zero.
func decodeMessage(b []byte, lim *Limits, m *raftdata.Message) (int, error) {
	d := decoder{b: b, max: lim.MaxMessageBytes}
	if len(b) > lim.MaxMessageBytes {
		d.b, d.clipped = b[:lim.MaxMessageBytes], true
	}
	d.message(lim, m)
	if d.err != nil {
		*m = raftdata.Message{}
		return 0, d.err
	}
	return d.pos, nil
}

// message reads a whole message into *m, which must be zero. The result is
// meaningless if d.err is set.
func (d *decoder) message(lim *Limits, m *raftdata.Message) {
	v := d.byte()
	if d.err == nil && v != Version {
		d.fail(fmt.Errorf("%w: message version %d", ErrVersion, v))
	}
	t, flags := d.byte(), d.byte()
	if d.err != nil {
		return
	}
	if t < byte(raftdata.MsgApp) || t > byte(raftdata.MsgSnapResp) {
		d.fail(corruptf("unknown message type %d", t))
		return
	}
	if flags&^knownFlags != 0 || (flags&flagDone != 0 && flags&flagSnapshot == 0) {
		d.fail(corruptf("bad flags %#x", flags))
		return
	}
	m.Type = raftdata.MessageType(t)
	m.Reject = flags&flagReject != 0
	m.Transfer = flags&flagTransfer != 0
	m.Group = raftdata.GroupID(d.uvarint())
	m.From = raftdata.NodeID(d.uvarint())
	m.To = raftdata.NodeID(d.uvarint())
	m.Term = d.uvarint()
	m.LogTerm = d.uvarint()
	m.Index = d.uvarint()
	m.Commit = d.uvarint()
	m.Hint = d.uvarint()
	m.HintTerm = d.uvarint()
	m.Context = d.uvarint()
	m.Entries = d.entries(lim)
	if flags&flagSnapshot != 0 {
		m.Snapshot = d.snapshot()
		if m.Snapshot != nil {
			m.Snapshot.Done = flags&flagDone != 0
		}
	}
}

// entries reads the entry count and the entries.
func (d *decoder) entries(lim *Limits) []raftdata.Entry {
	count := d.uvarint()
	if count == 0 || d.err != nil {
		return nil
	}
	if count > uint64(lim.MaxEntries) {
		d.fail(fmt.Errorf("%w: %d entries, limit %d", ErrTooLarge, count, lim.MaxEntries))
		return nil
	}
	if count > uint64((len(d.b)-d.pos)/minEntrySize) {
		d.short()
		return nil
	}
	ents := make([]raftdata.Entry, count)
	for i := range ents {
		e := &ents[i]
		e.Index = d.uvarint()
		e.Term = d.uvarint()
		t := d.byte()
		e.Data = d.bytes()
		if d.err != nil {
			return nil
		}
		if t > byte(raftdata.EntryConfig) {
			d.fail(corruptf("unknown entry type %d", t))
			return nil
		}
		e.Type = raftdata.EntryType(t)
	}
	return ents
}

// snapshot reads a snapshot chunk, all but its Done flag.
func (d *decoder) snapshot() *raftdata.SnapshotChunk {
	var s raftdata.SnapshotChunk
	s.Meta.Index = d.uvarint()
	s.Meta.Term = d.uvarint()
	mb := d.bytes()
	if d.err != nil {
		return nil
	}
	var err error
	if s.Meta.Membership, err = raftdata.DecodeMembership(mb); err != nil {
		d.fail(fmt.Errorf("wire: snapshot membership: %w", err))
		return nil
	}
	s.Offset = d.uvarint()
	s.Data = d.bytes()
	if d.err != nil {
		return nil
	}
	return &s
}
