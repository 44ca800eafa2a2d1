package decide

import (
	"fmt"
	"time"

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

// WaitKind says what a release waits for.
type WaitKind string

// What a release can wait for.
const (
	WaitApproval     WaitKind = "approval"
	WaitPause        WaitKind = "pause"
	WaitInconclusive WaitKind = "inconclusive"
	WaitAborted      WaitKind = "aborted"
)

// Waiting says what a release waits for, at which step (1 for the first of
// its stage) and since when.
type Waiting struct {
	Kind  WaitKind  `json:"kind"`
	Step  int       `json:"step"`
	Since time.Time `json:"since,omitzero"`
	Until time.Time `json:"until,omitzero"`
}

// waitingFor says what rec waits for, if anything.
func waitingFor(rec *state.Record) (Waiting, bool) {
	if rec.Status.Final() || rec.Phase != state.PhaseDeploy || rec.Applied || rec.Applying {
		return Waiting{}, false
	}
	// The runner notes an approval wait once, as the last gate entry of
	// the step (a gate entry "approval", outcome waiting), and an approved
	// one as outcome approved.
	for i := len(rec.Timeline) - 1; i >= 0; i-- {
		e := rec.Timeline[i]
		if e.Kind == state.EntryStep || e.Kind == state.EntryStage {
			break
		}
		if e.Kind == state.EntryGate && e.Name == "approval" {
			if e.Outcome == state.OutcomeWaiting {
				return Waiting{Kind: WaitApproval, Step: rec.Step + 1, Since: e.At}, true
			}
			break
		}
	}
	return Waiting{}, false
}

// offers returns the actions that apply to rec now.
func offers(rec *state.Record) []Action {
	if rec.Status.Final() || rec.Phase == state.PhaseRollback || rec.Phase == state.PhaseCommunicate || rec.RollbackRequest != nil {
		return nil
	}
	w, waiting := waitingFor(rec)
	switch {
	case waiting && w.Kind == WaitApproval:
		return []Action{Approve, Rollback}
	case waiting && (w.Kind == WaitPause || w.Kind == WaitInconclusive):
		return []Action{Promote, PromoteFull, Abort, Rollback}
	case waiting && w.Kind == WaitAborted:
		return []Action{Retry}
	}
	return []Action{Rollback}
}

// stepOf is the step a decision on rec is for: 1 for the first step of its
// stage.
func stepOf(rec *state.Record) int {
	if w, ok := waitingFor(rec); ok {
		return w.Step
	}
	return rec.Step + 1
}

// applies says why action a, taken at step, does not apply to rec, or nil.
func applies(rec *state.Record, a Action, step int) error {
	if rec.Status.Final() {
		return fmt.Errorf("release %s is already %s", rec.ID, rec.Status)
	}
	if step != stepOf(rec) {
		return fmt.Errorf("the decision is for step %d, and release %s is at step %d now: reload the page", step, rec.ID, stepOf(rec))
	}
	for _, o := range offers(rec) {
		if o == a {
			return nil
		}
	}
	what := "running"
	if w, ok := waitingFor(rec); ok {
		what = "waiting for " + string(w.Kind)
	}
	return fmt.Errorf("%s does not apply to release %s now: it is %s (%s)", a, rec.ID, what, rec.Phase)
}
