package state

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Memory is a Store that keeps records in memory, for tests and for programs
// whose releases need not survive the process. The zero value is ready.
//
// Load and Update copy a record's head (every field but the history) and
// share its history: Update keeps the caller's Timeline and RollbackSteps
// clipped to their length, and Load hands them out clipped again, so both
// cost the same at any length of history. See "History is append-only" in
// the package documentation.
type Memory struct {
	mu      sync.Mutex
	records map[string]*Record
	active  map[activeKey]string // the non-final record of each service and environment
	aside   map[string]*QuarantineError
}

type activeKey struct{ service, environment string }

func keyOf(r *Record) activeKey { return activeKey{r.Release.Service, r.Release.Environment} }

var (
	_ Store       = (*Memory)(nil)
	_ Quarantiner = (*Memory)(nil)
)

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
	if q, ok := m.aside[r.ID]; ok {
		return fmt.Errorf("%w: %s (set aside: %s)", ErrExists, r.ID, q.Reason)
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
	m.records[r.ID] = r.shareHistory()
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
		return nil, m.missing(id)
	}
	return r.shareHistory(), nil
}

// missing is the error for a record id that is not in m.records.
func (m *Memory) missing(id string) error {
	if q, ok := m.aside[id]; ok {
		return q
	}
	return fmt.Errorf("%w: %s", ErrNotFound, id)
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
		return m.missing(r.ID)
	}
	if err := checkUpdate(old, r); err != nil {
		return err
	}
	if err := CheckHistory(r, len(old.Timeline), len(old.RollbackSteps)); err != nil {
		return err
	}
	k := keyOf(r)
	if id, ok := m.active[k]; ok && id != r.ID && !r.Status.Final() {
		return fmt.Errorf("%w: %s (%s)", ErrActive, id, m.records[id].Status)
	}
	r.Rev++
	ko := keyOf(old)    // before the copy: the key it was active under
	r.copyHeadInto(old) // old is the store's own: Load hands out copies
	if ko != k && m.active[ko] == r.ID {
		delete(m.active, ko) // the record moved to another service or environment
	}
	switch {
	case r.Status.Final() && m.active[k] == r.ID:
		delete(m.active, k)
	case !r.Status.Final() && m.active[k] != r.ID:
		m.active[k] = r.ID
	}
	return nil
}

// Quarantine implements [Quarantiner]: the record is dropped from the store
// and its id answers with a [*QuarantineError] from then on.
func (m *Memory) Quarantine(ctx context.Context, id, reason string) error {
	if err := checkReason(id, reason); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.records[id]
	if !ok {
		return m.missing(id)
	}
	if k := keyOf(r); m.active[k] == id {
		delete(m.active, k)
	}
	delete(m.records, id)
	if m.aside == nil {
		m.aside = make(map[string]*QuarantineError)
	}
	m.aside[id] = &QuarantineError{ID: id, Reason: reason, At: time.Now()}
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
