package deploy

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/deploykit/deploy/internal/redact"
	"github.com/deploykit/deploy/state"
)

// Rollback rolls the release id back now, for reason, whoever holds it: a
// person's decision takes over the lease, and the runner that held it stops
// with ErrLocked at its next write. When that runner is in the middle of a
// step's Apply or of the strategy's rollback, Rollback does not run a
// rollback alongside it: it leaves a request in the record, which the
// holder carries out instead of its next action, and waits for the release
// to end (or, if the holder dies, for its lease to run out, then takes
// over). If ctx ends first, it returns an error that says the rollback was
// requested and will still be carried out; it does not wrap ErrLocked. It returns when the rollback is verified
// and the release is over, with a nil error when it ended as asked: rolled
// back, or aborted when nothing had been deployed yet. A rollback that fails
// returns ErrRollbackFailed, as from Run.
func (r *Runner) Rollback(ctx context.Context, id, reason string) (*Report, error) {
	if strings.TrimSpace(reason) == "" {
		return nil, fmt.Errorf("%w: Rollback reason is empty", ErrInvalid)
	}
	reason = redact.Text(reason)
	store, err := r.store()
	if err != nil {
		return nil, err
	}
	// Another runner may save between our load and update: retry on conflict.
	requested := false
	for attempt := 0; ; attempt++ {
		rec, err := store.Load(ctx, id)
		if err != nil {
			return nil, fmt.Errorf("deploy: %w", err)
		}
		if err := checkRecord(rec); err != nil {
			return nil, err
		}
		if rec.Status.Final() {
			if requested && (rec.Status == RolledBack || rec.Status == Aborted) {
				return r.report(rec), nil // the holder did what was asked
			}
			if requested {
				return r.report(rec), finalError(rec)
			}
			return r.report(rec), fmt.Errorf("%w: release %s is already %s", ErrInvalid, id, rec.Status)
		}
		if rec.Phase == PhaseCommunicate && rec.Outcome == Succeeded {
			return r.report(rec), fmt.Errorf("%w: release %s has already succeeded and is being reported; to undo it, release the previous version", ErrInvalid, id)
		}
		now := time.Now()
		if rec.RollbackRequest != nil {
			requested = true // ours, or another person's: the holder will carry it out
		}
		if now.Before(rec.LeaseUntil) && (inFlight(rec) || requested) {
			// The live holder — perhaps this very Runner, in a Run on
			// another goroutine — is in the middle of an Apply or of the
			// strategy's rollback: taking over now would run a rollback
			// alongside it. Ask it to roll back instead of going on (it
			// reads the request before its next action), and wait.
			if rec.RollbackRequest == nil && rec.Phase != PhaseRollback {
				rec.RollbackRequest = &state.Trigger{Kind: "manual", Reason: reason, At: now}
				if err := store.Update(ctx, rec); err != nil {
					if (errors.Is(err, state.ErrConflict) || errors.Is(err, state.ErrFenced)) && attempt < 1000 {
						continue // it saved, or was taken over, meanwhile: look again
					}
					return r.report(rec), fmt.Errorf("%w: %v", ErrLocked, err)
				}
				requested = true
			}
			wait := min(time.Until(rec.LeaseUntil), time.Second)
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				if requested {
					// The request stays in the record: the holder will
					// still carry it out.
					return r.report(rec), fmt.Errorf("deploy: rollback of %s requested; %s will carry it out after its current action (stopped waiting: %w)", id, rec.Holder, context.Cause(ctx))
				}
				return r.report(rec), fmt.Errorf("%w: release %s is in the middle of an action by %s: %v", ErrLocked, id, rec.Holder, context.Cause(ctx))
			case <-t.C:
			}
			attempt--
			continue
		}
		rec.Holder, rec.Token, rec.LeaseUntil = r.holder, rec.Token+1, now.Add(time.Minute)
		switch {
		case waitsAborted(rec):
			// Aborted and rolled back already, waiting for a Retry: the
			// release ends here.
			r.endAborted(rec, now, "ended by a rollback: "+reason)
		case rec.Phase == PhaseRollback || rec.Phase == PhaseCommunicate:
			// Already rolling back or finishing: take it over and drive it
			// to the end.
		case deployed(rec):
			r.startRollback(ctx, rec, now, &state.Trigger{Kind: "manual", Reason: reason}, "")
		default:
			rec.Trigger = &state.Trigger{Kind: "manual", Reason: reason, At: now}
			r.toCommunicate(rec, now, Aborted, reason)
		}
		err = store.Update(ctx, rec)
		if err == nil {
			break
		}
		if !errors.Is(err, state.ErrConflict) || attempt >= 10 {
			return nil, fmt.Errorf("%w: %v", ErrLocked, err)
		}
	}
	rep, err := r.loop(ctx, id, nil)
	if err != nil && rep != nil && (rep.Status == RolledBack || rep.Status == Aborted) {
		return rep, nil // what was asked for
	}
	return rep, err
}
