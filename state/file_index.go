package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// indexName is the file that maps each service and environment to its
// active release, so that Create does not read every record. It is written
// before the records it names (Create, and an Update back to running), so
// that a crash leaves at worst a stale entry, which the record it names
// shows to be stale, and never an active record the index misses.
const indexName = ".active.json"

func fileKey(r *Record) string { return r.Release.Service + "\x00" + r.Release.Environment }

// activeIndex reads the index of active releases. When it is missing or
// does not decode, it is rebuilt from the records. The caller holds the
// directory lock.
func (f *File) activeIndex() (map[string]string, error) {
	idx, err := f.readIndex()
	if err == nil {
		return idx, nil
	}
	if !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, ErrCorrupt) {
		return nil, err
	}
	idx, err = f.rebuildIndex()
	if err != nil {
		return nil, err
	}
	return idx, f.writeIndex(idx)
}

// readIndex reads the index as it is on disk: an error matching
// fs.ErrNotExist when it is missing, ErrCorrupt when it does not decode.
func (f *File) readIndex() (map[string]string, error) {
	p := filepath.Join(f.dir, indexName)
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	idx := map[string]string{}
	if err := json.Unmarshal(b, &idx); err != nil || idx == nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, p, err)
	}
	return idx, nil
}

// rebuildIndex reads every head. A head that does not decode is not
// skipped: when its service, environment and status can still be read it is
// indexed by them (a running one then blocks its service until it is set
// aside); when they cannot, it might be the active release of any service,
// and the rebuild fails with an error matching ErrActive and ErrCorrupt that
// names it.
func (f *File) rebuildIndex() (map[string]string, error) {
	ents, err := os.ReadDir(f.dir)
	if err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	idx := map[string]string{}
	var unknown []error
	for _, e := range ents {
		n := e.Name()
		if e.IsDir() || strings.HasPrefix(n, ".") || !strings.HasSuffix(n, ".json") {
			continue
		}
		id := strings.TrimSuffix(n, ".json")
		s, err := f.readHead(id)
		switch {
		case err == nil:
			if !s.rec.Status.Final() {
				idx[fileKey(s.rec)] = id
			}
		case errors.Is(err, ErrNotFound) || errors.Is(err, ErrQuarantined):
			// gone since the directory was read
		default:
			r, ok := f.salvageKey(id)
			switch {
			case !ok:
				unknown = append(unknown, err)
			case !r.Status.Final():
				idx[fileKey(r)] = id
			}
		}
	}
	if len(unknown) > 0 {
		return nil, fmt.Errorf("%w: %w: rebuilding %s, %d record(s) could not be read and may be the active release of any service; set them aside with Quarantine: %w",
			ErrActive, ErrCorrupt, filepath.Join(f.dir, indexName), len(unknown), errors.Join(unknown...))
	}
	return idx, nil
}

// salvageKey reads the service, environment and status of a head that does
// not decode as a whole, when the JSON is well formed and only some field
// has the wrong type; of a log of heads none of which matches its checksum,
// it reads the last whole line.
func (f *File) salvageKey(id string) (*Record, bool) {
	b, err := os.ReadFile(f.headPath(id))
	if err != nil {
		return nil, false
	}
	if hf, err := parseHeadFile(f.headPath(id), b); err == nil {
		b = hf.head
	} else {
		b = lastLine(b)
	}
	var r struct {
		Release struct{ Service, Environment *string }
		Status  *Status
	}
	var te *json.UnmarshalTypeError
	if err := json.Unmarshal(b, &r); (err != nil && !errors.As(err, &te)) || r.Release.Service == nil || r.Release.Environment == nil || r.Status == nil {
		return nil, false
	}
	return &Record{ID: id, Release: Release{Service: *r.Release.Service, Environment: *r.Release.Environment}, Status: *r.Status}, true
}

// writeIndex replaces the index atomically.
func (f *File) writeIndex(idx map[string]string) error {
	b, err := json.Marshal(idx)
	if err != nil {
		return fmt.Errorf("state: encoding the index: %w", err)
	}
	return f.replace(indexName, "", b)
}

// checkActive returns an error matching ErrActive when the index names a
// release of r's service and environment other than r that is, or may be,
// running. An entry whose record is gone, set aside or final is stale; it is
// deleted from idx. The caller holds the directory lock.
func (f *File) checkActive(idx map[string]string, r *Record) error {
	key := fileKey(r)
	id, ok := idx[key]
	if !ok || id == r.ID {
		return nil
	}
	s, err := f.readHead(id)
	switch {
	case err == nil && conflicts(s.rec, r):
		return fmt.Errorf("%w: %s (%s)", ErrActive, id, s.rec.Status)
	case err != nil && !errors.Is(err, ErrNotFound) && !errors.Is(err, ErrQuarantined):
		return fmt.Errorf("%w: the active release %s of %s in %s cannot be read, so it may still run; set it aside with Quarantine: %w",
			ErrActive, id, r.Release.Service, r.Release.Environment, err)
	}
	delete(idx, key)
	return nil
}
