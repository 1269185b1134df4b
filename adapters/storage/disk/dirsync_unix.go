//go:build !windows

package disk

import "os"

// fsyncDir makes the entries of dir (files created, renamed or removed in
// it) durable: fsync on the directory (F_FULLFSYNC on darwin).
func fsyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
