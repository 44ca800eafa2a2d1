package deploy

import (
	"context"

	"github.com/deploykit/deploy/state"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

type stepKey struct{ stage, step int }

func (r *Runner) tracerProvider() trace.TracerProvider {
	if r.cfg.tp != nil {
		return r.cfg.tp
	}
	return otel.GetTracerProvider()
}

func (r *Runner) meterProvider() metric.MeterProvider {
	if r.cfg.mp != nil {
		return r.cfg.mp
	}
	return otel.GetMeterProvider()
}

func (r *Runner) newLoop(ctx context.Context, d *dispatcher) *loop {
	tr := r.tracerProvider().Tracer(ScopeName)
	lp := &loop{r: r, tr: tr, disp: d}
	lp.ctx, lp.runSpan = tr.Start(ctx, "deploy.run")
	lp.recording = lp.runSpan.IsRecording()
	lp.phaseCtx = lp.ctx
	if d != nil {
		d.start(lp)
	}
	return lp
}

func (lp *loop) tracer() trace.Tracer { return lp.tr }

// start opens the phase span matching rec's phase.
func (lp *loop) start(rec *state.Record) {
	if !lp.attrsSet {
		lp.attrsSet = true
		lp.runSpan.SetAttributes(
			semconv.ServiceName(rec.Release.Service),
			semconv.ServiceVersion(rec.Release.Version),
			semconv.DeploymentEnvironmentNameKey.String(rec.Release.Environment),
			semconv.DeploymentID(rec.ID),
			attribute.String("deploy.strategy", rec.Strategy),
		)
	}
	if rec.Phase == lp.phase {
		return
	}
	lp.endStep(nil)
	if lp.phaseSpan != nil {
		// The phase being left failed when it led to a rollback, or when
		// the rollback itself failed or the release was blocked.
		switch {
		case rec.Phase == PhaseRollback && rec.RollbackReason != "":
			lp.phaseSpan.SetStatus(codes.Error, "rolled back: "+rec.RollbackReason)
		case lp.phase == PhaseRollback && rec.Outcome == RollbackFailed:
			lp.phaseSpan.SetStatus(codes.Error, "rollback failed: "+rec.Error)
		case lp.phase == PhasePreflight && rec.Outcome == Blocked && rec.Trigger != nil:
			lp.phaseSpan.SetStatus(codes.Error, "blocked: "+rec.Trigger.Reason)
		}
		lp.phaseSpan.End()
	}
	lp.phase = rec.Phase
	lp.phaseCtx, lp.phaseSpan = lp.tr.Start(lp.ctx, "deploy.phase", trace.WithAttributes(attribute.String("deploy.phase", string(rec.Phase))))
}

// stepSpan returns the context of the current step's span, opening it if needed.
func (lp *loop) stepSpan(rec *state.Record, s Step) context.Context {
	key := stepKey{rec.Stage, rec.Step}
	if key == lp.stepKey && lp.stepSpn != nil {
		return lp.stepCtx
	}
	lp.endStep(nil)
	lp.stepKey = key
	lp.stepCtx, lp.stepSpn = lp.tr.Start(lp.phaseCtx, "deploy.step")
	if lp.stepSpn.IsRecording() {
		lp.stepSpn.SetAttributes(
			attribute.String("deploy.step", s.Name),
			attribute.Int("deploy.step.index", rec.Step),
			attribute.String("deploy.stage", lp.r.stageName(rec)),
			attribute.Float64("deploy.exposure", s.Exposure),
			attribute.Int64("deploy.bake_ms", s.Bake.Milliseconds()),
		)
	}
	return lp.stepCtx
}

func (lp *loop) stepError(err error) {
	if lp.stepSpn != nil {
		recordError(lp.stepSpn, err)
	}
}

func (lp *loop) endStep(err error) {
	if lp.stepSpn == nil {
		return
	}
	if err != nil {
		lp.stepSpn.SetStatus(codes.Error, err.Error())
	}
	lp.stepSpn.End()
	lp.stepSpn, lp.stepKey = nil, stepKey{}
}

// fail records err on the run span.
func (lp *loop) fail(err error) {
	if err == nil {
		return
	}
	recordError(lp.runSpan, err)
}

// recordError marks span failed with err: the exception event, the status
// and error.type (the error's ErrorType() string, or its Go type).
func recordError(span trace.Span, err error) {
	span.RecordError(err)
	span.SetStatus(codes.Error, err.Error())
	span.SetAttributes(semconv.ErrorType(err))
}

func (lp *loop) end() {
	for _, o := range lp.obs {
		o.stop()
	}
	if lp.disp != nil {
		lp.disp.stop()
	}
	lp.endStep(nil)
	if lp.phaseSpan != nil {
		lp.phaseSpan.End()
	}
	lp.runSpan.End()
}
