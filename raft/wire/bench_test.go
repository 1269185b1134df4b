package wire

import (
	"testing"

	"github.com/raftkit/raftkit/raft/raftdata"
)

// benchMsgApp is a MsgApp carrying 64 entries of 128 bytes.
func benchMsgApp() raftdata.Message {
	m := raftdata.Message{
		Type: raftdata.MsgApp, Group: 3, From: 1, To: 2, Term: 42, LogTerm: 42,
		Index: 1_000_000, Commit: 999_990, Entries: make([]raftdata.Entry, 64),
	}
	for i := range m.Entries {
		data := make([]byte, 128)
		for j := range data {
			data[j] = byte(i + j)
		}
		m.Entries[i] = raftdata.Entry{Index: m.Index + 1 + uint64(i), Term: 42, Data: data}
	}
	return m
}

func BenchmarkEncodeMsgApp(b *testing.B) {
	m := benchMsgApp()
	buf := AppendMessage(nil, &m)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendMessage(buf[:0], &m)
	}
}

func BenchmarkDecodeMsgApp(b *testing.B) {
	m := benchMsgApp()
	buf := AppendMessage(nil, &m)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := DecodeMessage(buf, Limits{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMessageSizeMsgApp(b *testing.B) {
	m := benchMsgApp()
	b.ReportAllocs()
	for b.Loop() {
		_ = MessageSize(&m)
	}
}

func BenchmarkDecodeBatchHeartbeats(b *testing.B) {
	msgs := make([]raftdata.Message, 64)
	for i := range msgs {
		msgs[i] = raftdata.Message{Type: raftdata.MsgHeartbeat, Group: raftdata.GroupID(i), From: 1, To: 2, Term: 7, Commit: 1000, Context: uint64(i)}
	}
	buf := AppendBatch(nil, 1, msgs)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeBatch(buf, 1, Limits{}); err != nil {
			b.Fatal(err)
		}
	}
}
