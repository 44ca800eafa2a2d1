package state

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"
)

// A release's history file, "<id>.jsonl", holds its Timeline and
// RollbackSteps as JSON lines in the order they were appended: one [Entry]
// per line, with "rollback":true on the rollback steps. Update appends the
// new entries and syncs the file before it writes the new head,
// so the head's mark never counts bytes that are not on disk. The file is
// only read up to the mark: a torn last line left by a crash lies beyond it.

// historyLine is one line of the history file: an Entry under short keys
// (t at, p phase, k kind, o outcome, n name, s stage, x exposure, d
// detail, v values, r rollback), so that a step's history costs well under 200 bytes
// on disk. Lines with Entry's own keys are read too.
type historyLine struct {
	Entry
	Rollback bool
}

type shortLine struct {
	At       time.Time          `json:"t"`
	Phase    Phase              `json:"p"`
	Kind     EntryKind          `json:"k"`
	Outcome  Outcome            `json:"o,omitempty"`
	Name     string             `json:"n,omitempty"`
	Stage    string             `json:"s,omitempty"`
	Exposure float64            `json:"x"`
	Detail   string             `json:"d,omitempty"`
	Values   map[string]float64 `json:"v,omitempty"`
	Rollback bool               `json:"r,omitempty"`
}

// MarshalJSON writes the line under its short keys.
func (l historyLine) MarshalJSON() ([]byte, error) {
	e := l.Entry
	return json.Marshal(shortLine{e.At, e.Phase, e.Kind, e.Outcome, e.Name, e.Stage, e.Exposure, e.Detail, e.Values, l.Rollback})
}

// UnmarshalJSON reads a line under its short keys, or Entry's own.
func (l *historyLine) UnmarshalJSON(b []byte) error {
	if bytes.HasPrefix(b, []byte(`{"at":`)) {
		var long struct {
			Entry
			Rollback bool `json:"rollback,omitempty"`
		}
		if err := json.Unmarshal(b, &long); err != nil {
			return err
		}
		*l = historyLine{long.Entry, long.Rollback}
		return nil
	}
	var sl shortLine
	if err := json.Unmarshal(b, &sl); err != nil {
		return err
	}
	*l = historyLine{Entry{At: sl.At, Phase: sl.Phase, Kind: sl.Kind, Outcome: sl.Outcome, Name: sl.Name, Stage: sl.Stage, Exposure: sl.Exposure, Detail: sl.Detail, Values: sl.Values}, sl.Rollback}
	return nil
}

// encodeHistory appends the lines of the entries of r beyond mark to buf
// and returns buf and the mark that counts them.
func encodeHistory(buf []byte, r *Record, mark historyMark) ([]byte, historyMark, error) {
	start := len(buf)
	add := func(entries []Entry, rollback bool) error {
		for _, e := range entries {
			b, err := json.Marshal(historyLine{Entry: e, Rollback: rollback})
			if err != nil {
				return fmt.Errorf("state: encoding the history of %s: %w", r.ID, err)
			}
			buf = append(append(buf, b...), '\n')
		}
		return nil
	}
	if err := add(r.Timeline[mark.Timeline:], false); err != nil {
		return nil, mark, err
	}
	if err := add(r.RollbackSteps[mark.Rollback:], true); err != nil {
		return nil, mark, err
	}
	mark.Size += int64(len(buf) - start)
	mark.Timeline, mark.Rollback = len(r.Timeline), len(r.RollbackSteps)
	return buf, mark, nil
}

// appendHistory writes b to the history file of id at offset at, the
// committed size, cutting off what an uncommitted Update left there, and
// syncs it. The caller holds the release's lock.
func (f *File) appendHistory(id string, at int64, b []byte) error {
	if len(b) == 0 {
		return nil
	}
	if _, err := appendAt(f.historyPath(id), true, at, b, "its head counts"); err != nil {
		return err
	}
	if at == 0 {
		syncDir(f.dir) // a new file's name
	}
	return nil
}

// appendAt writes b to the file at p at offset at, where what the file
// commits ends (said by committed, for the error when the file is
// shorter), cutting off what a torn or uncommitted write left after it,
// and syncs it; create makes the file when it is missing. wrote reports
// that the error, if any, came once the write had begun: the file may
// then hold b, whole or torn. The caller holds the lock that owns p.
func appendAt(p string, create bool, at int64, b []byte, committed string) (wrote bool, err error) {
	flags := os.O_WRONLY
	if create {
		flags |= os.O_CREATE
	}
	h, err := os.OpenFile(p, flags, 0o600)
	if err != nil {
		return false, fmt.Errorf("state: %w", err)
	}
	defer h.Close()
	st, err := h.Stat()
	if err != nil {
		return false, fmt.Errorf("state: %w", err)
	}
	if st.Size() < at {
		return false, fmt.Errorf("%w: %s is %d bytes, %s %d", ErrCorrupt, p, st.Size(), committed, at)
	}
	if st.Size() > at {
		if err := h.Truncate(at); err != nil {
			return false, fmt.Errorf("state: %w", err)
		}
	}
	if _, err := h.WriteAt(b, at); err != nil {
		return true, fmt.Errorf("state: writing %s: %w", p, err)
	}
	if err := fdatasync(h); err != nil {
		return true, fmt.Errorf("state: syncing %s: %w", p, err)
	}
	return true, h.Close()
}

// readHistory reads the committed history of s into s.rec.
func (f *File) readHistory(id string, s *stored) error {
	if s.legacy || s.mark.Size == 0 {
		if !s.legacy && (s.mark.Timeline != 0 || s.mark.Rollback != 0) {
			return fmt.Errorf("%w: %s: the head counts %d entries in 0 bytes of history", ErrCorrupt, f.headPath(id), s.mark.Timeline+s.mark.Rollback)
		}
		s.addPending()
		return nil
	}
	p := f.historyPath(id)
	h, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		if _, err := os.Stat(f.headPath(id)); errors.Is(err, fs.ErrNotExist) {
			return f.missing(id) // set aside since the head was read
		}
		return fmt.Errorf("%w: %s is missing; its head counts %d bytes", ErrCorrupt, p, s.mark.Size)
	}
	if err != nil {
		return fmt.Errorf("state: %w", err)
	}
	defer h.Close()
	b := make([]byte, s.mark.Size)
	if _, err := io.ReadFull(h, b); err != nil {
		return fmt.Errorf("%w: %s is shorter than the %d bytes its head counts: %v", ErrCorrupt, p, s.mark.Size, err)
	}
	r := s.rec
	r.Timeline = make([]Entry, 0, s.mark.Timeline)
	r.RollbackSteps = make([]Entry, 0, s.mark.Rollback)
	for n := 1; len(b) > 0; n++ {
		line, rest, ok := bytes.Cut(b, []byte{'\n'})
		if !ok {
			return fmt.Errorf("%w: %s: line %d is cut short within the committed history", ErrCorrupt, p, n)
		}
		b = rest
		var l historyLine
		if err := json.Unmarshal(line, &l); err != nil {
			return fmt.Errorf("%w: %s: line %d: %v", ErrCorrupt, p, n, err)
		}
		if l.Rollback {
			r.RollbackSteps = append(r.RollbackSteps, l.Entry)
		} else {
			r.Timeline = append(r.Timeline, l.Entry)
		}
	}
	if len(r.Timeline) != s.mark.Timeline || len(r.RollbackSteps) != s.mark.Rollback {
		return fmt.Errorf("%w: %s holds %d timeline entries and %d rollback steps, its head counts %d and %d",
			ErrCorrupt, p, len(r.Timeline), len(r.RollbackSteps), s.mark.Timeline, s.mark.Rollback)
	}
	s.addPending()
	return nil
}

// addPending appends the head's pending entries to the history read.
func (s *stored) addPending() {
	for _, l := range s.pending {
		if l.Rollback {
			s.rec.RollbackSteps = append(s.rec.RollbackSteps, l.Entry)
		} else {
			s.rec.Timeline = append(s.rec.Timeline, l.Entry)
		}
	}
}
