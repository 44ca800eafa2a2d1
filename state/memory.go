package state

import (
	"context"
	"fmt"
	"sync"
)

// Memory is a Store that keeps records in memory, for tests and for programs
// whose releases need not survive the process. The zero value is ready.
type Memory struct {
	mu      sync.Mutex
	records map[string]*Record
	active  map[activeKey]string // the non-final record of each service and environment
}

type activeKey struct{ service, environment string }

func keyOf(r *Record) activeKey { return activeKey{r.Release.Service, r.Release.Environment} }

var _ Store = (*Memory)(nil)

// NewMemory returns an empty Memory store.
func NewMemory() *Memory { return &Memory{} }

// Create implements Store.
func (m *Memory) Create(ctx context.Context, r *Record) error {
	if r == nil {
		return errNilRecord("Create")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.records[r.ID]; ok {
		return fmt.Errorf("%w: %s", ErrExists, r.ID)
	}
	if id, ok := m.active[keyOf(r)]; ok && !r.Status.Final() {
		o := m.records[id]
		return fmt.Errorf("%w: %s (%s)", ErrActive, o.ID, o.Status)
	}
	if m.records == nil {
		m.records = make(map[string]*Record)
		m.active = make(map[activeKey]string)
	}
	r.Rev = 1
	m.records[r.ID] = r.Clone()
	if !r.Status.Final() {
		m.active[keyOf(r)] = r.ID
	}
	return nil
}

// Load implements Store.
func (m *Memory) Load(ctx context.Context, id string) (*Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.records[id]
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	return r.Clone(), nil
}

// Update implements Store.
func (m *Memory) Update(ctx context.Context, r *Record) error {
	if r == nil {
		return errNilRecord("Update")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	old, ok := m.records[r.ID]
	if !ok {
		return fmt.Errorf("%w: %s", ErrNotFound, r.ID)
	}
	if err := checkUpdate(old, r); err != nil {
		return err
	}
	k := keyOf(r)
	if id, ok := m.active[k]; ok && id != r.ID && !r.Status.Final() {
		return fmt.Errorf("%w: %s (%s)", ErrActive, id, m.records[id].Status)
	}
	r.Rev++
	m.records[r.ID] = r.Clone()
	switch {
	case r.Status.Final() && m.active[k] == r.ID:
		delete(m.active, k)
	case !r.Status.Final():
		m.active[k] = r.ID
	}
	return nil
}

func errNilRecord(call string) error {
	return fmt.Errorf("state: %s record is nil", call)
}

// conflicts reports whether existing record o keeps r from being created.
func conflicts(o, r *Record) bool {
	return !o.Status.Final() && o.Release.Service == r.Release.Service && o.Release.Environment == r.Release.Environment
}

func checkUpdate(old, r *Record) error {
	if r.Token < old.Token {
		return fmt.Errorf("%w: %s has token %d, update carries %d", ErrFenced, r.ID, old.Token, r.Token)
	}
	if r.Rev != old.Rev {
		return fmt.Errorf("%w: %s is at rev %d, update was based on %d", ErrConflict, r.ID, old.Rev, r.Rev)
	}
	return nil
}
