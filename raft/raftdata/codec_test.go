package raftdata

import (
	"errors"
	"math/rand/v2"
	"testing"
)

func TestMembershipCodecRoundTrip(t *testing.T) {
	m := Membership{
		Voters:         []Member{{ID: 1, Addr: "a:1"}, {ID: 2, Addr: ""}},
		OutgoingVoters: []Member{{ID: 3, Addr: "c"}},
		NonVoters:      []Member{{ID: 9, Addr: "nine"}},
		Removed:        []Member{{ID: 4, Addr: "d"}, {ID: 7}},
	}
	got, err := DecodeMembership(EncodeMembership(m))
	if err != nil || !got.Equal(&m) {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	// Version 1 (no removed list) still decodes.
	v1 := EncodeMembership(Membership{Voters: m.Voters})
	v1 = v1[:len(v1)-1]
	v1[0] = 1
	if got, err := DecodeMembership(v1); err != nil || len(got.Voters) != 2 {
		t.Fatalf("version 1: %+v, %v", got, err)
	}
}

func TestMembershipDecodeRejectsGarbage(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	good := EncodeMembership(Membership{Voters: []Member{{ID: 1, Addr: "x"}}, Removed: []Member{{ID: 2}}})
	for i := 0; i < 2000; i++ {
		b := append([]byte(nil), good...)
		switch i % 3 {
		case 0:
			b = b[:r.IntN(len(b))]
		case 1:
			b[r.IntN(len(b))] = byte(r.IntN(256))
		default:
			b = append(b, byte(r.IntN(256)))
		}
		if _, err := DecodeMembership(b); err != nil && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("untyped error %v", err)
		}
	}
}
