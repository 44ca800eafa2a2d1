package state

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// A release's head is the record without its history, plus a mark saying
// how much of the history file "<id>.jsonl" is committed; every Update
// writes one to the release's log of heads, "<id>.json" (file_headlog.go).
// A head without a mark is a record written by an earlier version, with its
// whole history inside; it loads as it is, and its first Update moves the
// history out.
type fileHead struct {
	*Record
	History *historyMark `json:"history,omitempty"`
	// Pending are entries appended since the history file was last
	// written: up to maxPending of them ride in the head, so that most
	// Updates write one file, not two; the Update that would hold more
	// moves them all to the history file.
	Pending []historyLine `json:"pending,omitempty"`
}

// maxPending is how many new history entries a head holds at most.
const maxPending = 16

// historyMark is the committed part of a release's history file: its first
// Size bytes hold Timeline timeline entries and Rollback rollback steps.
// Bytes after Size were written by an Update that did not commit (a crash
// before its head was written): they are ignored, and the next Update
// writes over them.
type historyMark struct {
	Size     int64 `json:"size"`
	Timeline int   `json:"timeline"`
	Rollback int   `json:"rollback"`
}

// stored is what Update needs of the stored record: the head and how its
// history is kept.
type stored struct {
	rec  *Record
	mark historyMark
	// pending are the head's pending entries (readHead); readMeta only
	// counts them.
	pending                          []historyLine
	pendingTimeline, pendingRollback int
	// legacy: the head holds the whole history (an earlier version's
	// format); the history file has none of it.
	legacy bool
	// file is whether the head file is a log of heads, and where the
	// current head's line begins and ends in it (its bytes are dropped).
	file headFile
}

// readHeadFile reads the head file of release id and finds its current
// head.
func (f *File) readHeadFile(id string) (headFile, error) {
	p := f.headPath(id)
	h, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return headFile{}, f.missing(id)
	}
	if err != nil {
		return headFile{}, fmt.Errorf("state: %w", err)
	}
	defer h.Close()
	return readHeadFile(p, h)
}

// readHead reads the head of release id. Its Timeline and RollbackSteps are
// empty unless the record is in the earlier format (s.legacy).
func (f *File) readHead(id string) (*stored, error) {
	hf, err := f.readHeadFile(id)
	if err != nil {
		return nil, err
	}
	p := f.headPath(id)
	r := new(Record)
	h := fileHead{Record: r}
	if err := json.Unmarshal(hf.head, &h); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, p, err)
	}
	if r.ID != id {
		return nil, fmt.Errorf("%w: %s holds id %q", ErrCorrupt, p, r.ID)
	}
	s := &stored{rec: r, pending: h.Pending, file: hf}
	s.file.head = nil
	return s, s.setMark(p, h.History, len(r.Timeline), len(r.RollbackSteps))
}

// setMark sets s's history mark from the head at p: mark, or for a head
// of the earlier format (no mark) the timeline and rollback entries it
// holds itself; a head with both, or a negative mark, is corrupt.
func (s *stored) setMark(p string, mark *historyMark, timeline, rollback int) error {
	if mark == nil {
		s.legacy = true
		s.mark = historyMark{Timeline: timeline, Rollback: rollback}
		return nil
	}
	s.mark = *mark
	if timeline > 0 || rollback > 0 || s.mark.Size < 0 || s.mark.Timeline < 0 || s.mark.Rollback < 0 {
		return fmt.Errorf("%w: %s: history both inside the head and apart, or a negative mark %+v", ErrCorrupt, p, s.mark)
	}
	return nil
}

// headMeta is the part of a head that Update checks: decoding only it
// saves most of the allocations of decoding a whole head.
type headMeta struct {
	ID      string `json:"id"`
	Rev     int64  `json:"rev"`
	Release struct {
		Service     string `json:"service"`
		Environment string `json:"environment"`
	} `json:"release"`
	Status  Status       `json:"status"`
	Token   int64        `json:"token"`
	History *historyMark `json:"history"`
	// Only in the earlier format: counted, not decoded.
	Timeline      []struct{} `json:"timeline"`
	RollbackSteps []struct{} `json:"rollbackSteps"`
	// Counted by kind, not decoded.
	Pending []struct {
		Rollback bool `json:"r"`
	} `json:"pending"`
}

// readMeta reads what Update checks of the head of release id. The stored
// record it returns has only ID, Rev, Token, Status and Release.Service
// and Environment set.
func (f *File) readMeta(id string) (*stored, error) {
	hf, err := f.readHeadFile(id)
	if err != nil {
		return nil, err
	}
	p := f.headPath(id)
	var h headMeta
	if err := json.Unmarshal(hf.head, &h); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, p, err)
	}
	if h.ID != id {
		return nil, fmt.Errorf("%w: %s holds id %q", ErrCorrupt, p, h.ID)
	}
	r := &Record{ID: h.ID, Rev: h.Rev, Status: h.Status, Token: h.Token}
	r.Release.Service, r.Release.Environment = h.Release.Service, h.Release.Environment
	s := &stored{rec: r, file: hf}
	s.file.head = nil
	for _, p := range h.Pending {
		if p.Rollback {
			s.pendingRollback++
		} else {
			s.pendingTimeline++
		}
	}
	return s, s.setMark(p, h.History, len(h.Timeline), len(h.RollbackSteps))
}

// writeHead writes the head of r, with mark and the entries of r beyond it
// as pending: appended to its log of heads, whose current head prev read;
// when the log is full or r is final, as the only line of the log,
// compacted in place; and as a new file written whole when prev is nil (a
// new record), prev's file is not a log, or the heads before the current
// one are too short to hold the new one.
func (f *File) writeHead(r *Record, mark historyMark, prev *stored) error {
	h := *r
	h.Timeline, h.RollbackSteps = nil, nil
	var pending []historyLine
	for _, e := range r.Timeline[mark.Timeline:] {
		pending = append(pending, historyLine{Entry: e})
	}
	for _, e := range r.RollbackSteps[mark.Rollback:] {
		pending = append(pending, historyLine{Entry: e, Rollback: true})
	}
	buf := lineBuffers.Get().(*bytes.Buffer)
	defer func() {
		if buf.Cap() <= 1<<20 {
			lineBuffers.Put(buf)
		}
	}()
	line, err := encodeHeadLine(buf, fileHead{Record: &h, History: &mark, Pending: pending})
	if err != nil {
		return fmt.Errorf("state: encoding %s: %w", r.ID, err)
	}
	switch {
	case prev == nil || !prev.file.log:
		return f.replace(r.ID+".json", "."+r.ID+".json.tmp", line)
	case prev.file.end+int64(len(line)) <= maxHeads*int64(len(line)) && !r.Status.Final():
		return f.appendHead(r.ID, prev.file.end, line)
	case int64(len(line)) <= prev.file.start:
		return f.compactHead(r.ID, prev.file.start, line)
	default:
		return f.replace(r.ID+".json", "."+r.ID+".json.tmp", line)
	}
}

// replace writes b to the file name in the store's directory atomically:
// the temporary file tmp written, synced and renamed over the old one, then
// the directory synced. The caller holds the lock that owns tmp; "" makes a
// temporary name of its own.
func (f *File) replace(name, tmp string, b []byte) error {
	p := filepath.Join(f.dir, name)
	var t *os.File
	var err error
	f.dirOps.Lock()
	if tmp == "" {
		t, err = os.CreateTemp(f.dir, "."+name+".*.tmp")
		if err == nil {
			err = t.Chmod(0o600)
		}
	} else {
		t, err = os.OpenFile(filepath.Join(f.dir, tmp), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	}
	f.dirOps.Unlock()
	renamed := false
	if t != nil {
		// Removed when the write fails before its rename. Not after a
		// rename: there is nothing left to remove, and a remove of a name
		// that does not exist costs two system calls under the
		// directory's lock, which every release of the store shares.
		defer func() {
			if !renamed {
				os.Remove(t.Name())
			}
		}()
	}
	if err != nil {
		if t != nil {
			t.Close()
		}
		return fmt.Errorf("state: %w", err)
	}
	if _, err := t.Write(b); err != nil {
		t.Close()
		return fmt.Errorf("state: writing %s: %w", name, err)
	}
	if err := fdatasync(t); err != nil {
		t.Close()
		return fmt.Errorf("state: syncing %s: %w", name, err)
	}
	if err := t.Close(); err != nil {
		return fmt.Errorf("state: %w", err)
	}
	f.dirOps.Lock()
	err = os.Rename(t.Name(), p)
	f.dirOps.Unlock()
	if err != nil {
		return fmt.Errorf("state: %w", err)
	}
	renamed = true
	f.dirSync.sync(f.dir)
	return nil
}

// syncDir makes the renames and new names in dir durable. It is best
// effort: once a rename is done the write has happened, and an error
// here could only make the caller believe otherwise.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}
