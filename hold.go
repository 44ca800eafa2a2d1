package deploy

import (
	"context"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/deploykit/deploy/state"
)

// A step is held — not promoted — while its inline analysis, the
// post-promotion analysis or its pause last; the step to promote waits
// for its pre-promotion analysis before it is applied; a background
// analysis runs from its starting step to the stage's last. This file
// decides those holds; analysis_run.go measures, waits.go waits.

func earliest(a, b time.Time) time.Time {
	switch {
	case a.IsZero():
		return b
	case b.IsZero() || a.Before(b):
		return a
	}
	return b
}

// isPromotion reports whether rec's current step is the promotion: the
// last step of the last stage.
func (r *Runner) isPromotion(rec *state.Record, steps []Step, nstages int) bool {
	return rec.Stage == nstages-1 && rec.Step == len(steps)-1
}

// holdsAtPromotion reports whether a post-promotion analysis holds rec's
// current step.
func (r *Runner) holdsAtPromotion(rec *state.Record, steps []Step, nstages int) bool {
	return r.cfg.postPromo != nil && !rec.Full && r.isPromotion(rec, steps, nstages)
}

// backgroundEnds reports whether a background run ends at rec's current
// step (the stage's last), so that the step must be judged before it is
// promoted.
func (r *Runner) backgroundEnds(rec *state.Record, steps []Step) bool {
	return r.cfg.background != nil && rec.Step == len(steps)-1 && r.findRun(rec, state.AnalysisBackground, 0) >= 0
}

// background advances the stage's background analysis: it starts once the
// starting step was applied and measures at its own times until the
// stage's last step is promoted (hold ends it). stop is set when the
// release cannot go on now: the run failed (a rollback started) or is
// inconclusive (it waits for a person); next is when to look again.
func (r *Runner) background(ctx context.Context, rec *state.Record, lp *loop, now time.Time, steps []Step, step Step) (next time.Time, stop bool, err error) {
	if r.cfg.background == nil || rec.Full {
		return time.Time{}, false, nil
	}
	i := r.findRun(rec, state.AnalysisBackground, 0)
	if i < 0 {
		if rec.Step < r.cfg.startingAt || rec.Step == r.cfg.startingAt && !rec.Applied {
			return time.Time{}, false, nil // nothing measured before the starting step
		}
		i = r.startRun(rec, now, r.cfg.background, state.AnalysisBackground, step.Name)
	}
	return r.runAnalysis(ctx, rec, lp, now, i, r.cfg.background)
}

// runAnalysis advances run i and acts on its result: a run still going or
// successful lets the release go on (next is when it measures again); a
// failed one rolls back, an inconclusive one waits for a person or rolls
// back (stop).
func (r *Runner) runAnalysis(ctx context.Context, rec *state.Record, lp *loop, now time.Time, i int, a *Analysis) (time.Time, bool, error) {
	next := r.advanceRun(ctx, rec, lp, i, a, now)
	run := &rec.Analyses[i]
	if !run.Phase.Done() || runOK(run) {
		return next, false, nil
	}
	return r.runFailed(rec, lp, now, run, a)
}

// runFailed acts on a run that ended other than successful.
func (r *Runner) runFailed(rec *state.Record, lp *loop, now time.Time, run *state.AnalysisRun, a *Analysis) (time.Time, bool, error) {
	kind := state.TriggerBreach
	switch run.Phase {
	case state.AnalysisInconclusive:
		if a.OnInconclusive == InconclusivePause {
			if w := rec.Waiting; w == nil || w.Kind != state.WaitInconclusive || w.Analysis != run.Name {
				r.wait(rec, now, &state.Wait{Kind: state.WaitInconclusive, Step: rec.Step, StepName: r.currentStepName(rec), Analysis: run.Name,
					Reason: fmt.Sprintf("%s analysis %s was inconclusive: %s; Promote goes on, Abort rolls back", run.Kind, run.Name, run.Reason)})
			}
			return now.Add(r.cfg.interval), true, nil
		}
		kind = state.TriggerInconclusive
	case state.AnalysisError:
		kind = state.TriggerSource
	}
	t := &state.Trigger{Kind: kind, Reason: fmt.Sprintf("%s analysis %s %s at step %s: %s", run.Kind, run.Name, run.Phase, run.StepName, run.Reason)}
	for _, m := range run.Metrics {
		if m.Phase == run.Phase && !m.DryRun {
			t.Metric = m.Name
			if n := len(m.Measurements); n > 0 && m.Measurements[n-1].Value != nil {
				v := *m.Measurements[n-1].Value
				t.Observed = &v
			}
			break
		}
	}
	return now, true, r.breach(rec, lp, now, t)
}

// stepAnalyses advances the analyses of rec's applied step: the
// background run, the step's inline run (started with the step) and, at
// the promotion, the post-promotion run.
func (r *Runner) stepAnalyses(ctx context.Context, rec *state.Record, lp *loop, now time.Time, step Step, steps []Step, nstages int) (time.Time, bool, error) {
	next, stop, err := r.background(ctx, rec, lp, now, steps, step)
	if stop || err != nil {
		return next, stop, err
	}
	if step.Analysis != nil && !rec.Full {
		n, stop, err := r.stepRun(ctx, rec, lp, now, step.Analysis, state.AnalysisInline, step.Name)
		if stop || err != nil {
			return n, stop, err
		}
		next = earliest(next, n)
	}
	if r.holdsAtPromotion(rec, steps, nstages) {
		n, stop, err := r.stepRun(ctx, rec, lp, now, r.cfg.postPromo, state.AnalysisPostPromotion, step.Name)
		if stop || err != nil {
			return n, stop, err
		}
		next = earliest(next, n)
	}
	return next, false, nil
}

// stepRun advances the run of a bound to rec's current step, starting it
// the first time (skipped at once if a person skipped the step's analysis).
func (r *Runner) stepRun(ctx context.Context, rec *state.Record, lp *loop, now time.Time, a *Analysis, kind state.AnalysisKind, stepName string) (time.Time, bool, error) {
	i := r.findRun(rec, kind, rec.Step)
	if i < 0 {
		i = r.startRun(rec, now, a, kind, stepName)
		if d, ok := r.skippedStep(rec); ok && kind == state.AnalysisInline {
			r.stopRun(rec, now, i, state.AnalysisSkipped, "skipped by "+d.By)
		}
	}
	return r.runAnalysis(ctx, rec, lp, now, i, a)
}

// holdFor makes rec's step wait, before it is applied, for a run of a:
// held is set until the run succeeded.
func (r *Runner) holdFor(ctx context.Context, rec *state.Record, lp *loop, now time.Time, a *Analysis, kind state.AnalysisKind, stepName string) (next time.Time, held bool, err error) {
	next, stop, err := r.stepRun(ctx, rec, lp, now, a, kind, stepName)
	if stop || err != nil {
		return next, true, err
	}
	if i := r.findRun(rec, kind, rec.Step); i >= 0 && !rec.Analyses[i].Phase.Done() {
		return next, true, nil
	}
	return time.Time{}, false, nil
}

// runDone reports whether the run of kind for rec's step is over.
func (r *Runner) runDone(rec *state.Record, kind state.AnalysisKind) bool {
	i := r.findRun(rec, kind, rec.Step)
	return i >= 0 && rec.Analyses[i].Phase.Done()
}

// holding reports whether rec's step was already held after its bake (a
// pause, or an analysis still running): its healthy verdict is noted once.
func (r *Runner) holding(rec *state.Record, step Step) bool {
	if w := rec.Waiting; w != nil && w.Step == rec.Step {
		return true
	}
	n := len(rec.Timeline)
	if n == 0 {
		return false
	}
	// The healthy verdict was noted already if an entry of this step's
	// hold follows it: the timeline says.
	for i := n - 1; i >= 0 && i >= n-64; i-- {
		e := rec.Timeline[i]
		if e.Kind == state.EntryVerdict && e.Name == step.Name && e.Outcome == state.OutcomeHealthy {
			return true
		}
		if e.Kind == state.EntryStep && e.Name == step.Name {
			return false
		}
	}
	return false
}

// hold promotes rec's baked step unless something holds it: its inline or
// post-promotion analysis still running, its pause, or a background run
// that ends here and did not succeed. next is when to look again while
// held.
func (r *Runner) hold(ctx context.Context, rec *state.Record, lp *loop, now time.Time, step Step, steps []Step, nstages int, next time.Time) (time.Time, error) {
	if step.Analysis != nil && !rec.Full && !r.runDone(rec, state.AnalysisInline) {
		return next, nil
	}
	if r.holdsAtPromotion(rec, steps, nstages) && !r.runDone(rec, state.AnalysisPostPromotion) {
		return next, nil
	}
	stageName := r.stageName(rec)
	w := rec.Waiting
	switch {
	case w != nil && w.Kind == state.WaitPause && w.Step == rec.Step && w.Stage == stageName:
		if !w.Until.IsZero() && !now.Before(w.Until) {
			why := w.Reason
			if why == "" || why == "pause after step "+step.Name {
				why = fmt.Sprintf("pause of %v over", w.Until.Sub(w.Since).Round(time.Second))
			}
			r.endWait(rec, now, why)
		} else {
			return earliest(w.Until, now.Add(r.cfg.interval)), nil
		}
	case step.Pause != nil && !rec.Full:
		var until time.Time
		if step.Pause.Duration > 0 {
			until = now.Add(step.Pause.Duration)
		}
		r.wait(rec, now, &state.Wait{Kind: state.WaitPause, Step: rec.Step, StepName: step.Name, Until: until, Reason: "pause after step " + step.Name})
		return earliest(until, now.Add(r.cfg.interval)), nil
	}
	if r.backgroundEnds(rec, steps) && !rec.Full {
		i := r.findRun(rec, state.AnalysisBackground, 0)
		r.stopRun(rec, now, i, "", "")
		if run := &rec.Analyses[i]; !runOK(run) {
			n, _, err := r.runFailed(rec, lp, now, run, r.cfg.background)
			return n, err
		}
	}
	return r.promote(rec, lp, now, step, steps, nstages)
}

// approval makes rec's step wait for its approval: a person's
// (Runner.Approve, by one of the step's approvers), or the WithApproval
// gate's. waiting is set while it waits (next is when to look again); a
// gate's refusal starts a rollback.
func (r *Runner) approval(ctx context.Context, rec *state.Record, lp *loop, now time.Time, d *Deployment, step Step, steps []Step, stageName string) (next time.Time, waiting bool, err error) {
	if dec, ok := r.approvedStep(rec); ok {
		r.endWait(rec, now, "approved by "+dec.By)
		detail := "step " + step.Name + " approved by " + dec.By
		if dec.Reason != "" {
			detail += ": " + dec.Reason
		}
		r.note(rec, now, state.EntryGate, state.OutcomeApproved, "approval", detail)
		return now, false, nil
	}
	at := now.Add(r.cfg.interval) // decisions from another process are read each round
	if r.cfg.approval != nil {
		actx, span := lp.tracer().Start(ctx, "deploy.gate", traceGate("approval"))
		err := boundedErr(actx, "approval gate "+nameOf(r.cfg.approval), r.cfg.timeouts.Check, func(ctx context.Context) error { return r.cfg.approval.Check(ctx, d) })
		span.End()
		retry, ok := IsRetry(err)
		switch {
		case ok:
			r.noteOnce(rec, now, state.EntryGate, state.OutcomeWaiting, "approval", err.Error())
			at = earliest(at, retry)
		case err != nil:
			r.endWait(rec, now, "refused by the approval gate")
			return now, true, r.breach(rec, lp, now, &state.Trigger{Kind: state.TriggerManual, Reason: "approval refused for step " + step.Name + ": " + err.Error()})
		default:
			r.endWait(rec, now, "approved by the approval gate "+nameOf(r.cfg.approval))
			r.note(rec, now, state.EntryGate, state.OutcomeApproved, "approval", "step "+step.Name)
			return now, false, nil
		}
	}
	if w := rec.Waiting; w == nil || w.Kind != state.WaitApproval || w.Step != rec.Step || w.Stage != stageName {
		r.wait(rec, now, &state.Wait{Kind: state.WaitApproval, Step: rec.Step, StepName: step.Name, Approvers: step.Approvers, Reason: "approval of step " + step.Name})
	}
	next, err = r.watchWhileWaiting(ctx, rec, lp, now, at, steps, stageName, step.Name)
	return next, true, err
}

func traceGate(name string) trace.SpanStartOption {
	return trace.WithAttributes(attribute.String("deploy.gate", name))
}
