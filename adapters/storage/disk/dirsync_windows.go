//go:build windows

package disk

// fsyncDir does nothing on Windows: a directory cannot be opened for
// FlushFileBuffers there, and NTFS records the creation and renaming of
// files in its metadata journal, which it commits before the data of a
// file flushed with FlushFileBuffers is reported durable.
func fsyncDir(dir string) error { return nil }
