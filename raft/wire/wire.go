// Package wire is the binary codec every raftkit network adapter uses to put
// raftdata.Message values on the wire. It is versioned, compact, uses no
// reflection, and its decoders accept arbitrary bytes: they return an error,
// never panic, and never allocate more than the input length justifies.
//
// # Message encoding
//
// Integers are unsigned varints (encoding/binary.AppendUvarint) unless noted;
// byte fields are a varint length followed by that many bytes.
//
//	field            encoding
//	---------------  -----------------------------------------------------
//	version          1 byte, Version (1)
//	type             1 byte, raftdata.MessageType (MsgApp..MsgSnapResp)
//	flags            1 byte: 0x01 Reject, 0x02 Transfer,
//	                         0x04 snapshot present, 0x08 snapshot Done
//	Group            varint
//	From             varint
//	To               varint
//	Term             varint
//	LogTerm          varint
//	Index            varint
//	Commit           varint
//	Hint             varint
//	HintTerm         varint
//	Context          varint
//	entry count      varint, then per entry:
//	  Index          varint
//	  Term           varint
//	  Type           1 byte, raftdata.EntryType (EntryNormal..EntryConfig)
//	  Data           varint length + bytes
//	snapshot         only when flag 0x04 is set:
//	  Meta.Index     varint
//	  Meta.Term      varint
//	  Meta.Membership varint length + raftdata.EncodeMembership bytes
//	  Offset         varint
//	  Data           varint length + bytes
//
// # Batch frame
//
//	field            encoding
//	---------------  -----------------------------------------------------
//	magic            2 bytes, "rk"
//	version          1 byte, Version (1)
//	cluster ID       8 bytes, little-endian uint64
//	message count    varint
//	messages         count message encodings, back to back, as above
//
// Decoded entry and snapshot data alias the input buffer; see DecodeMessage.
//
// A frame carries no overall length: the transport delimits frames (for
// example with a length prefix of its own) and hands DecodeBatch exactly one.
package wire

import (
	"errors"
	"fmt"

	"github.com/raftkit/raftkit/raft/raftdata"
)

// Version is the format version written by AppendMessage and AppendBatch and
// the only one their decoders accept.
const Version = 1

// Limits bounds what a decoder accepts, so that a peer cannot make it
// allocate or hold more than the transport intends. A zero (or negative)
// field takes its default: 64 MiB for MaxMessageBytes, 1<<20 for MaxEntries
// and 1<<16 for MaxBatchMessages.
type Limits struct {
	// MaxMessageBytes is the largest encoded size of one message.
	MaxMessageBytes int
	// MaxEntries is the largest number of entries one message may carry.
	MaxEntries int
	// MaxBatchMessages is the largest number of messages in one batch.
	MaxBatchMessages int
}

// DefaultLimits holds the limits a zero Limits value stands for.
var DefaultLimits = Limits{
	MaxMessageBytes:  64 << 20,
	MaxEntries:       1 << 20,
	MaxBatchMessages: 1 << 16,
}

// withDefaults returns lim with every non-positive field set to its default.
func (lim Limits) withDefaults() Limits {
	if lim.MaxMessageBytes <= 0 {
		lim.MaxMessageBytes = DefaultLimits.MaxMessageBytes
	}
	if lim.MaxEntries <= 0 {
		lim.MaxEntries = DefaultLimits.MaxEntries
	}
	if lim.MaxBatchMessages <= 0 {
		lim.MaxBatchMessages = DefaultLimits.MaxBatchMessages
	}
	return lim
}

var (
	// ErrClusterMismatch is returned by DecodeBatch for a well-formed frame
	// sent by a member of another cluster. It does not wrap raftdata.ErrCorrupt:
	// the bytes are fine, they are just not meant for this cluster.
	ErrClusterMismatch = errors.New("wire: cluster ID mismatch")
	// ErrVersion is returned for a message or batch written in a format
	// version this package does not know. errors.Is(err, raftdata.ErrCorrupt)
	// also holds for it.
	ErrVersion = fmt.Errorf("wire: unsupported format version: %w", raftdata.ErrCorrupt)
	// ErrTooLarge is returned for input that exceeds the decoder's Limits.
	// errors.Is(err, raftdata.ErrCorrupt) also holds for it.
	ErrTooLarge = fmt.Errorf("wire: limit exceeded: %w", raftdata.ErrCorrupt)
)

// corruptf returns an error wrapping raftdata.ErrCorrupt.
func corruptf(format string, args ...any) error {
	return fmt.Errorf("%w: wire: %s", raftdata.ErrCorrupt, fmt.Sprintf(format, args...))
}

// Flag bits of the flags byte.
const (
	flagReject   = 1 << 0
	flagTransfer = 1 << 1
	flagSnapshot = 1 << 2
	flagDone     = 1 << 3
	knownFlags   = flagReject | flagTransfer | flagSnapshot | flagDone
)

// Fixed sizes used to bound counts before allocating.
const (
	// minMessageSize is the smallest message encoding: version, type and
	// flags bytes, ten one-byte varints and a one-byte entry count.
	minMessageSize = 3 + 10 + 1
	// minEntrySize is the smallest entry encoding: index, term, type and a
	// zero data length, one byte each.
	minEntrySize = 4
	// batchFixedHeader is magic, version and cluster ID.
	batchFixedHeader = 2 + 1 + 8
)

// batchMagic opens every batch frame.
const batchMagic0, batchMagic1 = 'r', 'k'
