package deploy

import (
	"fmt"
	"time"

	"github.com/deploykit/deploy/state"
)

// A release waits for a person in four cases (state.WaitKind): a step's
// approval, a pause, an inconclusive analysis, and after an abort. The
// wait is in the record (Record.Waiting), so that a page can show it and
// any process can decide (decisions.go); the holder carries the decisions
// out here, at its next round, once each.

// wait makes the release wait for w, noting and announcing it.
func (r *Runner) wait(rec *state.Record, now time.Time, w *state.Wait) {
	w.Since = now
	if w.Stage == "" {
		w.Stage = r.stageName(rec)
	}
	rec.Waiting = w
	detail := w.Reason
	if !w.Until.IsZero() {
		detail += fmt.Sprintf(" (until %s)", w.Until.Format(time.RFC3339))
	} else if w.Kind != state.WaitApproval {
		detail += " (until a person decides)"
	}
	r.note(rec, now, state.EntryWait, state.OutcomeWaiting, string(w.Kind), detail)
	c := *w.Clone()
	r.emit(rec, Event{Kind: EventWaiting, Step: w.StepName, Wait: &c, Message: fmt.Sprintf("waiting for %s at step %s: %s", w.Kind, w.StepName, detail)})
}

// endWait ends the release's wait, noting why.
func (r *Runner) endWait(rec *state.Record, now time.Time, why string) {
	w := rec.Waiting
	if w == nil {
		return
	}
	rec.Waiting = nil
	r.note(rec, now, state.EntryWait, state.OutcomeDone, string(w.Kind), why)
}

// approvedStep reports whether a person approved rec's current step in
// this attempt (Runner.Approve), and by whom.
func (r *Runner) approvedStep(rec *state.Record) (state.Decision, bool) {
	stage := r.stageName(rec)
	for _, d := range rec.Decisions {
		if d.Kind == state.DecisionApprove && !d.Pending() && d.Attempt == rec.Attempt && d.Stage == stage && d.Step == rec.Step {
			return d, true
		}
	}
	return state.Decision{}, false
}

// skippedStep reports whether a person skipped the analysis of rec's
// current step in this attempt (Runner.Skip).
func (r *Runner) skippedStep(rec *state.Record) (state.Decision, bool) {
	stage := r.stageName(rec)
	for _, d := range rec.Decisions {
		if d.Kind == state.DecisionSkip && !d.Pending() && d.Attempt == rec.Attempt && d.Stage == stage && d.Step == rec.Step {
			return d, true
		}
	}
	return state.Decision{}, false
}

// takeDecisions carries out, in order, the decisions people wrote into rec
// since the holder last looked: each once (Taken is set), noted in the
// timeline with who and why, and announced. One that no longer applies —
// the release moved on meanwhile — is noted as ignored.
func (r *Runner) takeDecisions(rec *state.Record, lp *loop, now time.Time) {
	for i := range rec.Decisions {
		d := &rec.Decisions[i]
		if !d.Pending() {
			continue
		}
		d.Taken = now
		outcome, err := r.carryOut(rec, lp, now, *d)
		kind := state.OutcomeDone
		if err != nil {
			kind, outcome = state.OutcomeIgnored, "ignored: "+err.Error()
		}
		d.Outcome = outcome
		detail := "by " + d.By
		if d.Reason != "" {
			detail += ": " + d.Reason
		}
		detail += " — " + outcome
		name := string(d.Kind)
		if d.Full {
			name += " (full)"
		}
		r.note(rec, now, state.EntryDecision, kind, name, detail)
		c := *d
		r.emit(rec, Event{Kind: EventDecision, Step: r.currentStepName(rec), Decision: &c, Message: fmt.Sprintf("%s %s", name, detail)})
	}
}

// carryOut does what decision d asks, and says what came of it.
func (r *Runner) carryOut(rec *state.Record, lp *loop, now time.Time, d state.Decision) (string, error) {
	if d.Attempt != rec.Attempt && d.Kind != state.DecisionRetry {
		return "", fmt.Errorf("taken for attempt %d; the release is at attempt %d", d.Attempt, rec.Attempt)
	}
	check := d
	if check.Kind != state.DecisionApprove && check.Kind != state.DecisionSkip {
		check.Step = rec.Step
	}
	if err := applies(rec, check); err != nil {
		return "", err
	}
	w := rec.Waiting
	switch d.Kind {
	case state.DecisionApprove:
		r.endWait(rec, now, "approved by "+d.By)
		return fmt.Sprintf("step %d (%s) approved", d.Step, w.StepName), nil
	case state.DecisionPromote:
		if d.Full {
			rec.Full = true
			r.stopRuns(rec, now, "full promotion by "+d.By)
		}
		switch {
		case w != nil && w.Kind == state.WaitPause:
			w.Until = now // the step's hold ends the pause at its next look
			w.Reason = "promoted by " + d.By
		case w != nil && w.Kind == state.WaitInconclusive:
			r.acceptRun(rec, w, d.By)
			r.endWait(rec, now, "promoted by "+d.By)
		}
		if d.Full {
			return "promoted fully: the remaining steps' pauses and analyses are skipped", nil
		}
		return fmt.Sprintf("promoted past step %d (%s)", w.Step, w.StepName), nil
	case state.DecisionAbort:
		rec.Waiting = nil
		r.stopRuns(rec, now, "aborted by "+d.By)
		lp.endStep(nil)
		reason := "aborted by " + d.By
		if d.Reason != "" {
			reason += ": " + d.Reason
		}
		r.startRollback(lp.phaseCtx, rec, now, &state.Trigger{Kind: state.TriggerAbort, Reason: reason}, RolledBack)
		return "rolling back; the release stays open for Retry", nil
	case state.DecisionRetry:
		r.retry(rec, lp, now)
		return fmt.Sprintf("attempt %d starts from the first step of stage %s", rec.Attempt+1, r.stageName(rec)), nil
	case state.DecisionSkip:
		for i := len(rec.Analyses) - 1; i >= 0; i-- {
			run := &rec.Analyses[i]
			if run.Attempt != rec.Attempt || run.Kind != state.AnalysisInline || run.Stage != d.Stage || run.Step != d.Step {
				continue
			}
			if run.Phase == state.AnalysisInconclusive && !run.Accepted {
				run.Accepted = true
				run.Reason += "; skipped by " + d.By
				if w != nil && w.Kind == state.WaitInconclusive {
					r.endWait(rec, now, "analysis skipped by "+d.By)
				}
			}
			r.stopRun(rec, now, i, state.AnalysisSkipped, "skipped by "+d.By)
			return fmt.Sprintf("analysis %s of step %d skipped", run.Name, d.Step), nil
		}
		return fmt.Sprintf("step %d's analysis will be skipped", d.Step), nil
	}
	return "", fmt.Errorf("unknown decision %q", d.Kind)
}

// acceptRun marks the inconclusive run w waits on as promoted past.
func (r *Runner) acceptRun(rec *state.Record, w *state.Wait, by string) {
	for i := len(rec.Analyses) - 1; i >= 0; i-- {
		run := &rec.Analyses[i]
		if run.Attempt == rec.Attempt && run.Name == w.Analysis && run.Phase == state.AnalysisInconclusive && !run.Accepted {
			run.Accepted = true
			run.Reason += "; promoted by " + by
			return
		}
	}
}

// stopRuns ends the current attempt's runs still going, as skipped.
func (r *Runner) stopRuns(rec *state.Record, now time.Time, why string) {
	for i := range rec.Analyses {
		if rec.Analyses[i].Attempt == rec.Attempt && !rec.Analyses[i].Phase.Done() {
			r.stopRun(rec, now, i, state.AnalysisSkipped, why)
		}
	}
}

// retry starts an aborted release again, from the first step of the stage
// it was aborted in, as a new attempt: fresh analysis runs and counters,
// no trigger, no rollback; the history stays.
func (r *Runner) retry(rec *state.Record, lp *loop, now time.Time) {
	rec.Attempt++
	rec.Waiting = nil
	rec.Phase = PhaseDeploy
	rec.Step = 0
	rec.Applied, rec.Applying = false, false
	rec.StepStart, rec.BakeStart = time.Time{}, time.Time{}
	rec.Steps = nil
	rec.Exposure = 0
	rec.Trigger = nil
	rec.RollbackReason, rec.Error = "", ""
	rec.RollbackStart = time.Time{}
	rec.RollbackFrom = len(rec.RollbackSteps)
	rec.Outcome = ""
	rec.Counters = state.Counters{}
	rec.Windows = nil
	rec.Full = false
	lp.endStep(nil)
	r.note(rec, now, state.EntryPhase, state.OutcomeStarted, string(PhaseDeploy), fmt.Sprintf("attempt %d", rec.Attempt+1))
}

// rollbackDone ends a rollback that restored the previous version (or
// could not show it did: unverified): an abort keeps the release open,
// waiting for Retry; any other rollback goes on to communicate outcome.
func (r *Runner) rollbackDone(rec *state.Record, now time.Time, outcome Status) {
	if rec.Trigger != nil && rec.Trigger.Kind == state.TriggerAbort {
		reason := "rolled back after the abort"
		if outcome == RollbackUnverified {
			reason += " (not verified: " + rec.Error + ")"
			rec.Error = ""
		}
		r.wait(rec, now, &state.Wait{Kind: state.WaitAborted, Step: rec.Step, StepName: r.currentStepName(rec), Reason: reason + "; Retry starts the stage again, Rollback ends the release"})
		return
	}
	r.toCommunicate(rec, now, outcome, "")
}

// endAborted ends a release that waits after an abort (Runner.Rollback,
// or a cancelled Run): it is rolled back, and reported so.
func (r *Runner) endAborted(rec *state.Record, now time.Time, why string) {
	r.endWait(rec, now, why)
	r.toCommunicate(rec, now, rec.Outcome, "")
}
