package deploytest

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/deploykit/deploy/state"
)

// entry returns the i-th entry of a test timeline.
func entry(i int, detail string) state.Entry {
	return state.Entry{At: time.Date(2025, 3, 4, 6, 0, i, 0, time.UTC), Phase: "deploy", Kind: "step", Name: fmt.Sprint(i), Detail: detail}
}

// checkUpdateReactivate: a final record brought back to running while
// another release of its service and environment is active is refused
// with ErrActive, and allowed once that one is final; the record brought
// back then counts as active.
func checkUpdateReactivate(ctx context.Context, s state.Store) error {
	old := newRecord("rel-1", "checkout", "production")
	if err := s.Create(ctx, old); err != nil {
		return fmt.Errorf("Create: %w", err)
	}
	old.Status = state.RolledBack
	if err := s.Update(ctx, old); err != nil {
		return fmt.Errorf("Update to rolled back: %w", err)
	}
	cur := newRecord("rel-2", "checkout", "production")
	if err := s.Create(ctx, cur); err != nil {
		return fmt.Errorf("Create after rel-1 rolled back: %w", err)
	}
	back := old.Clone()
	back.Status = state.Running
	if err := wantErr("Update of rolled-back rel-1 to running while rel-2 runs", s.Update(ctx, back), state.ErrActive); err != nil {
		return err
	}
	if back.Rev != old.Rev {
		return fmt.Errorf("after a refused Update, r.Rev = %d, want it unchanged (%d)", back.Rev, old.Rev)
	}
	if err := wantStored(ctx, s, old, "after the refused Update"); err != nil {
		return err
	}
	cur.Status = state.Succeeded
	if err := s.Update(ctx, cur); err != nil {
		return fmt.Errorf("Update of rel-2 to succeeded: %w", err)
	}
	if err := s.Update(ctx, back); err != nil {
		return fmt.Errorf("Update of rel-1 back to running once rel-2 succeeded: %w", err)
	}
	third := newRecord("rel-3", "checkout", "production")
	return wantErr("Create while rel-1 runs again", s.Create(ctx, third), state.ErrActive)
}

// checkUpdateMoves: a running release moved to another service frees its
// old service (a new release of it may start) and is the active release
// of the new one.
func checkUpdateMoves(ctx context.Context, s state.Store) error {
	r := newRecord("rel-1", "checkout", "production")
	if err := s.Create(ctx, r); err != nil {
		return fmt.Errorf("Create: %w", err)
	}
	r.Release.Service = "checkout-v2"
	if err := s.Update(ctx, r); err != nil {
		return fmt.Errorf("Update moving rel-1 to checkout-v2: %w", err)
	}
	if err := s.Create(ctx, newRecord("rel-2", "checkout", "production")); err != nil {
		return fmt.Errorf("Create for checkout, which rel-1 left: %w", err)
	}
	return wantErr("Create for checkout-v2, where rel-1 runs", s.Create(ctx, newRecord("rel-3", "checkout-v2", "production")), state.ErrActive)
}

// checkHistoryAppendOnly: an Update that shortens Timeline or RollbackSteps
// is refused with ErrHistory and stores nothing; a stale one is still
// ErrConflict.
func checkHistoryAppendOnly(ctx context.Context, s state.Store) error {
	r := FullRecord("rel-1")
	r.Timeline = append(r.Timeline, entry(1, "one"), entry(2, "two"))
	r.RollbackSteps = append(r.RollbackSteps, entry(3, "three"))
	if err := s.Create(ctx, r); err != nil {
		return fmt.Errorf("Create: %w", err)
	}
	for _, c := range []struct {
		name   string
		change func(*state.Record)
	}{
		{"a Timeline one entry shorter", func(u *state.Record) { u.Timeline = u.Timeline[:len(u.Timeline)-1] }},
		{"no Timeline", func(u *state.Record) { u.Timeline = nil }},
		{"RollbackSteps one entry shorter", func(u *state.Record) { u.RollbackSteps = u.RollbackSteps[:1] }},
		{"a Timeline shorter by one and one entry appended to RollbackSteps", func(u *state.Record) {
			u.Timeline = u.Timeline[:1]
			u.RollbackSteps = append(u.RollbackSteps, entry(9, "nine"))
		}},
	} {
		u, err := s.Load(ctx, "rel-1")
		if err != nil {
			return fmt.Errorf("Load: %w", err)
		}
		c.change(u)
		u.Phase = "rollback"
		if err := wantErr("Update with "+c.name, s.Update(ctx, u), state.ErrHistory); err != nil {
			return err
		}
		if u.Rev != 1 {
			return fmt.Errorf("after a refused Update, r.Rev = %d, want it unchanged (1)", u.Rev)
		}
	}
	if err := wantStored(ctx, s, r, "after refused Updates"); err != nil {
		return err
	}
	r.Phase = "deploy"
	if err := s.Update(ctx, r); err != nil {
		return fmt.Errorf("Update: %w", err)
	}
	stale := r.Clone()
	stale.Rev = 1
	stale.Timeline = nil
	return wantErr("Update with a stale Rev and no Timeline", s.Update(ctx, stale), state.ErrConflict)
}

// checkHistoryAppends: a holder that keeps its record and appends to both
// histories over many Updates, some appending nothing, finds every entry
// in order, and so does a holder that reloads before each Update.
func checkHistoryAppends(ctx context.Context, s state.Store) error {
	r := newRecord("rel-1", "checkout", "production")
	r.Timeline = nil
	if err := s.Create(ctx, r); err != nil {
		return fmt.Errorf("Create: %w", err)
	}
	for i := range 40 {
		for range i % 3 {
			r.Timeline = append(r.Timeline, entry(len(r.Timeline), fmt.Sprint("kept ", i)))
		}
		if i%5 == 4 {
			r.RollbackSteps = append(r.RollbackSteps, entry(len(r.RollbackSteps), fmt.Sprint("kept ", i)))
		}
		r.Observed = i
		if err := s.Update(ctx, r); err != nil {
			return fmt.Errorf("Update %d of the holder that keeps its record: %w", i, err)
		}
	}
	if err := wantStored(ctx, s, r, "after 40 Updates by a holder that keeps its record"); err != nil {
		return err
	}
	for i := range 10 {
		got, err := s.Load(ctx, "rel-1")
		if err != nil {
			return fmt.Errorf("Load: %w", err)
		}
		got.Timeline = append(got.Timeline, entry(len(got.Timeline), fmt.Sprint("reloaded ", i)))
		if i%2 == 0 {
			got.RollbackSteps = append(got.RollbackSteps, entry(len(got.RollbackSteps), fmt.Sprint("reloaded ", i)))
		}
		if err := s.Update(ctx, got); err != nil {
			return fmt.Errorf("Update %d of a holder that reloads: %w", i, err)
		}
		r = got
	}
	return wantStored(ctx, s, r, "after 10 Updates by a holder that reloads")
}

// checkHistoryShared: the store shares history with callers only as
// clipped slices. A caller whose Timeline has room to grow saves it; then
// the caller and two loaded copies each append an entry of their own. None
// sees another's entry, and the store holds none of them.
func checkHistoryShared(ctx context.Context, s state.Store) error {
	r := newRecord("rel-1", "checkout", "production")
	r.Timeline = make([]state.Entry, 1, 64)
	r.Timeline[0] = entry(0, "created")
	r.RollbackSteps = make([]state.Entry, 0, 64)
	if err := s.Create(ctx, r); err != nil {
		return fmt.Errorf("Create: %w", err)
	}
	r.Timeline = append(r.Timeline, entry(1, "saved"))
	r.RollbackSteps = append(r.RollbackSteps, entry(1, "saved"))
	if err := s.Update(ctx, r); err != nil {
		return fmt.Errorf("Update: %w", err)
	}
	want := r.Clone()
	a, err := s.Load(ctx, "rel-1")
	if err != nil {
		return fmt.Errorf("Load: %w", err)
	}
	b, err := s.Load(ctx, "rel-1")
	if err != nil {
		return fmt.Errorf("Load: %w", err)
	}
	holders := map[string]*state.Record{"the caller": r, "loaded copy a": a, "loaded copy b": b}
	for name, h := range holders {
		h.Timeline = append(h.Timeline, entry(2, name))
		h.RollbackSteps = append(h.RollbackSteps, entry(2, name))
	}
	for name, h := range holders {
		if got := h.Timeline[2].Detail; got != name {
			return fmt.Errorf("%s appended to its Timeline and reads back %q: another holder's append wrote over it", name, got)
		}
		if got := h.RollbackSteps[1].Detail; got != name {
			return fmt.Errorf("%s appended to its RollbackSteps and reads back %q: another holder's append wrote over it", name, got)
		}
	}
	return wantStored(ctx, s, want, "after holders appended without saving")
}

// checkQuarantine: a record set aside no longer counts as active, keeps its
// id, and answers Load, Update and Quarantine with a *state.QuarantineError
// that gives the reason.
func checkQuarantine(ctx context.Context, s state.Store) error {
	q, ok := s.(state.Quarantiner)
	if !ok {
		return nil
	}
	r := newRecord("rel-1", "checkout", "production")
	if err := s.Create(ctx, r); err != nil {
		return fmt.Errorf("Create: %w", err)
	}
	if err := q.Quarantine(ctx, "rel-1", ""); err == nil {
		return errors.New("Quarantine without a reason succeeded, want an error")
	}
	if err := wantErr(`Quarantine("missing")`, q.Quarantine(ctx, "missing", "gone"), state.ErrNotFound); err != nil {
		return err
	}
	const reason = "holder's machine is gone; on-call set it aside"
	if err := q.Quarantine(ctx, "rel-1", reason); err != nil {
		return fmt.Errorf("Quarantine: %w", err)
	}
	wantAside := func(call string, err error) error {
		if err := wantErr(call, err, state.ErrQuarantined); err != nil {
			return err
		}
		var qe *state.QuarantineError
		if !errors.As(err, &qe) || qe.ID != "rel-1" || qe.Reason != reason || qe.At.IsZero() {
			return fmt.Errorf("%s = %#v, want a *state.QuarantineError with the id, the reason %q and a time", call, err, reason)
		}
		return nil
	}
	_, err := s.Load(ctx, "rel-1")
	if err := wantAside("Load of a record set aside", err); err != nil {
		return err
	}
	r.Phase = "deploy"
	if err := wantAside("Update of a record set aside", s.Update(ctx, r)); err != nil {
		return err
	}
	if err := wantAside("second Quarantine", q.Quarantine(ctx, "rel-1", "again")); err != nil {
		return err
	}
	if err := wantErr("Create with the id of a record set aside", s.Create(ctx, newRecord("rel-1", "search", "staging")), state.ErrExists); err != nil {
		return err
	}
	next := newRecord("rel-2", "checkout", "production")
	if err := s.Create(ctx, next); err != nil {
		return fmt.Errorf("Create of checkout/production once the running rel-1 was set aside: %w", err)
	}
	return wantStored(ctx, s, next, "after Create")
}
