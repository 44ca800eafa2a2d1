package deploytest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/deploykit/deploy/state"
)

// listIDs returns the ids of a page's releases.
func listIDs(p state.Page) []string {
	ids := make([]string, len(p.Releases))
	for i, s := range p.Releases {
		ids[i] = s.ID
	}
	return ids
}

// finish turns r final with status st.
func finish(ctx context.Context, s state.Store, r *state.Record, st state.Status) error {
	r.Status, r.Phase = st, state.PhaseComplete
	if err := s.Update(ctx, r); err != nil {
		return fmt.Errorf("Update of %s to %s: %w", r.ID, st, err)
	}
	return nil
}

// checkList: filters, and each release's summary.
func checkList(ctx context.Context, s state.Store) error {
	l, ok := s.(state.Lister)
	if !ok {
		return nil
	}
	next := time.Date(2025, 3, 4, 6, 0, 0, 0, time.UTC)
	a2 := newRecord("a2", "checkout", "staging")
	b2 := newRecord("b2", "search", "production")
	a1 := newRecord("a1", "checkout", "production")
	b1 := newRecord("b1", "search", "production")
	a1.Next, a1.LeaseUntil, a1.Phase = next, next.Add(time.Minute), state.PhaseDeploy
	a1.Waiting = &state.Wait{Kind: state.WaitApproval, Stage: "production", Step: 1, StepName: "5%", Since: next.Add(-time.Minute), Approvers: []string{"alice"}}
	for _, r := range []*state.Record{a2, b2} {
		if err := s.Create(ctx, r); err != nil {
			return fmt.Errorf("Create %s: %w", r.ID, err)
		}
	}
	if err := finish(ctx, s, a2, state.Succeeded); err != nil {
		return err
	}
	if err := finish(ctx, s, b2, state.RolledBack); err != nil {
		return err
	}
	for _, r := range []*state.Record{a1, b1} {
		if err := s.Create(ctx, r); err != nil {
			return fmt.Errorf("Create %s: %w", r.ID, err)
		}
	}
	cases := []struct {
		q    state.Query
		want []string
	}{
		{state.Query{}, []string{"a1", "a2", "b1", "b2"}},
		{state.Query{ActiveOnly: true}, []string{"a1", "b1"}},
		{state.Query{Service: "checkout"}, []string{"a1", "a2"}},
		{state.Query{Environment: "staging"}, []string{"a2"}},
		{state.Query{Statuses: []state.Status{state.RolledBack, state.Succeeded}}, []string{"a2", "b2"}},
		{state.Query{Service: "search", ActiveOnly: true}, []string{"b1"}},
		{state.Query{Service: "search", Environment: "staging"}, nil},
		{state.Query{After: "a2"}, []string{"b1", "b2"}},
		{state.Query{After: "a", Limit: 1}, []string{"a1"}},
	}
	for _, c := range cases {
		p, err := l.List(ctx, c.q)
		if err != nil {
			return fmt.Errorf("List(%+v): %w", c.q, err)
		}
		if got := listIDs(p); !slices.Equal(got, c.want) {
			return fmt.Errorf("List(%+v) = %v, want %v", c.q, got, c.want)
		}
	}
	p, err := l.List(ctx, state.Query{Service: "checkout", Environment: "production"})
	if err != nil {
		return fmt.Errorf("List: %w", err)
	}
	if len(p.Releases) != 1 || p.Next != "" {
		return fmt.Errorf("List of checkout in production = %+v, want a1 alone and no next page", p)
	}
	if err := sameSummary(p.Releases[0], a1); err != nil {
		return err
	}
	// A save moves Next on and ends the wait: the listing shows it.
	a1.Next, a1.Waiting = next.Add(time.Hour), nil
	if err := s.Update(ctx, a1); err != nil {
		return fmt.Errorf("Update a1: %w", err)
	}
	if p, err = l.List(ctx, state.Query{Service: "checkout", ActiveOnly: true}); err != nil {
		return fmt.Errorf("List: %w", err)
	}
	if len(p.Releases) != 1 {
		return fmt.Errorf("List of active checkout = %v, want [a1]", listIDs(p))
	}
	return sameSummary(p.Releases[0], a1)
}

// sameSummary compares a listed summary with the record it summarises.
func sameSummary(got state.Summary, r *state.Record) error {
	want := state.SummaryOf(r)
	var bad []string
	str := func(name, g, w string) {
		if g != w {
			bad = append(bad, fmt.Sprintf("%s %q, want %q", name, g, w))
		}
	}
	tm := func(name string, g, w time.Time) {
		if !g.Equal(w) {
			bad = append(bad, fmt.Sprintf("%s %v, want %v", name, g, w))
		}
	}
	str("ID", got.ID, want.ID)
	str("Service", got.Service, want.Service)
	str("Environment", got.Environment, want.Environment)
	str("Version", got.Version, want.Version)
	str("Status", string(got.Status), string(want.Status))
	str("Phase", string(got.Phase), string(want.Phase))
	str("Holder", got.Holder, want.Holder)
	str("Problem", got.Problem, "")
	tm("Next", got.Next, want.Next)
	tm("LeaseUntil", got.LeaseUntil, want.LeaseUntil)
	tm("Created", got.Created, want.Created)
	tm("Updated", got.Updated, want.Updated)
	switch w, g := want.Waiting, got.Waiting; {
	case (w == nil) != (g == nil):
		bad = append(bad, fmt.Sprintf("Waiting %+v, want %+v", g, w))
	case w != nil && (w.Kind != g.Kind || w.Stage != g.Stage || w.Step != g.Step || w.StepName != g.StepName || !w.Since.Equal(g.Since) ||
		!w.Until.Equal(g.Until) || !slices.Equal(w.Approvers, g.Approvers)):
		bad = append(bad, fmt.Sprintf("Waiting %+v, want %+v", *g, *w))
	}
	if len(bad) > 0 {
		return fmt.Errorf("List's summary of %s: %s", r.ID, strings.Join(bad, "; "))
	}
	return nil
}

// checkListPaging: a cursor stays stable while records are created,
// finished and set aside between pages.
func checkListPaging(ctx context.Context, s state.Store) error {
	l, ok := s.(state.Lister)
	if !ok {
		return nil
	}
	recs := map[string]*state.Record{}
	create := func(id string) error {
		r := newRecord(id, "svc-"+id, "production")
		recs[id] = r
		if err := s.Create(ctx, r); err != nil {
			return fmt.Errorf("Create %s: %w", id, err)
		}
		return nil
	}
	for i := range 7 {
		if err := create(fmt.Sprintf("p-%02d", i)); err != nil {
			return err
		}
	}
	var got []string
	q := state.Query{Limit: 3}
	for page := 0; ; page++ {
		if page > 10 {
			return fmt.Errorf("List pages never end: %v", got)
		}
		p, err := l.List(ctx, q)
		if err != nil {
			return fmt.Errorf("List(%+v): %w", q, err)
		}
		if len(p.Releases) > q.Limit {
			return fmt.Errorf("List(%+v) returned %d releases", q, len(p.Releases))
		}
		got = append(got, listIDs(p)...)
		if page == 0 {
			// Between pages: one record before the cursor and one after
			// it are created, one finishes, one is set aside.
			if p.Next != "p-02" {
				return fmt.Errorf("List(%+v).Next = %q, want p-02 (the last id of the page)", q, p.Next)
			}
			if err := create("p-01a"); err != nil {
				return err
			}
			if err := create("p-09"); err != nil {
				return err
			}
			if err := finish(ctx, s, recs["p-04"], state.Failed); err != nil {
				return err
			}
			if qs, ok := s.(state.Quarantiner); ok {
				if err := qs.Quarantine(ctx, "p-06", "listing check"); err != nil {
					return fmt.Errorf("Quarantine p-06: %w", err)
				}
			}
		}
		if p.Next == "" {
			break
		}
		q.After = p.Next
	}
	want := []string{"p-00", "p-01", "p-02", "p-03", "p-04", "p-05", "p-06", "p-09"}
	if _, ok := s.(state.Quarantiner); ok {
		want = slices.DeleteFunc(want, func(id string) bool { return id == "p-06" })
	}
	if !slices.Equal(got, want) {
		return fmt.Errorf("List in pages of 3 = %v, want %v (each record once, in id order, none set aside)", got, want)
	}
	// A page that ends exactly at the end of the listing says so.
	p, err := l.List(ctx, state.Query{After: "p-04", Limit: 2})
	if err != nil {
		return fmt.Errorf("List: %w", err)
	}
	if p.Next != "" && len(want) == 7 {
		return fmt.Errorf("List after p-04, limit 2 = %v with Next %q, want no next page", listIDs(p), p.Next)
	}
	return nil
}

// checkListQuery: a query a store cannot answer is refused with ErrQuery.
func checkListQuery(ctx context.Context, s state.Store) error {
	l, ok := s.(state.Lister)
	if !ok {
		return nil
	}
	for _, q := range []state.Query{
		{Limit: -1},
		{Limit: state.MaxLimit + 1},
		{Statuses: []state.Status{state.Running, "nope"}},
	} {
		_, err := l.List(ctx, q)
		if !errors.Is(err, state.ErrQuery) {
			return fmt.Errorf("List(%+v) = %v, want an error that Is state.ErrQuery", q, err)
		}
	}
	if _, err := l.List(ctx, state.Query{Limit: state.MaxLimit}); err != nil {
		return fmt.Errorf("List with Limit MaxLimit: %w", err)
	}
	return nil
}
