package raftdata

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// ErrCorrupt reports stored or received bytes that do not decode as the
// structure they should hold (a torn write, a flipped bit, a foreign file).
// Storage and Network implementations wrap it (fmt.Errorf("%w: ...")) so
// that callers can test for it with errors.Is; package raft returns the same
// value as raft.ErrCorrupt.
var ErrCorrupt = errors.New("raft: corrupt data")

const (
	membershipVersion = 2 // 1 had no Removed set
	maxMembers        = 1 << 12
	maxAddrLen        = 1 << 12
)

// EncodeMembership returns the canonical byte form of m, stored as the Data of
// EntryConfig entries: a version byte, then
// each of the three member sets as a count followed by (id, address) pairs.
func EncodeMembership(m Membership) []byte {
	b := make([]byte, 0, 64)
	b = append(b, membershipVersion)
	for _, set := range [][]Member{m.Voters, m.OutgoingVoters, m.NonVoters, m.Removed} {
		b = binary.AppendUvarint(b, uint64(len(set)))
		for _, x := range set {
			b = binary.AppendUvarint(b, uint64(x.ID))
			b = binary.AppendUvarint(b, uint64(len(x.Addr)))
			b = append(b, x.Addr...)
		}
	}
	return b
}

// DecodeMembership parses bytes written by EncodeMembership (the Data of an
// EntryConfig entry). Malformed input yields an error wrapping ErrCorrupt; it
// never panics and never allocates more than the input can justify.
func DecodeMembership(b []byte) (Membership, error) {
	var m Membership
	if len(b) == 0 || b[0] < 1 || b[0] > membershipVersion {
		return m, fmt.Errorf("%w: membership: unknown version", ErrCorrupt)
	}
	version := b[0]
	b = b[1:]
	sets := []*[]Member{&m.Voters, &m.OutgoingVoters, &m.NonVoters}
	if version >= 2 {
		sets = append(sets, &m.Removed)
	}
	for _, set := range sets {
		n, k := binary.Uvarint(b)
		if k <= 0 || n > maxMembers || n > uint64(len(b)) {
			return Membership{}, fmt.Errorf("%w: membership: bad member count", ErrCorrupt)
		}
		b = b[k:]
		for i := uint64(0); i < n; i++ {
			id, k := binary.Uvarint(b)
			if k <= 0 || id == 0 {
				return Membership{}, fmt.Errorf("%w: membership: bad member id", ErrCorrupt)
			}
			b = b[k:]
			l, k := binary.Uvarint(b)
			if k <= 0 || l > maxAddrLen || l > uint64(len(b)-k) {
				return Membership{}, fmt.Errorf("%w: membership: bad address", ErrCorrupt)
			}
			b = b[k:]
			*set = append(*set, Member{ID: NodeID(id), Addr: string(b[:l])})
			b = b[l:]
		}
	}
	if len(b) != 0 {
		return Membership{}, fmt.Errorf("%w: membership: trailing bytes", ErrCorrupt)
	}
	return m, nil
}
