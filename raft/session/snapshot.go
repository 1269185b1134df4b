package session

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"sort"

	"github.com/raftkit/raftkit/raft"
)

// Snapshot captures the session table with the wrapped machine's state: the
// table is copied now (it is small), the wrapped snapshot written after it.
func (m *Machine) Snapshot() (raft.Snapshot, error) {
	inner, err := m.inner.Snapshot()
	if err != nil {
		return nil, err
	}
	clients := make([]uint64, 0, len(m.sessions))
	for c := range m.sessions {
		clients = append(clients, c)
	}
	sort.Slice(clients, func(i, j int) bool { return clients[i] < clients[j] })
	var b []byte
	b = append(b, snapshotMagic...)
	b = binary.AppendUvarint(b, m.applied)
	b = binary.AppendUvarint(b, m.swept)
	b = binary.AppendUvarint(b, uint64(len(clients)))
	for _, c := range clients {
		r := m.sessions[c]
		b = binary.AppendUvarint(b, c)
		b = binary.AppendUvarint(b, r.serial)
		b = binary.AppendUvarint(b, r.index)
		b = binary.AppendUvarint(b, uint64(len(r.result)))
		b = append(b, r.result...)
	}
	return &snapshot{table: b, inner: inner}, nil
}

var snapshotMagic = []byte("rkSESS1\n")

type snapshot struct {
	table []byte
	inner raft.Snapshot
}

func (s *snapshot) WriteTo(w io.Writer) (int64, error) {
	n, err := w.Write(s.table)
	if err != nil {
		return int64(n), err
	}
	k, err := s.inner.WriteTo(w)
	return int64(n) + k, err
}

func (s *snapshot) Release() { s.inner.Release() }

// errCorrupt wraps raft.ErrCorrupt for a session table that does not
// decode.
var errCorrupt = fmt.Errorf("session: %w", raft.ErrCorrupt)

// Restore reads the session table, then hands the rest of r to the wrapped
// machine.
func (m *Machine) Restore(r io.Reader) error {
	defer func() { m.live.Store(int64(len(m.sessions))) }()
	br := bufio.NewReader(r)
	head := make([]byte, len(snapshotMagic))
	if _, err := io.ReadFull(br, head); err != nil || string(head) != string(snapshotMagic) {
		return fmt.Errorf("%w: no session table at the start of the snapshot", errCorrupt)
	}
	uv := func() (uint64, error) {
		v, err := binary.ReadUvarint(br)
		if err != nil {
			return 0, fmt.Errorf("%w: truncated session table: %w", errCorrupt, err)
		}
		return v, nil
	}
	var hdr [3]uint64
	for i := range hdr {
		v, err := uv()
		if err != nil {
			return err
		}
		hdr[i] = v
	}
	if hdr[2] > 1<<32 {
		return fmt.Errorf("%w: %d sessions", errCorrupt, hdr[2])
	}
	sessions := make(map[uint64]*record, min(hdr[2], 1<<16))
	for i := uint64(0); i < hdr[2]; i++ {
		var f [4]uint64
		for k := range f {
			v, err := uv()
			if err != nil {
				return err
			}
			f[k] = v
		}
		if f[3] > uint64(m.cfg.MaxResultBytes)+64 {
			return fmt.Errorf("%w: a recorded result of %d bytes", errCorrupt, f[3])
		}
		res := make([]byte, f[3])
		if _, err := io.ReadFull(br, res); err != nil {
			return fmt.Errorf("%w: truncated session table: %w", errCorrupt, err)
		}
		sessions[f[0]] = &record{serial: f[1], index: f[2], result: res}
	}
	if err := m.inner.Restore(br); err != nil {
		return err
	}
	m.sessions, m.applied, m.swept = sessions, hdr[0], hdr[1]
	return nil
}
