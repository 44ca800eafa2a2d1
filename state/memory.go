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
}

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
	for _, o := range m.records {
		if conflicts(o, r) {
			return fmt.Errorf("%w: %s (%s)", ErrActive, o.ID, o.Status)
		}
	}
	if m.records == nil {
		m.records = make(map[string]*Record)
	}
	r.Rev = 1
	m.records[r.ID] = r.Clone()
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
	r.Rev++
	m.records[r.ID] = r.Clone()
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
