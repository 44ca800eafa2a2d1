package state

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// asideDir is the directory, inside the store's, that keeps the releases
// set aside: ".aside/<id>/" holds "reason.json" and the release's files,
// moved there as they were ("<id>.json", "<id>.jsonl").
const asideDir = ".aside"

func (f *File) asidePath(id string) string { return filepath.Join(f.dir, asideDir, id) }

// asideReason is the content of reason.json.
type asideReason struct {
	ID     string    `json:"id"`
	Reason string    `json:"reason"`
	At     time.Time `json:"at"`
}

// missing is the error for a release whose head is not in the directory:
// the record was set aside, or there is none.
func (f *File) missing(id string) error {
	b, err := os.ReadFile(filepath.Join(f.asidePath(id), "reason.json"))
	if err != nil {
		return fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	var a asideReason
	if err := json.Unmarshal(b, &a); err != nil {
		a.Reason = fmt.Sprintf("(reason.json does not decode: %v)", err)
	}
	return &QuarantineError{ID: id, Reason: a.Reason, At: a.At, Where: f.asidePath(id)}
}

// Quarantine implements [Quarantiner]. It writes ".aside/<id>/reason.json",
// then moves the release's head there, which is the moment the record is set
// aside, then its history, and drops the release from the index. It needs
// neither file to decode.
func (f *File) Quarantine(ctx context.Context, id, reason string) error {
	if err := checkID(id); err != nil {
		return err
	}
	if err := checkReason(id, reason); err != nil {
		return err
	}
	unlockDir, err := f.lockDir()
	if err != nil {
		return err
	}
	defer unlockDir()
	unlock, err := f.lockRelease(id)
	if err != nil {
		return err
	}
	defer unlock()
	if _, err := os.Stat(f.headPath(id)); errors.Is(err, fs.ErrNotExist) {
		return f.missing(id)
	} else if err != nil {
		return fmt.Errorf("state: %w", err)
	}
	dir := f.asidePath(id)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("state: %w", err)
	}
	b, err := json.Marshal(asideReason{ID: id, Reason: reason, At: time.Now().UTC()})
	if err != nil {
		return fmt.Errorf("state: %w", err)
	}
	if err := writeSynced(filepath.Join(dir, "reason.json"), b); err != nil {
		return err
	}
	syncDir(filepath.Dir(dir))
	if err := os.Rename(f.headPath(id), filepath.Join(dir, id+".json")); err != nil {
		return fmt.Errorf("state: setting %s aside: %w", id, err)
	}
	if err := os.Rename(f.historyPath(id), filepath.Join(dir, id+".jsonl")); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("state: setting the history of %s aside: %w", id, err)
	}
	syncDir(dir)
	syncDir(f.dir)
	// The index last: an entry naming a record set aside is stale.
	idx, err := f.readIndex()
	if err != nil {
		return nil // set aside; a rebuild will not see it
	}
	changed := false
	for k, v := range idx {
		if v == id {
			delete(idx, k)
			changed = true
		}
	}
	if changed {
		f.writeIndex(idx)
	}
	return nil
}

// writeSynced writes b to a new file at path (mode 0600) and syncs it.
func writeSynced(path string, b []byte) error {
	w, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("state: %w", err)
	}
	if _, err := w.Write(b); err != nil {
		w.Close()
		return fmt.Errorf("state: writing %s: %w", path, err)
	}
	if err := w.Sync(); err != nil {
		w.Close()
		return fmt.Errorf("state: syncing %s: %w", path, err)
	}
	return w.Close()
}
