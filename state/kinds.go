package state

// Phase is where a release is in its workflow. deploy.Phase is this type.
type Phase string

// Phases, in order. PhaseRollback interrupts deploy or verify when the
// release hurts users; PhaseComplete is the workflow state once done.
const (
	PhasePreflight   Phase = "preflight"
	PhaseDeploy      Phase = "deploy"
	PhaseVerify      Phase = "verify"
	PhaseCommunicate Phase = "communicate"
	PhaseRollback    Phase = "rollback"
	PhaseComplete    Phase = "complete"
)

// Valid reports whether p is one of the phases.
func (p Phase) Valid() bool {
	switch p {
	case PhasePreflight, PhaseDeploy, PhaseVerify, PhaseCommunicate, PhaseRollback, PhaseComplete:
		return true
	}
	return false
}

// TriggerKind says what made a release roll back or stop.
type TriggerKind string

// Trigger kinds. Each maps to one error sentinel of package deploy (see its
// package documentation for the table).
const (
	// TriggerBreach: a rollback trigger fired while a step baked.
	TriggerBreach TriggerKind = "breach"
	// TriggerVerification: a trigger fired after full exposure (the
	// post-deployment checks or the watch).
	TriggerVerification TriggerKind = "verification"
	// TriggerInconclusive: too many observations without enough data.
	TriggerInconclusive TriggerKind = "inconclusive"
	// TriggerSource: the metric sources failed too many times in a row.
	TriggerSource TriggerKind = "source"
	// TriggerDeadline: a step made no progress within the progress deadline.
	TriggerDeadline TriggerKind = "deadline"
	// TriggerError: a step could not be applied (an error, a panic, a
	// timeout) or the plan could not be made.
	TriggerError TriggerKind = "error"
	// TriggerManual: a person asked for the rollback (Runner.Rollback, or
	// an approval refused).
	TriggerManual TriggerKind = "manual"
	// TriggerCancelled: the run's context was cancelled.
	TriggerCancelled TriggerKind = "cancelled"
	// TriggerAbort: a person aborted the release (deploy.Runner.Abort): it
	// rolls back and stays open for a Retry.
	TriggerAbort TriggerKind = "abort"
	// TriggerBlocked: a gate refused the release before anything was
	// deployed.
	TriggerBlocked TriggerKind = "blocked"
)

// EntryKind says what a timeline entry records.
type EntryKind string

// Entry kinds.
const (
	EntryPhase       EntryKind = "phase"
	EntryGate        EntryKind = "gate"
	EntryStep        EntryKind = "step"
	EntryStage       EntryKind = "stage"
	EntryObservation EntryKind = "observation"
	EntryVerdict     EntryKind = "verdict"
	EntryWindow      EntryKind = "window"
	EntryRollback    EntryKind = "rollback"
	EntryVerify      EntryKind = "verify"
	EntryWaiver      EntryKind = "waiver"
	EntryNote        EntryKind = "note"
	// EntryAnalysis: an analysis run started, measured or ended.
	EntryAnalysis EntryKind = "analysis"
	// EntryDecision: a person's decision was carried out (or ignored).
	EntryDecision EntryKind = "decision"
	// EntryWait: the release began or stopped waiting for a person.
	EntryWait EntryKind = "wait"
)

// Outcome is what came of the action an entry records, for code that reads
// the timeline: the report, the plan, the invariants. Detail is prose for
// people and is never parsed.
type Outcome string

// Outcomes.
const (
	OutcomeNone         Outcome = ""
	OutcomePassed       Outcome = "passed"
	OutcomeWaiting      Outcome = "waiting"
	OutcomeBlocked      Outcome = "blocked"
	OutcomeApproved     Outcome = "approved"
	OutcomeApplying     Outcome = "applying"
	OutcomeApplied      Outcome = "applied"
	OutcomeHealthy      Outcome = "healthy"
	OutcomePaused       Outcome = "paused"
	OutcomeFailed       Outcome = "failed"
	OutcomeStarted      Outcome = "started"
	OutcomeDone         Outcome = "done"
	OutcomeComplete     Outcome = "complete"
	OutcomeVerified     Outcome = "verified"
	OutcomeUnverified   Outcome = "not verified"
	OutcomeAbandoned    Outcome = "abandoned"
	OutcomeExpired      Outcome = "expired"
	OutcomeSuccessful   Outcome = "successful"
	OutcomeInconclusive Outcome = "inconclusive"
	OutcomeError        Outcome = "error"
	OutcomeSkipped      Outcome = "skipped"
	OutcomeIgnored      Outcome = "ignored"
	OutcomeAborted      Outcome = "aborted"
)
