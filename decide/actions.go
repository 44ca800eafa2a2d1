package decide

import (
	"fmt"
	"strconv"

	"github.com/deploykit/deploy/state"
)

// Action is a decision the page offers.
type Action string

// Actions, as they appear in URLs and JSON.
const (
	// Approve approves the step the release waits at (Runner.Approve).
	Approve Action = "approve"
	// Promote ends a pause or an inconclusive wait: on to the next step
	// (Runner.Promote).
	Promote Action = "promote"
	// PromoteFull promotes to full exposure, skipping the remaining steps
	// and analyses (Runner.Promote with full).
	PromoteFull Action = "promote-full"
	// Skip skips the current step's analysis (Runner.Skip).
	Skip Action = "skip"
	// Abort rolls back and keeps the release open for Retry (Runner.Abort).
	Abort Action = "abort"
	// Retry restarts an aborted release from its first step (Runner.Retry).
	Retry Action = "retry"
	// Rollback rolls the release back and ends it (Runner.Rollback).
	Rollback Action = "rollback"
)

var actions = map[Action]struct {
	label  string
	danger bool
	done   string
}{
	Approve:     {"Approve", false, "approved"},
	Promote:     {"Promote", false, "promoted"},
	PromoteFull: {"Promote fully", false, "promoted fully"},
	Skip:        {"Skip analysis", false, "skipped the analysis of"},
	Abort:       {"Abort", true, "aborted"},
	Retry:       {"Retry", false, "retried"},
	Rollback:    {"Roll back", true, "rolled back"},
}

// Valid reports whether a is one of the actions.
func (a Action) Valid() bool { _, ok := actions[a]; return ok }

// waitingFor says what rec waits for, if anything: Record.Waiting, or,
// for an approval gate (WithApproval) that asked the runner to wait, the
// approval of the current step as the timeline shows it.
func waitingFor(rec *state.Record) (state.Wait, bool) {
	if rec.Waiting != nil {
		return *rec.Waiting, true
	}
	if rec.Status.Final() || rec.Phase != state.PhaseDeploy || rec.Applied || rec.Applying {
		return state.Wait{}, false
	}
	// The runner notes an approval gate's wait once, as the last gate
	// entry of the step ("approval", outcome waiting), and its approval as
	// outcome approved.
	for i := len(rec.Timeline) - 1; i >= 0; i-- {
		e := rec.Timeline[i]
		if e.Kind == state.EntryStep || e.Kind == state.EntryStage {
			break
		}
		if e.Kind == state.EntryGate && e.Name == "approval" {
			if e.Outcome == state.OutcomeWaiting {
				w := state.Wait{Kind: state.WaitApproval, Step: rec.Step, Since: e.At, Reason: e.Detail}
				if rec.Step < len(rec.Steps) {
					w.StepName = rec.Steps[rec.Step]
				}
				return w, true
			}
			break
		}
	}
	return state.Wait{}, false
}

// offers returns the actions that apply to rec now, as the runner's
// decisions define them.
func offers(rec *state.Record) []Action {
	if rec.Status.Final() || rec.RollbackRequest != nil {
		return nil
	}
	if w, ok := waitingFor(rec); ok && w.Kind == state.WaitAborted {
		// Rolled back and kept open: the phase is rollback.
		return []Action{Retry, Rollback}
	}
	if rec.Phase == state.PhaseRollback || rec.Phase == state.PhaseCommunicate {
		return nil
	}
	if w, ok := waitingFor(rec); ok {
		switch w.Kind {
		case state.WaitApproval:
			return []Action{Approve, Abort, Rollback}
		case state.WaitPause, state.WaitInconclusive:
			return []Action{Promote, PromoteFull, Abort, Rollback}
		}
	}
	switch rec.Phase {
	case state.PhaseDeploy:
		a := []Action{PromoteFull}
		if analysing(rec) {
			a = append(a, Skip)
		}
		return append(a, Abort, Rollback)
	case state.PhasePreflight, state.PhaseVerify:
		return []Action{Abort, Rollback}
	}
	return []Action{Rollback}
}

// analysing reports whether an inline analysis of rec's current step runs.
func analysing(rec *state.Record) bool {
	for _, a := range rec.Analyses {
		if a.Kind == state.AnalysisInline && a.Step == rec.Step && a.Attempt == rec.Attempt && a.Phase == state.AnalysisRunning {
			return true
		}
	}
	return false
}

// stepOf is the step a decision on rec is for: its index in the current
// stage's plan, from 0, as the runner counts it.
func stepOf(rec *state.Record) int {
	if w, ok := waitingFor(rec); ok {
		return w.Step
	}
	return rec.Step
}

// stepName names step of rec for people: "2 (50%)".
func stepName(rec *state.Record, step int) string {
	if step < 0 {
		return "none (every step done)"
	}
	s := strconv.Itoa(step + 1)
	if step >= 0 && step < len(rec.Steps) {
		s += " (" + rec.Steps[step] + ")"
	}
	return s
}

// applies says why action a, taken at step, does not apply to rec, or nil.
func applies(rec *state.Record, a Action, step int) error {
	if rec.Status.Final() {
		return fmt.Errorf("release %s is already %s", rec.ID, rec.Status)
	}
	if step != stepOf(rec) {
		return fmt.Errorf("the decision is for step %s, and release %s is at step %s now: reload the page", stepName(rec, step), rec.ID, stepName(rec, stepOf(rec)))
	}
	for _, o := range offers(rec) {
		if o == a {
			return nil
		}
	}
	what := "waiting for nothing a person decides"
	if w, ok := waitingFor(rec); ok {
		what = "waiting for " + string(w.Kind)
	}
	return fmt.Errorf("%s does not apply to release %s now: it is %s (phase %s)", a, rec.ID, what, rec.Phase)
}
