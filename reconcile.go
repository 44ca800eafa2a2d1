package deploy

import (
	"context"
	"fmt"
	"time"

	"github.com/deploykit/deploy/state"
)

// reconcile loads the record, does what is due now, saves and says when the
// next action is due.
func (r *Runner) reconcile(ctx context.Context, id string, lp *loop) (time.Time, *state.Record, error) {
	store := r.cfg.store
	rec, err := store.Load(ctx, id)
	if err != nil {
		return time.Time{}, nil, fmt.Errorf("deploy: %w", err)
	}
	if rec.Status.Final() {
		return time.Time{}, rec, finalError(rec)
	}
	now := time.Now()
	if rec.Holder != r.holder {
		if now.Before(rec.LeaseUntil) {
			return time.Time{}, rec, &LockedError{ID: id, Holder: rec.Holder, Until: rec.LeaseUntil}
		}
		if lp.token != 0 {
			// This loop held the release and lost it: it does not take it
			// back behind the runner that took it over.
			return time.Time{}, rec, fmt.Errorf("%w: release %s was taken over by %s", ErrLocked, id, rec.Holder)
		}
		// Take the release over, and say so in the store before acting:
		// the runner that lost it is fenced off from here on.
		rec.Holder, rec.Token = r.holder, rec.Token+1
		if err := r.hold(ctx, rec, now, 0, true); err != nil {
			return time.Time{}, rec, err
		}
	}
	if lp.token == 0 {
		lp.token = rec.Token
	} else if rec.Token != lp.token {
		return time.Time{}, rec, fmt.Errorf("%w: release %s was taken over (token %d, ours %d)", ErrLocked, id, rec.Token, lp.token)
	}
	r.takeRequest(rec, now)
	lp.start(rec)
	var next time.Time
	switch Phase(rec.Phase) {
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
	default:
		return time.Time{}, nil, fmt.Errorf("deploy: release %s has unknown phase %q", id, rec.Phase)
	}
	if err != nil {
		return time.Time{}, rec, err
	}
	if next.IsZero() {
		next = now
	}
	rec.LeaseUntil = next.Add(r.actionBound(rec) + r.cfg.leaseGrace)
	if lp.oneShot {
		// Reconcile: the caller comes back at next, perhaps as another
		// process (a cron job); the release is free for it from then.
		rec.LeaseUntil = next
	}
	lp.disp.apply(rec)
	if err := r.save(ctx, rec); err != nil {
		return time.Time{}, rec, err
	}
	lp.kick(rec)
	if rec.Status.Final() {
		return next, rec, finalError(rec)
	}
	return next, rec, nil
}

// ---- preflight ----

// ---- deploy ----

// ---- verify ----

// ---- observing and judging ----

// ---- rollback ----

// ---- communicate ----
