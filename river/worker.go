package river

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	rq "github.com/riverqueue/river"

	"github.com/deploykit/deploy"
	"github.com/deploykit/deploy/state"
)

// worker drives one release per job: one Reconcile per round.
type worker struct {
	rq.WorkerDefaults[Args]
	f *Fleet
}

// Timeout bounds a round: JobTimeout, derived from the runner's bounds.
func (w *worker) Timeout(*rq.Job[Args]) time.Duration { return w.f.s.JobTimeout }

// Work reconciles the release and tells River when to come back:
//
//   - the release goes on: snooze until the next due action;
//   - another runner holds it (*deploy.LockedError, a worker that died
//     inside an Apply or a rollback): snooze until its lease ends;
//   - it is over: complete the job (or, with notifications still
//     pending, snooze until the next delivery is due);
//   - its record is gone or set aside: cancel the job;
//   - an error: return it, for River's backoff; once MaxAttempts rounds in
//     a row have failed, flag the release instead (an urgent event, a log
//     at Error) and snooze FlaggedRetry, so the job is never discarded.
func (w *worker) Work(ctx context.Context, job *rq.Job[Args]) error {
	s := &w.f.s
	id := job.Args.ID
	r := Round{ID: id, Worker: s.Name, Due: job.ScheduledAt, Started: time.Now()}
	next, rep, err := s.Runner.Reconcile(ctx, id)
	r.Took, r.Err = time.Since(r.Started), err
	if rep != nil {
		r.Status, r.Phase = rep.Status, rep.Phase
	}
	ret := w.decide(job, &r, next, rep, err)
	w.f.round(r)
	return ret
}

func (w *worker) decide(job *rq.Job[Args], r *Round, next time.Time, rep *deploy.Report, err error) error {
	s := &w.f.s
	var locked *deploy.LockedError
	switch {
	case rep != nil && rep.Status.Final():
		if rep.Pending > 0 && !next.IsZero() {
			r.Outcome, r.Next = "snooze", next
			return rq.JobSnooze(until(next))
		}
		r.Outcome = "done"
		return nil
	case errors.As(err, &locked):
		r.Outcome, r.Next = "locked", locked.Until
		return rq.JobSnooze(until(locked.Until))
	case errors.Is(err, deploy.ErrLocked):
		// Taken over while this round ran (a person's Rollback, say):
		// the taker holds the lease for at most its grace.
		r.Outcome, r.Next = "locked", time.Now().Add(w.f.s.bounds.LeaseGrace)
		return rq.JobSnooze(w.f.s.bounds.LeaseGrace)
	case errors.Is(err, state.ErrNotFound) || errors.Is(err, state.ErrQuarantined):
		r.Outcome = "cancelled"
		w.f.log.Warn("river: release record gone or set aside; cancelling its job", "release", r.ID, "err", err)
		return rq.JobCancel(err)
	case err != nil && job.Attempt >= job.MaxAttempts:
		r.Outcome, r.Next = "flagged", time.Now().Add(s.FlaggedRetry)
		msg := fmt.Sprintf("release %s could not be driven: %d rounds in a row failed, the last with: %v; retrying every %v until it can — a person must look now",
			r.ID, job.Attempt, err, s.FlaggedRetry)
		w.f.log.Error("river: "+msg, "release", r.ID, "attempt", job.Attempt)
		ev := deploy.Event{Kind: EventFlagged, At: time.Now(), DeploymentID: r.ID, Urgent: true, Message: msg}
		if rep != nil {
			ev.Release, ev.Phase, ev.Status = rep.Release, rep.Phase, rep.Status
		}
		w.f.notify(ev)
		return rq.JobSnooze(s.FlaggedRetry)
	case err != nil:
		r.Outcome = "retry"
		w.f.log.Warn("river: round failed; River retries it", "release", r.ID, "attempt", job.Attempt, "err", err)
		return err
	}
	r.Outcome, r.Next = "snooze", next
	return rq.JobSnooze(until(next))
}

// until is the snooze until t: never negative.
func until(t time.Time) time.Duration { return max(time.Until(t), 0) }

// Event kinds of the fleet's urgent events.
const (
	// EventFlagged: MaxAttempts rounds of a release failed in a row.
	EventFlagged deploy.EventKind = "fleet.flagged"
	// EventOrphaned: the sweep found an active release without a job and
	// enqueued one.
	EventOrphaned deploy.EventKind = "fleet.orphaned"
)

// notify tells every notifier about e, each call bounded and unable to
// panic the process; failures are logged, not retried (the condition that
// caused e is reported again while it lasts).
func (f *Fleet) notify(e deploy.Event) {
	for i, n := range f.s.Notifiers {
		if err := bounded(f.s.NotifyTimeout, func(ctx context.Context) error { return n.Notify(ctx, e) }); err != nil {
			f.log.Error("river: notifier failed", "notifier", i, "event", e.Kind, "release", e.DeploymentID, "err", err)
		}
	}
}

// round hands r to OnRound, bounded like a notifier.
func (f *Fleet) round(r Round) {
	f.log.Debug("river: round", slog.String("release", r.ID), slog.String("outcome", r.Outcome), slog.Duration("late", r.Started.Sub(r.Due)))
	if f.s.OnRound == nil {
		return
	}
	if err := bounded(f.s.NotifyTimeout, func(context.Context) error { f.s.OnRound(r); return nil }); err != nil {
		f.log.Error("river: OnRound failed", "release", r.ID, "err", err)
	}
}

// bounded runs fn in a goroutine of its own, for at most timeout, and
// turns a panic into an error; fn's context ends at the timeout.
func bounded(timeout time.Duration, fn func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		defer func() {
			if v := recover(); v != nil {
				done <- fmt.Errorf("panic: %v", v)
			}
		}()
		done <- fn(ctx)
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("no answer within %v", timeout)
	}
}
