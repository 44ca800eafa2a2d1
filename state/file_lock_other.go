//go:build !unix

package state

import "os"

// flock does nothing where flock(2) is not available: there, a File is
// safe within one process only.
func flock(path string) (func(), error) { return func() {}, nil }

// fdatasync flushes f.
func fdatasync(f *os.File) error { return f.Sync() }
