package wire

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/raftkit/raftkit/raft/raftdata"
)

func TestRoundTripEveryType(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, typ := range allTypes {
		t.Run(typ.String(), func(t *testing.T) {
			for range 60 {
				m := randMessage(r, typ)
				prefix := []byte("prefix")
				enc := AppendMessage(append([]byte(nil), prefix...), &m)
				if !bytes.HasPrefix(enc, prefix) {
					t.Fatal("AppendMessage clobbered dst")
				}
				enc = enc[len(prefix):]
				if got := MessageSize(&m); got != len(enc) {
					t.Fatalf("MessageSize = %d, encoding is %d bytes", got, len(enc))
				}
				// Trailing bytes must be left alone.
				got, n, err := DecodeMessage(append(enc, 0xEE, 0xFF), Limits{})
				if err != nil {
					t.Fatalf("decode: %v", err)
				}
				if n != len(enc) {
					t.Fatalf("consumed %d bytes, encoding is %d", n, len(enc))
				}
				checkEqual(t, got, m)
			}
		})
	}
}

func TestZeroAndExtremeMessages(t *testing.T) {
	max := uint64(math.MaxUint64)
	msgs := []raftdata.Message{
		{Type: raftdata.MsgHeartbeat},
		{Type: raftdata.MsgApp, Entries: []raftdata.Entry{{}}},
		{Type: raftdata.MsgApp, Entries: []raftdata.Entry{{Data: []byte{}}}, Snapshot: &raftdata.SnapshotChunk{}},
		{
			Type: raftdata.MsgSnapResp, Group: raftdata.GroupID(max), From: raftdata.NodeID(max), To: raftdata.NodeID(max),
			Term: max, LogTerm: max, Index: max, Commit: max, Hint: max, HintTerm: max, Context: max,
			Reject: true, Transfer: true,
			Entries: []raftdata.Entry{{Index: max, Term: max, Type: raftdata.EntryConfig, Data: make([]byte, 1<<20)}},
			Snapshot: &raftdata.SnapshotChunk{
				Meta:   raftdata.SnapshotMeta{Index: max, Term: max, Membership: raftdata.Membership{Removed: []raftdata.Member{{ID: raftdata.NodeID(max)}}}},
				Offset: max, Data: make([]byte, 3<<20), Done: true,
			},
		},
	}
	for i, m := range msgs {
		enc := AppendMessage(nil, &m)
		if len(enc) != MessageSize(&m) {
			t.Fatalf("%d: MessageSize = %d, want %d", i, MessageSize(&m), len(enc))
		}
		got, n, err := DecodeMessage(enc, Limits{})
		if err != nil || n != len(enc) {
			t.Fatalf("%d: decode: n=%d err=%v", i, n, err)
		}
		checkEqual(t, got, m)
	}
}

func TestMessageSizeRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 500 {
		m := randMessage(r, allTypes[r.IntN(len(allTypes))])
		if got, want := MessageSize(&m), len(AppendMessage(nil, &m)); got != want {
			t.Fatalf("MessageSize = %d, len(AppendMessage) = %d", got, want)
		}
	}
	for _, x := range []uint64{0, 1, 127, 128, 16383, 16384, 1<<56 - 1, 1 << 56, 1<<63 - 1, 1 << 63, math.MaxUint64} {
		m := raftdata.Message{Type: raftdata.MsgApp, Term: x, Context: x}
		if got, want := MessageSize(&m), len(AppendMessage(nil, &m)); got != want {
			t.Fatalf("value %d: MessageSize = %d, len(AppendMessage) = %d", x, got, want)
		}
	}
}

func TestBatchRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, n := range []int{0, 1, 2, 11, 130} {
		msgs := make([]raftdata.Message, n)
		want := BatchHeaderSize(n)
		for i := range msgs {
			msgs[i] = randMessage(r, allTypes[i%len(allTypes)])
			want += MessageSize(&msgs[i])
		}
		enc := AppendBatch(nil, 0xC1A5_7E12, msgs)
		if len(enc) != want {
			t.Fatalf("batch of %d: %d bytes, BatchHeaderSize+sum(MessageSize) = %d", n, len(enc), want)
		}
		got, err := DecodeBatch(enc, 0xC1A5_7E12, Limits{})
		if err != nil {
			t.Fatalf("batch of %d: %v", n, err)
		}
		if len(got) != n {
			t.Fatalf("batch of %d: decoded %d messages", n, len(got))
		}
		for i := range got {
			checkEqual(t, got[i], msgs[i])
		}
	}
}

// goldenMessages pin the format: changing any of these bytes breaks every
// peer running an older build, so it needs a new Version.
var goldenMessages = []struct {
	name string
	m    raftdata.Message
	hex  string
}{
	{
		name: "MsgApp",
		m: raftdata.Message{
			Type: raftdata.MsgApp, Group: 7, From: 1, To: 2, Term: 5, LogTerm: 4, Index: 10, Commit: 9,
			Context: 300, Transfer: true,
			Entries: []raftdata.Entry{
				{Index: 11, Term: 5, Type: raftdata.EntryNormal, Data: []byte("set x")},
				{Index: 12, Term: 5, Type: raftdata.EntryNoop},
			},
		},
		// version type flags | group from to term logterm index commit hint hintterm context |
		// count | entry 11 | entry 12
		hex: "010102" + "07010205040a090000ac02" + "02" + "0b050005" + "7365742078" + "0c050100",
	},
	{
		name: "MsgSnap",
		m: raftdata.Message{
			Type: raftdata.MsgSnap, Group: 1, From: 1, To: 3, Term: 2, Commit: math.MaxUint64, Reject: true,
			Snapshot: &raftdata.SnapshotChunk{
				Meta: raftdata.SnapshotMeta{Index: 100, Term: 2, Membership: raftdata.Membership{
					Voters: []raftdata.Member{{ID: 1, Addr: "a"}},
				}},
				Offset: 128, Data: []byte("xyz"), Done: true,
			},
		},
		// version type flags(reject|snapshot|done) | header with commit=MaxUint64 | no entries |
		// meta index, term, membership (len 8) | offset 128 | data
		hex: "010a0d" + "010103020000" + "ffffffffffffffffff01" + "000000" + "00" +
			"6402" + "08" + "0201010161000000" + "8001" + "03" + "78797a",
	},
}

func TestGolden(t *testing.T) {
	for _, g := range goldenMessages {
		enc := AppendMessage(nil, &g.m)
		if got := hex.EncodeToString(enc); got != g.hex {
			t.Errorf("%s: encoding changed:\n got %s\nwant %s", g.name, got, g.hex)
		}
		want, _ := hex.DecodeString(g.hex)
		m, n, err := DecodeMessage(want, Limits{})
		if err != nil || n != len(want) {
			t.Fatalf("%s: decode golden: n=%d err=%v", g.name, n, err)
		}
		checkEqual(t, m, g.m)
	}
	hb := raftdata.Message{Type: raftdata.MsgHeartbeat, Group: 1, From: 2, To: 3, Term: 4, Commit: 5, Context: 6}
	enc := AppendBatch(nil, 0x0102030405060708, []raftdata.Message{hb})
	const want = "726b01" + "0807060504030201" + "01" + "010700" + "0102030400000500000600"
	if got := hex.EncodeToString(enc); got != want {
		t.Errorf("batch encoding changed:\n got %s\nwant %s", got, want)
	}
}

func TestEveryTruncationFails(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, typ := range allTypes {
		m := randMessage(r, typ)
		for i := range m.Entries { // keep the quadratic loop cheap
			m.Entries[i].Data = m.Entries[i].Data[:min(len(m.Entries[i].Data), 8)]
		}
		if m.Snapshot != nil {
			m.Snapshot.Data = m.Snapshot.Data[:min(len(m.Snapshot.Data), 8)]
		}
		enc := AppendMessage(nil, &m)
		for i := range len(enc) {
			if _, _, err := DecodeMessage(enc[:i], Limits{}); !errors.Is(err, raftdata.ErrCorrupt) {
				t.Fatalf("%v truncated to %d/%d bytes: err = %v", typ, i, len(enc), err)
			}
		}
		batch := AppendBatch(nil, 9, []raftdata.Message{m, m})
		for i := range len(batch) {
			if _, err := DecodeBatch(batch[:i], 9, Limits{}); !errors.Is(err, raftdata.ErrCorrupt) {
				t.Fatalf("%v batch truncated to %d/%d bytes: err = %v", typ, i, len(batch), err)
			}
		}
		if _, err := DecodeBatch(append(batch, 0), 9, Limits{}); !errors.Is(err, raftdata.ErrCorrupt) {
			t.Fatalf("%v batch with trailing byte: err = %v", typ, err)
		}
	}
}

// hdr is a valid message prefix up to (not including) the entry count.
func hdr(t raftdata.MessageType, flags byte) []byte {
	return append([]byte{Version, byte(t), flags}, make([]byte, 10)...)
}

func uv(b []byte, x uint64) []byte {
	for x >= 0x80 {
		b = append(b, byte(x)|0x80)
		x >>= 7
	}
	return append(b, byte(x))
}

func TestCorruptInputs(t *testing.T) {
	cases := map[string][]byte{
		"empty":                 {},
		"unknown type 0":        append(hdr(0, 0), 0),
		"unknown type 12":       append(hdr(12, 0), 0),
		"unknown flag":          append(hdr(raftdata.MsgApp, 0x10), 0),
		"done without snapshot": append(hdr(raftdata.MsgApp, flagDone), 0),
		"varint overflow":       append(hdr(raftdata.MsgApp, 0), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f),
		"entry count > bytes":   uv(hdr(raftdata.MsgApp, 0), 1000),
		"entry count MaxUint64": uv(hdr(raftdata.MsgApp, 0), math.MaxUint64),
		"unknown entry type":    append(hdr(raftdata.MsgApp, 0), 1, 1, 1, 3, 0),
		"data length > bytes":   append(uv(append(hdr(raftdata.MsgApp, 0), 1, 1, 1, 0), 100), 1, 2, 3),
		"data length huge":      uv(append(hdr(raftdata.MsgApp, 0), 1, 1, 1, 0), 1<<62),
		"data length overflow":  append(append(hdr(raftdata.MsgApp, 0), 1, 1, 1, 0), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01),
		"membership empty":      append(hdr(raftdata.MsgSnap, flagSnapshot), 0, 1, 1, 0, 0, 0),
		"membership garbage":    append(hdr(raftdata.MsgSnap, flagSnapshot), 0, 1, 1, 3, 9, 9, 9, 0, 0),
		"membership len > rest": append(hdr(raftdata.MsgSnap, flagSnapshot), 0, 1, 1, 50, 2, 0, 0, 0, 0),
		"snapshot data > rest":  append(hdr(raftdata.MsgSnap, flagSnapshot), 0, 1, 1, 5, 2, 0, 0, 0, 0, 0, 9, 1),
	}
	for name, b := range cases {
		if _, _, err := DecodeMessage(b, Limits{}); !errors.Is(err, raftdata.ErrCorrupt) {
			t.Errorf("%s: err = %v, want raftdata.ErrCorrupt", name, err)
		}
	}
	// Every single-byte corruption of valid encodings must fail cleanly or
	// decode into something that re-encodes consistently.
	r := rand.New(rand.NewPCG(9, 10))
	for _, g := range goldenMessages {
		enc := AppendMessage(nil, &g.m)
		for i := range enc {
			for _, v := range []byte{0, 1, 0x7f, 0x80, 0xff, byte(r.Uint32())} {
				bad := bytes.Clone(enc)
				bad[i] = v
				checkDecodeMessage(t, bad, Limits{})
				checkDecodeBatch(t, append([]byte{'r', 'k', Version, 1, 0, 0, 0, 0, 0, 0, 0, 1}, bad...), 1, Limits{})
			}
		}
	}
}

// TestHostileCountsDoNotAllocate checks that counts and lengths are checked
// against the input before anything is allocated for them.
func TestHostileCountsDoNotAllocate(t *testing.T) {
	inputs := [][]byte{
		uv(hdr(raftdata.MsgApp, 0), uint64(DefaultLimits.MaxEntries)),
		uv(append(hdr(raftdata.MsgApp, 0), 1, 1, 1, 0), uint64(DefaultLimits.MaxMessageBytes)),
		uv(append(hdr(raftdata.MsgSnap, flagSnapshot), 0, 1, 1), uint64(DefaultLimits.MaxMessageBytes)),
	}
	batch := uv([]byte{'r', 'k', Version, 0, 0, 0, 0, 0, 0, 0, 0}, uint64(DefaultLimits.MaxBatchMessages))
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range 10 {
		for _, b := range inputs {
			if _, _, err := DecodeMessage(b, Limits{}); !errors.Is(err, raftdata.ErrCorrupt) {
				t.Fatalf("hostile input decoded: %v", err)
			}
		}
		if _, err := DecodeBatch(batch, 0, Limits{}); !errors.Is(err, raftdata.ErrCorrupt) {
			t.Fatalf("hostile batch decoded: %v", err)
		}
	}
	runtime.ReadMemStats(&after)
	if d := after.TotalAlloc - before.TotalAlloc; d > 256<<10 {
		t.Fatalf("hostile inputs allocated %d bytes", d)
	}
}

func TestLimits(t *testing.T) {
	m := raftdata.Message{Type: raftdata.MsgApp, Entries: make([]raftdata.Entry, 10)}
	for i := range m.Entries {
		m.Entries[i] = raftdata.Entry{Index: uint64(i + 1), Term: 1, Data: make([]byte, 100)}
	}
	enc := AppendMessage(nil, &m)
	ok := func(lim Limits) {
		t.Helper()
		if _, _, err := DecodeMessage(enc, lim); err != nil {
			t.Fatalf("limits %+v: %v", lim, err)
		}
	}
	tooLarge := func(b []byte, lim Limits) {
		t.Helper()
		_, _, err := DecodeMessage(b, lim)
		if !errors.Is(err, ErrTooLarge) || !errors.Is(err, raftdata.ErrCorrupt) {
			t.Fatalf("limits %+v: err = %v, want ErrTooLarge", lim, err)
		}
	}
	ok(Limits{})
	ok(Limits{MaxEntries: 10, MaxMessageBytes: len(enc)})
	ok(Limits{MaxEntries: -1, MaxMessageBytes: -1, MaxBatchMessages: -1}) // defaults
	tooLarge(enc, Limits{MaxEntries: 9})
	tooLarge(enc, Limits{MaxMessageBytes: len(enc) - 1})
	tooLarge(append(bytes.Clone(enc), 1, 2, 3), Limits{MaxMessageBytes: len(enc) - 1})
	tooLarge(enc, Limits{MaxMessageBytes: 50})
	// A declared length over the limit is refused even in a short input.
	tooLarge(uv(append(hdr(raftdata.MsgApp, 0), 1, 1, 1, 0), 1<<20), Limits{MaxMessageBytes: 1 << 19})
	tooLarge(uv(hdr(raftdata.MsgApp, 0), 1<<21), Limits{})
	// The last byte of a message at the limit is fine; past it is not.
	ok(Limits{MaxMessageBytes: len(enc)})

	msgs := make([]raftdata.Message, 5)
	for i := range msgs {
		msgs[i] = m
	}
	batch := AppendBatch(nil, 1, msgs)
	if _, err := DecodeBatch(batch, 1, Limits{MaxBatchMessages: 5, MaxEntries: 10, MaxMessageBytes: len(enc)}); err != nil {
		t.Fatalf("batch at limits: %v", err)
	}
	for _, lim := range []Limits{{MaxBatchMessages: 4}, {MaxEntries: 9}, {MaxMessageBytes: len(enc) - 1}} {
		if _, err := DecodeBatch(batch, 1, lim); !errors.Is(err, ErrTooLarge) {
			t.Fatalf("batch limits %+v: err = %v, want ErrTooLarge", lim, err)
		}
	}
}

func TestClusterMismatch(t *testing.T) {
	b := AppendBatch(nil, 42, []raftdata.Message{{Type: raftdata.MsgVote, Term: 3}})
	_, err := DecodeBatch(b, 43, Limits{})
	if !errors.Is(err, ErrClusterMismatch) {
		t.Fatalf("err = %v, want ErrClusterMismatch", err)
	}
	if errors.Is(err, raftdata.ErrCorrupt) || errors.Is(err, ErrVersion) || errors.Is(err, ErrTooLarge) {
		t.Fatalf("cluster mismatch must wrap only its own sentinel: %v", err)
	}
	if _, err := DecodeBatch(b, 42, Limits{}); err != nil {
		t.Fatal(err)
	}
}

func TestVersionAndMagic(t *testing.T) {
	for _, s := range []error{ErrVersion, ErrTooLarge} {
		if !errors.Is(s, raftdata.ErrCorrupt) {
			t.Errorf("%v does not wrap raftdata.ErrCorrupt", s)
		}
	}
	if errors.Is(ErrClusterMismatch, raftdata.ErrCorrupt) {
		t.Error("ErrClusterMismatch wraps raftdata.ErrCorrupt")
	}
	m := raftdata.Message{Type: raftdata.MsgAppResp, Reject: true, Hint: 4}
	enc := AppendMessage(nil, &m)
	for _, v := range []byte{0, 2, 0xff} {
		bad := bytes.Clone(enc)
		bad[0] = v
		if _, _, err := DecodeMessage(bad, Limits{}); !errors.Is(err, ErrVersion) || !errors.Is(err, raftdata.ErrCorrupt) {
			t.Errorf("message version %d: err = %v, want ErrVersion", v, err)
		}
	}
	batch := AppendBatch(nil, 1, []raftdata.Message{m})
	bad := bytes.Clone(batch)
	bad[2] = Version + 1
	if _, err := DecodeBatch(bad, 1, Limits{}); !errors.Is(err, ErrVersion) {
		t.Errorf("batch version: err = %v, want ErrVersion", err)
	}
	bad = bytes.Clone(batch)
	bad[1] = 'x'
	if _, err := DecodeBatch(bad, 1, Limits{}); !errors.Is(err, raftdata.ErrCorrupt) || errors.Is(err, ErrVersion) {
		t.Errorf("batch magic: err = %v, want plain raftdata.ErrCorrupt", err)
	}
	// A version change inside a batch is caught per message too.
	bad = bytes.Clone(batch)
	bad[batchFixedHeader+1] = Version + 1
	if _, err := DecodeBatch(bad, 1, Limits{}); !errors.Is(err, ErrVersion) {
		t.Errorf("message version inside batch: err = %v, want ErrVersion", err)
	}
}

func TestDecodedDataAliasesInput(t *testing.T) {
	m := raftdata.Message{Type: raftdata.MsgApp, Entries: []raftdata.Entry{{Index: 1, Data: []byte("abc")}, {Index: 2, Data: []byte("def")}}}
	enc := AppendMessage(nil, &m)
	got, _, err := DecodeMessage(enc, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	d := got.Entries[0].Data
	if cap(d) != len(d) {
		t.Fatalf("decoded data has spare capacity %d: appends would overwrite the input", cap(d)-len(d))
	}
	_ = append(d, 'X')
	if string(got.Entries[1].Data) != "def" {
		t.Fatal("append to one entry's data overwrote the next")
	}
	i := bytes.Index(enc, []byte("abc"))
	enc[i] = 'z'
	if string(got.Entries[0].Data) != "zbc" {
		t.Fatal("decoded data does not alias the input as documented")
	}
}

func TestConcatenatedMessages(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	var buf []byte
	var want []raftdata.Message
	for _, typ := range allTypes {
		m := randMessage(r, typ)
		want = append(want, m)
		buf = AppendMessage(buf, &m)
	}
	for i := 0; len(buf) > 0; i++ {
		m, n, err := DecodeMessage(buf, Limits{})
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		checkEqual(t, m, want[i])
		buf = buf[n:]
	}
}
