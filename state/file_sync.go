package state

import "sync"

// dirSyncer syncs the store's directory after renames, sharing one fsync
// among the Updates of different releases that rename at about the same
// time (group commit): an fsync of a directory makes durable every rename
// in it that finished before the fsync started, so a caller waits for the
// first fsync that starts after its rename, running it itself if none is
// running.
type dirSyncer struct {
	mu        sync.Mutex
	cond      sync.Cond
	requested uint64 // renames registered
	done      uint64 // renames covered by a finished fsync
	running   bool
}

// sync returns once an fsync of dir that started after the call has
// finished. It is best effort, like syncDir.
func (s *dirSyncer) sync(dir string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cond.L == nil {
		s.cond.L = &s.mu
	}
	s.requested++
	want := s.requested
	for s.done < want {
		if s.running {
			s.cond.Wait()
			continue
		}
		s.running = true
		covers := s.requested
		s.mu.Unlock()
		syncDir(dir)
		s.mu.Lock()
		s.running = false
		s.done = covers
		s.cond.Broadcast()
	}
}
