package deploy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/deploykit/deploy/monitor"
	"github.com/deploykit/deploy/state"
)

// loop is the in-memory side of one Run, Resume or Reconcile: the record
// as last saved, the spans that stay open across reconcile calls, the lease
// token, and the outbox dispatcher.
type loop struct {
	r        *Runner
	tr       trace.Tracer
	ctx      context.Context
	runSpan  trace.Span
	attrsSet bool

	phase     Phase
	phaseSpan trace.Span
	// restored is set once stateful monitors were given their saved state.
	restored bool
	// oneShot is set for Reconcile, whose caller comes back at the next due
	// time: the lease ends then.
	oneShot  bool
	phaseCtx context.Context

	stepKey stepKey
	stepSpn trace.Span
	stepCtx context.Context
	token   int64
	aborted bool
	disp    *dispatcher
	plan    [][]Step

	// rec is the record as this loop last saved it: the next reconcile
	// goes on from it without loading it again (the store's copy is the
	// same, or the next save fails and the loop loads it anew).
	rec *state.Record
	// saved marks rec as saved, for the invariants on the next transition.
	saved mark
	// dirty is set while rec holds a transition not saved yet (saved with
	// the next action, see reconcile).
	dirty bool
	// base is the baseline as a monitor.Observation, built once.
	base     monitor.Observation
	baseFrom map[string]state.Measurement
	// names are the monitors' names, looked up once.
	names []string
	// recording is set when the run's span records: the spans of each
	// look are made only then.
	recording bool
	// renew times lease renewals while an effect runs.
	renew *time.Timer
	// obs call the monitors, one goroutine each for the loop's life.
	obs []*observer
	// cause is the error of user code that ended the release in this loop
	// (a step's Apply): the release's error wraps it too.
	cause error
	// points are when the timeline last kept a look, by bake or window.
	points map[string]time.Time
	// panicked marks the monitors whose panic the timeline has shown.
	panicked map[int]bool
	// finalized is set when this loop ended the release: it counts it in
	// the metrics, and a Resume of a finished release does not.
	finalized bool
	// woken is set when a decision was written by this Runner (wake): the
	// next round reads the record again.
	woken bool
}

// plans returns the validated plans of every stage, computed once per loop:
// Plan is deterministic for the same release.
func (lp *loop) plans(d *Deployment) ([][]Step, error) {
	if lp.plan == nil {
		p, err := lp.r.plans(lp.ctx, d)
		if err != nil {
			return nil, err
		}
		lp.plan = p
	}
	return lp.plan, nil
}

// baselineOf returns rec's baseline as an observation, built once per loop.
func (lp *loop) baselineOf(rec *state.Record) monitor.Observation {
	if lp.baseFrom == nil || len(lp.baseFrom) != len(rec.Baseline) {
		lp.base = monitor.Observation{}
		if len(rec.Baseline) > 0 {
			lp.base.Metrics = make(map[string]monitor.Metric, len(rec.Baseline))
			for k, m := range rec.Baseline {
				lp.base.Metrics[k] = monitor.Value(m.Value, m.Samples)
			}
		}
		lp.baseFrom = rec.Baseline
		if lp.baseFrom == nil {
			lp.baseFrom = map[string]state.Measurement{}
		}
	}
	return lp.base
}

// renewTimer returns the loop's timer for lease renewals during an effect,
// set to fire after d.
func (lp *loop) renewTimer(d time.Duration) *time.Timer {
	if lp.renew == nil {
		lp.renew = time.NewTimer(d)
	} else {
		lp.renew.Reset(d)
	}
	return lp.renew
}

// observers returns the loop's observers, one per monitor, started once.
func (lp *loop) observers() []*observer {
	if lp.obs == nil {
		lp.obs = make([]*observer, len(lp.r.cfg.monitors))
		for i, m := range lp.r.cfg.monitors {
			lp.obs[i] = newObserver(m, lp.monitorName(i))
		}
	}
	return lp.obs
}

// monitorName is monitor i's name, looked up once.
func (lp *loop) monitorName(i int) string {
	if lp.names == nil {
		lp.names = make([]string, len(lp.r.cfg.monitors))
		for j, m := range lp.r.cfg.monitors {
			lp.names[j] = nameOf(m)
		}
	}
	return lp.names[i]
}

// countFinished records a release that lp ended in the runner's metrics
// (deploy.releases and the DORA metrics), once: a Resume of a release
// already over counts nothing.
func (r *Runner) countFinished(ctx context.Context, lp *loop, rec *state.Record) {
	if !lp.finalized || rec == nil || !rec.Status.Final() {
		return
	}
	lp.finalized = false
	r.meterOnce.Do(func() {
		r.releases, _ = r.meterProvider().Meter(ScopeName).Int64Counter("deploy.releases",
			metric.WithDescription("Releases finished, by final status."), metric.WithUnit("{release}"))
	})
	if r.releases != nil {
		r.releases.Add(ctx, 1, metric.WithAttributes(semconv.ServiceName(rec.Release.Service), attribute.String("deploy.status", string(rec.Status))))
	}
	r.recordDORA(ctx, rec)
	r.closeMonitors(ctx)
}

// closeMonitors closes the monitors that are an io.Closer (a LogScan's
// file) once a release ends, bounded like every call into them.
func (r *Runner) closeMonitors(ctx context.Context) {
	for _, m := range r.cfg.monitors {
		c, ok := m.(io.Closer)
		if !ok {
			continue
		}
		name := nameOf(m)
		if err := boundedErr(ctx, "monitor "+name+": Close", r.cfg.timeouts.Observe, func(context.Context) error { return c.Close() }); err != nil {
			r.cfg.logger.Warn("deploy: closing a monitor", "monitor", name, "err", err)
		}
	}
}

// finish waits for the outbox, saves delivery results and returns the final report.
func (r *Runner) finish(lp *loop, id string, rep *Report) *Report {
	ctx := context.WithoutCancel(lp.ctx)
	if lp.disp != nil {
		lp.disp.drain(r.cfg.notifyTimeout)
		lp.disp.stop()
	}
	var final *state.Record
	for range 3 {
		rec, err := r.cfg.store.Load(ctx, id)
		if err != nil {
			break
		}
		final = rec
		if lp.disp == nil || !lp.disp.apply(rec) {
			rep = r.report(rec) // no delivery to save
			break
		}
		r.tickDelivered(rec)
		if err := r.cfg.store.Update(ctx, rec); err == nil || !errors.Is(err, state.ErrConflict) {
			rep = r.report(rec)
			break
		}
	}
	lp.runSpan.SetAttributes(attribute.String("deploy.status", string(rep.Status)))
	r.countFinished(ctx, lp, final)
	return rep
}

// loop reconciles until the release is over, sleeping until each next action.
// plans, when not nil, are the plans Run made when it created the release,
// used again instead of planning twice.
func (r *Runner) loop(ctx context.Context, id string, plans [][]Step) (*Report, error) {
	if _, err := r.store(); err != nil {
		return nil, err
	}
	lp := r.newLoop(ctx, newDispatcher(r))
	lp.plan = plans
	defer lp.end()
	run := lp.ctx
	var sleep *time.Timer // one timer for every wait of the loop
	woke, unregister := r.waker(id)
	defer unregister()
	for {
		next, rec, err := r.reconcile(run, id, lp)
		if mustStop(err) && rec != nil {
			// What this loop did since its last save is not on the record
			// (it lost the release, or the store failed): report what is.
			rec, err = r.afterStop(run, id, rec, err)
			lp.fail(err)
			return r.report(rec), err
		}
		final := rec != nil && rec.Status.Final()
		if err != nil && !final {
			lp.fail(err)
			if rec == nil {
				return nil, err
			}
			return r.report(rec), err
		}
		if final {
			if err != nil && lp.cause != nil {
				err = &causedError{err: err, cause: lp.cause}
			}
			lp.kick(rec) // deliver what an earlier run left in the outbox
			rep := r.finish(lp, id, r.report(rec))
			lp.fail(err)
			return rep, err
		}
		if wait := time.Until(next); wait > 0 {
			if sleep == nil {
				sleep = time.NewTimer(wait)
			} else {
				sleep.Reset(wait)
			}
			select {
			case <-sleep.C:
			case <-woke:
				sleep.Stop()
				lp.woken = true
			case <-run.Done():
				sleep.Stop()
			}
		}
		if run.Err() != nil && !lp.aborted {
			lp.aborted = true
			cause := context.Cause(run)
			// The rollback and its verification outlive the cancellation:
			// every context the loop hands out from here on does.
			run = context.WithoutCancel(run)
			lp.ctx = context.WithoutCancel(lp.ctx)
			lp.phaseCtx = context.WithoutCancel(lp.phaseCtx)
			if lp.stepCtx != nil {
				lp.stepCtx = context.WithoutCancel(lp.stepCtx)
			}
			if lp.rec != nil && lp.dirty {
				// A transition saved with the next action (a breach
				// found in the same look, say) is saved now: the abort
				// must not undo it.
				if err := r.save(run, lp, lp.rec); err != nil {
					lp.fail(err)
					return r.report(lp.rec), err
				}
			}
			lp.rec = nil // abort loads and saves the record itself
			if err := r.abort(run, id, cause); err != nil {
				lp.fail(err)
				return nil, err
			}
		}
	}
}

// abort turns a cancelled run into a rollback (or, before anything was
// deployed, a plain abort).
func (r *Runner) abort(ctx context.Context, id string, cause error) error {
	rec, err := r.cfg.store.Load(ctx, id)
	if err != nil {
		return fmt.Errorf("deploy: %w", err)
	}
	if rec.Status.Final() || rec.Phase == PhaseCommunicate || rec.Phase == PhaseRollback && !waitsAborted(rec) {
		return nil
	}
	if rec.Holder != r.holder {
		return nil // another runner has it now: not ours to abort
	}
	now := time.Now()
	if waitsAborted(rec) {
		// Rolled back already, waiting for a Retry that this run will
		// not see: the release ends, rolled back.
		r.endAborted(rec, now, "run cancelled: "+cause.Error())
		return r.save(ctx, nil, rec)
	}
	tr := &state.Trigger{Kind: state.TriggerCancelled, Reason: "run cancelled: " + cause.Error()}
	if deployed(rec) {
		r.startRollback(ctx, rec, now, tr, Aborted)
	} else {
		tr.At = now
		rec.Trigger = tr
		r.toCommunicate(rec, now, Aborted, tr.Reason)
	}
	return r.save(ctx, nil, rec)
}

// waitsAborted reports whether rec was aborted and rolled back, and waits
// for a Retry.
func waitsAborted(rec *state.Record) bool {
	return rec.Waiting != nil && rec.Waiting.Kind == state.WaitAborted
}

// deployed reports whether anything may have reached users: a step was
// applied or started (its Apply may have gone through), or the release is
// past its steps.
func deployed(rec *state.Record) bool {
	return rec.Stage > 0 || rec.Step > 0 || rec.Applied || rec.Applying || !rec.StepStart.IsZero() ||
		rec.Exposure > 0 || rec.Phase == PhaseVerify
}

// inFlight reports whether the saved record says its holder is running an
// action that may take a while: a step's Apply, or the strategy's rollback.
func inFlight(rec *state.Record) bool {
	switch rec.Phase {
	case PhaseDeploy:
		return rec.Applying
	case PhaseRollback:
		return rec.RollbackStart.IsZero()
	}
	return false
}

// afterStop returns, for a loop that had to stop because a save failed,
// the record as stored (what this loop did since its last save is not on
// it) and err with what became of the release if a person took it over.
func (r *Runner) afterStop(ctx context.Context, id string, rec *state.Record, err error) (*state.Record, error) {
	stored, lerr := r.cfg.store.Load(context.WithoutCancel(ctx), id)
	if lerr != nil {
		return rec, err
	}
	return stored, takenOver(err, stored)
}

// takenOver adds to err, the ErrLocked of a runner that lost its release,
// what became of the release when a person took it over to roll it back:
// the error then also matches ErrAborted, as the release's own error does,
// so that a caller does not retry what someone stopped on purpose.
func takenOver(err error, stored *state.Record) error {
	t := stored.Trigger
	if t == nil && stored.RollbackRequest != nil {
		t = stored.RollbackRequest
	}
	if t == nil || t.Kind != state.TriggerManual || !errors.Is(err, ErrLocked) {
		return err
	}
	return errors.Join(err, &PhaseError{Phase: PhaseRollback, Err: fmt.Errorf("%w: %s took the release over to roll it back: %s", ErrAborted, stored.Holder, t.Reason)})
}

// causedError is a release's error that also wraps the error of user code
// behind it (a *PanicError, a *TimeoutError, the strategy's own), so that
// errors.As finds it; its message is the release's.
type causedError struct{ err, cause error }

func (e *causedError) Error() string   { return e.err.Error() }
func (e *causedError) Unwrap() []error { return []error{e.err, e.cause} }
