package deploy

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/deploykit/deploy/rollback"
	"github.com/deploykit/deploy/state"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// breach starts a rollback for trigger t.
func (r *Runner) breach(rec *state.Record, lp *loop, now time.Time, t *state.Trigger) error {
	lp.endStep(errors.New(t.Reason))
	r.startRollback(rec, now, t, "")
	return nil
}

// startRollback moves rec to the rollback phase; outcome overrides the final
// status (Aborted for a cancelled run).
func (r *Runner) startRollback(rec *state.Record, now time.Time, t *state.Trigger, outcome Status) {
	if t.At.IsZero() {
		t.At = now
	}
	switch {
	case rec.Phase == string(PhaseDeploy) && rec.Step >= 0 && t.Step == "":
		t.Stage, t.Step = r.stageName(rec), r.currentStepName(rec, nil)
	case rec.Phase == string(PhaseVerify) && t.Stage == "":
		t.Stage = r.stageName(rec)
	}
	if outcome == "" {
		outcome = RolledBack
		if !hasRollbackPath(r.strategy) {
			outcome = Failed
		}
	}
	rec.Trigger = t
	rec.RollbackReason = t.Reason
	rec.Outcome = outcome
	rec.Applying = false
	rec.Phase = string(PhaseRollback)
	rec.RollbackStart = time.Time{}
	r.note(rec, now, "rollback", t.Kind, "rolling back: "+t.Reason)
	r.emit(rec, Event{Kind: EventRollback, Step: t.Step, Message: "rolling back: " + t.Reason})
}

func (r *Runner) rollback(ctx context.Context, rec *state.Record, lp *loop, now time.Time) (time.Time, error) {
	if rec.RollbackStart.IsZero() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(lp.phaseCtx), r.cfg.rollbackTimeout)
		defer cancel()
		rctx, span := lp.tracer().Start(rctx, "deploy.rollback", trace.WithAttributes(
			attribute.String("deploy.trigger", rec.Trigger.Kind), attribute.String("deploy.rollback.reason", rec.RollbackReason)))
		d := r.deployment(rec)
		if !hasRollbackPath(r.strategy) {
			// Waived: there is no way back. Say so and leave it to people.
			span.SetStatus(codes.Error, "no rollback path")
			span.End()
			msg := "no rollback path (pitfall " + string(NoRollbackPlan) + " waived): " + rec.Release.Version + " stays deployed"
			rec.RollbackSteps = append(rec.RollbackSteps, state.Entry{At: now, Phase: rec.Phase, Kind: "rollback", Name: rec.Strategy, Detail: "failed: " + msg})
			r.note(rec, now, "rollback", rec.Strategy, msg)
			rec.Error = msg
			r.toCommunicate(rec, now, Failed, "")
			return now, nil
		}
		if err := r.hold(ctx, rec, now, r.cfg.rollbackTimeout, true); err != nil {
			span.End()
			return now, err
		}
		err := r.strategy.Rollback(rctx, d)
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
			span.End()
			rec.RollbackSteps = append(rec.RollbackSteps, state.Entry{At: now, Phase: rec.Phase, Kind: "rollback", Name: rec.Strategy, Detail: "failed: " + err.Error()})
			r.rollbackFailed(rec, now, fmt.Sprintf("strategy %s rollback: %v", rec.Strategy, err))
			return now, nil
		}
		done := time.Now() // a rollback may take a while: time what follows from its end
		rec.Exposure = 0
		rec.Applied = false
		rec.RollbackSteps = append(rec.RollbackSteps, state.Entry{At: done, Phase: rec.Phase, Kind: "rollback", Name: rec.Strategy, Detail: "rolled back: exposure 0 %"})
		if err := r.extraRollbackSteps(rctx, rec); err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
			span.End()
			r.rollbackFailed(rec, time.Now(), err.Error())
			return now, nil
		}
		span.End()
		// From now on the previous version serves: the rollback's
		// verification judges the window from here, not what happened while
		// the rollback ran, and waits the settle time from here too.
		rec.RollbackStart = time.Now()
		r.note(rec, rec.RollbackStart, "rollback", rec.Strategy, "strategy rolled back, exposure 0 %; verifying")
		if len(r.cfg.monitors) == 0 {
			r.toCommunicate(rec, rec.RollbackStart, rec.Outcome, "")
			return rec.RollbackStart, nil
		}
		return rec.RollbackStart.Add(r.cfg.rollbackSettle), nil
	}
	// Verify the rollback, once metrics had time to catch up: the triggers
	// must not fire against the baseline.
	if due := rec.RollbackStart.Add(r.cfg.rollbackSettle); now.Before(due) {
		return due, nil
	}
	obs, err := r.observe(lp.phaseCtx, rec, lp, "rollback", rec.RollbackStart)
	if err != nil && len(obs.Metrics) == 0 && len(obs.Checks) == 0 {
		rec.RollbackSteps = append(rec.RollbackSteps, state.Entry{At: now, Phase: rec.Phase, Kind: "verify", Detail: "could not measure after rollback: " + err.Error()})
		r.note(rec, now, "rollback", "verify", "rollback not verified: could not measure: "+err.Error())
		r.toCommunicate(rec, now, rec.Outcome, "")
		return now, nil
	}
	var c rollback.Counters
	p := r.cfg.policy
	p.InconclusiveLimit = math.MaxInt // no data after a rollback is not a failure of it
	p.FailureLimit = 0                // but any failure is: no second chances for the way back
	dec := p.Judge(&c, obs, r.deployment(rec).Baseline, nil)
	if dec.Verdict == rollback.Rollback {
		rec.RollbackSteps = append(rec.RollbackSteps, state.Entry{At: now, Phase: rec.Phase, Kind: "verify", Detail: "still unhealthy: " + dec.Reason})
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
		rec.RollbackSteps = append(rec.RollbackSteps, state.Entry{At: now, Phase: rec.Phase, Kind: "verify", Detail: "not verified: " + dec.Reason})
		r.note(rec, now, "rollback", "verify", "rollback not verified: "+dec.Reason)
		r.toCommunicate(rec, now, rec.Outcome, "")
		return now, nil
	}
	rec.RollbackSteps = append(rec.RollbackSteps, state.Entry{At: now, Phase: rec.Phase, Kind: "verify", Detail: "healthy: " + summarize(obs)})
	r.note(rec, now, "rollback", "verify", "rollback verified: "+summarize(obs))
	r.toCommunicate(rec, now, rec.Outcome, "")
	return now, nil
}

// extraRollbackSteps runs the WithRollbackSteps steps not yet done.
func (r *Runner) extraRollbackSteps(ctx context.Context, rec *state.Record) error {
	done := map[string]bool{}
	for _, e := range rec.RollbackSteps {
		if e.Kind == "step" && e.Detail == "done" {
			done[e.Name] = true
		}
	}
	for _, st := range r.cfg.rollbackSteps {
		if st.Run == nil || done[st.Name] {
			continue
		}
		err := st.Run(ctx)
		e := state.Entry{At: time.Now(), Phase: rec.Phase, Kind: "step", Name: st.Name, Detail: "done"}
		if err != nil {
			e.Detail = "failed: " + err.Error()
		}
		rec.RollbackSteps = append(rec.RollbackSteps, e)
		if err != nil {
			return fmt.Errorf("rollback step %q: %w", st.Name, err)
		}
	}
	return nil
}

func (r *Runner) rollbackFailed(rec *state.Record, now time.Time, msg string) {
	rec.Error = msg
	r.note(rec, now, "rollback", "failed", msg+" — a person must act")
	r.emit(rec, Event{Kind: EventRollback, Urgent: true, Message: "ROLLBACK FAILED: " + msg + " — a person must act now"})
	r.toCommunicate(rec, now, RollbackFailed, "")
}

// fail ends a release that cannot go on (for example, the plan errors
// after a restart).
func (r *Runner) fail(rec *state.Record, now time.Time, err error) {
	if deployed(rec) {
		r.startRollback(rec, now, &state.Trigger{Kind: "error", Reason: err.Error()}, "")
		return
	}
	rec.Error = err.Error()
	r.toCommunicate(rec, now, Failed, err.Error())
}

// takeRequest carries out a manual rollback that Runner.Rollback asked for
// while this runner was busy: it rolls back what may be deployed, or ends
// the release as aborted when nothing is. A request that comes once the
// release is already rolling back or finishing is dropped.
func (r *Runner) takeRequest(rec *state.Record, now time.Time) {
	req := rec.RollbackRequest
	if req == nil {
		return
	}
	rec.RollbackRequest = nil
	switch Phase(rec.Phase) {
	case PhasePreflight, PhaseDeploy, PhaseVerify:
	default:
		return
	}
	t := &state.Trigger{Kind: "manual", Reason: req.Reason}
	if deployed(rec) {
		r.startRollback(rec, now, t, "")
		return
	}
	t.At = now
	rec.Trigger = t
	r.toCommunicate(rec, now, Aborted, req.Reason)
}
