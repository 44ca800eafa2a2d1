package deploy

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/deploykit/deploy/rollback"
	"github.com/deploykit/deploy/state"
)

// deployStep drives the deploy phase by one action: wait for an approval,
// apply the next step, or observe and judge the step being baked.
func (r *Runner) deployStep(ctx context.Context, rec *state.Record, lp *loop, now time.Time) (time.Time, error) {
	d := r.deployment(rec)
	plans, err := lp.plans(d)
	if err != nil {
		r.fail(ctx, rec, now, err)
		return now, nil
	}
	if rec.Stage >= len(plans) {
		return now, corrupt(rec, "stage", rec.Stage, fmt.Sprintf("the plan has %d stage(s)", len(plans)))
	}
	steps := plans[rec.Stage]
	if err := r.checkPlanDrift(rec, steps); err != nil {
		r.fail(ctx, rec, now, err)
		return now, nil
	}
	if rec.Step >= len(steps) {
		return r.stageDone(rec, now, len(plans))
	}
	step := steps[rec.Step]
	stageName := r.stageName(rec)
	sctx := lp.stepSpan(rec, step)
	d.Stage, d.Step = r.stages(rec.Release)[rec.Stage], rec.Step

	if !rec.Applied {
		if rec.Full && !rec.Applying && rec.Step < len(steps)-1 {
			// A full promotion goes straight to the stage's last step.
			r.note(rec, now, state.EntryStep, state.OutcomeSkipped, step.Name, fmt.Sprintf("full promotion: steps %d to %d skipped", rec.Step, len(steps)-2))
			lp.endStep(nil)
			rec.Step = len(steps) - 1
			rec.StepStart, rec.BakeStart = time.Time{}, time.Time{}
			step = steps[rec.Step]
			sctx = lp.stepSpan(rec, step)
			d.Step = rec.Step
		}
		// The background analysis goes on between steps, and while a
		// step waits for its approval or its pre-promotion analysis.
		bgNext, stop, err := r.background(sctx, rec, lp, now, steps, step)
		if stop || err != nil {
			if err == nil && rec.Phase == PhaseDeploy {
				return r.watchWhileWaiting(sctx, rec, lp, now, bgNext, steps, stageName, step.Name)
			}
			return bgNext, err
		}
		if step.Approval && !rec.Applying {
			next, waiting, err := r.approval(sctx, rec, lp, now, d, step, steps, stageName)
			if err != nil || waiting {
				return earliest(next, bgNext), err
			}
		}
		if r.isPromotion(rec, steps, len(plans)) && r.cfg.prePromo != nil && !rec.Applying && !rec.Full {
			next, held, err := r.holdFor(sctx, rec, lp, now, r.cfg.prePromo, state.AnalysisPrePromotion, step.Name)
			if err != nil || held {
				if err == nil && rec.Phase == PhaseDeploy {
					next, err = r.watchWhileWaiting(sctx, rec, lp, now, earliest(next, bgNext), steps, stageName, step.Name)
				}
				return next, err
			}
		}
		if rec.StepStart.IsZero() {
			rec.StepStart = now
		}
		// Say in the store that the step is being applied, before applying
		// it: a manual rollback then waits for the Apply instead of rolling
		// back alongside it, and counts the step as possibly deployed.
		rec.Applying = true
		err = r.effect(sctx, rec, lp, effectApply, "step "+stageName+"/"+step.Name+": Apply", r.cfg.policy.Deadline(),
			func(ctx context.Context) error { return step.Apply(ctx, d) })
		if errors.Is(err, errRollbackRequested) {
			// Asked to roll back while saving: do that instead of applying.
			rec.Applying = false
			r.takeRequest(ctx, rec, now)
			return now, nil
		}
		if mustStop(err) {
			return now, err
		}
		rec.Applying = false
		now = time.Now() // Apply may take a while: time what follows from its end
		var te *TimeoutError
		abandoned := errors.As(err, &te)
		if abandoned {
			// Fence the abandoned Apply off: what follows runs under a new
			// token, so a target that keeps the token refuses the Apply's
			// late change.
			rec.Token++
			lp.token = rec.Token
			r.note(rec, now, state.EntryStep, state.OutcomeAbandoned, step.Name, fmt.Sprintf("Apply still running after the progress deadline under token %d; what follows runs under token %d, which fenced targets hold against it; elsewhere its effect may land after this", rec.Token-1, rec.Token))
		}
		if rec.RollbackRequest != nil {
			// Asked to roll back while the step applied (its context was
			// cancelled): roll back whatever it exposed.
			rec.Exposure = max(rec.Exposure, step.Exposure)
			outcome, detail := state.OutcomeApplied, ""
			if err != nil {
				outcome, detail = state.OutcomeFailed, err.Error()
			}
			r.note(rec, now, state.EntryStep, outcome, step.Name, detail)
			r.takeRequest(ctx, rec, now)
			return now, nil
		}
		if err != nil {
			lp.stepError(err)
			lp.cause = err // errors.As reaches it through the release's error
			reason := fmt.Sprintf("step %s/%s failed to apply: %v", stageName, step.Name, err)
			if abandoned {
				reason = fmt.Sprintf("step %s/%s did not complete within the progress deadline %v; it may still take effect", stageName, step.Name, r.cfg.policy.Deadline())
			}
			var pe *PanicError
			if errors.As(err, &pe) {
				r.note(rec, now, state.EntryStep, state.OutcomeFailed, step.Name, panicDetail(pe))
			}
			// The step may have partly applied: the rollback must assume
			// its exposure.
			rec.Exposure = max(rec.Exposure, step.Exposure)
			return now, r.breach(rec, lp, now, &state.Trigger{Kind: state.TriggerError, Reason: reason})
		}
		rec.Applied = true
		rec.Exposure = step.Exposure
		rec.BakeStart = now
		r.note(rec, now, state.EntryStep, state.OutcomeApplied, step.Name, "")
		if r.listening() {
			r.emit(rec, Event{Kind: EventStep, Step: step.Name, Message: fmt.Sprintf("step %s applied: exposure %s, bake %v", step.Name, percent(step.Exposure), step.Bake)})
		}
		if step.Bake == 0 && step.Analysis == nil && step.Pause == nil && !r.holdsAtPromotion(rec, steps, len(plans)) && !r.backgroundEnds(rec, steps) {
			return r.promote(rec, lp, now, step, steps, len(plans))
		}
		// The step's analyses start now: their first measurements are
		// due at once.
		next, stop, err := r.stepAnalyses(sctx, rec, lp, now, step, steps, len(plans))
		if stop || err != nil {
			return next, err
		}
		if step.Bake == 0 {
			return r.hold(sctx, rec, lp, now, step, steps, len(plans), earliest(next, now.Add(r.cfg.interval)))
		}
		return earliest(next, now.Add(min(r.cfg.interval, step.Bake))), nil
	}

	// Baking: observe and judge.
	bakeDone := !now.Before(rec.BakeStart.Add(step.Bake))
	// A healthy look before the bake's end is not announced.
	dec, obs := r.judge(sctx, rec, lp, "bake", step.Name, rec.BakeStart, !bakeDone)
	// A step held after its bake (a pause, an analysis still running) is
	// watched every interval; only its first healthy look is announced.
	held := bakeDone && r.holding(rec, step)
	if dec.Verdict != rollback.Continue || bakeDone && !held {
		r.announce(rec, lp, dec, step.Name)
	}
	r.tick(rec, now, ItemMonitorDeploy, fmt.Sprintf("%d monitor(s) observed every %v while each step baked", len(r.cfg.monitors), r.cfg.interval))
	if dec.Verdict == rollback.Rollback {
		if w := rec.Waiting; w != nil {
			t := triggerFrom(dec, state.TriggerBreach)
			t.Reason = fmt.Sprintf("while step %s/%s waited for %s: %s", stageName, step.Name, w.Kind, dec.Reason)
			return now, r.breach(rec, lp, now, t)
		}
		return now, r.breach(rec, lp, now, triggerFrom(dec, state.TriggerBreach))
	}
	// The step's analyses measure at their own times, whatever the
	// policy's verdict: the policy is the guard rail.
	anext, stop, err := r.stepAnalyses(sctx, rec, lp, now, step, steps, len(plans))
	if stop || err != nil {
		return anext, err
	}
	switch dec.Verdict {
	case rollback.Continue:
		if bakeDone {
			if !held {
				r.noteObs(rec, now, state.EntryVerdict, state.OutcomeHealthy, step.Name, obs)
			}
			return r.hold(sctx, rec, lp, now, step, steps, len(plans), earliest(anext, now.Add(r.cfg.interval)))
		}
		r.point(rec, lp, now, step.Name, step.Bake, obs)
	case rollback.Wait:
		r.noteOnce(rec, now, state.EntryVerdict, state.OutcomePaused, step.Name, dec.Reason)
		if over := rec.BakeStart.Add(step.Bake).Add(r.cfg.policy.Deadline()); now.After(over) && rec.Waiting == nil {
			return now, r.breach(rec, lp, now, &state.Trigger{Kind: state.TriggerDeadline, Reason: fmt.Sprintf("step %s/%s made no progress within the progress deadline %v after its bake: %s", stageName, step.Name, r.cfg.policy.Deadline(), dec.Reason)})
		}
	}
	next := now.Add(r.cfg.interval)
	if end := rec.BakeStart.Add(step.Bake); dec.Verdict == rollback.Continue && end.After(now) && end.Before(next) {
		next = end
	}
	return earliest(next, anext), nil
}

// watchWhileWaiting keeps watching the users already on the new version
// while step waits (for an approval, a pre-promotion analysis, a person's
// decision) until at, as during a bake: a breach rolls
// back, naming the step that exposed them; the wait has no deadline of its
// own. It returns when to look again.
func (r *Runner) watchWhileWaiting(ctx context.Context, rec *state.Record, lp *loop, now, at time.Time, steps []Step, stageName, step string) (time.Time, error) {
	if rec.Exposure == 0 || len(r.cfg.monitors) == 0 {
		return at, nil
	}
	if rec.BakeStart.IsZero() {
		rec.BakeStart = now // the window of the wait
	}
	prev := ""
	if rec.Step > 0 {
		prev = steps[rec.Step-1].Name
	}
	dec, _ := r.judge(ctx, rec, lp, "bake", prev, rec.BakeStart, true) // announced only when it rolls back
	if dec.Verdict == rollback.Rollback {
		r.announce(rec, lp, dec, prev)
		t := triggerFrom(dec, state.TriggerBreach)
		what := "approval"
		if rec.Waiting != nil {
			what = string(rec.Waiting.Kind)
		}
		t.Reason = fmt.Sprintf("while step %s/%s waited for %s: %s", stageName, step, what, dec.Reason)
		t.Stage, t.Step = stageName, prev
		return now, r.breach(rec, lp, now, t)
	}
	if next := now.Add(r.cfg.interval); next.Before(at) {
		return next, nil
	}
	return at, nil
}

func (r *Runner) promote(rec *state.Record, lp *loop, now time.Time, step Step, steps []Step, nstages int) (time.Time, error) {
	// No entry of its own: the step's healthy verdict (or, for a step
	// without a bake, its being applied) and the next step's attempt say
	// it, and every step's history stays small.
	lp.endStep(nil)
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
	r.note(rec, now, state.EntryStage, state.OutcomeComplete, name, "")
	r.emit(rec, Event{Kind: EventPhase, Message: "stage " + name + " complete"})
	rec.Stage++
	rec.Step = 0
	rec.Steps = nil
	if rec.Stage < nstages {
		// Exposure is the share of the stage's own users: the next stage
		// starts with none on the new version.
		rec.Exposure = 0
		rec.BakeStart = time.Time{}
	}
	if rec.Stage >= nstages {
		rec.Stage = nstages - 1
		rec.Step = -1 // all steps done; Step is only an index while deploying
		rec.Phase = PhaseVerify
		r.note(rec, now, state.EntryPhase, state.OutcomeStarted, string(PhaseVerify), "")
	}
	return now, nil
}

// checkPlanDrift compares the stage's plan with the step names recorded
// when the stage started: a Resume under a changed strategy or configuration
// goes on only when the steps done and the step under way are the same
// steps; otherwise the release cannot tell what users have, and fails (and
// rolls back what may be deployed) with a reason that names the change.
// The first time, it records the names.
func (r *Runner) checkPlanDrift(rec *state.Record, steps []Step) error {
	if rec.Steps == nil {
		rec.Steps = make([]string, len(steps))
		for i, s := range steps {
			rec.Steps[i] = s.Name
		}
		return nil
	}
	upto := rec.Step
	if upto >= len(rec.Steps) {
		upto = len(rec.Steps) - 1
	}
	for i := 0; i <= upto; i++ {
		switch {
		case i >= len(steps):
			return fmt.Errorf("%w: the plan of stage %q changed since the release started: it has %d step(s) now, and step %d (%q) was under way", ErrInvalid, r.stageName(rec), len(steps), rec.Step, rec.Steps[rec.Step])
		case steps[i].Name != rec.Steps[i]:
			return fmt.Errorf("%w: the plan of stage %q changed since the release started: step %d was %q, now %q", ErrInvalid, r.stageName(rec), i, rec.Steps[i], steps[i].Name)
		}
	}
	if len(steps) != len(rec.Steps) {
		rec.Steps = rec.Steps[:0]
		for _, s := range steps {
			rec.Steps = append(rec.Steps, s.Name)
		}
	}
	return nil
}

func (r *Runner) currentStepName(rec *state.Record) string {
	if rec.Step < 0 || rec.Step >= len(rec.Steps) {
		return ""
	}
	return rec.Steps[rec.Step]
}
