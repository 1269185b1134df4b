package wire

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/raftkit/raftkit/raft/raftdata"
)

// fuzzClusterID is the cluster ID of the batch seeds and fuzz target.
const fuzzClusterID = 0x5EED

// smallLimits make the fuzzer reach the limit checks too.
var smallLimits = Limits{MaxMessageBytes: 512, MaxEntries: 8, MaxBatchMessages: 4}

// checkDecodeMessage decodes b, which must not panic; a success must survive
// a re-encode and decode unchanged.
func checkDecodeMessage(t testing.TB, b []byte, lim Limits) {
	t.Helper()
	m, n, err := DecodeMessage(b, lim)
	if err != nil {
		if !errors.Is(err, raftdata.ErrCorrupt) {
			t.Fatalf("DecodeMessage error does not wrap raftdata.ErrCorrupt: %v", err)
		}
		return
	}
	if n <= 0 || n > len(b) {
		t.Fatalf("DecodeMessage consumed %d of %d bytes", n, len(b))
	}
	enc := AppendMessage(nil, &m)
	if len(enc) != MessageSize(&m) {
		t.Fatalf("MessageSize = %d, encoding is %d bytes", MessageSize(&m), len(enc))
	}
	m2, n2, err := DecodeMessage(enc, Limits{})
	if err != nil {
		t.Fatalf("re-encoded message does not decode: %v", err)
	}
	if n2 != len(enc) {
		t.Fatalf("re-decode consumed %d of %d bytes", n2, len(enc))
	}
	checkEqual(t, m2, m)
}

// checkDecodeBatch is checkDecodeMessage for batch frames.
func checkDecodeBatch(t testing.TB, b []byte, clusterID uint64, lim Limits) {
	t.Helper()
	msgs, err := DecodeBatch(b, clusterID, lim)
	if err != nil {
		if !errors.Is(err, raftdata.ErrCorrupt) && !errors.Is(err, ErrClusterMismatch) {
			t.Fatalf("DecodeBatch error wraps neither raftdata.ErrCorrupt nor ErrClusterMismatch: %v", err)
		}
		return
	}
	enc := AppendBatch(nil, clusterID, msgs)
	msgs2, err := DecodeBatch(enc, clusterID, Limits{})
	if err != nil {
		t.Fatalf("re-encoded batch does not decode: %v", err)
	}
	if len(msgs2) != len(msgs) {
		t.Fatalf("re-decoded %d messages, want %d", len(msgs2), len(msgs))
	}
	for i := range msgs {
		checkEqual(t, msgs2[i], msgs[i])
	}
}

// seedMessages returns one small message of each type, fields randomized.
func seedMessages() []raftdata.Message {
	r := rand.New(rand.NewPCG(0x5EED, 1))
	var msgs []raftdata.Message
	for _, typ := range allTypes {
		m := randMessage(r, typ)
		if len(m.Entries) > 3 {
			m.Entries = m.Entries[:3]
		}
		for i := range m.Entries {
			m.Entries[i].Data = m.Entries[i].Data[:min(len(m.Entries[i].Data), 16)]
		}
		if m.Snapshot != nil {
			m.Snapshot.Data = m.Snapshot.Data[:min(len(m.Snapshot.Data), 16)]
		}
		msgs = append(msgs, m)
	}
	for _, g := range goldenMessages {
		msgs = append(msgs, g.m)
	}
	return msgs
}

func FuzzDecodeMessage(f *testing.F) {
	for _, m := range seedMessages() {
		f.Add(AppendMessage(nil, &m))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		checkDecodeMessage(t, b, Limits{})
		checkDecodeMessage(t, b, smallLimits)
	})
}

func FuzzDecodeBatch(f *testing.F) {
	msgs := seedMessages()
	f.Add(AppendBatch(nil, fuzzClusterID, nil))
	f.Add(AppendBatch(nil, fuzzClusterID, msgs))
	for i := range msgs {
		f.Add(AppendBatch(nil, fuzzClusterID, msgs[i:i+1]))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		checkDecodeBatch(t, b, fuzzClusterID, Limits{})
		checkDecodeBatch(t, b, fuzzClusterID, smallLimits)
	})
}

// TestWriteFuzzCorpus regenerates the committed seed corpus under
// testdata/fuzz when WIRE_WRITE_CORPUS=1. Otherwise it only checks that the
// generated seeds are present, so a format change that forgets to refresh
// them is noticed.
func TestWriteFuzzCorpus(t *testing.T) {
	write := os.Getenv("WIRE_WRITE_CORPUS") == "1"
	files := map[string][]byte{}
	msgs := seedMessages()
	for i, m := range msgs {
		name := fmt.Sprintf("seed-%02d-%v", i, m.Type)
		files[filepath.Join("FuzzDecodeMessage", name)] = AppendMessage(nil, &m)
		files[filepath.Join("FuzzDecodeBatch", name)] = AppendBatch(nil, fuzzClusterID, msgs[i:i+1])
	}
	files[filepath.Join("FuzzDecodeBatch", "seed-all")] = AppendBatch(nil, fuzzClusterID, msgs)
	files[filepath.Join("FuzzDecodeBatch", "seed-empty")] = AppendBatch(nil, fuzzClusterID, nil)
	for name, b := range files {
		path := filepath.Join("testdata", "fuzz", name)
		content := "go test fuzz v1\n[]byte(" + strconv.Quote(string(b)) + ")\n"
		if write {
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("seed corpus missing (regenerate with WIRE_WRITE_CORPUS=1): %v", err)
		}
		if string(got) != content {
			t.Fatalf("seed %s is stale (regenerate with WIRE_WRITE_CORPUS=1)", path)
		}
	}
}
