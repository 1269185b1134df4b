package storeutil

// Chunker cuts a snapshot's bytes into chunks of Size bytes for a store
// that keeps them as rows or list elements, buffering at most one chunk. It
// is not safe for concurrent use.
type Chunker struct {
	// Size is the chunk size; the last chunk may be shorter.
	Size int
	// Store stores the next chunk; Chunker counts it once Store succeeds.
	Store func(chunk []byte) error

	buf    []byte
	chunks int
	bytes  int64
}

// Write buffers p, storing a chunk each time Size bytes accumulate. On an
// error from Store it returns how much of p was taken.
func (c *Chunker) Write(p []byte) (int, error) {
	if c.buf == nil {
		c.buf = make([]byte, 0, min(c.Size, 64<<10))
	}
	n := 0
	for len(p) > 0 {
		k := min(len(p), c.Size-len(c.buf))
		c.buf = append(c.buf, p[:k]...)
		p, n = p[k:], n+k
		if len(c.buf) == c.Size {
			if err := c.Flush(); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

// Flush stores what is buffered as a (last) chunk.
func (c *Chunker) Flush() error {
	if len(c.buf) == 0 {
		return nil
	}
	if err := c.Store(c.buf); err != nil {
		return err
	}
	c.chunks++
	c.bytes += int64(len(c.buf))
	c.buf = c.buf[:0]
	return nil
}

// Chunks returns how many chunks were stored.
func (c *Chunker) Chunks() int { return c.chunks }

// Bytes returns how many bytes the stored chunks hold.
func (c *Chunker) Bytes() int64 { return c.bytes }
