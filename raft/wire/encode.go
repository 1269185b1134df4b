package wire

import (
	"encoding/binary"
	"math/bits"
	"slices"

	"github.com/raftkit/raftkit/raft/raftdata"
)

// AppendMessage appends the encoding of m to dst and returns the extended
// slice. Exactly MessageSize(m) bytes are appended.
//
// Every field of m is written, whatever its type. The encoding decodes back
// to m except that empty and nil slices are not told apart (both decode as
// nil). A message whose Type or entry types are out of range, or whose
// snapshot membership does not survive raftdata.DecodeMembership (for example
// a member with ID 0), encodes but does not decode.
func AppendMessage(dst []byte, m *raftdata.Message) []byte {
	var mb []byte
	if m.Snapshot != nil {
		mb = raftdata.EncodeMembership(m.Snapshot.Meta.Membership)
	}
	dst = slices.Grow(dst, messageSize(m, mb))
	var flags byte
	if m.Reject {
		flags |= flagReject
	}
	if m.Transfer {
		flags |= flagTransfer
	}
	if m.Snapshot != nil {
		flags |= flagSnapshot
		if m.Snapshot.Done {
			flags |= flagDone
		}
	}
	dst = append(dst, Version, byte(m.Type), flags)
	dst = binary.AppendUvarint(dst, uint64(m.Group))
	dst = binary.AppendUvarint(dst, uint64(m.From))
	dst = binary.AppendUvarint(dst, uint64(m.To))
	dst = binary.AppendUvarint(dst, m.Term)
	dst = binary.AppendUvarint(dst, m.LogTerm)
	dst = binary.AppendUvarint(dst, m.Index)
	dst = binary.AppendUvarint(dst, m.Commit)
	dst = binary.AppendUvarint(dst, m.Hint)
	dst = binary.AppendUvarint(dst, m.HintTerm)
	dst = binary.AppendUvarint(dst, m.Context)
	dst = binary.AppendUvarint(dst, uint64(len(m.Entries)))
	for i := range m.Entries {
		e := &m.Entries[i]
		dst = binary.AppendUvarint(dst, e.Index)
		dst = binary.AppendUvarint(dst, e.Term)
		dst = append(dst, byte(e.Type))
		dst = binary.AppendUvarint(dst, uint64(len(e.Data)))
		dst = append(dst, e.Data...)
	}
	if s := m.Snapshot; s != nil {
		dst = binary.AppendUvarint(dst, s.Meta.Index)
		dst = binary.AppendUvarint(dst, s.Meta.Term)
		dst = binary.AppendUvarint(dst, uint64(len(mb)))
		dst = append(dst, mb...)
		dst = binary.AppendUvarint(dst, s.Offset)
		dst = binary.AppendUvarint(dst, uint64(len(s.Data)))
		dst = append(dst, s.Data...)
	}
	return dst
}

// MessageSize returns the exact number of bytes AppendMessage writes for m,
// so that transports can cap batches before encoding. For a message with a
// snapshot chunk it encodes the chunk's membership to measure it.
func MessageSize(m *raftdata.Message) int {
	var mb []byte
	if m.Snapshot != nil {
		mb = raftdata.EncodeMembership(m.Snapshot.Meta.Membership)
	}
	return messageSize(m, mb)
}

// messageSize is MessageSize given the snapshot membership's encoding mb.
func messageSize(m *raftdata.Message, mb []byte) int {
	n := 3 +
		uvarintLen(uint64(m.Group)) + uvarintLen(uint64(m.From)) + uvarintLen(uint64(m.To)) +
		uvarintLen(m.Term) + uvarintLen(m.LogTerm) + uvarintLen(m.Index) +
		uvarintLen(m.Commit) + uvarintLen(m.Hint) + uvarintLen(m.HintTerm) +
		uvarintLen(m.Context) + uvarintLen(uint64(len(m.Entries)))
	for i := range m.Entries {
		e := &m.Entries[i]
		n += uvarintLen(e.Index) + uvarintLen(e.Term) + 1 + bytesLen(e.Data)
	}
	if s := m.Snapshot; s != nil {
		n += uvarintLen(s.Meta.Index) + uvarintLen(s.Meta.Term) + bytesLen(mb) +
			uvarintLen(s.Offset) + bytesLen(s.Data)
	}
	return n
}

// BatchHeaderSize returns the size of a batch frame's header for count
// messages. A frame written by AppendBatch is exactly
// BatchHeaderSize(len(msgs)) plus the MessageSize of each message.
func BatchHeaderSize(count int) int {
	return batchFixedHeader + uvarintLen(uint64(count))
}

// AppendBatch appends a batch frame holding msgs, stamped with clusterID,
// to dst and returns the extended slice. See the package documentation for
// the layout.
func AppendBatch(dst []byte, clusterID uint64, msgs []raftdata.Message) []byte {
	dst = append(dst, batchMagic0, batchMagic1, Version)
	dst = binary.LittleEndian.AppendUint64(dst, clusterID)
	dst = binary.AppendUvarint(dst, uint64(len(msgs)))
	for i := range msgs {
		dst = AppendMessage(dst, &msgs[i])
	}
	return dst
}

// uvarintLen is the length of binary.AppendUvarint's encoding of x.
func uvarintLen(x uint64) int { return (bits.Len64(x|1) + 6) / 7 }

// bytesLen is the length of a length-prefixed byte field holding b.
func bytesLen(b []byte) int { return uvarintLen(uint64(len(b))) + len(b) }
