package deploy

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/deploykit/deploy/internal/window"
	"github.com/deploykit/deploy/state"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

func (r *Runner) preflight(ctx context.Context, rec *state.Record, lp *loop, now time.Time) (time.Time, error) {
	d := r.deployment(rec)
	gates := r.gates(rec)
	var wait time.Time
	var waitReason string
	rec.Gates = rec.Gates[:0]
	for _, g := range gates {
		name := nameOf(g)
		gctx, span := lp.tracer().Start(lp.phaseCtx, "deploy.gate", trace.WithAttributes(attribute.String("deploy.gate", name)))
		sink := &evidenceSink{}
		err := boundedErr(context.WithValue(gctx, evidenceKey{}, sink), "gate "+name, r.cfg.timeouts.Check,
			func(ctx context.Context) error { return g.Check(ctx, d) })
		gr := state.Gate{Name: name, Passed: err == nil, At: now}
		if err != nil {
			gr.Reason = err.Error()
			span.SetAttributes(attribute.String("deploy.gate.reason", err.Error()))
		}
		if at, ok := IsRetry(err); ok {
			gr.RetryAt = at
			span.SetAttributes(attribute.String("deploy.gate.retry_at", at.Format(time.RFC3339)))
			if wait.IsZero() || at.Before(wait) {
				wait, waitReason = at, name+": "+err.Error()
			}
			span.End()
			rec.Gates = append(rec.Gates, gr)
			continue
		}
		if err != nil {
			recordError(span, err)
			span.End()
			rec.Gates = append(rec.Gates, gr)
			reason := fmt.Sprintf("gate %s: %v", name, err)
			r.note(rec, now, state.EntryGate, state.OutcomeBlocked, name, err.Error())
			rec.Trigger = &state.Trigger{Kind: state.TriggerBlocked, Reason: reason, At: now}
			r.emit(rec, Event{Kind: EventGate, Gate: "blocked", Message: "blocked by " + reason})
			r.toCommunicate(rec, now, Blocked, reason)
			return now, nil
		}
		evidence := "gate " + name + " passed"
		if gr.Evidence = sink.String(); gr.Evidence != "" {
			evidence = "gate " + name + ": " + gr.Evidence
			span.SetAttributes(attribute.String("deploy.gate.evidence", gr.Evidence))
		}
		span.End()
		rec.Gates = append(rec.Gates, gr)
		r.tickFrom(rec, now, g, evidence)
	}
	if !wait.IsZero() {
		if !rec.Deadline.IsZero() && wait.After(rec.Deadline) {
			reason := fmt.Sprintf("gate %s; it would wait past the gate deadline %s", waitReason, rec.Deadline.Format(time.RFC3339))
			rec.Trigger = &state.Trigger{Kind: state.TriggerBlocked, Reason: reason, At: now}
			r.note(rec, now, state.EntryGate, state.OutcomeBlocked, "", reason)
			r.emit(rec, Event{Kind: EventGate, Gate: "blocked", Message: "blocked: " + reason})
			r.toCommunicate(rec, now, Blocked, reason)
			return now, nil
		}
		if n := len(rec.Timeline); n == 0 || rec.Timeline[n-1].Outcome != state.OutcomeWaiting || rec.Timeline[n-1].Detail != waitReason {
			r.note(rec, now, state.EntryGate, state.OutcomeWaiting, "", waitReason)
			r.emit(rec, Event{Kind: EventGate, Gate: "waiting", Message: "waiting: " + waitReason})
		}
		return wait, nil
	}
	for _, g := range rec.Gates {
		r.note(rec, now, state.EntryGate, state.OutcomePassed, g.Name, g.Evidence)
	}
	r.tickRollbackPlan(rec, now)
	// Baseline.
	if len(r.cfg.monitors) > 0 {
		obs, err := r.observe(lp.phaseCtx, rec, lp, "baseline", "", now.Add(-r.cfg.baselineWindow))
		if err != nil {
			r.note(rec, now, state.EntryObservation, state.OutcomeFailed, "baseline", "baseline not measured: "+err.Error())
		}
		r.saveMonitors(rec, now)
		rec.Baseline = make(map[string]state.Measurement, len(obs.Metrics))
		for k, m := range obs.Metrics {
			if m.HasData() && !math.IsInf(m.Value, 0) {
				rec.Baseline[k] = state.Measurement{Value: m.Value, Samples: m.Samples}
			}
		}
		r.noteObs(rec, now, state.EntryObservation, state.OutcomeDone, "baseline", obs)
		var empty []string
		for _, k := range slices.Sorted(maps.Keys(obs.Metrics)) {
			if !obs.Metrics[k].HasData() {
				empty = append(empty, k)
			}
		}
		if len(empty) > 0 {
			msg := "baseline has no data for " + strings.Join(empty, ", ") + ": triggers on them can compare only with a control, else they are inconclusive"
			r.note(rec, now, state.EntryNote, state.OutcomeNone, "baseline", msg)
			r.emit(rec, Event{Kind: EventPhase, Message: msg})
			r.cfg.logger.Warn("deploy: "+msg, "release", rec.ID)
		}
		if r.checkPower(rec, lp, now, obs) {
			return now, nil // blocked: the policy asks for power
		}
	}
	r.emit(rec, Event{Kind: EventPhase, Message: fmt.Sprintf("preflight passed (%s)", plural(len(rec.Gates), "gate"))})
	rec.Phase = PhaseDeploy
	r.note(rec, now, state.EntryPhase, state.OutcomeStarted, string(PhaseDeploy), "")
	return now, nil
}

func (r *Runner) tickRollbackPlan(rec *state.Record, now time.Time) {
	if hasRollbackPath(r.strategy) {
		r.tick(rec, now, ItemRollbackPlan, "strategy "+rec.Strategy+" rolls back; conditions: "+strings.Join(r.conditions, "; "))
	}
}

// gates returns the configured gates plus the built-in deploy window when
// production has no window gate and Friday deploys are not waived.
func (r *Runner) gates(rec *state.Record) []Gate {
	gates := r.cfg.gates
	if !isProduction(rec.Release.Environment) {
		return gates
	}
	if _, waived := r.cfg.waivers[FridayDeploy]; waived {
		return gates
	}
	for _, g := range gates {
		if w, ok := g.(interface{ DeployWindow() bool }); ok && w.DeployWindow() {
			return gates
		}
	}
	return append(append([]Gate(nil), gates...), defaultWindow{loc: r.cfg.location})
}

// defaultWindow is the built-in deploy window, the calendar gate.Window
// uses, with hours that refuse only Friday afternoons and weekends in the
// service's time zone: Monday from 09:00, Tuesday to Thursday all day,
// Friday until noon. While it is closed it asks to be retried when it
// opens (the runner waits up to its gate deadline, then blocks). Use
// gate.Window for deploy hours, holidays and freeze calendars.
type defaultWindow struct{ loc *time.Location }

func (defaultWindow) Name() string       { return "deploy-window" }
func (defaultWindow) DeployWindow() bool { return true }

// builtinHours are defaultWindow's hours.
var builtinHours = []window.Hours{
	{Day: time.Monday, From: 9 * time.Hour, To: 24 * time.Hour},
	{Day: time.Tuesday, To: 24 * time.Hour},
	{Day: time.Wednesday, To: 24 * time.Hour},
	{Day: time.Thursday, To: 24 * time.Hour},
	{Day: time.Friday, To: 12 * time.Hour},
}

func (w defaultWindow) Check(ctx context.Context, d *Deployment) error {
	loc := w.loc
	if loc == nil {
		loc = time.Local
	}
	cal := window.Calendar{Location: loc, Hours: builtinHours, EveCloses: 24 * time.Hour}
	open, evidence, next, reason := cal.Verdict(time.Now())
	switch {
	case open:
		Evidence(ctx, "%s", evidence)
		return nil
	case next.IsZero():
		return errors.New(reason)
	}
	return RetryAt(next, reason)
}
