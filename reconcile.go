package deploy

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/deploykit/deploy/state"
)

// reconcile does what is due now for release id, saves, and says when the
// next action is due. It goes on from the record lp saved last, or loads
// it; a loaded record that breaks an invariant is refused with ErrCorrupt.
func (r *Runner) reconcile(ctx context.Context, id string, lp *loop) (time.Time, *state.Record, error) {
	rec := lp.rec
	lp.rec = nil // kept again only once saved
	if rec != nil && !lp.dirty && (rec.Waiting != nil || lp.woken) {
		// Waiting for a person, or told a decision came: read the record
		// again, for decisions another process wrote.
		rec = nil
	}
	lp.woken = false
	if rec == nil {
		loaded, err := r.cfg.store.Load(ctx, id)
		if err != nil {
			return time.Time{}, nil, fmt.Errorf("deploy: %w", err)
		}
		if err := checkRecord(loaded); err != nil {
			return time.Time{}, nil, err
		}
		rec = loaded
		lp.saved = markOf(rec)
	}
	if rec.Status.Final() {
		return time.Time{}, rec, finalError(rec)
	}
	now := time.Now()
	if rec.Holder != r.holder && lp.token == 0 && now.Before(rec.LeaseUntil) {
		return time.Time{}, rec, &LockedError{ID: id, Holder: rec.Holder, Until: rec.LeaseUntil}
	}
	if rec.Holder != r.holder && lp.token != 0 {
		// This loop held the release and lost it: it does not take it
		// back behind the runner that took it over.
		return time.Time{}, rec, fmt.Errorf("%w: release %s was taken over by %s", ErrLocked, id, rec.Holder)
	}
	if lp.token == 0 {
		// Every loop — Run, Resume, each Reconcile — takes the release
		// with a new token, saved before it acts: whatever ran before
		// under this holder's name (an Apply left running after a store
		// failure, another process with the same WithHolder) is fenced
		// off from here on.
		prevHolder, prevToken := rec.Holder, rec.Token
		rec.Holder, rec.Token, rec.LeaseUntil = r.holder, rec.Token+1, now.Add(r.cfg.leaseGrace)
		err := r.save(ctx, lp, rec)
		for try := 0; errors.Is(err, ErrLocked) && try < 3; try++ {
			// A person's decision or rollback request, written without the
			// lease between the load and this save, is no takeover: load
			// again and take the release with it, unless another runner
			// took it meanwhile.
			cur, lerr := r.cfg.store.Load(ctx, id)
			if lerr != nil || cur.Holder != prevHolder || cur.Token != prevToken || checkRecord(cur) != nil {
				break
			}
			if cur.Status.Final() {
				return time.Time{}, cur, finalError(cur)
			}
			rec = cur
			lp.saved = markOf(rec)
			rec.Holder, rec.Token, rec.LeaseUntil = r.holder, rec.Token+1, now.Add(r.cfg.leaseGrace)
			err = r.save(ctx, lp, rec)
		}
		if err != nil {
			return time.Time{}, rec, &unrecorded{err}
		}
	}
	if lp.token == 0 {
		lp.token = rec.Token
	} else if rec.Token != lp.token {
		return time.Time{}, rec, fmt.Errorf("%w: release %s was taken over (token %d, ours %d)", ErrLocked, id, rec.Token, lp.token)
	}
	r.takeRequest(ctx, rec, now)
	r.takeDecisions(rec, lp, now)
	lp.start(rec)
	var next time.Time
	var err error
	switch rec.Phase {
	case PhasePreflight:
		next, err = r.preflight(ctx, rec, lp, now)
	case PhaseDeploy:
		next, err = r.deployStep(ctx, rec, lp, now)
	case PhaseVerify:
		next, err = r.verify(ctx, rec, lp, now)
	case PhaseRollback:
		next, err = r.rollback(ctx, rec, lp, now)
	case PhaseCommunicate:
		r.communicate(rec, lp, now)
	}
	if err != nil {
		return time.Time{}, rec, err
	}
	if next.IsZero() {
		next = now
	}
	rec.Next = next // what a scheduler lists (state.Lister)
	if rec.Status.Final() {
		rec.Next = time.Time{}
	}
	rec.LeaseUntil = next.Add(r.cfg.leaseGrace)
	if lp.oneShot {
		// Reconcile: the caller comes back at next, perhaps as another
		// process (a cron job); the release is free for it from then.
		rec.LeaseUntil = next
	}
	lp.disp.apply(rec)
	r.tickDelivered(rec)
	// A look that changed nothing but the observation count and the last
	// values (a healthy minute of a week-long watch) is not saved while the
	// saved lease still covers the next action with half the grace to
	// spare: a crash loses only those counts.
	//
	// Nor is a transition whose next action is due at once: it is saved
	// with that action — a step's Apply saves first, with a fenced write —
	// and its events reach the outbox then, one write per step instead of
	// two. Nothing acts on an unsaved transition: every effect saves before
	// it runs, and events are handed out only once saved.
	switch {
	case !lp.oneShot && !rec.Status.Final() && !next.After(time.Now()) && !lp.saved.lease.Before(next.Add(r.cfg.leaseGrace/2)):
		rec.LeaseUntil = lp.saved.lease
		lp.rec, lp.dirty = rec, true
		return next, rec, nil
	case lp.oneShot || !lp.saved.same(rec) || lp.saved.lease.Before(next.Add(r.cfg.leaseGrace/2)):
		if err := r.save(ctx, lp, rec); err != nil {
			return time.Time{}, rec, &unrecorded{err}
		}
	default:
		rec.LeaseUntil = lp.saved.lease
	}
	lp.rec = rec
	lp.kick(rec)
	if rec.Status.Final() {
		return next, rec, finalError(rec)
	}
	return next, rec, nil
}
