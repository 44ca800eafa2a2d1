package deploy

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/deploykit/deploy/rollback"
	"github.com/deploykit/deploy/state"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

func (r *Runner) deployStep(ctx context.Context, rec *state.Record, lp *loop, now time.Time) (time.Time, error) {
	d := r.deployment(rec)
	plans, err := lp.plans(d)
	if err != nil {
		r.fail(rec, now, err)
		return now, nil
	}
	if rec.Stage >= len(plans) {
		rec.Phase = string(PhaseVerify)
		r.note(rec, now, "phase", string(PhaseVerify), "")
		return now, nil
	}
	steps := plans[rec.Stage]
	if rec.Step >= len(steps) {
		return r.stageDone(rec, now, len(plans))
	}
	step := steps[rec.Step]
	stageName := r.stageName(rec)
	sctx := lp.stepSpan(rec, step)
	d.Stage, d.Step = r.stages(rec.Release)[rec.Stage], rec.Step

	if !rec.Applied {
		if step.Approval {
			actx, span := lp.tracer().Start(sctx, "deploy.gate", trace.WithAttributes(attribute.String("deploy.gate", "approval")))
			err := r.cfg.approval.Check(actx, d)
			span.End()
			if at, ok := IsRetry(err); ok {
				rec.Applying = false // waiting, not applying (after a crash inside an Apply, say)
				r.noteOnce(rec, now, "gate", "approval", "waiting: "+err.Error())
				return r.watchWhileWaiting(sctx, rec, lp, now, at, steps, stageName, step.Name)
			}
			if err != nil {
				return now, r.breach(rec, lp, now, &state.Trigger{Kind: "manual", Reason: "approval refused for step " + step.Name + ": " + err.Error()})
			}
			r.note(rec, now, "gate", "approval", "approved step "+step.Name)
		}
		if rec.StepStart.IsZero() {
			rec.StepStart = now
		}
		// Say in the store that the step is being applied, before applying
		// it: a manual rollback then waits for the Apply instead of rolling
		// back alongside it, and counts the step as possibly deployed.
		rec.Applying = true
		if err := r.hold(ctx, rec, now, r.cfg.policy.Deadline(), true); err != nil {
			return now, err
		}
		if rec.RollbackRequest != nil {
			// Asked to roll back while saving: do that instead of applying.
			rec.Applying = false
			r.takeRequest(rec, now)
			return now, nil
		}
		actx, cancel := context.WithTimeout(sctx, r.cfg.policy.Deadline())
		err := step.Apply(actx, d)
		cancel()
		rec.Applying = false
		now = time.Now() // Apply may take a while: time what follows from its end
		if err != nil {
			lp.stepError(err)
			reason := fmt.Sprintf("step %s/%s failed to apply: %v", stageName, step.Name, err)
			if errors.Is(err, context.DeadlineExceeded) {
				reason = fmt.Sprintf("step %s/%s did not complete within the progress deadline %v", stageName, step.Name, r.cfg.policy.Deadline())
			}
			return now, r.breach(rec, lp, now, &state.Trigger{Kind: "error", Reason: reason})
		}
		rec.Applied = true
		rec.Exposure = step.Exposure
		rec.BakeStart = now
		r.note(rec, now, "step", step.Name, fmt.Sprintf("applied, exposure %s", percent(step.Exposure)))
		r.emit(rec, Event{Kind: EventStep, Step: step.Name, Message: fmt.Sprintf("step %s applied: exposure %s, bake %v", step.Name, percent(step.Exposure), step.Bake)})
		if step.Bake == 0 {
			return r.promote(rec, lp, now, step, steps, len(plans))
		}
		return now.Add(min(r.cfg.interval, step.Bake)), nil
	}

	// Baking: observe and judge.
	dec, obs := r.judge(sctx, rec, lp, "bake", rec.BakeStart)
	bakeDone := !now.Before(rec.BakeStart.Add(step.Bake))
	if dec.Verdict != rollback.Continue || bakeDone {
		r.announce(rec, lp, dec, step.Name)
	}
	r.tick(rec, now, ItemMonitorDeploy, fmt.Sprintf("%d monitor(s) observed every %v while each step baked", len(r.cfg.monitors), r.cfg.interval))
	switch dec.Verdict {
	case rollback.Rollback:
		return now, r.breach(rec, lp, now, triggerFrom(dec, "breach"))
	case rollback.Continue:
		if bakeDone {
			r.note(rec, now, "verdict", step.Name, "healthy: "+summarize(obs))
			return r.promote(rec, lp, now, step, steps, len(plans))
		}
	case rollback.Wait:
		r.noteOnce(rec, now, "verdict", step.Name, "paused: "+dec.Reason)
		if over := rec.BakeStart.Add(step.Bake).Add(r.cfg.policy.Deadline()); now.After(over) {
			return now, r.breach(rec, lp, now, &state.Trigger{Kind: "deadline", Reason: fmt.Sprintf("step %s/%s made no progress within the progress deadline %v after its bake: %s", stageName, step.Name, r.cfg.policy.Deadline(), dec.Reason)})
		}
	}
	next := now.Add(r.cfg.interval)
	if end := rec.BakeStart.Add(step.Bake); dec.Verdict == rollback.Continue && end.After(now) && end.Before(next) {
		next = end
	}
	return next, nil
}

// watchWhileWaiting keeps watching the users already on the new version
// while step waits for approval until at, as during a bake: a breach rolls
// back, naming the step that exposed them; the wait has no deadline of its
// own. It returns when to look again.
func (r *Runner) watchWhileWaiting(ctx context.Context, rec *state.Record, lp *loop, now, at time.Time, steps []Step, stageName, step string) (time.Time, error) {
	if rec.Exposure == 0 || len(r.cfg.monitors) == 0 {
		return at, nil
	}
	if rec.BakeStart.IsZero() {
		rec.BakeStart = now // the window of the wait
	}
	dec, _ := r.judge(ctx, rec, lp, "bake", rec.BakeStart)
	if dec.Verdict == rollback.Rollback {
		prev := ""
		if rec.Step > 0 {
			prev = steps[rec.Step-1].Name
		}
		r.announce(rec, lp, dec, prev)
		t := triggerFrom(dec, "breach")
		t.Reason = fmt.Sprintf("while step %s/%s waited for approval: %s", stageName, step, dec.Reason)
		t.Stage, t.Step = stageName, prev
		return now, r.breach(rec, lp, now, t)
	}
	if next := now.Add(r.cfg.interval); next.Before(at) {
		return next, nil
	}
	return at, nil
}

func (r *Runner) promote(rec *state.Record, lp *loop, now time.Time, step Step, steps []Step, nstages int) (time.Time, error) {
	lp.endStep(nil)
	r.note(rec, now, "step", step.Name, fmt.Sprintf("promoted at exposure %s", percent(step.Exposure)))
	rec.Step++
	rec.Applied = false
	rec.StepStart, rec.BakeStart = time.Time{}, time.Time{}
	if rec.Step >= len(steps) {
		return r.stageDone(rec, now, nstages)
	}
	return now, nil
}

func (r *Runner) stageDone(rec *state.Record, now time.Time, nstages int) (time.Time, error) {
	name := r.stageName(rec)
	last := rec.Stage == nstages-1
	if !last {
		r.tick(rec, now, ItemStagingFirst, "stage "+name+" deployed first")
		r.tick(rec, now, ItemStagingVerified, "stage "+name+" healthy through every step's bake")
	} else if isProduction(rec.Release.Environment) {
		r.tick(rec, now, ItemProduction, fmt.Sprintf("deployed to %s at exposure %s", name, percent(rec.Exposure)))
	}
	r.note(rec, now, "stage", name, "stage complete")
	r.emit(rec, Event{Kind: EventPhase, Message: "stage " + name + " complete"})
	rec.Stage++
	rec.Step = 0
	if rec.Stage < nstages {
		// Exposure is the share of the stage's own users: the next stage
		// starts with none on the new version.
		rec.Exposure = 0
		rec.BakeStart = time.Time{}
	}
	if rec.Stage >= nstages {
		rec.Stage = nstages - 1
		rec.Step = -1 // all steps done; Step is only an index while deploying
		rec.Phase = string(PhaseVerify)
		r.note(rec, now, "phase", string(PhaseVerify), "")
	}
	return now, nil
}

func (r *Runner) currentStepName(rec *state.Record, lp *loop) string {
	if rec.Step < 0 {
		return ""
	}
	var plans [][]Step
	var err error
	if lp != nil {
		plans, err = lp.plans(r.deployment(rec))
	} else {
		plans, err = r.plans(context.Background(), r.deployment(rec))
	}
	if err != nil || rec.Stage >= len(plans) || rec.Step >= len(plans[rec.Stage]) {
		return ""
	}
	return plans[rec.Stage][rec.Step].Name
}
