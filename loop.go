package deploy

import (
	"context"
	"errors"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/deploykit/deploy/state"
)

// loop is the in-memory side of one Run, Resume or Reconcile: the spans that
// stay open across reconcile calls, the lease token, and the outbox dispatcher.
type loop struct {
	r        *Runner
	tr       trace.Tracer
	ctx      context.Context
	runSpan  trace.Span
	attrsSet bool

	phase     string
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

// finish waits for the outbox, saves delivery results and returns the final report.
func (r *Runner) finish(lp *loop, id string, rep *Report) *Report {
	ctx := context.WithoutCancel(lp.ctx)
	if lp.disp != nil {
		lp.disp.drain(r.cfg.notifyTimeout)
		lp.disp.stop()
	}
	for range 3 {
		rec, err := r.cfg.store.Load(ctx, id)
		if err != nil {
			break
		}
		if lp.disp != nil && !lp.disp.apply(rec) {
			rep = r.report(rec)
			break
		}
		if err := r.cfg.store.Update(ctx, rec); err == nil || !errors.Is(err, state.ErrConflict) {
			rep = r.report(rec)
			break
		}
	}
	lp.runSpan.SetAttributes(attribute.String("deploy.status", string(rep.Status)))
	r.meterOnce.Do(func() {
		r.releases, _ = r.meterProvider().Meter(ScopeName).Int64Counter("deploy.releases",
			metric.WithDescription("Releases finished, by final status."), metric.WithUnit("{release}"))
	})
	if r.releases != nil {
		r.releases.Add(ctx, 1, metric.WithAttributes(attribute.String("service.name", rep.Release.Service), attribute.String("deploy.status", string(rep.Status))))
	}
	return rep
}
