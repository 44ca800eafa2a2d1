package deploy

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/deploykit/deploy/internal/redact"
	"github.com/deploykit/deploy/state"
)

// Decision says who decided and why. By is required, at most
// MaxDecisionBy bytes; Reason at most MaxDecisionReason.
type Decision struct {
	By, Reason string
}

// Bounds of a Decision's fields: they are kept in the record, the timeline
// and the report.
const (
	MaxDecisionBy     = 256
	MaxDecisionReason = 4096
)

// Errors of the decisions (Approve, Promote, Abort, Retry, Skip).
var (
	// ErrNotWaiting: the decision does not apply to the release as it is —
	// it waits for something else, for another step, or for nothing. The
	// error says what the release waits for.
	ErrNotWaiting = errors.New("deploy: the release does not wait for this decision")
	// ErrNotApprover: Approve by someone the step does not name among its
	// approvers.
	ErrNotApprover = errors.New("deploy: not an approver of this step")
)

// Approve approves step (its index in the current stage's plan, from 0)
// of release id, which must be waiting for that approval: once, for that
// step of that release (a Retry asks again). When the step names approvers
// (Step.Approvers, StepRule.Approvers), d.By must be one of them, or
// Approve returns ErrNotApprover.
//
// Like every decision, it is written into the release's record (durable,
// from any process sharing the store) and returns once written; the runner
// that holds the release carries it out at its next round — at once in
// this process, within an observation interval from another — records it
// with who and why in the timeline and the report, and notifies it
// (EventDecision). The same decision again is a no-op; one that does not
// apply returns an error matching ErrNotWaiting, which says what the
// release waits for.
func (r *Runner) Approve(ctx context.Context, id string, step int, d Decision) error {
	return r.decide(ctx, id, state.Decision{Kind: state.DecisionApprove, Step: step}, d)
}

// Promote ends the pause or the inconclusive analysis release id waits
// for, and goes on to the next step. With full, it skips the remaining
// steps, pauses and analyses of the release (not its approvals), going
// straight to each stage's last step; full applies while the release
// deploys, waiting or not. See Approve for how decisions are carried out.
func (r *Runner) Promote(ctx context.Context, id string, full bool, d Decision) error {
	return r.decide(ctx, id, state.Decision{Kind: state.DecisionPromote, Full: full}, d)
}

// Abort rolls release id back and keeps it open: once the rollback is
// verified, it waits (state.WaitAborted) for Retry, which starts the stage
// again from its first step, or for Rollback, which ends it. It applies
// while the release deploys or verifies (before, Rollback ends it). See Approve for how decisions are
// carried out.
func (r *Runner) Abort(ctx context.Context, id string, d Decision) error {
	return r.decide(ctx, id, state.Decision{Kind: state.DecisionAbort}, d)
}

// Retry starts an aborted release again from the first step of the stage
// it was aborted in, with fresh analysis runs and counters. See Approve
// for how decisions are carried out.
func (r *Runner) Retry(ctx context.Context, id string, d Decision) error {
	return r.decide(ctx, id, state.Decision{Kind: state.DecisionRetry}, d)
}

// Skip skips the inline analysis of step (its index in the current stage's
// plan), which must be the step being deployed: its run ends as skipped
// and the step goes on as if it had succeeded. A step applied without an
// inline analysis, or whose analysis is over, has nothing to skip
// (ErrNotWaiting). See Approve for how
// decisions are carried out.
func (r *Runner) Skip(ctx context.Context, id string, step int, d Decision) error {
	return r.decide(ctx, id, state.Decision{Kind: state.DecisionSkip, Step: step}, d)
}

// decide writes decision dec, by d, into release id's record, after
// checking that it applies. It does not take the lease: it writes with the
// record's Rev (compare-and-swap) and the holder's token, and the holder
// keeps the decision when its own next save conflicts (Runner.save).
func (r *Runner) decide(ctx context.Context, id string, dec state.Decision, d Decision) error {
	switch {
	case strings.TrimSpace(d.By) == "":
		return fmt.Errorf("%w: Decision.By is empty: say who decided", ErrInvalid)
	case len(d.By) > MaxDecisionBy:
		return fmt.Errorf("%w: Decision.By is %d bytes, longer than %d", ErrInvalid, len(d.By), MaxDecisionBy)
	case len(d.Reason) > MaxDecisionReason:
		return fmt.Errorf("%w: Decision.Reason is %d bytes, longer than %d", ErrInvalid, len(d.Reason), MaxDecisionReason)
	}
	dec.By, dec.Reason = redact.Text(strings.TrimSpace(d.By)), redact.Text(strings.TrimSpace(d.Reason))
	store, err := r.store()
	if err != nil {
		return err
	}
	for attempt := 0; ; attempt++ {
		rec, err := store.Load(ctx, id)
		if err != nil {
			return fmt.Errorf("deploy: %w", err)
		}
		if err := checkRecord(rec); err != nil {
			return err
		}
		x := dec
		x.Stage, x.Attempt = r.stageName(rec), rec.Attempt
		if x.Kind != state.DecisionApprove && x.Kind != state.DecisionSkip {
			x.Step = rec.Step
		}
		if repeated(rec, x) {
			return nil
		}
		if err := applies(rec, x); err != nil {
			return err
		}
		x.At = time.Now()
		rec.Decisions = append(rec.Decisions, x)
		err = store.Update(ctx, rec)
		if err == nil {
			r.wake(id)
			return nil
		}
		if (errors.Is(err, state.ErrConflict) || errors.Is(err, state.ErrFenced)) && attempt < 100 {
			continue // the holder saved meanwhile: look again
		}
		return fmt.Errorf("deploy: recording the %s decision for %s: %w", x.Kind, id, err)
	}
}

// repeated reports whether dec repeats a decision already written: one
// pending with the same kind, step and attempt, or the release's last
// decision, identical, when no new wait began after it was carried out.
func repeated(rec *state.Record, dec state.Decision) bool {
	same := func(a state.Decision) bool {
		return a.Kind == dec.Kind && a.Full == dec.Full && a.Attempt == dec.Attempt && a.Stage == dec.Stage && a.Step == dec.Step
	}
	for _, a := range rec.Decisions {
		if a.Pending() && same(a) {
			return true
		}
	}
	if n := len(rec.Decisions); n > 0 {
		last := rec.Decisions[n-1]
		if last.Kind == dec.Kind && last.Full == dec.Full && last.By == dec.By && last.Reason == dec.Reason &&
			(rec.Waiting == nil || rec.Waiting.Since.Before(last.Taken)) {
			return true
		}
	}
	if dec.Kind == state.DecisionAbort && rec.Waiting != nil && rec.Waiting.Kind == state.WaitAborted {
		return true // aborted already: what was asked is done
	}
	if dec.Kind == state.DecisionApprove {
		// Approvals are used once per step and attempt: a second
		// approver's is not needed.
		for _, a := range rec.Decisions {
			if same(a) {
				return true
			}
		}
	}
	return false
}

// applies says, with ErrNotWaiting, why dec does not apply to rec as it is.
func applies(rec *state.Record, dec state.Decision) error {
	if rec.Status.Final() {
		return fmt.Errorf("%w: release %s is %s", ErrNotWaiting, rec.ID, rec.Status)
	}
	w := rec.Waiting
	waits := "waits for nothing a person decides"
	if w != nil {
		waits = fmt.Sprintf("waits for %s at step %d (%s) since %s", w.Kind, w.Step, w.StepName, w.Since.Format(time.RFC3339))
	}
	no := func(why string) error {
		return fmt.Errorf("%w: release %s %s: %s", ErrNotWaiting, rec.ID, waits, why)
	}
	switch dec.Kind {
	case state.DecisionApprove:
		if w == nil || w.Kind != state.WaitApproval {
			return no("no approval is asked for")
		}
		if w.Step != dec.Step {
			return no(fmt.Sprintf("the approval asked for is step %d's, not step %d's", w.Step, dec.Step))
		}
		if len(w.Approvers) > 0 && !slices.Contains(w.Approvers, dec.By) {
			return fmt.Errorf("%w: %s may not approve step %d (%s) of release %s; its approvers are %s", ErrNotApprover, dec.By, w.Step, w.StepName, rec.ID, strings.Join(w.Approvers, ", "))
		}
	case state.DecisionPromote:
		if dec.Full && rec.Phase == PhaseDeploy && (w == nil || w.Kind != state.WaitAborted) {
			return nil
		}
		if w == nil || (w.Kind != state.WaitPause && w.Kind != state.WaitInconclusive) {
			if w != nil && w.Kind == state.WaitApproval {
				return no("an approval is given with Approve")
			}
			if dec.Full && (w == nil || w.Kind != state.WaitAborted) {
				return no("a full promotion applies while the release deploys; it is in phase " + string(rec.Phase))
			}
			return no("only a pause or an inconclusive analysis is promoted")
		}
	case state.DecisionAbort:
		if w != nil && w.Kind == state.WaitAborted {
			return no("it is aborted already")
		}
		if rec.Phase == PhasePreflight {
			return no("nothing is deployed before the preflight passes: Rollback ends the release")
		}
		if rec.Phase != PhaseDeploy && rec.Phase != PhaseVerify {
			return no("it is in phase " + string(rec.Phase))
		}
	case state.DecisionRetry:
		if w == nil || w.Kind != state.WaitAborted {
			return no("only an aborted release is retried")
		}
	case state.DecisionSkip:
		if rec.Phase != PhaseDeploy {
			return no("it is in phase " + string(rec.Phase) + ": only the analysis of the step being deployed is skipped")
		}
		if rec.Step != dec.Step {
			return no(fmt.Sprintf("step %d is not the step being deployed (%d)", dec.Step, rec.Step))
		}
		if rec.Applied {
			// The step's inline run started when it was applied: without
			// one there is nothing to skip, and a run over is over.
			i := slices.IndexFunc(rec.Analyses, func(a state.AnalysisRun) bool {
				return a.Kind == state.AnalysisInline && a.Attempt == rec.Attempt && a.Stage == dec.Stage && a.Step == dec.Step
			})
			switch {
			case i < 0:
				return no(fmt.Sprintf("step %d has no analysis to skip", dec.Step))
			case rec.Analyses[i].Phase.Done():
				return no(fmt.Sprintf("the analysis %s of step %d is over: %s", rec.Analyses[i].Name, dec.Step, rec.Analyses[i].Phase))
			}
		}
	}
	return nil
}

// wake tells this Runner's loop holding release id, if any, that a
// decision was written: it reads the record again now instead of at its
// next round.
func (r *Runner) wake(id string) {
	r.wakeMu.Lock()
	ch := r.wakers[id]
	r.wakeMu.Unlock()
	if ch != nil {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// waker registers the channel a loop of release id listens on for wake.
func (r *Runner) waker(id string) (chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	r.wakeMu.Lock()
	if r.wakers == nil {
		r.wakers = map[string]chan struct{}{}
	}
	r.wakers[id] = ch
	r.wakeMu.Unlock()
	return ch, func() {
		r.wakeMu.Lock()
		if r.wakers[id] == ch {
			delete(r.wakers, id)
		}
		r.wakeMu.Unlock()
	}
}
