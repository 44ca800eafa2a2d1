package deploy

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/deploykit/deploy/state"
)

// The engine's invariants live here, as code that runs on every save (see
// Runner.save) and on every record the runner loads. A record that breaks
// one is never written: the runner stops with ErrInvariant (a bug in the
// engine) or, for a record read from the store, ErrCorrupt naming the
// field. The invariants on effects — no Apply after a rollback was
// recorded or requested, no rollback outside the rollback phase — are
// checked right before each effect by checkEffect (effect.go).

// checkRecord checks what must hold of any record, whatever came before.
func checkRecord(rec *state.Record) error {
	switch {
	case !rec.Phase.Valid():
		return corrupt(rec, "Phase", rec.Phase, "not a phase")
	case !validStatus(rec.Status):
		return corrupt(rec, "Status", rec.Status, "not a status")
	case rec.Stage < 0:
		return corrupt(rec, "Stage", rec.Stage, "negative")
	case rec.Step < -1:
		return corrupt(rec, "Step", rec.Step, "below -1")
	case rec.Step < 0 && rec.Phase == PhaseDeploy:
		return corrupt(rec, "Step", rec.Step, "a release being deployed is at a step")
	case math.IsNaN(rec.Exposure) || rec.Exposure < 0 || rec.Exposure > 1:
		return corrupt(rec, "Exposure", rec.Exposure, "outside [0, 1]")
	case rec.Phase == PhaseRollback && rec.Trigger == nil:
		return corrupt(rec, "Trigger", "nil", "a release rolling back must say why")
	case rec.Phase == PhaseCommunicate && !rec.Status.Final() && !rec.Outcome.Final():
		return corrupt(rec, "Outcome", rec.Outcome, "a release being reported must have a final outcome")
	case rec.Status.Final() && rec.Phase != PhaseCommunicate && rec.Phase != PhaseComplete:
		return corrupt(rec, "Phase", rec.Phase, "a "+string(rec.Status)+" release must be in communicate or complete")
	case rec.Status == Running && rec.Phase == PhaseComplete:
		return corrupt(rec, "Phase", rec.Phase, "a running release cannot be complete")
	case rec.Applying && rec.Phase != PhaseDeploy:
		return corrupt(rec, "Applying", true, "only a step of the deploy phase is applied")
	case rec.Step >= 0 && len(rec.Steps) > 0 && rec.Step > len(rec.Steps):
		return corrupt(rec, "Step", rec.Step, fmt.Sprintf("the stage has %d steps", len(rec.Steps)))
	case rec.Delivered < 0:
		return corrupt(rec, "Delivered", rec.Delivered, "negative")
	case rec.Attempt < 0:
		return corrupt(rec, "Attempt", rec.Attempt, "negative")
	case rec.RollbackFrom < 0 || rec.RollbackFrom > len(rec.RollbackSteps):
		return corrupt(rec, "RollbackFrom", rec.RollbackFrom, fmt.Sprintf("outside [0, %d] (the rollback steps)", len(rec.RollbackSteps)))
	}
	return checkWaits(rec)
}

// checkWaits checks what must hold of the waits, decisions and analysis
// runs of any record.
func checkWaits(rec *state.Record) error {
	if w := rec.Waiting; w != nil {
		switch {
		case !w.Kind.Valid():
			return corrupt(rec, "Waiting.Kind", w.Kind, "not a wait kind")
		case rec.Status.Final():
			return corrupt(rec, "Waiting", w.Kind, "a "+string(rec.Status)+" release waits for nothing")
		case w.Kind == state.WaitAborted && rec.Phase != PhaseRollback:
			return corrupt(rec, "Waiting.Kind", w.Kind, "an aborted release waits in the rollback phase, not "+string(rec.Phase))
		case w.Kind != state.WaitAborted && rec.Phase != PhaseDeploy:
			return corrupt(rec, "Waiting.Kind", w.Kind, "only a release being deployed waits for "+string(w.Kind)+", not one in "+string(rec.Phase))
		case w.Kind == state.WaitAborted && (rec.Trigger == nil || rec.Trigger.Kind != state.TriggerAbort):
			return corrupt(rec, "Waiting.Kind", w.Kind, "an aborted release has an abort trigger")
		case w.Kind != state.WaitAborted && rec.Applying:
			return corrupt(rec, "Applying", true, "no step is applied while the release waits for "+string(w.Kind))
		}
	}
	for i, d := range rec.Decisions {
		switch {
		case !d.Kind.Valid():
			return corrupt(rec, fmt.Sprintf("Decisions[%d].Kind", i), d.Kind, "not a decision kind")
		case d.By == "":
			return corrupt(rec, fmt.Sprintf("Decisions[%d].By", i), "", "a decision says who took it")
		case d.Attempt > rec.Attempt:
			return corrupt(rec, fmt.Sprintf("Decisions[%d].Attempt", i), d.Attempt, fmt.Sprintf("the release is at attempt %d", rec.Attempt))
		}
	}
	for i, run := range rec.Analyses {
		if !run.Phase.Valid() {
			return corrupt(rec, fmt.Sprintf("Analyses[%d].Phase", i), run.Phase, "not an analysis phase")
		}
		for j, m := range run.Metrics {
			f := func(name string) string { return fmt.Sprintf("Analyses[%d].Metrics[%d].%s", i, j, name) }
			switch {
			case !m.Phase.Valid():
				return corrupt(rec, f("Phase"), m.Phase, "not an analysis phase")
			case m.Count != m.Successful+m.Failed+m.Inconclusive || m.Successful < 0 || m.Failed < 0 || m.Inconclusive < 0:
				return corrupt(rec, f("Count"), m.Count, fmt.Sprintf("not the sum of %d successful, %d failed and %d inconclusive measurements", m.Successful, m.Failed, m.Inconclusive))
			case m.ConsecutiveErrors < 0 || m.ConsecutiveErrors > m.Errors:
				return corrupt(rec, f("ConsecutiveErrors"), m.ConsecutiveErrors, fmt.Sprintf("outside [0, %d] (the errors)", m.Errors))
			case m.ConsecutiveSuccesses < 0 || m.ConsecutiveSuccesses > m.Successful:
				return corrupt(rec, f("ConsecutiveSuccesses"), m.ConsecutiveSuccesses, fmt.Sprintf("outside [0, %d] (the successes)", m.Successful))
			case len(m.Measurements) > state.MeasurementsKept || len(m.Measurements) > m.Count+m.Errors:
				return corrupt(rec, f("Measurements"), len(m.Measurements), "more measurements kept than taken or than MeasurementsKept")
			case run.Phase.Done() && !m.Phase.Done():
				return corrupt(rec, f("Phase"), m.Phase, "a metric runs in a run that ended")
			}
		}
	}
	return nil
}

func validStatus(s state.Status) bool {
	switch s {
	case Running, Succeeded, RolledBack, RollbackUnverified, Failed, Blocked, Aborted, RollbackFailed:
		return true
	}
	return false
}

// corrupt is the ErrCorrupt of a record whose field breaks an invariant.
func corrupt(rec *state.Record, field string, value any, why string) error {
	return &CorruptError{ID: rec.ID, Field: field, Value: fmt.Sprint(value), Reason: why}
}

// CorruptError is a release record that breaks one of the engine's
// invariants: a damaged file, a hand edit, a record written by a buggy
// version. It matches ErrCorrupt and state.ErrCorrupt. The runner never acts
// on such a record; set it aside (state.SetAside where the store offers it)
// or fix the field it names.
type CorruptError struct {
	ID     string
	Field  string
	Value  string
	Reason string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("%v: release %s: field %s = %q: %s", ErrCorrupt, e.ID, e.Field, e.Value, e.Reason)
}

// Is makes a CorruptError match ErrCorrupt and state.ErrCorrupt.
func (e *CorruptError) Is(target error) bool {
	return target == ErrCorrupt || target == state.ErrCorrupt
}

// mark is what a transition check needs of the last record saved: a few
// numbers, not a copy of the record.
type mark struct {
	valid       bool
	phase       Phase
	status      Status
	stage, step int
	triggered   bool
	timeline    int
	rollback    int
	messages    int
	token       int64

	// What else a save would change, for same.
	delivered, windows, checklist int
	counters                      state.Counters
	applied, applying, request    bool
	exposure                      float64
	outcome                       Status
	lease                         time.Time

	// Waits, decisions and analysis runs.
	attempt, decisions, taken int
	waiting                   state.WaitKind
	runs, measured            int
}

func markOf(rec *state.Record) mark {
	m := mark{valid: true, phase: rec.Phase, status: rec.Status, stage: rec.Stage, step: rec.Step,
		triggered: rec.Trigger != nil, timeline: len(rec.Timeline), rollback: len(rec.RollbackSteps),
		messages: rec.Delivered + len(rec.Outbox) + len(rec.Undelivered), token: rec.Token,
		delivered: rec.Delivered, windows: len(rec.Windows), checklist: len(rec.Checklist), counters: quietCounters(rec.Counters),
		applied: rec.Applied, applying: rec.Applying, request: rec.RollbackRequest != nil,
		exposure: rec.Exposure, outcome: rec.Outcome, lease: rec.LeaseUntil,
		attempt: rec.Attempt, decisions: len(rec.Decisions), taken: takenCount(rec), runs: len(rec.Analyses), measured: measuredCount(rec)}
	if rec.Waiting != nil {
		m.waiting = rec.Waiting.Kind
	}
	return m
}

// takenCount is how many of rec's decisions were carried out.
func takenCount(rec *state.Record) int {
	n := 0
	for _, d := range rec.Decisions {
		if !d.Pending() {
			n++
		}
	}
	return n
}

// measuredCount is how many measurements rec's analysis runs took in all.
func measuredCount(rec *state.Record) int {
	n := 0
	for _, run := range rec.Analyses {
		for _, m := range run.Metrics {
			n += m.Count + m.Errors
		}
	}
	return n
}

// same reports whether rec differs from the record m marks only in what
// may go unsaved for a while: the count of observations and the last
// measured values. A healthy look that changes nothing else need not be
// saved until the lease needs renewing.
func (m mark) same(rec *state.Record) bool {
	n := markOf(rec)
	n.lease = m.lease
	return m.valid && n == m
}

// phaseOrder ranks the phases: a release only moves forward.
var phaseOrder = map[Phase]int{PhasePreflight: 0, PhaseDeploy: 1, PhaseVerify: 2, PhaseRollback: 3, PhaseCommunicate: 4, PhaseComplete: 5}

// check checks the transition from m to rec.
func (m mark) check(rec *state.Record) error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if m.status.Final() && (rec.Status != m.status || rec.Phase != m.phase || rec.Stage != m.stage || rec.Step != m.step || len(rec.Timeline) != m.timeline) {
		bad("a %s release changed (status %s, phase %s)", m.status, rec.Status, rec.Phase)
	}
	if len(rec.Timeline) < m.timeline {
		bad("the timeline shrank from %d to %d entries", m.timeline, len(rec.Timeline))
	}
	if len(rec.RollbackSteps) < m.rollback {
		bad("the rollback steps shrank from %d to %d", m.rollback, len(rec.RollbackSteps))
	}
	if n := rec.Delivered + len(rec.Outbox) + len(rec.Undelivered); n < m.messages {
		bad("%d notification(s) vanished from the outbox", m.messages-n)
	}
	retried := rec.Attempt == m.attempt+1 && m.waiting == state.WaitAborted && rec.Phase == PhaseDeploy
	switch {
	case rec.Attempt < m.attempt:
		bad("the attempt went back from %d to %d", m.attempt, rec.Attempt)
	case rec.Attempt > m.attempt && !retried:
		bad("the attempt went from %d to %d without a Retry of an aborted release", m.attempt, rec.Attempt)
	}
	if phaseOrder[rec.Phase] < phaseOrder[m.phase] && !retried {
		bad("phase went back from %s to %s", m.phase, rec.Phase)
	}
	if m.phase == PhaseVerify && rec.Phase == PhaseDeploy {
		bad("phase went back from verify to deploy")
	}
	if m.triggered && rec.Trigger == nil && !retried {
		bad("the rollback trigger was dropped")
	}
	if len(rec.Decisions) < m.decisions {
		bad("%d decision(s) vanished", m.decisions-len(rec.Decisions))
	}
	if n := takenCount(rec); n < m.taken {
		bad("a decision carried out became pending again (%d carried out, were %d): each is carried out at most once", n, m.taken)
	}
	if len(rec.Analyses) < m.runs {
		bad("%d analysis run(s) vanished", m.runs-len(rec.Analyses))
	}
	if n := measuredCount(rec); n < m.measured {
		bad("the analysis runs' counters went down from %d to %d measurements", m.measured, n)
	}

	if m.triggered && rec.Applying && !retried {
		bad("a step is applied after a rollback was recorded")
	}
	if rec.Phase == m.phase && rec.Phase == PhaseDeploy && (rec.Stage < m.stage || rec.Stage == m.stage && rec.Step < m.step) && rec.Attempt == m.attempt {
		bad("step went back from %d/%d to %d/%d", m.stage, m.step, rec.Stage, rec.Step)
	}
	if rec.Token < m.token {
		bad("the fencing token went down from %d to %d", m.token, rec.Token)
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: release %s: %w", ErrInvariant, rec.ID, errors.Join(errs...))
}
