//go:build unix

package state

import (
	"fmt"
	"os"
	"syscall"
)

// flock takes an exclusive flock(2) on the file at path, creating it (mode
// 0600) if needed, so that processes sharing the directory serialise their
// read-check-write sections. It returns the function that releases the lock.
func flock(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if os.IsNotExist(err) {
		// Created once: an open that may create takes the directory's
		// lock, one that may not does not.
		f, err = os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	}
	if err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("state: locking %s: %w", path, err)
	}
	return func() { f.Close() }, nil // closing the file releases the lock
}
