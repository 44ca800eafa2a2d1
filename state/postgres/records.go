package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/deploykit/deploy/state"
)

// encode returns the head of r, without its history, as JSON with Rev set
// to rev, leaving r unchanged.
func encode(r *state.Record, rev int64) ([]byte, error) {
	c := *r
	c.Rev = rev
	c.Timeline, c.RollbackSteps = nil, nil
	b, err := json.Marshal(&c)
	if err != nil {
		return nil, fmt.Errorf("postgres: encoding record %s: %w", r.ID, err)
	}
	return b, nil
}

func check(call string, r *state.Record) error {
	if r == nil {
		return fmt.Errorf("postgres: %s record is nil", call)
	}
	if r.ID == "" {
		return fmt.Errorf("postgres: %s record ID is empty", call)
	}
	return nil
}

// Create implements [state.Store]. It inserts the record with Rev 1, and
// its history, in one statement, and sets r.Rev to 1.
func (s *Store) Create(ctx context.Context, r *state.Record) error {
	if err := check("Create", r); err != nil {
		return err
	}
	b, err := encode(r, 1)
	if err != nil {
		return err
	}
	x, err := newRows(r, 0, 0)
	if err != nil {
		return err
	}
	var n int
	err = s.creator(ctx).QueryRow(ctx, s.q.create, r.ID, r.Release.Service, r.Release.Environment, string(r.Status), r.Token, b,
		len(r.Timeline), len(r.RollbackSteps), x.rollback, x.seq, x.entry).Scan(&n)
	if err != nil {
		return s.writeError(ctx, "creating", r, err)
	}
	r.Rev = 1
	s.known.put(r.ID, stored{rev: 1, timeline: len(r.Timeline), rollback: len(r.RollbackSteps)}, r.Status.Final())
	return nil
}

// writeError maps a failed INSERT or UPDATE to the state errors.
func (s *Store) writeError(ctx context.Context, doing string, r *state.Record, err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "23505" { // unique_violation
		switch pe.ConstraintName {
		case s.table + "_pkey":
			return fmt.Errorf("%w: %s", state.ErrExists, r.ID)
		case s.table + "_active":
			// Name the release in the way, for the message only: it may have
			// finished since.
			var id, status string
			if s.pool.QueryRow(ctx, s.q.active, r.Release.Service, r.Release.Environment, r.ID).Scan(&id, &status) == nil {
				return fmt.Errorf("%w: %s (%s)", state.ErrActive, id, status)
			}
			return fmt.Errorf("%w: %s in %s", state.ErrActive, r.Release.Service, r.Release.Environment)
		}
	}
	return fmt.Errorf("postgres: %s record %s in %s: %w", doing, r.ID, s.table, err)
}

// aside returns the error for a record set aside.
func (s *Store) aside(id string, reason *string, at *time.Time) error {
	return &state.QuarantineError{ID: id, Reason: *reason, At: *at, Where: fmt.Sprintf("table %s, row %s", s.table, id)}
}

// Load implements [state.Store]: one query reads the head and its history.
// A record that does not decode gives [state.ErrCorrupt].
func (s *Store) Load(ctx context.Context, id string) (*state.Record, error) {
	var (
		rev                int64
		head, tl, rb       []byte
		timeline, rollback *int32
		reason             *string
		at                 *time.Time
	)
	err := s.pool.QueryRow(ctx, s.q.load, id).Scan(&rev, &head, &timeline, &rollback, &reason, &at, &tl, &rb)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("%w: %s", state.ErrNotFound, id)
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: loading record %s from %s: %w", id, s.table, err)
	}
	if at != nil {
		return nil, s.aside(id, reason, at)
	}
	var r state.Record
	if err := json.Unmarshal(head, &r); err != nil {
		return nil, fmt.Errorf("%w: %s in %s: %v", state.ErrCorrupt, id, s.table, err)
	}
	if r.ID != id {
		return nil, fmt.Errorf("%w: row %s in %s holds id %q", state.ErrCorrupt, id, s.table, r.ID)
	}
	r.Rev = rev
	st := stored{rev: rev, legacy: timeline == nil || rollback == nil}
	if st.legacy {
		// Written by an earlier version: the history is in the head.
		st.timeline, st.rollback = len(r.Timeline), len(r.RollbackSteps)
	} else {
		if len(r.Timeline) > 0 || len(r.RollbackSteps) > 0 {
			return nil, fmt.Errorf("%w: %s in %s: history both inside the record and in %s_hist", state.ErrCorrupt, id, s.table, s.table)
		}
		if err := json.Unmarshal(tl, &r.Timeline); err != nil {
			return nil, fmt.Errorf("%w: timeline of %s in %s_hist: %v", state.ErrCorrupt, id, s.table, err)
		}
		if err := json.Unmarshal(rb, &r.RollbackSteps); err != nil {
			return nil, fmt.Errorf("%w: rollback steps of %s in %s_hist: %v", state.ErrCorrupt, id, s.table, err)
		}
		st.timeline, st.rollback = int(*timeline), int(*rollback)
		if len(r.Timeline) != st.timeline || len(r.RollbackSteps) != st.rollback {
			return nil, fmt.Errorf("%w: %s in %s counts %d timeline entries and %d rollback steps, %s_hist holds %d and %d",
				state.ErrCorrupt, id, s.table, st.timeline, st.rollback, s.table, len(r.Timeline), len(r.RollbackSteps))
		}
	}
	s.known.put(id, st, r.Status.Final())
	return &r, nil
}

// Update implements [state.Store] with one statement; see the package
// documentation.
func (s *Store) Update(ctx context.Context, r *state.Record) error {
	if err := check("Update", r); err != nil {
		return err
	}
	b, err := encode(r, r.Rev+1)
	if err != nil {
		return err
	}
	st, ok := s.known.get(r.ID, r.Rev)
	for attempt := 0; ; attempt++ {
		if !ok {
			// Ask the database what is stored, and refuse here what the
			// update statement would refuse.
			if st, err = s.current(ctx, r); err != nil {
				return err
			}
		}
		if err := state.CheckHistory(r, st.timeline, st.rollback); err != nil {
			if ok {
				// Remembered lengths: ErrFenced and ErrConflict come
				// first, and only the database knows them.
				ok = false
				continue
			}
			return err
		}
		t, rb, wantT, wantR := st.base()
		x, err := newRows(r, t, rb)
		if err != nil {
			return err
		}
		var n int
		err = s.pool.QueryRow(ctx, s.q.update, r.ID, r.Rev, r.Token, r.Release.Service, r.Release.Environment, string(r.Status), b,
			len(r.Timeline), len(r.RollbackSteps), wantT, wantR, x.rollback, x.seq, x.entry).Scan(&n)
		if err != nil {
			return s.writeError(ctx, "updating", r, err)
		}
		if n == 1 {
			r.Rev++
			s.known.put(r.ID, stored{rev: r.Rev, timeline: len(r.Timeline), rollback: len(r.RollbackSteps)}, r.Status.Final())
			return nil
		}
		// Nothing changed. The next lookup says why; if it finds nothing
		// wrong, the lengths this store remembered were wrong: once more
		// with the database's.
		if ok = false; attempt > 0 {
			return fmt.Errorf("postgres: updating record %s in %s: the stored history changed twice under the update", r.ID, s.table)
		}
	}
}

// current reads what Update needs to know of the stored record r, and
// returns the error Update must give when r may not be written. The row
// may move on after the query; any answer was true at some point.
func (s *Store) current(ctx context.Context, r *state.Record) (stored, error) {
	var (
		rev, token         int64
		timeline, rollback *int32
		reason             *string
		at                 *time.Time
		inT, inR           int
	)
	err := s.pool.QueryRow(ctx, s.q.current, r.ID).Scan(&rev, &token, &timeline, &rollback, &reason, &at, &inT, &inR)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return stored{}, fmt.Errorf("%w: %s", state.ErrNotFound, r.ID)
	case err != nil:
		return stored{}, fmt.Errorf("postgres: updating record %s in %s: %w", r.ID, s.table, err)
	case at != nil:
		return stored{}, s.aside(r.ID, reason, at)
	case token > r.Token:
		return stored{}, fmt.Errorf("%w: %s has token %d, update carries %d", state.ErrFenced, r.ID, token, r.Token)
	case rev != r.Rev:
		return stored{}, fmt.Errorf("%w: %s is at rev %d, update was based on %d", state.ErrConflict, r.ID, rev, r.Rev)
	case timeline == nil || rollback == nil:
		return stored{rev: rev, timeline: inT, rollback: inR, legacy: true}, nil
	}
	return stored{rev: rev, timeline: int(*timeline), rollback: int(*rollback)}, nil
}

// Quarantine implements [state.Quarantiner]: it marks the row set aside
// with the reason and the database's time, and takes it out of the unique
// index of active releases. The row and its history stay.
func (s *Store) Quarantine(ctx context.Context, id, reason string) error {
	if err := state.CheckQuarantine(id, reason); err != nil {
		return err
	}
	tag, err := s.pool.Exec(ctx, s.q.quarantine, id, reason)
	if err != nil {
		return fmt.Errorf("postgres: setting record %s in %s aside: %w", id, s.table, err)
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	_, err = s.current(ctx, &state.Record{ID: id, Rev: -1, Token: 1 << 62})
	var qe *state.QuarantineError
	if errors.Is(err, state.ErrNotFound) || errors.As(err, &qe) {
		return err
	}
	return fmt.Errorf("postgres: setting record %s in %s aside: the row changed under the update", id, s.table)
}
