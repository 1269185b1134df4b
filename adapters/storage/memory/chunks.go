package memory

import "github.com/raftkit/raftkit/raft/raftdata"

// chunkEntries is how many entries one chunk of the log holds.
const chunkEntries = 4096

// chunkLog is a sequence of entries kept in fixed-size chunks. Appending
// never copies entries already stored, however long the log grows, and
// dropping a prefix releases whole chunks: a single growing slice would copy
// the entire log on every growth, which under a busy garbage collector costs
// more than the rest of the store put together.
type chunkLog struct {
	chunks [][]raftdata.Entry // every chunk but the last is full
	head   int                // entries dropped from the front of chunks[0]
	n      int                // entries held
}

func (c *chunkLog) len() int { return c.n }

// at returns the entry at position i (0 is the oldest held).
func (c *chunkLog) at(i int) *raftdata.Entry {
	i += c.head
	return &c.chunks[i/chunkEntries][i%chunkEntries]
}

// truncate keeps the first n entries, clearing the rest so that their Data
// can be collected.
func (c *chunkLog) truncate(n int) {
	if n >= c.n {
		return
	}
	end := c.head + n // absolute position of the first dropped entry
	keep := (end + chunkEntries - 1) / chunkEntries
	for i := keep; i < len(c.chunks); i++ {
		c.chunks[i] = nil
	}
	c.chunks = c.chunks[:keep]
	if keep > 0 && end%chunkEntries != 0 {
		last := c.chunks[keep-1]
		clear(last[end%chunkEntries:])
		c.chunks[keep-1] = last[:end%chunkEntries]
	}
	c.n = n
	if n == 0 {
		c.chunks, c.head = nil, 0
	}
}

// append adds entries at the end, copying them.
func (c *chunkLog) append(ents []raftdata.Entry) {
	for len(ents) > 0 {
		if len(c.chunks) == 0 || len(c.chunks[len(c.chunks)-1]) == chunkEntries {
			c.chunks = append(c.chunks, make([]raftdata.Entry, 0, chunkEntries))
		}
		last := &c.chunks[len(c.chunks)-1]
		k := min(chunkEntries-len(*last), len(ents))
		*last = append(*last, ents[:k]...)
		ents = ents[k:]
		c.n += k
	}
}

// dropFront discards the oldest k entries.
func (c *chunkLog) dropFront(k int) {
	if k >= c.n {
		c.truncate(0)
		return
	}
	clearFrom := c.head
	c.head += k
	c.n -= k
	for c.head >= chunkEntries {
		c.chunks[0] = nil
		c.chunks = c.chunks[1:]
		c.head -= chunkEntries
		clearFrom = 0
	}
	if len(c.chunks) > 0 && clearFrom < c.head {
		clear(c.chunks[0][clearFrom:c.head])
	}
}

// copyOut appends entries at positions [a, b) to dst.
func (c *chunkLog) copyOut(dst []raftdata.Entry, a, b int) []raftdata.Entry {
	for a < b {
		p := a + c.head
		chunk := c.chunks[p/chunkEntries]
		off := p % chunkEntries
		k := min(b-a, len(chunk)-off)
		dst = append(dst, chunk[off:off+k]...)
		a += k
	}
	return dst
}
