package disk

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/raftkit/raftkit/raft/raftdata"
)

// Snapshot file layout:
//
//	header:  magic "RKSNAP\x00\x01" | u32 meta length | u32 CRC-32C of meta | meta
//	meta:    uvarint index | uvarint term | uvarint length | raftdata.EncodeMembership
//	data:    the state machine's bytes, as streamed
//	trailer: u64 data length | u32 CRC-32C of data | "RKSE"
const (
	snapMagic     = "RKSNAP\x00\x01"
	trailerMagic  = "RKSE"
	snapHeaderFix = 16 // magic, meta length, meta CRC
	snapTrailer   = 16
	maxSnapMeta   = 64 << 20
	tmpPrefix     = "tmp-"
)

// snapFile describes a committed snapshot file.
type snapFile struct {
	meta raftdata.SnapshotMeta
	path string
	hdr  int64  // the offset of the data
	n    int64  // the length of the data
	crc  uint32 // CRC-32C of the data, from the trailer
}

// snapshotName returns the file name of a committed snapshot.
func snapshotName(index, term uint64) string {
	return fmt.Sprintf("%016x-%016x.snap", index, term)
}

// encodeSnapHeader returns the header of a snapshot file for meta.
func encodeSnapHeader(meta raftdata.SnapshotMeta) []byte {
	m := raftdata.EncodeMembership(meta.Membership)
	var body []byte
	body = binary.AppendUvarint(body, meta.Index)
	body = binary.AppendUvarint(body, meta.Term)
	body = binary.AppendUvarint(body, uint64(len(m)))
	body = append(body, m...)
	hdr := append([]byte(snapMagic), make([]byte, 8)...)
	binary.LittleEndian.PutUint32(hdr[8:], uint32(len(body)))
	binary.LittleEndian.PutUint32(hdr[12:], crc32.Checksum(body, castagnoli))
	return append(hdr, body...)
}

// encodeSnapTrailer returns the trailer of a snapshot of n bytes with the
// given CRC-32C.
func encodeSnapTrailer(n int64, crc uint32) []byte {
	t := binary.LittleEndian.AppendUint64(nil, uint64(n))
	t = binary.LittleEndian.AppendUint32(t, crc)
	return append(t, trailerMagic...)
}

// readSnapFile reads and checks the header and trailer of the snapshot file
// f, named path. The data itself is checked as it is read.
func readSnapFile(f *os.File, path string) (snapFile, error) {
	fi, err := f.Stat()
	if err != nil {
		return snapFile{}, fmt.Errorf("disk: %w", err)
	}
	size := fi.Size()
	var fix [snapHeaderFix]byte
	if _, err := f.ReadAt(fix[:], 0); err != nil {
		return snapFile{}, corruptf("snapshot %s: reading header: %v", path, err)
	}
	if string(fix[:8]) != snapMagic {
		return snapFile{}, corruptf("snapshot %s: bad magic", path)
	}
	mlen := int64(binary.LittleEndian.Uint32(fix[8:]))
	if mlen > maxSnapMeta || snapHeaderFix+mlen+snapTrailer > size {
		return snapFile{}, corruptf("snapshot %s: bad header length %d for a file of %d bytes", path, mlen, size)
	}
	body := make([]byte, mlen)
	if _, err := f.ReadAt(body, snapHeaderFix); err != nil {
		return snapFile{}, corruptf("snapshot %s: reading header: %v", path, err)
	}
	if crc32.Checksum(body, castagnoli) != binary.LittleEndian.Uint32(fix[12:]) {
		return snapFile{}, corruptf("snapshot %s: header checksum mismatch", path)
	}
	d := decoder{b: body}
	sf := snapFile{path: path, hdr: snapHeaderFix + mlen}
	sf.meta.Index, sf.meta.Term = d.uvarint(), d.uvarint()
	ml := d.uvarint()
	if d.err != nil || ml != uint64(len(d.b)) {
		return snapFile{}, corruptf("snapshot %s: malformed header", path)
	}
	if sf.meta.Membership, err = raftdata.DecodeMembership(d.b); err != nil {
		return snapFile{}, fmt.Errorf("disk: snapshot %s: %w", path, err)
	}
	var tr [snapTrailer]byte
	if _, err := f.ReadAt(tr[:], size-snapTrailer); err != nil {
		return snapFile{}, corruptf("snapshot %s: reading trailer: %v", path, err)
	}
	sf.n = size - sf.hdr - snapTrailer
	if string(tr[12:]) != trailerMagic || binary.LittleEndian.Uint64(tr[:]) != uint64(sf.n) {
		return snapFile{}, corruptf("snapshot %s: bad trailer", path)
	}
	sf.crc = binary.LittleEndian.Uint32(tr[8:])
	return sf, nil
}

// loadSnapshot removes stale temporary files from dir and returns the
// latest committed snapshot (zero when there is none) and the paths of
// older ones.
func loadSnapshot(dir string, log *slog.Logger) (latest snapFile, older []string, _ error) {
	des, err := os.ReadDir(dir)
	if err != nil {
		return snapFile{}, nil, fmt.Errorf("disk: reading snapshot directory: %w", err)
	}
	var best string
	var bi, bt uint64
	for _, de := range des {
		name := de.Name()
		if strings.HasPrefix(name, tmpPrefix) {
			log.Info("disk: removing unfinished snapshot", "name", name)
			if err := os.Remove(filepath.Join(dir, name)); err != nil {
				return snapFile{}, nil, fmt.Errorf("disk: removing unfinished snapshot: %w", err)
			}
			continue
		}
		i, t, ok := parsePair(name, ".snap")
		if !ok {
			log.Warn("disk: ignoring unexpected file in snapshot directory", "name", name)
			continue
		}
		if best == "" || i > bi || (i == bi && t > bt) {
			if best != "" {
				older = append(older, filepath.Join(dir, best))
			}
			best, bi, bt = name, i, t
		} else {
			older = append(older, filepath.Join(dir, name))
		}
	}
	if best == "" {
		return snapFile{}, older, nil
	}
	path := filepath.Join(dir, best)
	f, err := os.Open(path)
	if err != nil {
		return snapFile{}, nil, fmt.Errorf("disk: opening snapshot: %w", err)
	}
	defer f.Close()
	sf, err := readSnapFile(f, path)
	if err != nil {
		return snapFile{}, nil, err
	}
	if sf.meta.Index != bi || sf.meta.Term != bt {
		return snapFile{}, nil, corruptf("snapshot %s holds index %d, term %d", path, sf.meta.Index, sf.meta.Term)
	}
	return sf, older, nil
}

// snapReader reads a snapshot's data and checks its CRC-32C at the end.
type snapReader struct {
	f    *os.File
	sr   *io.SectionReader
	crc  uint32
	want uint32
	path string
}

// Read reads the snapshot's data. At the end of the data it returns an
// error wrapping raft.ErrCorrupt instead of io.EOF if the checksum does not
// match.
func (r *snapReader) Read(p []byte) (int, error) {
	n, err := r.sr.Read(p)
	r.crc = crc32.Update(r.crc, castagnoli, p[:n])
	if err == io.EOF && r.crc != r.want {
		return n, corruptf("snapshot %s: data checksum mismatch", r.path)
	}
	return n, err
}

// Close closes the snapshot file.
func (r *snapReader) Close() error { return r.f.Close() }
