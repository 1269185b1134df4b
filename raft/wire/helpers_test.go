package wire

import (
	"math"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/raftkit/raftkit/raft/raftdata"
)

// allTypes lists every message type.
var allTypes = []raftdata.MessageType{
	raftdata.MsgApp, raftdata.MsgAppResp, raftdata.MsgVote, raftdata.MsgVoteResp,
	raftdata.MsgPreVote, raftdata.MsgPreVoteResp, raftdata.MsgHeartbeat,
	raftdata.MsgHeartbeatResp, raftdata.MsgTimeoutNow, raftdata.MsgSnap, raftdata.MsgSnapResp,
}

// randU64 favours edge values: zero, one-byte varints, the largest values.
func randU64(r *rand.Rand) uint64 {
	switch r.IntN(7) {
	case 0:
		return 0
	case 1:
		return math.MaxUint64
	case 2:
		return math.MaxUint64 - uint64(r.IntN(1000))
	case 3:
		return uint64(r.IntN(128))
	case 4:
		return uint64(r.IntN(1 << 21))
	case 5:
		return 1 << uint(r.IntN(64))
	default:
		return r.Uint64()
	}
}

// randBytes returns nil, empty, small or (rarely) large byte slices.
func randBytes(r *rand.Rand) []byte {
	var n int
	switch r.IntN(10) {
	case 0:
		return nil
	case 1:
		return []byte{}
	case 2:
		if r.IntN(4) == 0 {
			n = 64<<10 + r.IntN(256<<10) // large
		} else {
			n = 128 + r.IntN(2048)
		}
	default:
		n = r.IntN(64)
	}
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func randMembers(r *rand.Rand) []raftdata.Member {
	switch r.IntN(4) {
	case 0:
		return nil
	case 1:
		return []raftdata.Member{}
	}
	ms := make([]raftdata.Member, 1+r.IntN(5))
	for i := range ms {
		addr := make([]byte, r.IntN(40))
		for j := range addr {
			addr[j] = byte(r.Uint32())
		}
		ms[i] = raftdata.Member{ID: raftdata.NodeID(max(1, randU64(r))), Addr: string(addr)}
	}
	return ms
}

func randMembership(r *rand.Rand) raftdata.Membership {
	m := raftdata.Membership{
		Voters:         randMembers(r),
		OutgoingVoters: randMembers(r),
		NonVoters:      randMembers(r),
	}
	if r.IntN(2) == 0 {
		m.Removed = []raftdata.Member{}
		for range r.IntN(4) {
			m.Removed = append(m.Removed, raftdata.Member{ID: raftdata.NodeID(max(1, randU64(r)))})
		}
	}
	return m
}

// randMessage returns a message of type t with every field randomized, even
// those t does not use: the codec must carry them all.
func randMessage(r *rand.Rand, t raftdata.MessageType) raftdata.Message {
	m := raftdata.Message{
		Type:     t,
		Group:    raftdata.GroupID(randU64(r)),
		From:     raftdata.NodeID(randU64(r)),
		To:       raftdata.NodeID(randU64(r)),
		Term:     randU64(r),
		LogTerm:  randU64(r),
		Index:    randU64(r),
		Commit:   randU64(r),
		Reject:   r.IntN(2) == 0,
		Hint:     randU64(r),
		HintTerm: randU64(r),
		Context:  randU64(r),
		Transfer: r.IntN(2) == 0,
	}
	switch r.IntN(4) {
	case 0:
	case 1:
		m.Entries = []raftdata.Entry{}
	default:
		m.Entries = make([]raftdata.Entry, r.IntN(20))
		for i := range m.Entries {
			m.Entries[i] = raftdata.Entry{
				Index: randU64(r),
				Term:  randU64(r),
				Type:  raftdata.EntryType(r.IntN(3)),
				Data:  randBytes(r),
			}
		}
	}
	if t == raftdata.MsgSnap || r.IntN(4) == 0 {
		m.Snapshot = &raftdata.SnapshotChunk{
			Meta: raftdata.SnapshotMeta{
				Index:      randU64(r),
				Term:       randU64(r),
				Membership: randMembership(r),
			},
			Offset: randU64(r),
			Data:   randBytes(r),
			Done:   r.IntN(2) == 0,
		}
	}
	return m
}

// normalize returns a deep copy of m with every empty slice made nil, the
// one difference a round trip may introduce.
func normalize(m raftdata.Message) raftdata.Message {
	nb := func(b []byte) []byte {
		if len(b) == 0 {
			return nil
		}
		return append([]byte(nil), b...)
	}
	nm := func(s []raftdata.Member) []raftdata.Member {
		if len(s) == 0 {
			return nil
		}
		return append([]raftdata.Member(nil), s...)
	}
	out := m
	out.Entries = nil
	for _, e := range m.Entries {
		e.Data = nb(e.Data)
		out.Entries = append(out.Entries, e)
	}
	if m.Snapshot != nil {
		s := *m.Snapshot
		s.Data = nb(s.Data)
		mb := &s.Meta.Membership
		mb.Voters, mb.OutgoingVoters, mb.NonVoters = nm(mb.Voters), nm(mb.OutgoingVoters), nm(mb.NonVoters)
		if len(mb.Removed) == 0 {
			mb.Removed = nil
		}
		out.Snapshot = &s
	}
	return out
}

// checkEqual fails t unless a and b are equal up to nil versus empty slices.
func checkEqual(t testing.TB, got, want raftdata.Message) {
	t.Helper()
	if g, w := normalize(got), normalize(want); !reflect.DeepEqual(g, w) {
		t.Fatalf("round trip mismatch:\n got %+v\nwant %+v", summary(g), summary(w))
	}
}

// summary keeps failure output readable when data is large.
func summary(m raftdata.Message) raftdata.Message {
	for i := range m.Entries {
		if len(m.Entries[i].Data) > 32 {
			m.Entries[i].Data = m.Entries[i].Data[:32]
		}
	}
	if m.Snapshot != nil && len(m.Snapshot.Data) > 32 {
		s := *m.Snapshot
		s.Data = s.Data[:32]
		m.Snapshot = &s
	}
	return m
}
