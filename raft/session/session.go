// Package session gives a replicated state machine exactly-once semantics
// for retried commands (Raft paper §8; dissertation §6.3).
//
// A client that times out cannot tell whether its command was applied: it
// was lost, or it committed and only the answer was lost. Retrying blindly
// may apply it twice. With sessions, a client has an ID and numbers its
// commands 1, 2, 3…; Encode stamps both on the command, and the retry sends
// the very same bytes. Machine, wrapping the application's StateMachine,
// applies each (client, serial) once and answers a duplicate with the result
// it recorded the first time.
//
// Every node applies the same log, so every rule here depends on the log
// alone: sessions expire after ExpireEntries log entries without a command,
// the least recently used go when there are more than MaxSessions, and the
// table (with the recorded results) lives in snapshots.
package session

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"sync/atomic"

	"github.com/raftkit/raftkit/raft"
	"github.com/raftkit/raftkit/raft/raftdata"
)

// Errors a command's result can be (errors.Is-able). The application sees
// neither: the command is not applied.
var (
	// ErrExpired: the client's session expired or was evicted (or never
	// existed: a session starts with serial 1). The client must start a new
	// session with a new ID; whether the command was applied before is
	// unknown.
	ErrExpired = errors.New("session: unknown or expired session")
	// ErrStale: the serial is below the client's latest: its result is no
	// longer kept. A client retries only its latest command.
	ErrStale = errors.New("session: serial older than the client's latest command")
)

// magic starts an encoded command (a byte raftkit's own encodings and
// typical text commands do not start with).
const magic = 0xE5

// Encode stamps a command with its client and serial. Retry a command with
// the same bytes. client must not be zero; serials start at 1 and increase
// by one per command.
func Encode(client, serial uint64, cmd []byte) []byte {
	b := make([]byte, 1, 1+2*binary.MaxVarintLen64+len(cmd))
	b[0] = magic
	b = binary.AppendUvarint(b, client)
	b = binary.AppendUvarint(b, serial)
	return append(b, cmd...)
}

// Decode splits a command written by Encode; ok is false for data Encode
// did not write (a command without a session).
func Decode(data []byte) (client, serial uint64, cmd []byte, ok bool) {
	if len(data) < 3 || data[0] != magic {
		return 0, 0, nil, false
	}
	client, n := binary.Uvarint(data[1:])
	if n <= 0 || client == 0 {
		return 0, 0, nil, false
	}
	serial, m := binary.Uvarint(data[1+n:])
	if m <= 0 || serial == 0 {
		return 0, 0, nil, false
	}
	return client, serial, data[1+n+m:], true
}

// Client numbers one client's commands. It is not safe for concurrent use:
// a client sends one command at a time (retrying it until it has an answer)
// so that its serials reach the log in order.
type Client struct {
	id     uint64
	serial uint64
}

// NewClient returns a client with the given ID, which must be unique among
// the clients of the state machine (a random 64-bit number will do).
func NewClient(id uint64) *Client { return &Client{id: id} }

// ID returns the client's ID.
func (c *Client) ID() uint64 { return c.id }

// Next encodes cmd as the client's next command. Retries of it must send
// the returned bytes again, not call Next again.
func (c *Client) Next(cmd []byte) []byte {
	c.serial++
	return Encode(c.id, c.serial, cmd)
}

// Config configures a Machine. Zero values take the defaults.
type Config struct {
	// ExpireEntries: a session without a command for this many log entries
	// expires. Default 1<<20.
	ExpireEntries uint64
	// MaxSessions bounds the table; past it the sessions whose latest
	// command is oldest are evicted. Default 100,000.
	MaxSessions int
	// MaxResultBytes bounds a recorded result's encoding; a larger result
	// (or one the Codec cannot encode) is answered once and recorded as
	// ErrResultNotKept. Default 64 KiB.
	MaxResultBytes int
	// Codec encodes results for snapshots; default DefaultCodec.
	Codec Codec
}

// ErrResultNotKept answers a duplicate whose first result was over
// Config.MaxResultBytes or not encodable by the Codec: the command was
// applied, its result is lost.
var ErrResultNotKept = errors.New("session: the command was applied but its result was not kept")

func (c Config) withDefaults() Config {
	if c.ExpireEntries == 0 {
		c.ExpireEntries = 1 << 20
	}
	if c.MaxSessions <= 0 {
		c.MaxSessions = 100_000
	}
	if c.MaxResultBytes <= 0 {
		c.MaxResultBytes = 64 << 10
	}
	if c.Codec == nil {
		c.Codec = DefaultCodec{}
	}
	return c
}

// record is a session: the client's latest serial and its result.
type record struct {
	serial uint64
	index  uint64 // log index of the latest command
	result []byte // Codec encoding of the result
	// pending is the 1-based position of the latest command in the batch
	// being applied, until its result is known.
	pending int
}

// Machine wraps a StateMachine with sessions. Commands written by Encode
// reach the wrapped machine without their session stamp, once; other
// commands pass through unchanged. A stamp starts with the byte 0xE5: an
// unstamped command that starts with it and parses as a stamp is taken
// for one, so an application whose commands may start with 0xE5 should
// stamp them all (or start its own encoding with another byte).
type Machine struct {
	inner    raft.StateMachine
	cfg      Config
	live     atomic.Int64 // len(sessions), for Sessions
	sessions map[uint64]*record
	applied  uint64 // last index applied
	swept    uint64 // index of the last expiry sweep

	// buffers reused across Apply calls
	pass    []raftdata.Entry
	passIdx []int
	passRes []any
}

// Wrap returns a Machine around sm.
func Wrap(sm raft.StateMachine, cfg Config) *Machine {
	return &Machine{inner: sm, cfg: cfg.withDefaults(), sessions: map[uint64]*record{}}
}

// Sessions returns how many sessions are live, as of the last Apply or
// Restore. It is safe to call from any goroutine (a status page, say).
func (m *Machine) Sessions() int { return int(m.live.Load()) }

// Apply applies entries: duplicates get their recorded result, the rest go
// to the wrapped machine in one batch, in order.
func (m *Machine) Apply(entries []raftdata.Entry, results []any) error {
	defer func() { m.live.Store(int64(len(m.sessions))) }()
	m.pass, m.passIdx = m.pass[:0], m.passIdx[:0]
	type later struct{ at, pos int } // results[at] = result of pass[pos]
	var dups []later
	var news []*record
	for i := range entries {
		e := &entries[i]
		m.applied = e.Index
		client, serial, cmd, ok := Decode(e.Data)
		if !ok {
			m.pass = append(m.pass, *e)
			m.passIdx = append(m.passIdx, i)
			continue
		}
		r := m.lookup(client, e.Index)
		switch {
		case r == nil && serial != 1:
			results[i] = fmt.Errorf("%w (client %x, serial %d)", ErrExpired, client, serial)
		case r != nil && serial == r.serial && r.pending > 0:
			dups = append(dups, later{at: i, pos: r.pending - 1}) // its first run is in this batch
			r.index = e.Index
		case r != nil && serial == r.serial:
			results[i] = m.recorded(r)
			r.index = e.Index
		case r != nil && serial < r.serial:
			results[i] = fmt.Errorf("%w (client %x, serial %d, latest %d)", ErrStale, client, serial, r.serial)
		case r != nil && serial > r.serial+1:
			// A gap: the client skipped serials, so it is not the client
			// this session knew (or it lost its state). Refuse rather than
			// guess.
			results[i] = fmt.Errorf("%w (client %x, serial %d follows %d)", ErrExpired, client, serial, r.serial)
		default:
			// New: serial 1 of a new session, or the next serial.
			if r == nil {
				r = &record{}
				m.sessions[client] = r
			}
			pe := *e
			pe.Data = cmd
			m.pass = append(m.pass, pe)
			m.passIdx = append(m.passIdx, i)
			r.serial, r.index, r.result, r.pending = serial, e.Index, nil, len(m.pass)
			news = append(news, r)
		}
	}
	if len(m.pass) > 0 {
		m.passRes = append(m.passRes[:0], make([]any, len(m.pass))...)
		if err := m.inner.Apply(m.pass, m.passRes); err != nil {
			return err
		}
		for k, i := range m.passIdx {
			results[i] = m.passRes[k]
		}
		for _, r := range news {
			if r.pending == 0 {
				continue // listed once per command of the batch; done
			}
			r.result = m.encode(m.passRes[r.pending-1]) // its latest command
			r.pending = 0
		}
		for _, d := range dups {
			results[d.at] = m.passRes[d.pos]
		}
		clear(m.pass)
		clear(m.passRes)
	}
	m.expire()
	return nil
}

// lookup returns client's session, or nil if it has none or it expired.
func (m *Machine) lookup(client, index uint64) *record {
	r := m.sessions[client]
	if r != nil && index-r.index > m.cfg.ExpireEntries {
		delete(m.sessions, client)
		return nil
	}
	return r
}

func (m *Machine) encode(result any) []byte {
	b, err := m.cfg.Codec.Encode(result)
	if err != nil || len(b) > m.cfg.MaxResultBytes {
		b, _ = m.cfg.Codec.Encode(ErrResultNotKept)
	}
	return b
}

func (m *Machine) recorded(r *record) any {
	v, err := m.cfg.Codec.Decode(r.result)
	if err != nil {
		return fmt.Errorf("session: decoding the recorded result: %w", err)
	}
	return v
}

// expire drops expired sessions every so often, and evicts the oldest when
// there are too many. Both depend only on the log.
func (m *Machine) expire() {
	if m.applied-m.swept >= max(m.cfg.ExpireEntries/16, 1) {
		m.swept = m.applied
		for c, r := range m.sessions {
			if m.applied-r.index > m.cfg.ExpireEntries {
				delete(m.sessions, c)
			}
		}
	}
	if len(m.sessions) <= m.cfg.MaxSessions {
		return
	}
	// Evict down to 90% of the bound, oldest latest command first (ties by
	// client ID), so that this runs rarely.
	type kv struct{ client, index uint64 }
	all := make([]kv, 0, len(m.sessions))
	for c, r := range m.sessions {
		all = append(all, kv{c, r.index})
	}
	sort.Slice(all, func(i, j int) bool {
		if all[i].index != all[j].index {
			return all[i].index < all[j].index
		}
		return all[i].client < all[j].client
	})
	for _, x := range all[:len(all)-m.cfg.MaxSessions*9/10] {
		delete(m.sessions, x.client)
	}
}
