package state

import (
	"slices"
	"time"
)

// WaitKind says what a release waits for (Record.Waiting).
type WaitKind string

// What a release can wait for.
const (
	// WaitApproval: a step's approval (Step.Approval), given with
	// deploy.Runner.Approve by one of the step's approvers.
	WaitApproval WaitKind = "approval"
	// WaitPause: a pause step, for a duration (Until) or until promoted.
	WaitPause WaitKind = "pause"
	// WaitInconclusive: an analysis run ended inconclusive; a person
	// promotes (goes on) or aborts (rolls back).
	WaitInconclusive WaitKind = "inconclusive"
	// WaitAborted: the release was aborted and rolled back; it stays open
	// until a Retry (from the first step of the stage) or a Rollback
	// (which ends it).
	WaitAborted WaitKind = "aborted"
)

// Valid reports whether k is one of the wait kinds.
func (k WaitKind) Valid() bool {
	switch k {
	case WaitApproval, WaitPause, WaitInconclusive, WaitAborted:
		return true
	}
	return false
}

// Wait says what a release waits for, since when and until when, so that
// a page or a person can see it and decide.
type Wait struct {
	Kind WaitKind `json:"kind"`
	// Stage and Step say where: the stage's name and the step's index in
	// its plan; StepName is the step's name.
	Stage    string `json:"stage,omitempty"`
	Step     int    `json:"step"`
	StepName string `json:"stepName,omitempty"`
	// Since is when the wait began; Until, when it ends on its own (a
	// timed pause), zero when only a decision ends it.
	Since time.Time `json:"since"`
	Until time.Time `json:"until,omitzero"`
	// Reason says why, for people (the analysis's reason for an
	// inconclusive wait).
	Reason string `json:"reason,omitempty"`
	// Approvers are who may approve (WaitApproval); empty means anyone.
	Approvers []string `json:"approvers,omitempty"`
	// Analysis names the analysis run the wait is about (WaitInconclusive).
	Analysis string `json:"analysis,omitempty"`
}

// Clone returns a deep copy of w (nil for nil).
func (w *Wait) Clone() *Wait {
	if w == nil {
		return nil
	}
	c := *w
	c.Approvers = slices.Clone(w.Approvers)
	return &c
}

// DecisionKind is what a person decided about a release.
type DecisionKind string

// Decision kinds (deploy.Runner's Approve, Promote, Abort, Retry, Skip).
const (
	DecisionApprove DecisionKind = "approve"
	DecisionPromote DecisionKind = "promote"
	DecisionAbort   DecisionKind = "abort"
	DecisionRetry   DecisionKind = "retry"
	DecisionSkip    DecisionKind = "skip"
)

// Valid reports whether k is one of the decision kinds.
func (k DecisionKind) Valid() bool {
	switch k {
	case DecisionApprove, DecisionPromote, DecisionAbort, DecisionRetry, DecisionSkip:
		return true
	}
	return false
}

// Decision is a person's decision about a release, written into its
// record by whoever took it (any process sharing the store) and carried
// out by the runner that holds the release, once: Taken is set then, and
// never cleared.
type Decision struct {
	Kind DecisionKind `json:"kind"`
	// Full, on a promotion, skips the remaining steps' pauses and analyses.
	Full bool `json:"full,omitempty"`
	// Stage and Step say which step it is for (an approval, a skip), or
	// where the release waited when it was taken.
	Stage string `json:"stage,omitempty"`
	Step  int    `json:"step"`
	// Attempt is the release's attempt (Record.Attempt) it was taken in.
	Attempt int       `json:"attempt,omitempty"`
	By      string    `json:"by"`
	Reason  string    `json:"reason,omitempty"`
	At      time.Time `json:"at"`
	// Taken is when the holder carried it out; zero while pending.
	Taken time.Time `json:"taken,omitzero"`
	// Outcome says what came of it, for people ("promoted to step 3").
	Outcome string `json:"outcome,omitempty"`
}

// Pending reports whether the holder has not carried d out yet.
func (d Decision) Pending() bool { return d.Taken.IsZero() }
