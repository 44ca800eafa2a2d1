package deploy

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/deploykit/deploy/monitor"
	"github.com/deploykit/deploy/state"
)

func (r *Runner) save(ctx context.Context, rec *state.Record) error {
	rec.Updated = time.Now()
	err := r.cfg.store.Update(context.WithoutCancel(ctx), rec)
	if errors.Is(err, state.ErrConflict) {
		// A person may have asked for a rollback while this runner was busy
		// (Runner.Rollback writes the request without taking the lease):
		// keep the request and save again.
		cur, lerr := r.cfg.store.Load(context.WithoutCancel(ctx), rec.ID)
		if lerr == nil && cur.Token == rec.Token && cur.Holder == rec.Holder && cur.RollbackRequest != nil && rec.RollbackRequest == nil {
			rec.RollbackRequest, rec.Rev = cur.RollbackRequest, cur.Rev
			err = r.cfg.store.Update(context.WithoutCancel(ctx), rec)
		}
	}
	if errors.Is(err, state.ErrFenced) || errors.Is(err, state.ErrConflict) {
		r.cfg.logger.Warn("deploy: lost the release to another runner; stopping", "release", rec.ID, "err", err)
		return fmt.Errorf("%w: %v", ErrLocked, err)
	}
	if err != nil {
		return fmt.Errorf("deploy: saving %s: %w", rec.ID, err)
	}
	return nil
}

// finalError is the error Run returns for a finished release.
func finalError(rec *state.Record) error {
	phase, stage, step := PhaseDeploy, "", ""
	reason := rec.Error
	if rec.Trigger != nil {
		stage, step = rec.Trigger.Stage, rec.Trigger.Step
		if reason == "" {
			reason = rec.Trigger.Reason
		}
	}
	var err error
	switch rec.Status {
	case Succeeded:
		return nil
	case Blocked:
		return &PhaseError{Phase: PhasePreflight, Err: fmt.Errorf("%w: %s", ErrBlocked, reason)}
	case Aborted:
		err = fmt.Errorf("%w: %s", ErrAborted, reason)
	case RolledBack:
		if rec.Trigger != nil && rec.Trigger.Kind == "verification" {
			phase = PhaseVerify
		}
		if rec.Trigger != nil && (rec.Trigger.Kind == "manual" || rec.Trigger.Kind == "error") {
			err = fmt.Errorf("%w: %s", ErrAborted, reason)
		} else {
			err = fmt.Errorf("%w: %s", ErrUnhealthy, reason)
		}
	case RollbackFailed:
		cause := "release failed"
		if rec.Trigger != nil {
			cause = rec.Trigger.Reason
		}
		return errors.Join(
			&PhaseError{Phase: PhaseDeploy, Stage: stage, Step: step, Err: fmt.Errorf("%w: %s", ErrUnhealthy, cause)},
			&PhaseError{Phase: PhaseRollback, Err: fmt.Errorf("%w: %s", ErrRollbackFailed, rec.Error)},
		)
	default:
		err = fmt.Errorf("deploy: release failed: %s", reason)
	}
	return &PhaseError{Phase: phase, Stage: stage, Step: step, Err: err}
}

func (r *Runner) deployment(rec *state.Record) *Deployment {
	d := &Deployment{ID: rec.ID, Release: rec.Release, Step: rec.Step, Exposure: rec.Exposure, Started: rec.Created, Token: rec.Token}
	stages := r.stages(rec.Release)
	if rec.Stage < len(stages) {
		d.Stage = stages[rec.Stage]
	} else if len(stages) > 0 {
		d.Stage = stages[len(stages)-1]
	}
	if len(rec.Baseline) > 0 {
		d.Baseline.Metrics = make(map[string]monitor.Metric, len(rec.Baseline))
		for k, m := range rec.Baseline {
			d.Baseline.Metrics[k] = monitor.Value(m.Value, m.Samples)
		}
	}
	return d
}

func (r *Runner) note(rec *state.Record, now time.Time, kind, name, detail string) {
	rec.Timeline = append(rec.Timeline, state.Entry{At: now, Phase: rec.Phase, Kind: kind, Name: name, Stage: r.stageName(rec), Exposure: rec.Exposure, Detail: detail})
}

func (r *Runner) stageName(rec *state.Record) string {
	stages := r.stages(rec.Release)
	if rec.Stage < len(stages) {
		return stages[rec.Stage].Name
	}
	return ""
}

func (r *Runner) tick(rec *state.Record, now time.Time, item Item, evidence string) {
	if rec.Checklist == nil {
		rec.Checklist = make(map[string]state.Tick)
	}
	if t, ok := rec.Checklist[string(item)]; ok && t.Done {
		return
	}
	rec.Checklist[string(item)] = state.Tick{Done: true, Evidence: evidence, At: now}
}

func (r *Runner) tickFrom(rec *state.Record, now time.Time, x any, evidence string) {
	if c, ok := x.(Checklister); ok {
		for _, it := range c.ChecklistItems() {
			r.tick(rec, now, it, evidence)
		}
	}
}

func (r *Runner) noteOnce(rec *state.Record, now time.Time, kind, name, detail string) {
	if n := len(rec.Timeline); n > 0 && rec.Timeline[n-1].Detail == detail {
		return
	}
	r.note(rec, now, kind, name, detail)
}

func percent(f float64) string {
	return strconv.FormatFloat(math.Round(f*10000)/100, 'f', -1, 64) + " %"
}

// actionBound is how long the next action on rec may take when it is a
// step's Apply (up to the progress deadline); 0 otherwise. The lease saved
// with rec covers it, so that no other runner takes the release over while
// it runs, at no extra save per step; a runner that crashes before an Apply
// then holds the release that much longer, which only pauses the rollout.
// A pending rollback is not covered this way, so that another runner can
// finish it soon after a crash; hold saves its lease before it runs.
func (r *Runner) actionBound(rec *state.Record) time.Duration {
	if rec.Phase == string(PhaseDeploy) && !rec.Applied {
		return r.cfg.policy.Deadline()
	}
	return 0
}

// hold makes sure the saved lease covers an action that may last up to d
// (a step's Apply, the strategy's rollback) plus the grace, saving the
// record first when it does not, so that no other runner takes the release
// over while the action runs.
func (r *Runner) hold(ctx context.Context, rec *state.Record, now time.Time, d time.Duration, force bool) error {
	until := now.Add(d + r.cfg.leaseGrace)
	if !force && !rec.LeaseUntil.Before(until.Add(-r.cfg.leaseGrace/2)) {
		return nil // the lease saved last time already covers it
	}
	rec.LeaseUntil = until
	return r.save(ctx, rec)
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return strconv.Itoa(n) + " " + word + "s"
}
