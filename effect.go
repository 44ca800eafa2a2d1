package deploy

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/deploykit/deploy/internal/redact"
	"github.com/deploykit/deploy/state"
)

// effectKind names the actions that change what users get.
type effectKind int

const (
	effectApply        effectKind = iota // a step's Apply
	effectRollback                       // Strategy.Rollback
	effectRollbackStep                   // a WithRollbackSteps step
)

func (k effectKind) String() string {
	switch k {
	case effectApply:
		return "Apply"
	case effectRollback:
		return "Strategy.Rollback"
	}
	return "rollback step"
}

// errRollbackRequested: a rollback was requested while the runner proved
// its lease before an Apply; the Apply did not run.
var errRollbackRequested = errors.New("deploy: rollback requested")

// effect runs fn, an action that changes what users get, under three
// guarantees:
//
//   - right before fn, a fenced write proves that this runner still holds
//     the release and that the record allows the action (checkEffect):
//     no Apply after a rollback was recorded or requested, no rollback by a
//     runner that does not hold the release;
//   - fn is bounded by timeout and cannot panic the process (bounded);
//   - while fn runs, the runner renews its lease every third of the lease
//     grace, so that a live runner is never taken over and a dead or paused
//     one is, one grace after it stopped renewing. A renewal that finds the
//     release taken over cancels fn's context and returns ErrLocked at
//     once: the new holder is in charge, and the fencing token in
//     Deployment lets a target refuse fn's late writes.
//
// A rollback requested during an Apply cancels the Apply's context; the
// caller sees the request in rec when effect returns.
func (r *Runner) effect(ctx context.Context, rec *state.Record, lp *loop, kind effectKind, call string, timeout time.Duration, fn func(context.Context) error) error {
	if err := checkEffect(rec, kind); err != nil {
		return err
	}
	renew := r.renewEvery()
	rec.LeaseUntil = time.Now().Add(renew + r.cfg.leaseGrace)
	if kind == effectApply && rec.Step >= 0 && rec.Step < len(rec.Steps) {
		// The attempt is on the record before it is made: a step is
		// applied at most as often as the timeline says it was tried.
		r.note(rec, time.Now(), state.EntryStep, state.OutcomeApplying, rec.Steps[rec.Step], "")
	}
	if lp.disp != nil {
		lp.disp.apply(rec)
	}
	if err := r.save(ctx, lp, rec); err != nil {
		return &unrecorded{err}
	}
	lp.kick(rec)
	if kind == effectApply && rec.RollbackRequest != nil {
		return errRollbackRequested
	}
	// The token also travels in the context, for effects that get no
	// Deployment (rollback steps): FencingToken reads it.
	ectx := state.WithToken(ctx, rec.Token)
	if kind == effectRollbackStep {
		ectx = context.WithValue(ectx, deploymentKey{}, r.deployment(rec))
	}
	c := launch(ectx, call, timeout, func(ctx context.Context) (struct{}, error) { return struct{}{}, fn(ctx) })
	defer c.stop()
	if res, ok := c.answered(); ok {
		_, err := c.result(ctx, res)
		return err
	}
	timer := c.arm()
	tick := lp.renewTimer(renew)
	defer tick.Stop()
	for {
		select {
		case res := <-c.done:
			_, err := c.result(ctx, res)
			return err
		case <-timer.C:
			if res, ok := c.answered(); ok {
				_, err := c.result(ctx, res) // it answered as its time ran out
				return err
			}
			return &TimeoutError{Call: call, Timeout: timeout}
		case <-tick.C:
			tick.Reset(renew)
			rec.LeaseUntil = time.Now().Add(renew + r.cfg.leaseGrace)
			if err := r.save(ctx, lp, rec); err != nil {
				c.cancel(err)
				return &unrecorded{err}
			}
			if kind == effectApply && rec.RollbackRequest != nil {
				c.cancel(errRollbackRequested)
			}
		}
	}
}

// unrecorded is a save that failed around an effect: the runner lost the
// release (ErrLocked), or the store failed (a crash, an outage). Either
// way the runner stops without acting further: it acts only on what it
// could record first.
type unrecorded struct{ err error }

func (e *unrecorded) Error() string { return e.err.Error() }
func (e *unrecorded) Unwrap() error { return e.err }

// mustStop reports whether err from effect means the runner must stop
// now: the record could not be saved, or an invariant would break.
func mustStop(err error) bool {
	for e := err; e != nil; e = errors.Unwrap(e) {
		if _, ok := e.(*unrecorded); ok {
			return true
		}
	}
	return errors.Is(err, ErrInvariant)
}

type deploymentKey struct{}

// DeploymentFrom returns, in a WithRollbackSteps step (which gets only a
// context), the release it rolls back: its ID, Release (version, previous
// version, labels), stage and fencing token. The Deployment is read-only
// and valid during the call. A step's Apply and Strategy.Rollback get it as
// their argument.
func DeploymentFrom(ctx context.Context) (*Deployment, bool) {
	d, ok := ctx.Value(deploymentKey{}).(*Deployment)
	return d, ok
}

// FencingToken returns the fencing token of the lease under which the
// runner called this effect — a step's Apply, Strategy.Rollback, or a
// WithRollbackSteps step, which gets no Deployment: store it with each
// change to a target and refuse a change that carries a lower one, so that
// a runner paused past its lease (SIGSTOP, a long GC, a frozen VM) cannot
// change the target behind the runner that took the release over. It is
// Deployment.Token for calls that get a Deployment.
func FencingToken(ctx context.Context) (int64, bool) { return state.TokenFrom(ctx) }

// renewEvery is how often a runner renews its lease while an effect runs.
func (r *Runner) renewEvery() time.Duration { return max(r.cfg.leaseGrace/3, time.Millisecond) }

// checkEffect is the engine's invariant on effects, checked before every
// one: an Apply only in the deploy phase with no rollback recorded or
// requested; a strategy rollback or rollback step only in the rollback
// phase, with its trigger recorded.
func checkEffect(rec *state.Record, kind effectKind) error {
	var why []string
	switch kind {
	case effectApply:
		if rec.Phase != PhaseDeploy {
			why = append(why, "phase is "+string(rec.Phase))
		}
		if rec.Trigger != nil {
			why = append(why, "a rollback trigger is recorded")
		}
		if rec.Status.Final() {
			why = append(why, "the release is "+string(rec.Status))
		}
		if rec.Waiting != nil {
			why = append(why, "it waits for "+string(rec.Waiting.Kind))
		}
	default:
		if rec.Phase != PhaseRollback {
			why = append(why, "phase is "+string(rec.Phase))
		}
		if rec.Trigger == nil {
			why = append(why, "no trigger is recorded")
		}
	}
	if len(why) == 0 {
		return nil
	}
	return fmt.Errorf("%w: release %s: %s refused: %s", ErrInvariant, rec.ID, kind, strings.Join(why, ", "))
}

// panicDetail is a panic's value and the top of its stack, for the timeline.
func panicDetail(pe *PanicError) string {
	const max = 2048
	s := redact.Text(fmt.Sprintf("panic: %v\n%s", pe.Value, pe.Stack))
	if len(s) > max {
		s = s[:max] + "…"
	}
	return s
}
