package deploy

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/deploykit/deploy/rollback"
	"github.com/deploykit/deploy/state"
)

// breach starts a rollback for trigger t.
func (r *Runner) breach(rec *state.Record, lp *loop, now time.Time, t *state.Trigger) error {
	lp.endStep(errors.New(t.Reason))
	r.startRollback(lp.phaseCtx, rec, now, t, "")
	return nil
}

// startRollback moves rec to the rollback phase; outcome overrides the final
// status (Aborted for a cancelled run).
func (r *Runner) startRollback(ctx context.Context, rec *state.Record, now time.Time, t *state.Trigger, outcome Status) {
	if t.At.IsZero() {
		t.At = now
	}
	switch {
	case rec.Phase == PhaseDeploy && rec.Step >= 0 && t.Step == "":
		t.Stage, t.Step = r.stageName(rec), r.currentStepName(rec)
	case rec.Phase == PhaseVerify && t.Stage == "":
		t.Stage = r.stageName(rec)
	}
	if outcome == "" {
		outcome = RolledBack
		if !hasRollbackPath(r.strategy) {
			outcome = Failed
		}
	}
	if rec.Applying {
		// A step's Apply may have gone through before the stop: roll back
		// as if it had.
		if s, ok := r.stepExposure(ctx, rec); ok {
			rec.Exposure = max(rec.Exposure, s)
		}
	}
	rec.Waiting = nil // whatever it waited for, it rolls back now
	rec.Trigger = t
	rec.RollbackReason = t.Reason
	rec.Outcome = outcome
	rec.Applying = false
	rec.Phase = PhaseRollback
	rec.RollbackStart = time.Time{}
	r.note(rec, now, state.EntryRollback, state.OutcomeStarted, string(t.Kind), t.Reason)
	r.emit(rec, Event{Kind: EventRollback, Step: t.Step, Message: "rolling back: " + t.Reason})
}

// stepExposure is the exposure of the step rec is at, from the plan.
func (r *Runner) stepExposure(ctx context.Context, rec *state.Record) (float64, bool) {
	// The rollback outlives a cancelled run: so does this Plan (bounded
	// by the plan timeout all the same).
	plans, err := r.plans(context.WithoutCancel(ctx), r.deployment(rec))
	if err != nil || rec.Stage >= len(plans) || rec.Step < 0 || rec.Step >= len(plans[rec.Stage]) {
		return 0, false
	}
	return plans[rec.Stage][rec.Step].Exposure, true
}

// rollback drives the rollback phase by one action: the strategy's
// rollback, then each rollback step, each recorded as it is done so that a
// Resume runs none of them twice; then, after the settle, the verification.
func (r *Runner) rollback(ctx context.Context, rec *state.Record, lp *loop, now time.Time) (time.Time, error) {
	if waitsAborted(rec) {
		// Rolled back; waiting for Retry or Rollback, read at each round.
		return now.Add(r.cfg.interval), nil
	}
	if rec.RollbackStart.IsZero() {
		return r.rollbackSteps(rec, lp, now)
	}
	// Verify the rollback, once metrics had time to catch up: the triggers
	// must not fire against the baseline.
	if due := rec.RollbackStart.Add(r.cfg.rollbackSettle); now.Before(due) {
		return due, nil
	}
	return r.verifyRollback(rec, lp, now)
}

// rollbackSteps runs what is left of the rollback's actions.
func (r *Runner) rollbackSteps(rec *state.Record, lp *loop, now time.Time) (time.Time, error) {
	rctx, span := lp.tracer().Start(context.WithoutCancel(lp.phaseCtx), "deploy.rollback", trace.WithAttributes(
		attribute.String("deploy.trigger", string(rec.Trigger.Kind)), attribute.String("deploy.rollback.reason", rec.RollbackReason),
		attribute.StringSlice("deploy.rollback.traces", rec.Trigger.Traces)))
	defer span.End()
	failed := func(msg string, err error) (time.Time, error) {
		recordError(span, err)
		r.rollbackFailed(rec, time.Now(), msg)
		return now, nil
	}
	if !hasRollbackPath(r.strategy) {
		// Waived: there is no way back. Say so and leave it to people.
		span.SetStatus(codes.Error, "no rollback path")
		msg := "no rollback path (pitfall " + string(NoRollbackPlan) + " waived): " + rec.Release.Version + " stays deployed"
		rec.RollbackSteps = append(rec.RollbackSteps, state.Entry{At: now, Phase: rec.Phase, Kind: state.EntryRollback, Outcome: state.OutcomeFailed, Name: rec.Strategy, Detail: msg})
		r.note(rec, now, state.EntryRollback, state.OutcomeFailed, rec.Strategy, msg)
		rec.Error = msg
		r.toCommunicate(rec, now, Failed, "")
		return now, nil
	}
	done := doneRollbackSteps(rec)
	if !done[rollbackStrategyKey] {
		d := r.deployment(rec)
		err := r.effect(rctx, rec, lp, effectRollback, "strategy "+rec.Strategy+": Rollback", r.cfg.rollbackTimeout,
			func(ctx context.Context) error { return r.strategy.Rollback(ctx, d) })
		if mustStop(err) {
			return now, err
		}
		if err != nil {
			e := state.Entry{At: time.Now(), Phase: rec.Phase, Kind: state.EntryRollback, Outcome: state.OutcomeFailed, Name: rec.Strategy, Detail: err.Error()}
			var pe *PanicError
			if errors.As(err, &pe) {
				e.Detail = panicDetail(pe)
			}
			rec.RollbackSteps = append(rec.RollbackSteps, e)
			return failed(fmt.Sprintf("strategy %s rollback: %v", rec.Strategy, err), err)
		}
		rec.Exposure = 0
		rec.Applied = false
		rec.RollbackSteps = append(rec.RollbackSteps, state.Entry{At: time.Now(), Phase: rec.Phase, Kind: state.EntryRollback, Outcome: state.OutcomeDone, Name: rec.Strategy, Detail: "exposure 0 %"})
	}
	for _, st := range r.cfg.rollbackSteps {
		if st.Run == nil || done[st.Name] {
			continue
		}
		err := r.effect(rctx, rec, lp, effectRollbackStep, "rollback step "+st.Name, r.cfg.rollbackTimeout, st.Run)
		if mustStop(err) {
			return now, err
		}
		e := state.Entry{At: time.Now(), Phase: rec.Phase, Kind: state.EntryStep, Outcome: state.OutcomeDone, Name: st.Name}
		if err != nil {
			e.Outcome, e.Detail = state.OutcomeFailed, err.Error()
		}
		rec.RollbackSteps = append(rec.RollbackSteps, e)
		if err != nil {
			return failed(fmt.Sprintf("rollback step %q: %v", st.Name, err), err)
		}
	}
	// From now on the previous version serves: the rollback's
	// verification judges the window from here, not what happened while
	// the rollback ran, and waits the settle time from here too.
	rec.RollbackStart = time.Now()
	r.note(rec, rec.RollbackStart, state.EntryRollback, state.OutcomeDone, rec.Strategy, "exposure 0 %; verifying")
	if len(r.cfg.monitors) == 0 {
		r.rollbackDone(rec, rec.RollbackStart, rec.Outcome)
		return rec.RollbackStart, nil
	}
	return rec.RollbackStart.Add(r.cfg.rollbackSettle), nil
}

// rollbackStrategyKey names Strategy.Rollback among the done rollback steps.
const rollbackStrategyKey = "\x00strategy"

// doneRollbackSteps returns the rollback actions already done: the
// strategy's rollback (rollbackStrategyKey) and the rollback steps by name.
func doneRollbackSteps(rec *state.Record) map[string]bool {
	done := map[string]bool{}
	for _, e := range rec.RollbackSteps[min(rec.RollbackFrom, len(rec.RollbackSteps)):] {
		if e.Outcome != state.OutcomeDone {
			continue
		}
		switch e.Kind {
		case state.EntryRollback:
			done[rollbackStrategyKey] = true
		case state.EntryStep:
			done[e.Name] = true
		}
	}
	return done
}

// verifyRollback observes the previous version after the settle: the
// triggers must not fire, and something must have been measured.
func (r *Runner) verifyRollback(rec *state.Record, lp *loop, now time.Time) (time.Time, error) {
	// Under a context that outlives a cancelled Run, as the rollback did.
	obs, err := r.observe(context.WithoutCancel(lp.phaseCtx), rec, lp, "rollback", "", rec.RollbackStart)
	if err != nil && len(obs.Metrics) == 0 && len(obs.Checks) == 0 {
		msg := "could not measure after the rollback: " + err.Error()
		rec.RollbackSteps = append(rec.RollbackSteps, state.Entry{At: now, Phase: rec.Phase, Kind: state.EntryVerify, Outcome: state.OutcomeUnverified, Detail: msg})
		r.note(rec, now, state.EntryRollback, state.OutcomeUnverified, "verify", msg)
		rec.Error = "rollback not verified: " + msg
		r.rollbackDone(rec, now, RollbackUnverified)
		return now, nil
	}
	var c rollback.Counters
	p := r.cfg.policy
	p.InconclusiveLimit = math.MaxInt // no data after a rollback is not a failure of it
	p.FailureLimit = 0                // but any failure is: no second chances for the way back
	dec := p.Judge(&c, obs, lp.baselineOf(rec), nil)
	if dec.Verdict == rollback.Rollback {
		rec.RollbackSteps = append(rec.RollbackSteps, state.Entry{At: now, Phase: rec.Phase, Kind: state.EntryVerify, Outcome: state.OutcomeFailed, Detail: "still unhealthy: " + dec.Reason})
		r.rollbackFailed(rec, now, "rollback did not restore health: "+dec.Reason)
		return now, nil
	}
	passed := false
	for _, res := range dec.Results {
		// A check trigger with no check to judge passes vacuously.
		passed = passed || res.Outcome == rollback.Pass && (res.Metric != "checks" || res.Samples > 0)
	}
	if !passed {
		// Nothing could be judged (no data for the previous version): the
		// strategy says it rolled back, but nothing shows it helped.
		rec.RollbackSteps = append(rec.RollbackSteps, state.Entry{At: now, Phase: rec.Phase, Kind: state.EntryVerify, Outcome: state.OutcomeUnverified, Detail: dec.Reason})
		r.note(rec, now, state.EntryRollback, state.OutcomeUnverified, "verify", dec.Reason)
		rec.Error = "rollback not verified: " + dec.Reason
		r.rollbackDone(rec, now, RollbackUnverified)
		return now, nil
	}
	rec.RollbackSteps = append(rec.RollbackSteps, state.Entry{At: now, Phase: rec.Phase, Kind: state.EntryVerify, Outcome: state.OutcomeVerified, Detail: summarize(obs)})
	r.noteObs(rec, now, state.EntryRollback, state.OutcomeVerified, "verify", obs)
	r.rollbackDone(rec, now, rec.Outcome)
	return now, nil
}

func (r *Runner) rollbackFailed(rec *state.Record, now time.Time, msg string) {
	rec.Error = msg
	r.note(rec, now, state.EntryRollback, state.OutcomeFailed, "rollback", msg+" — a person must act")
	r.emit(rec, Event{Kind: EventRollback, Urgent: true, Message: "ROLLBACK FAILED: " + msg + " — a person must act now"})
	r.toCommunicate(rec, now, RollbackFailed, "")
}

// fail ends a release that cannot go on (for example, the plan errors
// after a restart).
func (r *Runner) fail(ctx context.Context, rec *state.Record, now time.Time, err error) {
	if deployed(rec) {
		r.startRollback(ctx, rec, now, &state.Trigger{Kind: state.TriggerError, Reason: err.Error()}, "")
		return
	}
	rec.Error = err.Error()
	rec.Trigger = &state.Trigger{Kind: state.TriggerError, Reason: err.Error(), At: now}
	r.toCommunicate(rec, now, Failed, err.Error())
}

// takeRequest carries out a manual rollback that Runner.Rollback asked for
// while this runner was busy: it rolls back what may be deployed, or ends
// the release as aborted when nothing is. A request that comes once the
// release is already rolling back or finishing is noted and needs nothing
// more.
func (r *Runner) takeRequest(ctx context.Context, rec *state.Record, now time.Time) {
	req := rec.RollbackRequest
	if req == nil {
		return
	}
	rec.RollbackRequest = nil
	switch rec.Phase {
	case PhasePreflight, PhaseDeploy, PhaseVerify:
	default:
		r.note(rec, now, state.EntryNote, state.OutcomeDone, "rollback request", "asked while already "+string(rec.Phase)+": "+req.Reason)
		return
	}
	t := &state.Trigger{Kind: state.TriggerManual, Reason: req.Reason}
	if deployed(rec) {
		r.startRollback(ctx, rec, now, t, "")
		return
	}
	t.At = now
	rec.Trigger = t
	r.toCommunicate(rec, now, Aborted, req.Reason)
}
