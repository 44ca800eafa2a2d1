package state

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// File is a Store that keeps one JSON file per release in a directory, the
// default store. Each write goes to a temporary file in the same directory,
// is synced, closed and renamed over the old one, then the directory is
// synced, so a crash leaves either the old or the new record, never half of
// one. Files are created with mode 0600. A small index, ".active.json",
// names the active release of each service and environment, so that Create
// does not read every record; it is rebuilt from the records when it is
// missing or does not decode, and the records decide when it is stale.
//
// File is safe for concurrent use, also by several processes sharing the
// directory on one machine: Create and Update hold an exclusive flock(2) on
// the directory's ".lock" file while they read, check and write, so the
// compare-and-swap on Rev, the fencing token and "one active release per
// service and environment" hold across processes (on Unix; elsewhere within
// one process only). Network file systems may not honour flock: use
// state/postgres for runners on several machines.
type File struct {
	dir string
	mu  sync.Mutex
}

var _ Store = (*File)(nil)

// NewFile returns a store in dir, creating it (mode 0700) if needed.
func NewFile(dir string) (*File, error) {
	if dir == "" {
		return nil, errors.New("state: NewFile dir is empty")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	return &File{dir: dir}, nil
}

// Dir returns the store's directory.
func (f *File) Dir() string { return f.dir }

func (f *File) path(id string) (string, error) {
	// A leading dot also keeps ids apart from the temporary files.
	if id == "" || strings.ContainsAny(id, "/\\\x00") || strings.HasPrefix(id, ".") {
		return "", fmt.Errorf("state: record id %q is not a valid file name (empty, a leading dot, or a slash, backslash or NUL)", id)
	}
	return filepath.Join(f.dir, id+".json"), nil
}

func (f *File) read(id string) (*Record, error) {
	p, err := f.path(id)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	if err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	var r Record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, p, err)
	}
	if r.ID != id {
		return nil, fmt.Errorf("%w: %s holds id %q", ErrCorrupt, p, r.ID)
	}
	return &r, nil
}

func (f *File) write(r *Record) error {
	p, err := f.path(r.ID)
	if err != nil {
		return err
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("state: encoding %s: %w", r.ID, err)
	}
	return f.replace(filepath.Base(p), b)
}

// replace writes b to the file name in the store's directory atomically:
// a synced temporary file renamed over the old one, then the directory synced.
func (f *File) replace(name string, b []byte) error {
	p := filepath.Join(f.dir, name)
	tmp, err := os.CreateTemp(f.dir, "."+name+".*.tmp")
	if err != nil {
		return fmt.Errorf("state: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op after a successful rename
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("state: %w", err)
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("state: writing %s: %w", name, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("state: syncing %s: %w", name, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("state: %w", err)
	}
	if err := os.Rename(tmp.Name(), p); err != nil {
		return fmt.Errorf("state: %w", err)
	}
	if d, err := os.Open(f.dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// lock serialises read-check-write sections: within the process with mu,
// across processes with the directory's lock file.
func (f *File) lock() (func(), error) {
	f.mu.Lock()
	unlock, err := lockDir(f.dir)
	if err != nil {
		f.mu.Unlock()
		return nil, err
	}
	return func() { unlock(); f.mu.Unlock() }, nil
}

// Create implements Store.
func (f *File) Create(ctx context.Context, r *Record) error {
	if r == nil {
		return errNilRecord("Create")
	}
	if _, err := f.path(r.ID); err != nil {
		return err
	}
	unlock, err := f.lock()
	if err != nil {
		return err
	}
	defer unlock()
	if _, err := f.read(r.ID); err == nil || !errors.Is(err, ErrNotFound) {
		if err == nil {
			return fmt.Errorf("%w: %s", ErrExists, r.ID)
		}
		return err
	}
	idx, err := f.activeIndex()
	if err != nil {
		return err
	}
	key := fileKey(r)
	if id, ok := idx[key]; ok {
		// The index may be stale (a crash between writes): the record
		// decides. One that cannot be read is not assumed gone.
		o, err := f.read(id)
		switch {
		case err == nil && conflicts(o, r):
			return fmt.Errorf("%w: %s (%s)", ErrActive, o.ID, o.Status)
		case err != nil && !errors.Is(err, ErrNotFound):
			return fmt.Errorf("state: the active release %s of %s in %s cannot be read: %w", id, r.Release.Service, r.Release.Environment, err)
		}
		delete(idx, key)
	}
	if !r.Status.Final() {
		// The index first: a crash before the record leaves a stale entry,
		// never an active record the index misses.
		idx[key] = r.ID
		if err := f.writeIndex(idx); err != nil {
			return err
		}
	}
	rev := r.Rev
	r.Rev = 1
	if err := f.write(r); err != nil {
		r.Rev = rev
		return err
	}
	return nil
}

// indexName is the file that maps each service and environment to its
// active release, so that Create does not read every record.
const indexName = ".active.json"

func fileKey(r *Record) string { return r.Release.Service + "\x00" + r.Release.Environment }

// activeIndex reads the index of active releases. When it is missing or
// does not decode, it is rebuilt from the records.
func (f *File) activeIndex() (map[string]string, error) {
	b, err := os.ReadFile(filepath.Join(f.dir, indexName))
	idx := map[string]string{}
	if err == nil && json.Unmarshal(b, &idx) == nil && idx != nil {
		return idx, nil
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("state: %w", err)
	}
	all, err := f.list()
	if err != nil {
		return nil, err
	}
	idx = map[string]string{}
	for _, o := range all {
		if !o.Status.Final() {
			idx[fileKey(o)] = o.ID
		}
	}
	return idx, f.writeIndex(idx)
}

// writeIndex replaces the index atomically.
func (f *File) writeIndex(idx map[string]string) error {
	b, err := json.Marshal(idx)
	if err != nil {
		return fmt.Errorf("state: encoding the index: %w", err)
	}
	return f.replace(indexName, b)
}

// list reads every record; corrupt files are skipped so that one bad file
// does not block every release.
func (f *File) list() ([]*Record, error) {
	ents, err := os.ReadDir(f.dir)
	if err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	var out []*Record
	for _, e := range ents {
		n := e.Name()
		if e.IsDir() || strings.HasPrefix(n, ".") || !strings.HasSuffix(n, ".json") {
			continue
		}
		r, err := f.read(strings.TrimSuffix(n, ".json"))
		if err != nil {
			continue
		}
		out = append(out, r)
	}
	return out, nil
}

// Load implements Store. A file that does not decode gives ErrCorrupt with
// the file's path.
func (f *File) Load(ctx context.Context, id string) (*Record, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.read(id)
}

// Update implements Store.
func (f *File) Update(ctx context.Context, r *Record) error {
	if r == nil {
		return errNilRecord("Update")
	}
	unlock, err := f.lock()
	if err != nil {
		return err
	}
	defer unlock()
	old, err := f.read(r.ID)
	if err != nil {
		return err
	}
	if err := checkUpdate(old, r); err != nil {
		return err
	}
	r.Rev++
	if err := f.write(r); err != nil {
		r.Rev--
		return err
	}
	if r.Status.Final() && !old.Status.Final() {
		// The record first: a crash before the index is updated leaves a
		// stale entry that Create sees through.
		if idx, err := f.activeIndex(); err == nil && idx[fileKey(r)] == r.ID {
			delete(idx, fileKey(r))
			f.writeIndex(idx)
		}
	}
	return nil
}
