package postgres

import (
	"encoding/json"
	"fmt"
	"sync"

	"github.com/deploykit/deploy/state"
)

// stored are the lengths of a record's history at one rev. legacy marks a
// record whose history is still inside its jsonb (written by an earlier
// version): none of it is in rows yet.
type stored struct {
	rev                int64
	timeline, rollback int
	legacy             bool
}

// base returns the lengths the new rows follow, and the values the update
// statement compares with the stored timeline_n and rollback_n.
func (st stored) base() (timeline, rollback, wantT, wantR int) {
	if st.legacy {
		return 0, 0, -1, -1
	}
	return st.timeline, st.rollback, st.timeline, st.rollback
}

// lengths remembers, for each record this store loaded, created or
// updated and that is not final, the lengths of its history at its latest
// known rev. An entry is a fact about that rev, which never changes; it
// only saves a query.
type lengths struct {
	mu sync.Mutex
	m  map[string]stored
}

func (l *lengths) get(id string, rev int64) (stored, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	st, ok := l.m[id]
	return st, ok && st.rev == rev
}

func (l *lengths) put(id string, st stored, final bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if final {
		delete(l.m, id)
		return
	}
	if l.m == nil {
		l.m = make(map[string]stored)
	}
	l.m[id] = st
}

// rows are history entries as the three parallel arrays the statements
// unnest.
type rows struct {
	rollback []bool
	seq      []int32
	entry    []string
}

// newRows encodes the entries of r after timeline timeline entries and
// rollback rollback steps.
func newRows(r *state.Record, timeline, rollback int) (rows, error) {
	n := len(r.Timeline) - timeline + len(r.RollbackSteps) - rollback
	x := rows{rollback: make([]bool, 0, n), seq: make([]int32, 0, n), entry: make([]string, 0, n)}
	add := func(entries []state.Entry, from int, rb bool) error {
		for i, e := range entries[from:] {
			b, err := json.Marshal(e)
			if err != nil {
				return fmt.Errorf("postgres: encoding the history of %s: %w", r.ID, err)
			}
			x.rollback = append(x.rollback, rb)
			x.seq = append(x.seq, int32(from+i))
			x.entry = append(x.entry, string(b))
		}
		return nil
	}
	if err := add(r.Timeline, timeline, false); err != nil {
		return rows{}, err
	}
	if err := add(r.RollbackSteps, rollback, true); err != nil {
		return rows{}, err
	}
	return x, nil
}
