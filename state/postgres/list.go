package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/deploykit/deploy/state"
)

var _ state.Lister = (*Store)(nil)

// listQuery selects the summaries of a Query from table t, in the order of
// the primary key, one more than the page so the store knows whether a next
// page exists. The fields not in columns of their own are read from the
// jsonb head; a head whose fields do not decode as text still lists (its
// times as NULL), since the columns the filters use are the row's own.
func listQuery(t string) string {
	return fmt.Sprintf(`SELECT id, service, environment, status,
	coalesce(record->'release'->>'version', ''), coalesce(record->>'phase', ''), coalesce(record->>'holder', ''),
	record->>'next', record->>'leaseUntil', record->>'created', record->>'updated', record->'waiting'
FROM %s
WHERE aside_at IS NULL AND id > $1
	AND ($2 = '' OR service = $2) AND ($3 = '' OR environment = $3)
	AND (cardinality($4::text[]) = 0 OR status = ANY($4::text[]))
	AND (NOT $5 OR status IN ('running', ''))
ORDER BY id
LIMIT $6`, t)
}

// List implements [state.Lister] with one query on the table, ordered by
// its primary key. ActiveOnly uses the partial index of active releases.
func (s *Store) List(ctx context.Context, q state.Query) (state.Page, error) {
	q, err := q.Check()
	if err != nil {
		return state.Page{}, err
	}
	statuses := make([]string, len(q.Statuses))
	for i, st := range q.Statuses {
		statuses[i] = string(st)
	}
	rows, err := s.pool.Query(ctx, s.q.list, q.After, q.Service, q.Environment, statuses, q.ActiveOnly, q.Limit+1)
	if err != nil {
		return state.Page{}, fmt.Errorf("postgres: listing %s: %w", s.table, err)
	}
	defer rows.Close()
	var page state.Page
	for rows.Next() {
		var (
			sum                           state.Summary
			status, phase                 string
			next, lease, created, updated *string
			waiting                       []byte
		)
		if err := rows.Scan(&sum.ID, &sum.Service, &sum.Environment, &status, &sum.Version, &phase, &sum.Holder,
			&next, &lease, &created, &updated, &waiting); err != nil {
			return state.Page{}, fmt.Errorf("postgres: listing %s: %w", s.table, err)
		}
		sum.Status, sum.Phase = state.Status(status), state.Phase(phase)
		var bad []string
		for _, f := range []struct {
			name string
			s    *string
			t    *time.Time
		}{{"next", next, &sum.Next}, {"leaseUntil", lease, &sum.LeaseUntil}, {"created", created, &sum.Created}, {"updated", updated, &sum.Updated}} {
			if f.s == nil {
				continue
			}
			t, err := time.Parse(time.RFC3339Nano, *f.s)
			if err != nil {
				bad = append(bad, fmt.Sprintf("%s %q: %v", f.name, *f.s, err))
			}
			*f.t = t
		}
		if len(waiting) > 0 && string(waiting) != "null" {
			sum.Waiting = new(state.Wait)
			if err := json.Unmarshal(waiting, sum.Waiting); err != nil {
				bad = append(bad, fmt.Sprintf("waiting: %v", err))
				sum.Waiting = nil
			}
		}
		if len(bad) > 0 {
			sum.Problem = fmt.Sprintf("%v: %s in %s: %v", state.ErrCorrupt, sum.ID, s.table, bad)
		}
		if len(page.Releases) == q.Limit {
			page.Next = page.Releases[len(page.Releases)-1].ID
			break
		}
		page.Releases = append(page.Releases, sum)
	}
	if err := rows.Err(); err != nil {
		return state.Page{}, fmt.Errorf("postgres: listing %s: %w", s.table, err)
	}
	return page, nil
}
