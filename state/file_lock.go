package state

import (
	"path/filepath"
	"sync"
)

// The File store has two kinds of lock, each a mutex within the process and
// a lock across processes:
//
//   - the directory lock, an exclusive flock(2) of ".lock", for whatever
//     reads or writes the index of active releases: Create, Quarantine, and
//     an Update that brings a final record back to running;
//   - a lock per release for every write of one record, so that releases
//     are written in parallel: on Linux a lock of one byte of
//     ".locks/.releases" (file_lock_linux.go), elsewhere, and on a Linux
//     kernel without open file description locks, an exclusive flock(2) of
//     ".locks/<id>".
//
// The order is always the directory first, then the release.

// locksDir is the directory, inside the store's, of the release locks.
const locksDir = ".locks"

// lockDir takes the directory lock and returns the function that releases it.
func (f *File) lockDir() (func(), error) {
	f.mu.Lock()
	unlock, err := flock(filepath.Join(f.dir, ".lock"))
	if err != nil {
		f.mu.Unlock()
		return nil, err
	}
	return func() { unlock(); f.mu.Unlock() }, nil
}

// lockRelease takes the lock of release id and returns the function that
// releases it.
func (f *File) lockRelease(id string) (func(), error) {
	m := f.locks.acquire(id)
	unlock, err := lockReleaseFile(f.dir, id)
	if err != nil {
		f.locks.release(id, m)
		return nil, err
	}
	return func() { unlock(); f.locks.release(id, m) }, nil
}

// idLocks are the in-process mutexes of the releases being written, counted
// so that the map holds only those in use.
type idLocks struct {
	mu sync.Mutex
	m  map[string]*idLock
}

type idLock struct {
	sync.Mutex
	users int
}

func (l *idLocks) acquire(id string) *idLock {
	l.mu.Lock()
	if l.m == nil {
		l.m = make(map[string]*idLock)
	}
	m := l.m[id]
	if m == nil {
		m = new(idLock)
		l.m[id] = m
	}
	m.users++
	l.mu.Unlock()
	m.Lock()
	return m
}

func (l *idLocks) release(id string, m *idLock) {
	m.Unlock()
	l.mu.Lock()
	if m.users--; m.users == 0 {
		delete(l.m, id)
	}
	l.mu.Unlock()
}
