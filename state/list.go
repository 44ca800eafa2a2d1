package state

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// DefaultLimit is the page size of a [Query] whose Limit is 0; MaxLimit is
// the largest Limit a store accepts.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
)

// ErrQuery: a [Query] a store refuses (a negative or too large Limit, an
// unknown status). The error names the field and the value.
var ErrQuery = errors.New("state: invalid query")

var _ Lister = (*Memory)(nil)

// Lister is implemented by stores that can list their releases: [Memory],
// [File] and state/postgres do. A scheduler finds the releases to drive
// with it (ActiveOnly, with the time each is next due), a page shows them.
//
// List returns the releases that match q in the order of their ids,
// at most q.Limit of them, starting after the id q.After. Page.Next is the
// cursor for the next page (the last id returned), "" once there is no
// more. The cursor is stable: a page starts after the id it names even if
// that record changed, finished or was set aside meanwhile, so paging
// through a store that changes returns every record that matched all along
// exactly once; a record created meanwhile is returned if its id sorts after
// the cursor. Records set aside ([Quarantiner]) are not listed. A record
// that cannot be read is listed with its ID and Problem set, never skipped,
// when no filter but ActiveOnly is given (it may be active).
type Lister interface {
	List(ctx context.Context, q Query) (Page, error)
}

// Query selects releases for [Lister.List]. Zero fields select everything.
type Query struct {
	// Service and Environment, when not empty, select releases of that
	// service and environment.
	Service, Environment string
	// Statuses, when not empty, select releases in one of them.
	Statuses []Status
	// ActiveOnly selects releases whose status is not final.
	ActiveOnly bool
	// After is the cursor: Page.Next of the previous page, "" for the first.
	After string
	// Limit is the page size: DefaultLimit when 0, at most MaxLimit.
	Limit int
}

// Page is one page of a listing.
type Page struct {
	Releases []Summary
	// Next is the cursor for Query.After, "" at the end of the listing.
	Next string
}

// Summary is what a listing says of a release: enough to show it, or to
// decide whether to drive it, without loading its history.
type Summary struct {
	ID          string
	Service     string
	Environment string
	Version     string
	Status      Status
	Phase       Phase
	// Next is when the runner that saved the record last said its next
	// action is due (Record.Next): what Reconcile returned. Zero for a
	// record no runner has reconciled yet (due now).
	Next time.Time
	// Holder and LeaseUntil are the record's lease: a release whose lease
	// ran out is free for any runner to take.
	Holder     string
	LeaseUntil time.Time
	Created    time.Time
	Updated    time.Time
	// Waiting is what the release waits for (Record.Waiting): an
	// approval, a pause, a decision, a Retry; nil while it waits for
	// nothing but time.
	Waiting *Wait `json:",omitempty"`
	// Problem is set, to the error, for a record that cannot be read; the
	// fields above are then what could be read of it (at least the ID).
	Problem string `json:",omitempty"`
}

// SummaryOf returns the summary of r.
func SummaryOf(r *Record) Summary {
	return Summary{
		ID: r.ID, Service: r.Release.Service, Environment: r.Release.Environment, Version: r.Release.Version,
		Status: r.Status, Phase: r.Phase, Next: r.Next, Holder: r.Holder, LeaseUntil: r.LeaseUntil,
		Created: r.Created, Updated: r.Updated, Waiting: r.Waiting.Clone(),
	}
}

// knownStatuses are the statuses a Query may name.
var knownStatuses = []Status{Running, Succeeded, RolledBack, Failed, Blocked, Aborted, RollbackFailed, RollbackUnverified}

// Check returns an error matching [ErrQuery] that names the field and the
// value when q cannot be answered, and q with its Limit defaulted.
func (q Query) Check() (Query, error) {
	switch {
	case q.Limit < 0 || q.Limit > MaxLimit:
		return q, fmt.Errorf("%w: Query.Limit %d is not between 0 and %d", ErrQuery, q.Limit, MaxLimit)
	case q.Limit == 0:
		q.Limit = DefaultLimit
	}
	for i, s := range q.Statuses {
		if !slices.Contains(knownStatuses, s) {
			return q, fmt.Errorf("%w: Query.Statuses[%d] %q is not a status (%v)", ErrQuery, i, s, knownStatuses)
		}
	}
	return q, nil
}

// Match reports whether a release of that summary is selected by q's
// filters (not by its cursor or limit).
func (q Query) Match(s Summary) bool {
	if s.Problem != "" {
		// Unreadable: it may be anything, so it is shown unless a filter
		// that needs its fields is given.
		return q.Service == "" && q.Environment == "" && len(q.Statuses) == 0
	}
	return (q.Service == "" || s.Service == q.Service) &&
		(q.Environment == "" || s.Environment == q.Environment) &&
		(len(q.Statuses) == 0 || slices.Contains(q.Statuses, s.Status)) &&
		(!q.ActiveOnly || !s.Status.Final())
}

// pageOf sorts all (the summaries that match q), and returns the page of
// q: the first q.Limit after q.After. q has been checked.
func pageOf(all []Summary, q Query) Page {
	slices.SortFunc(all, func(a, b Summary) int { return cmp.Compare(a.ID, b.ID) })
	i, _ := slices.BinarySearchFunc(all, q.After, func(s Summary, id string) int { return cmp.Compare(s.ID, id) })
	if i < len(all) && all[i].ID == q.After {
		i++
	}
	all = all[i:]
	if len(all) <= q.Limit {
		return Page{Releases: all}
	}
	all = all[:q.Limit:q.Limit]
	return Page{Releases: all, Next: all[len(all)-1].ID}
}

// List implements [Lister].
func (m *Memory) List(ctx context.Context, q Query) (Page, error) {
	q, err := q.Check()
	if err != nil {
		return Page{}, err
	}
	m.mu.Lock()
	var all []Summary
	for id, r := range m.records {
		if id <= q.After && q.After != "" {
			continue
		}
		if s := SummaryOf(r); q.Match(s) {
			all = append(all, s)
		}
	}
	m.mu.Unlock()
	return pageOf(all, q), nil
}
