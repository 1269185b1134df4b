//go:build !linux

package disk

import "os"

// datasync flushes f's data; without fdatasync it is a full fsync, which Go
// makes honest on each system: F_FULLFSYNC on darwin (a plain fsync there
// leaves the data in the drive's cache), FlushFileBuffers on Windows, fsync
// elsewhere.
func datasync(f *os.File) error { return f.Sync() }
