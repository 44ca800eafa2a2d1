//go:build !linux

package state

import "os"

// fdatasync flushes f (fsync: fdatasync(2) is not everywhere).
func fdatasync(f *os.File) error { return f.Sync() }
