//go:build !linux

package disk

import "os"

// datasync flushes f's data; without fdatasync it is a full fsync.
func datasync(f *os.File) error { return f.Sync() }
