package tcp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"

	"github.com/raftkit/raftkit/raft/raftdata"
)

// The handshake opens every connection. The dialling node writes a hello:
//
//	magic      3 bytes "RKT"
//	version    1 byte  (1)
//	cluster    8 bytes little-endian
//	from       8 bytes little-endian: the dialling node's ID
//	to         8 bytes little-endian: the node it means to reach
//	addr len   2 bytes little-endian, then the dialler's advertised address
//
// and the accepting node answers with one status byte and its own ID (8
// bytes). Anything but statusOK closes the connection. After it, the dialler
// writes frames: a 4-byte little-endian length, then a wire batch of that
// length. Connections carry messages one way; answers travel on the peer's
// own connection.

const (
	helloVersion   = 1
	helloFixed     = 3 + 1 + 8 + 8 + 8 + 2
	maxAdvertise   = 512
	replySize      = 1 + 8
	frameHeaderLen = 4
)

// Handshake statuses.
const (
	statusOK byte = iota
	statusWrongCluster
	statusWrongNode
	statusBadVersion
)

var (
	// ErrWrongCluster is reported when a peer belongs to another cluster.
	ErrWrongCluster = errors.New("tcp: peer belongs to another cluster")
	// ErrWrongNode is reported when the node at a peer's address is not
	// the one the membership names there.
	ErrWrongNode = errors.New("tcp: another node answers at the peer's address")
	// ErrHandshake is reported for a connection that did not open with a
	// valid handshake (garbage, or another protocol).
	ErrHandshake = errors.New("tcp: invalid handshake")
	// ErrHandshakeTimeout is reported for a connection that sent no
	// complete handshake within Config.DialTimeout: a peer too slow or
	// stalled, or a client that connected and said nothing.
	ErrHandshakeTimeout = errors.New("tcp: handshake timed out")
)

// handshakeErr wraps an error met while reading a handshake: a timeout is
// ErrHandshakeTimeout, anything else ErrHandshake.
func handshakeErr(err error) error {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("%w: %w", ErrHandshakeTimeout, err)
	}
	return fmt.Errorf("%w: %w", ErrHandshake, err)
}

type hello struct {
	cluster  uint64
	from, to raftdata.NodeID
	addr     string
}

func (h hello) encode() []byte {
	b := make([]byte, 0, helloFixed+len(h.addr))
	b = append(b, 'R', 'K', 'T', helloVersion)
	b = binary.LittleEndian.AppendUint64(b, h.cluster)
	b = binary.LittleEndian.AppendUint64(b, uint64(h.from))
	b = binary.LittleEndian.AppendUint64(b, uint64(h.to))
	b = binary.LittleEndian.AppendUint16(b, uint16(len(h.addr)))
	return append(b, h.addr...)
}

// readHello reads a hello; for a version it does not know, ver holds the
// hello's version so that the caller can say so (ver is 0 otherwise).
func readHello(r io.Reader) (h hello, ver byte, err error) {
	var b [helloFixed]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return h, 0, handshakeErr(err)
	}
	if b[0] != 'R' || b[1] != 'K' || b[2] != 'T' {
		return h, 0, fmt.Errorf("%w: bad magic %q", ErrHandshake, b[:3])
	}
	if b[3] != helloVersion {
		return h, b[3], fmt.Errorf("%w: version %d, want %d", ErrHandshake, b[3], helloVersion)
	}
	h.cluster = binary.LittleEndian.Uint64(b[4:])
	h.from = raftdata.NodeID(binary.LittleEndian.Uint64(b[12:]))
	h.to = raftdata.NodeID(binary.LittleEndian.Uint64(b[20:]))
	n := int(binary.LittleEndian.Uint16(b[28:]))
	if n > maxAdvertise {
		return h, 0, fmt.Errorf("%w: advertised address of %d bytes", ErrHandshake, n)
	}
	if h.from == 0 {
		return h, 0, fmt.Errorf("%w: node ID 0", ErrHandshake)
	}
	addr := make([]byte, n)
	if _, err := io.ReadFull(r, addr); err != nil {
		return h, 0, handshakeErr(err)
	}
	h.addr = string(addr)
	return h, ver, nil
}

func encodeReply(status byte, id raftdata.NodeID) []byte {
	return binary.LittleEndian.AppendUint64([]byte{status}, uint64(id))
}

// readReply reads the acceptor's answer and turns a refusal into an error.
func readReply(r io.Reader, want raftdata.NodeID) error {
	var b [replySize]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return fmt.Errorf("%w: no answer: %w", ErrHandshake, err)
	}
	id := raftdata.NodeID(binary.LittleEndian.Uint64(b[1:]))
	switch b[0] {
	case statusOK:
		if id != want {
			return fmt.Errorf("%w: node %d, want %d", ErrWrongNode, id, want)
		}
		return nil
	case statusWrongCluster:
		return fmt.Errorf("%w (node %d refused our cluster ID)", ErrWrongCluster, id)
	case statusWrongNode:
		return fmt.Errorf("%w: node %d, want %d", ErrWrongNode, id, want)
	case statusBadVersion:
		return fmt.Errorf("%w: node %d does not speak handshake version %d", ErrHandshake, id, helloVersion)
	}
	return fmt.Errorf("%w: status %d", ErrHandshake, b[0])
}
