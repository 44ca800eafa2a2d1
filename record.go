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

// save writes rec to the store with compare-and-swap and fencing, after
// checking the engine's invariants on it (and, with lp, on the transition
// from what lp saved last): a record that breaks one is never written.
// A rollback request written by Runner.Rollback meanwhile is kept and
// merged in; any other conflict means this runner lost the release.
func (r *Runner) save(ctx context.Context, lp *loop, rec *state.Record) error {
	if err := checkRecord(rec); err != nil {
		return fmt.Errorf("%w: %w", ErrInvariant, err)
	}
	if lp != nil && lp.saved.valid {
		if err := lp.saved.check(rec); err != nil {
			return err
		}
	}
	rec.Updated = time.Now()
	err := r.cfg.store.Update(context.WithoutCancel(ctx), rec)
	if errors.Is(err, state.ErrConflict) {
		// A person may have asked for a rollback while this runner was busy
		// (Runner.Rollback writes the request without taking the lease):
		// keep the request and save again.
		// So may a person's decision (Runner.Promote and the others): keep
		// the decisions written since, for the next round.
		cur, lerr := r.cfg.store.Load(context.WithoutCancel(ctx), rec.ID)
		if lerr == nil && cur.Token == rec.Token && cur.Holder == rec.Holder {
			merged := false
			if cur.RollbackRequest != nil && rec.RollbackRequest == nil {
				rec.RollbackRequest, merged = cur.RollbackRequest, true
			}
			if len(cur.Decisions) > len(rec.Decisions) {
				rec.Decisions, merged = append(rec.Decisions, cur.Decisions[len(rec.Decisions):]...), true
				if lp != nil {
					lp.woken = true
				}
			}
			if merged {
				rec.Rev = cur.Rev
				err = r.cfg.store.Update(context.WithoutCancel(ctx), rec)
			}
		}
	}
	if errors.Is(err, state.ErrFenced) || errors.Is(err, state.ErrConflict) {
		r.cfg.logger.Warn("deploy: lost the release to another runner; stopping", "release", rec.ID, "err", err)
		return fmt.Errorf("%w: %v", ErrLocked, err)
	}
	if err != nil {
		return fmt.Errorf("deploy: saving %s: %w", rec.ID, err)
	}
	if lp != nil {
		lp.saved, lp.dirty = markOf(rec), false
	}
	return nil
}

// finalError is the error Run returns for a finished release: see the
// table of statuses and errors in the package documentation.
func finalError(rec *state.Record) error {
	phase, stage, step := PhaseDeploy, "", ""
	reason := rec.Error
	var kind state.TriggerKind
	if rec.Trigger != nil {
		stage, step, kind = rec.Trigger.Stage, rec.Trigger.Step, rec.Trigger.Kind
		if reason == "" {
			reason = rec.Trigger.Reason
		}
		if kind == state.TriggerVerification {
			phase = PhaseVerify
		}
	}
	switch rec.Status {
	case Succeeded:
		return nil
	case Blocked:
		return &PhaseError{Phase: PhasePreflight, Err: fmt.Errorf("%w: %s", ErrBlocked, reason)}
	case RolledBack, Aborted:
		return &PhaseError{Phase: phase, Stage: stage, Step: step, Err: fmt.Errorf("%w: %s", triggerErr(kind), reason)}
	case RollbackUnverified:
		cause := ""
		if rec.Trigger != nil {
			cause = rec.Trigger.Reason
		}
		return errors.Join(
			&PhaseError{Phase: phase, Stage: stage, Step: step, Err: fmt.Errorf("%w: %s", triggerErr(kind), cause)},
			&PhaseError{Phase: PhaseRollback, Err: fmt.Errorf("%w: %s", ErrNotVerified, rec.Error)},
		)
	case RollbackFailed:
		cause := "release failed"
		if rec.Trigger != nil {
			cause = rec.Trigger.Reason
		}
		return errors.Join(
			&PhaseError{Phase: phase, Stage: stage, Step: step, Err: fmt.Errorf("%w: %s", triggerErr(kind), cause)},
			&PhaseError{Phase: PhaseRollback, Err: fmt.Errorf("%w: %s", ErrRollbackFailed, rec.Error)},
		)
	}
	if rec.Trigger != nil {
		return &PhaseError{Phase: phase, Stage: stage, Step: step, Err: fmt.Errorf("%w: %s", triggerErr(kind), reason)}
	}
	return &PhaseError{Phase: phase, Stage: stage, Step: step, Err: fmt.Errorf("%w: %s", ErrStepFailed, reason)}
}

// triggerErr is the sentinel of a trigger kind (the package
// documentation's table).
func triggerErr(k state.TriggerKind) error {
	switch k {
	case state.TriggerBreach, state.TriggerVerification:
		return ErrUnhealthy
	case state.TriggerInconclusive:
		return ErrInconclusive
	case state.TriggerSource:
		return ErrSourceFailed
	case state.TriggerDeadline:
		return ErrProgressDeadline
	case state.TriggerError:
		return ErrStepFailed
	case state.TriggerBlocked:
		return ErrBlocked
	}
	return ErrAborted // manual, cancelled
}

func (r *Runner) deployment(rec *state.Record) *Deployment {
	d := &Deployment{ID: rec.ID, Release: rec.Release, Step: rec.Step, Exposure: rec.Exposure, Started: rec.Created, Token: rec.Token, Memo: rec.Memo, Phase: rec.Phase}
	stages := r.stages(rec.Release)
	if rec.Stage >= 0 && rec.Stage < len(stages) {
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

// note appends an entry to the timeline.
// With one stage (the release's environment) entries name no stage.
func (r *Runner) note(rec *state.Record, now time.Time, kind state.EntryKind, outcome state.Outcome, name, detail string) {
	stage := ""
	if len(r.cfg.stages) > 0 {
		stage = r.stageName(rec)
	}
	rec.Timeline = append(rec.Timeline, state.Entry{At: now, Phase: rec.Phase, Kind: kind, Outcome: outcome, Name: name, Stage: stage, Exposure: rec.Exposure, Detail: detail})
}

func (r *Runner) stageName(rec *state.Record) string {
	stages := r.stages(rec.Release)
	if rec.Stage >= 0 && rec.Stage < len(stages) {
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

// noteObs notes an observation's or a verdict's entry with the values
// measured, for the report's charts.
func (r *Runner) noteObs(rec *state.Record, now time.Time, kind state.EntryKind, outcome state.Outcome, name string, obs monitor.Observation) {
	r.note(rec, now, kind, outcome, name, summarize(obs))
	rec.Timeline[len(rec.Timeline)-1].Values = valuesOf(obs)
}

// noteOnce notes an entry unless the last one says the same.
func (r *Runner) noteOnce(rec *state.Record, now time.Time, kind state.EntryKind, outcome state.Outcome, name, detail string) {
	if n := len(rec.Timeline); n > 0 {
		if e := rec.Timeline[n-1]; e.Kind == kind && e.Outcome == outcome && e.Name == name && e.Detail == detail {
			return
		}
	}
	r.note(rec, now, kind, outcome, name, detail)
}

func percent(f float64) string {
	return strconv.FormatFloat(math.Round(f*10000)/100, 'f', -1, 64) + " %"
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return strconv.Itoa(n) + " " + word + "s"
}
