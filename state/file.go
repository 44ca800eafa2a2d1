package state

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// File is a Store that keeps each release in a directory as two files, the
// default store:
//
//   - "<id>.json", the heads: a log of the record without its history, one
//     JSON line per Update, each beginning with a CRC-32C checksum of
//     itself ({"crc":"…",…}). An Update appends its head and syncs the file
//     once: no temporary file, no rename, no sync of the directory. The
//     current head is the last line that is whole and matches its
//     checksum, so a crash in the middle of an append leaves the previous
//     head current; the next Update cuts the torn line off. When the log
//     would pass 8 times the new head's length, and when the record is
//     final, the Update compacts it to its new head in place: that head
//     written over the heads before the current one and synced, then the
//     file cut after it and synced, so a crash leaves either head
//     (file_headlog.go). Create writes the first head through a temporary
//     file that is synced, closed and renamed into place, then the
//     directory is synced, as a compaction does when the heads before the
//     current one are shorter than the new one.
//   - "<id>.jsonl", the history: Timeline and RollbackSteps as JSON lines,
//     to which an Update appends the new entries once there are more than
//     a head holds (16), synced before the head that counts them is
//     written. The head says how many bytes of it are committed; a torn
//     line a crash left after them is ignored and written over. A release
//     whose history fits in its head has no history file yet.
//
// So an Update writes the head and the new entries, whatever the length of
// the history, and most Updates sync one file once. Files are created with
// mode 0600. A record written by an earlier version loads as it is: a head
// rewritten whole (one JSON object, no checksum) beside its history file,
// or one JSON file with its history inside; its first Update makes its
// head file a log and moves the history out. (The earlier versions cannot
// read a log of more than one head: do not run them on the directory at
// the same time.) A small index, ".active.json", names the active release
// of each service and environment, so that Create does not read every
// record; it is rebuilt from the heads when it is missing or does not
// decode, and the records decide when it is stale.
//
// File is safe for concurrent use, also by several processes sharing the
// directory on one machine. An Update holds a lock of its release only (a
// mutex and, on Linux, an open file description lock of one byte of
// ".locks/.releases"; elsewhere an exclusive flock(2) of ".locks/<id>"), so
// releases are written in parallel; Create, Quarantine and an Update that
// brings a final record back to running also hold the directory's lock
// (".lock") while they read and write the index. (An Update that finishes
// a release leaves its entry in the index; the next Create of its service
// sees that it is stale.) So the compare-and-swap on Rev, the fencing
// token and "one active release per service and environment" hold across
// processes (on Unix; elsewhere within one process only). Load takes no
// lock: the committed part of a history file never changes, and a reader
// takes only a head line that is whole and matches its checksum, so it
// sees the head before an Update or the one after, never a mix. Network
// file systems may not honour these locks: use state/postgres for runners
// on several machines.
//
// Quarantine moves a release's files to ".aside/<id>/" with a
// "reason.json" beside them.
type File struct {
	dir     string
	mu      sync.Mutex // the directory lock, within the process
	locks   idLocks    // the release locks, within the process
	dirSync dirSyncer
	// dirOps serialises, within the process, the system calls that change
	// the directory (create, rename): the kernel runs them one at a time
	// anyway, under the directory's lock, and callers that wait for it
	// there spin on a CPU, here they sleep.
	dirOps  sync.Mutex
	creates creator // Creates at the same time share one index write
}

var (
	_ Store       = (*File)(nil)
	_ Quarantiner = (*File)(nil)
)

// NewFile returns a store in dir, creating it (mode 0700) if needed, with
// its directory of release locks.
func NewFile(dir string) (*File, error) {
	if dir == "" {
		return nil, errors.New("state: NewFile dir is empty")
	}
	if err := os.MkdirAll(filepath.Join(dir, locksDir), 0o700); err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	return &File{dir: dir}, nil
}

// Dir returns the store's directory.
func (f *File) Dir() string { return f.dir }

// checkID refuses ids that are not plain file names. A leading dot also
// keeps ids apart from the store's own files (index, locks, temporary
// files, the directory of records set aside).
func checkID(id string) error {
	if id == "" || strings.ContainsAny(id, "/\\\x00") || strings.HasPrefix(id, ".") {
		return fmt.Errorf("state: record id %q is not a valid file name (empty, a leading dot, or a slash, backslash or NUL)", id)
	}
	return nil
}

func (f *File) headPath(id string) string    { return filepath.Join(f.dir, id+".json") }
func (f *File) historyPath(id string) string { return filepath.Join(f.dir, id+".jsonl") }

// Create implements Store.
func (f *File) Create(ctx context.Context, r *Record) error {
	if r == nil {
		return errNilRecord("Create")
	}
	if err := checkID(r.ID); err != nil {
		return err
	}
	return f.creates.do(f, r)
}

// create creates the records of one batch under the directory lock, which
// the caller holds: each is checked (its id free, no other active release
// of its service and environment, in the store or earlier in the batch),
// the index is written once for all, then every record's history and head
// are written at once. It returns one error per record.
func (f *File) create(batch []*Record) []error {
	errs := make([]error, len(batch))
	ids := map[string]bool{}
	reserved := map[string]string{} // key → id reserved by this batch
	running := 0
	var idx map[string]string
	for i, r := range batch {
		switch _, err := f.readHead(r.ID); {
		case ids[r.ID] || err == nil:
			errs[i] = fmt.Errorf("%w: %s", ErrExists, r.ID)
			continue
		case errors.Is(err, ErrQuarantined):
			errs[i] = fmt.Errorf("%w: %w", ErrExists, err)
			continue
		case !errors.Is(err, ErrNotFound):
			errs[i] = err
			continue
		}
		ids[r.ID] = true
		if r.Status.Final() {
			continue
		}
		if idx == nil {
			var err error
			if idx, err = f.activeIndex(); err != nil {
				errs[i], idx = err, nil
				continue
			}
		}
		if other, ok := reserved[fileKey(r)]; ok {
			errs[i] = fmt.Errorf("%w: %s (created at the same time)", ErrActive, other)
			continue
		}
		if err := f.checkActive(idx, r); err != nil {
			errs[i] = err
			continue
		}
		idx[fileKey(r)] = r.ID
		reserved[fileKey(r)] = r.ID
		running++
	}
	if running > 0 {
		// The index before the records it names, as ever.
		if err := f.writeIndex(idx); err != nil {
			for i, r := range batch {
				if errs[i] == nil && !r.Status.Final() {
					errs[i] = err
				}
			}
		}
	}
	var wg sync.WaitGroup
	for i, r := range batch {
		if errs[i] == nil {
			wg.Go(func() { errs[i] = f.createOne(r) })
		}
	}
	wg.Wait()
	return errs
}

// createOne writes the head of a new record, after its history when the
// head cannot hold all of it as pending entries.
func (f *File) createOne(r *Record) error {
	unlock, err := f.lockRelease(r.ID)
	if err != nil {
		return err
	}
	defer unlock()
	var mark historyMark
	wrote := false
	if len(r.Timeline)+len(r.RollbackSteps) > maxPending {
		// The history first, from scratch: a crash before the head leaves
		// a history file that no head counts, written over by the next
		// Create. A head with all its entries pending counts none of the
		// history file, so one left by such a crash is cut off by the
		// first Update that writes history.
		b, m, err := encodeHistory(nil, r, historyMark{})
		if err != nil {
			return err
		}
		if err := f.appendHistory(r.ID, 0, b); err != nil {
			return err
		}
		mark, wrote = m, true
	}
	rev := r.Rev
	r.Rev = 1
	if err := f.writeHead(r, mark, nil); err != nil {
		r.Rev = rev
		if wrote {
			os.Remove(f.historyPath(r.ID))
		}
		return err
	}
	return nil
}

// Load implements Store. A head or history that does not decode gives
// ErrCorrupt with the file's path.
func (f *File) Load(ctx context.Context, id string) (*Record, error) {
	if err := checkID(id); err != nil {
		return nil, err
	}
	s, err := f.readHead(id)
	if err != nil {
		return nil, err
	}
	if err := f.readHistory(id, s); err != nil {
		return nil, err
	}
	return s.rec, nil
}

// Update implements Store.
func (f *File) Update(ctx context.Context, r *Record) error {
	if r == nil {
		return errNilRecord("Update")
	}
	if err := checkID(r.ID); err != nil {
		return err
	}
	unlock, err := f.lockRelease(r.ID)
	if err != nil {
		return err
	}
	s, err := f.checkUpdate(r)
	if err != nil {
		unlock()
		return err
	}
	if !activates(s.rec, r) {
		defer unlock()
		return f.update(r, s)
	}
	// The record becomes the active release of its service and
	// environment: the index changes, under the directory lock, taken
	// first.
	unlock()
	unlockDir, err := f.lockDir()
	if err != nil {
		return err
	}
	defer unlockDir()
	if unlock, err = f.lockRelease(r.ID); err != nil {
		return err
	}
	defer unlock()
	if s, err = f.checkUpdate(r); err != nil {
		return err
	}
	if !activates(s.rec, r) {
		return f.update(r, s)
	}
	// Refused while another release is active; the index first, as in
	// Create.
	idx, err := f.activeIndex()
	if err != nil {
		return err
	}
	if err := f.checkActive(idx, r); err != nil {
		return err
	}
	if k := fileKey(s.rec); idx[k] == r.ID {
		delete(idx, k)
	}
	idx[fileKey(r)] = r.ID
	if err := f.writeIndex(idx); err != nil {
		return err
	}
	return f.update(r, s)
}

// activates reports whether updating old to r makes r the active release
// of a service and environment it was not active for: a final record back
// to running, or a running one moved to another service or environment.
// Only such an Update writes the index. One that finishes a release leaves
// its entry, which Create then finds stale.
func activates(old, r *Record) bool {
	return !r.Status.Final() && (old.Status.Final() || fileKey(old) != fileKey(r))
}

// checkUpdate reads the stored head of r and checks r against it.
func (f *File) checkUpdate(r *Record) (*stored, error) {
	s, err := f.readMeta(r.ID)
	if err != nil {
		return nil, err
	}
	if err := checkUpdate(s.rec, r); err != nil {
		return nil, err
	}
	if err := CheckHistory(r, s.mark.Timeline+s.pendingTimeline, s.mark.Rollback+s.pendingRollback); err != nil {
		return nil, err
	}
	return s, nil
}

// update appends the new history of r and writes its head. The caller holds
// the release's lock and checked r against s.
func (f *File) update(r *Record, s *stored) error {
	base := s.mark
	if s.legacy {
		base = historyMark{} // the history file holds none of it yet
	}
	mark := base
	if len(r.Timeline)-base.Timeline+len(r.RollbackSteps)-base.Rollback > maxPending {
		// More than the head holds: the history file takes them all.
		b, m, err := encodeHistory(nil, r, base)
		if err != nil {
			return err
		}
		if err := f.appendHistory(r.ID, base.Size, b); err != nil {
			return err
		}
		mark = m
	}
	r.Rev++
	if err := f.writeHead(r, mark, s); err != nil {
		r.Rev--
		return err
	}
	return nil
}
