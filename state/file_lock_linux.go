//go:build linux

package state

import (
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"syscall"
)

// releaseLocksName is the file, in the directory of release locks, whose
// bytes are the release locks on Linux: the lock of release id is a write
// lock of one byte of it, at releaseLockOffset(id), taken as an open file
// description lock (fcntl F_OFD_SETLKW), which, like flock(2), belongs to
// the open file, not the process, so goroutines of one process exclude each
// other too. One file serves every release: taking a lock creates no file,
// and none is left behind per release. Two ids whose offsets collide (about
// one chance in 2^62 for a pair) only share a lock.
const releaseLocksName = ".releases"

// fOFDSetLkW is F_OFD_SETLKW, the same on every Linux architecture
// (missing from package syscall).
const fOFDSetLkW = 38

// releaseLockOffset is the byte of the file of release locks that is the
// lock of release id.
func releaseLockOffset(id string) int64 {
	h := fnv.New64a()
	h.Write([]byte(id))
	return int64(h.Sum64() & (1<<62 - 1))
}

// lockReleaseFile takes the cross-process lock of release id and returns
// the function that releases it.
func lockReleaseFile(dir, id string) (func(), error) {
	p := filepath.Join(dir, locksDir, releaseLocksName)
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if os.IsNotExist(err) {
		f, err = os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o600)
	}
	if err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	lk := syscall.Flock_t{Type: syscall.F_WRLCK, Whence: 0, Start: releaseLockOffset(id), Len: 1}
	for {
		err = syscall.FcntlFlock(f.Fd(), fOFDSetLkW, &lk)
		if err != syscall.EINTR {
			break
		}
	}
	if err == syscall.EINVAL {
		// A kernel without open file description locks (before 3.15, or
		// an emulation of Linux without them): every process on it falls
		// back to a lock file per release.
		f.Close()
		return flock(filepath.Join(dir, locksDir, id))
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("state: locking release %s (%s): %w", id, p, err)
	}
	return func() { f.Close() }, nil // closing the file releases the lock
}
