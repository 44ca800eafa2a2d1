package deploy

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/deploykit/deploy/internal/redact"
	"github.com/deploykit/deploy/monitor"
	"github.com/deploykit/deploy/rollback"
	"github.com/deploykit/deploy/state"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// observe observes every monitor concurrently and merges the observations.
// The error joins the monitors' errors; obs holds what was measured.
//
// Each monitor's Observe is bounded by the observe timeout and cannot panic
// the process: a monitor that hangs or panics fails to measure, which
// counts toward the policy's consecutive-error limit.
func (r *Runner) observe(ctx context.Context, rec *state.Record, lp *loop, phase, step string, since time.Time) (monitor.Observation, error) {
	t := r.target(rec, phase, step, since)
	if phase != "baseline" && !lp.restored {
		r.restoreMonitors(rec)
		lp.restored = true
	}
	octx, span := ctx, trace.Span(noop.Span{})
	if lp.recording {
		// A look of a week-long watch is cheap when nobody records spans.
		octx, span = lp.tr.Start(ctx, "deploy.observe", trace.WithAttributes(
			attribute.String("deploy.observation.phase", phase), attribute.Float64("deploy.exposure", rec.Exposure)))
	}
	defer span.End()
	observers := lp.observers()
	var single [1]observed // one monitor: no slice, no goroutine of the runner's
	results := single[:]
	if len(r.cfg.monitors) == 1 {
		o, err := observers[0].observe(octx, t, r.cfg.timeouts.Observe)
		results[0] = observed{o, err}
	} else {
		results = observeAll(octx, observers, t, r.cfg.timeouts.Observe)
	}
	obs := monitor.Observation{At: time.Now()}
	var errs []error
	for i, x := range results {
		if x.err != nil {
			if _, ok := x.err.(*TimeoutError); ok {
				errs = append(errs, x.err)
			} else if pe, ok := x.err.(*PanicError); ok {
				errs = append(errs, x.err)
				if !lp.panicked[i] {
					// Once per monitor and loop: the stack, for whoever
					// fixes the monitor.
					if lp.panicked == nil {
						lp.panicked = map[int]bool{}
					}
					lp.panicked[i] = true
					r.note(rec, time.Now(), state.EntryObservation, state.OutcomeFailed, lp.monitorName(i), panicDetail(pe))
				}
			} else {
				errs = append(errs, fmt.Errorf("monitor %s: %w", lp.monitorName(i), x.err))
			}
			continue
		}
		if len(results) == 1 {
			// One monitor: its observation is the observation (the runner
			// only reads it), with no copy.
			at := obs.At
			obs = x.obs
			if at.After(obs.At) {
				obs.At = at
			}
			continue
		}
		obs.Merge(x.obs)
	}
	rec.Observed++
	err := errors.Join(errs...)
	if err != nil {
		recordError(span, err)
	}
	return obs, err
}

// observed is what one monitor answered.
type observed struct {
	obs monitor.Observation
	err error
}

// observeAll calls every observer at once, each bounded by timeout. It is a
// function of its own so that the goroutines' closures capture their own
// copy of t: the single-monitor look then needs no allocation.
func observeAll(ctx context.Context, observers []*observer, t monitor.Target, timeout time.Duration) []observed {
	results := make([]observed, len(observers))
	var wg sync.WaitGroup
	for i, o := range observers {
		wg.Go(func() {
			obs, err := o.observe(ctx, t, timeout)
			results[i] = observed{obs, err}
		})
	}
	wg.Wait()
	return results
}

// judge observes and asks the policy for a verdict, recording both. brief
// says the caller reads the reasons only of a verdict other than continue
// (rollback.Policy.JudgeBrief); spans being recorded want them all.
func (r *Runner) judge(ctx context.Context, rec *state.Record, lp *loop, phase, step string, since time.Time, brief bool) (rollback.Decision, monitor.Observation) {
	if len(r.cfg.monitors) == 0 {
		return rollback.Decision{Verdict: rollback.Continue, Reason: "not observed: no monitors"}, monitor.Observation{}
	}
	obs, err := r.observe(ctx, rec, lp, phase, step, since)
	obs.Since = since // the window, for sequential tests
	switch {
	case err != nil && len(obs.Metrics) > 0:
		// Some monitors measured: judge what was measured and report the rest.
		r.cfg.logger.Warn("deploy: a monitor failed", "release", rec.ID, "err", err)
		err = nil
	case err != nil:
		r.cfg.logger.Warn("deploy: no monitor could measure", "release", rec.ID, "err", err)
	}
	base := lp.baselineOf(rec)
	c := rollback.Counters(rec.Counters)
	span := trace.Span(noop.Span{})
	if lp.recording {
		_, span = lp.tr.Start(ctx, "deploy.verdict")
	}
	before := c
	var dec rollback.Decision
	if brief && !lp.recording {
		dec = r.cfg.policy.JudgeBrief(&c, obs, base, err)
	} else {
		dec = r.cfg.policy.Judge(&c, obs, base, err)
	}
	if rec.Exposure == 0 && phase == "bake" && dec.Cause != nil && dec.Cause.Outcome == rollback.Inconclusive && err == nil {
		// Deployed dark: no user reaches the new version, so having no data
		// for it is expected, not a reason to pause or roll back.
		c = before
		dec = rollback.Decision{Verdict: rollback.Continue, Reason: "no data for the new version at 0 % exposure (deployed dark): " + dec.Cause.Reason, Results: dec.Results}
	}
	if dec.Verdict != rollback.Rollback && !r.judgesChecks {
		// A monitor reported a failed critical check that no trigger of
		// the policy judges (NewRunner refuses monitors it knows report
		// them; this one did not say): never ignore it.
		for _, ch := range obs.Checks {
			if ch.Critical && !ch.OK {
				reason := fmt.Sprintf("critical check %s failed: %s (the policy has no rollback.CriticalChecks trigger; a failed critical check rolls back all the same)", ch.Name, ch.Detail)
				dec = rollback.Decision{Verdict: rollback.Rollback, Reason: reason, Results: dec.Results,
					Cause: &rollback.Result{Trigger: "critical checks", Metric: "checks", Outcome: rollback.Fail, Reason: reason, Critical: true,
						Observed: math.NaN(), Baseline: math.NaN(), Threshold: math.NaN()}}
				break
			}
		}
	}
	rec.Counters = state.Counters(c)
	if lp.recording {
		span.SetAttributes(attribute.String("deploy.verdict", string(dec.Verdict)), attribute.String("deploy.verdict.reason", dec.Reason))
	}
	if dec.Verdict == rollback.Rollback {
		span.SetStatus(codes.Error, dec.Reason)
	}
	span.End()
	if rec.Last == nil {
		rec.Last = make(map[string]state.Measurement, len(obs.Metrics))
	}
	for k, m := range obs.Metrics {
		if m.HasData() && !math.IsInf(m.Value, 0) {
			rec.Last[k] = state.Measurement{Value: m.Value, Samples: m.Samples}
		}
	}
	return dec, obs
}

// announce sends an observation event (see notify.Console's documentation,
// which repeats this rule for users). The runner announces the observations
// that matter to people — a verdict other than continue, the one that
// completes a bake, the first and last of a watch window, the post-deployment
// checks — not every healthy minute of a day-long watch.
func (r *Runner) announce(rec *state.Record, lp *loop, dec rollback.Decision, step string) {
	if len(r.cfg.notifiers) == 0 {
		return
	}
	ev := Event{Kind: EventObservation, Verdict: string(dec.Verdict), Message: dec.Reason, Step: step}
	for _, res := range dec.Results {
		if res.Outcome == rollback.Pass && res.Samples == 0 {
			continue // nothing was judged (no checks reported)
		}
		ev.Readings = append(ev.Readings, Reading{Trigger: res.Trigger, Metric: res.Metric, Outcome: res.Outcome.String(), Reason: res.Reason})
	}
	r.emit(rec, ev)
}

// triggerFrom makes the trigger of a rollback verdict. kind says when it
// came (a breach while baking, or verification after full exposure); a
// verdict caused by missing data is TriggerInconclusive, and one caused by
// failing metric sources (no result at all) is TriggerSource, whenever
// they came.
func triggerFrom(dec rollback.Decision, kind state.TriggerKind) *state.Trigger {
	switch {
	case dec.Cause == nil && dec.Verdict == rollback.Rollback:
		kind = state.TriggerSource
	case dec.Cause != nil && dec.Cause.Outcome == rollback.Inconclusive:
		kind = state.TriggerInconclusive
	}
	t := &state.Trigger{Kind: kind, Reason: dec.Reason}
	if c := dec.Cause; c != nil {
		t.Metric = c.Metric
		t.Samples = c.Samples
		t.Reference = c.Reference
		t.Observed, t.Baseline, t.Threshold = num(c.Observed), num(c.Baseline), num(c.Threshold)
		t.Traces = c.Traces
	}
	return t
}

func num(f float64) *float64 {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil
	}
	return &f
}

func summarize(obs monitor.Observation) string {
	var parts []string
	for _, n := range obs.Names() {
		m := obs.Metrics[n]
		if !m.HasData() {
			parts = append(parts, n+"=no data")
			continue
		}
		parts = append(parts, fmt.Sprintf("%s=%.4g", n, m.Value))
	}
	for _, c := range obs.Checks {
		s := "ok"
		if !c.OK {
			s = "FAILED"
		}
		parts = append(parts, c.Name+" "+s)
	}
	if len(parts) == 0 {
		return "no metrics"
	}
	return redact.Text(strings.Join(parts, ", "))
}

// valuesOf returns the metrics obs measured, by name (nil for none).
func valuesOf(obs monitor.Observation) map[string]float64 {
	var v map[string]float64
	for name, m := range obs.Metrics {
		if !m.HasData() || math.IsInf(m.Value, 0) {
			continue
		}
		if v == nil {
			v = make(map[string]float64, len(obs.Metrics))
		}
		v[name] = m.Value
	}
	return v
}

// pointsPerSpan is how many healthy looks of a bake or a watch window the
// timeline keeps, about: enough to chart it, few enough that a week-long
// watch adds a few kilobytes, not one entry a minute.
const pointsPerSpan = 30

// point keeps a healthy look in the timeline, sampled: the first look of a
// bake or watch window (name), then at most one in every thirtieth of its
// span. Looks that change the verdict are noted by the phases themselves.
func (r *Runner) point(rec *state.Record, lp *loop, now time.Time, name string, span time.Duration, obs monitor.Observation) {
	if len(obs.Metrics) == 0 {
		return
	}
	if last, ok := lp.points[name]; ok && now.Sub(last) < span/pointsPerSpan {
		return
	}
	if lp.points == nil {
		lp.points = map[string]time.Time{}
	}
	lp.points[name] = now
	r.noteObs(rec, now, state.EntryObservation, state.OutcomeHealthy, name, obs)
}
