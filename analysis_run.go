package deploy

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/deploykit/deploy/monitor"
	"github.com/deploykit/deploy/state"
)

// An analysis run lives in the record (state.AnalysisRun): its counters
// and last measurements are saved with every transition, so a Resume goes
// on with them, and a new run starts from zero. This file starts runs,
// takes the measurements that are due, and assesses them with Argo
// Rollouts' rules (see AnalysisMetric).

// startRun appends a new run of a, of kind, for rec's current step, and
// returns its index.
func (r *Runner) startRun(rec *state.Record, now time.Time, a *Analysis, kind state.AnalysisKind, stepName string) int {
	run := state.AnalysisRun{Name: a.Name, Kind: kind, Stage: r.stageName(rec), Step: rec.Step, StepName: stepName,
		Attempt: rec.Attempt, Phase: state.AnalysisRunning, Start: now, Metrics: make([]state.MetricRun, len(a.Metrics))}
	for i, m := range a.Metrics {
		run.Metrics[i] = state.MetricRun{Name: m.Name, Unit: m.Unit, DryRun: m.DryRun, Phase: state.AnalysisRunning, Next: now.Add(m.InitialDelay)}
	}
	rec.Analyses = append(rec.Analyses, run)
	r.note(rec, now, state.EntryAnalysis, state.OutcomeStarted, a.Name, fmt.Sprintf("%s analysis of %s at step %s", kind, plural(len(a.Metrics), "metric"), stepName))
	return len(rec.Analyses) - 1
}

// findRun returns the index of the run of kind for the current attempt,
// stage and (but for a background run) step of rec, or -1.
func (r *Runner) findRun(rec *state.Record, kind state.AnalysisKind, step int) int {
	stage := r.stageName(rec)
	for i := len(rec.Analyses) - 1; i >= 0; i-- {
		x := &rec.Analyses[i]
		if x.Attempt != rec.Attempt {
			return -1 // runs are in order: an earlier attempt's are older
		}
		if x.Kind == kind && x.Stage == stage && (kind == state.AnalysisBackground || x.Step == step) {
			return i
		}
	}
	return -1
}

// runOK reports whether a finished run lets the release go on: it
// succeeded, was skipped, or a person promoted it past its inconclusive
// result.
func runOK(run *state.AnalysisRun) bool {
	switch run.Phase {
	case state.AnalysisSuccessful, state.AnalysisSkipped:
		return true
	case state.AnalysisInconclusive:
		return run.Accepted
	}
	return false
}

// measurement is one measurement as taken, before it is tallied.
type measurement struct {
	phase  state.AnalysisPhase
	value  float64 // NaN when nothing was measured
	reason string
}

// advanceRun takes the measurements of run i that are due at now, assesses
// the run, and returns when its next measurement is due (zero once the run
// is over). a is the analysis as configured now; a metric the run has that
// a no longer has ends in error.
func (r *Runner) advanceRun(ctx context.Context, rec *state.Record, lp *loop, i int, a *Analysis, now time.Time) time.Time {
	run := &rec.Analyses[i]
	if run.Phase.Done() {
		return time.Time{}
	}
	type due struct {
		k int
		m AnalysisMetric
	}
	var todo []due
	for k := range run.Metrics {
		mr := &run.Metrics[k]
		if mr.Phase.Done() || now.Before(mr.Next) {
			continue
		}
		m, ok := metricOf(a, mr.Name)
		if !ok {
			mr.Phase, mr.Reason = state.AnalysisError, "metric "+mr.Name+" is no longer in analysis "+a.Name
			continue
		}
		todo = append(todo, due{k, m})
	}
	if len(todo) > 0 {
		actx, span := lp.tracer().Start(ctx, "deploy.analysis", trace.WithAttributes(
			attribute.String("deploy.analysis", run.Name), attribute.String("deploy.analysis.kind", string(run.Kind)),
			attribute.String("deploy.step", run.StepName), attribute.Float64("deploy.exposure", rec.Exposure)))
		t := r.target(rec, "analysis", run.StepName, run.Start)
		got := make([]measurement, len(todo))
		var wg sync.WaitGroup
		for j, d := range todo {
			wg.Go(func() { got[j] = r.measure(actx, lp, run.Name, d.m, t) })
		}
		wg.Wait()
		for j, d := range todo {
			mr := &run.Metrics[d.k]
			tally(mr, got[j], now)
			interval := d.m.Interval
			if interval == 0 {
				interval = r.cfg.interval
			}
			if got[j].phase == state.AnalysisError {
				// As Argo's controller does: a measurement that erred is
				// taken again after 10 s, not a whole interval later.
				interval = min(interval, ErrorRetryInterval)
			}
			mr.Next = now.Add(interval)
			assessMetric(mr, d.m)
			if got[j].phase != state.AnalysisSuccessful || mr.Phase.Done() {
				r.noteMeasurement(rec, now, run, mr, got[j])
			}
		}
		assessRun(run, false)
		span.SetAttributes(attribute.String("deploy.analysis.phase", string(run.Phase)))
		if run.Phase == state.AnalysisFailed || run.Phase == state.AnalysisError {
			span.SetStatus(codes.Error, run.Reason)
		}
		span.End()
	} else {
		assessRun(run, false)
	}
	if run.Phase.Done() {
		r.endRun(rec, now, run)
		return time.Time{}
	}
	var next time.Time
	for _, mr := range run.Metrics {
		if !mr.Phase.Done() && (next.IsZero() || mr.Next.Before(next)) {
			next = mr.Next
		}
	}
	return next
}

// stopRun ends run i as the promotion does a background run, as Argo
// Rollouts terminates one: metrics still running complete as successful,
// and the run's result is the worst of its metrics'. With phase set (a
// skip, a full promotion), the run ends so instead.
func (r *Runner) stopRun(rec *state.Record, now time.Time, i int, phase state.AnalysisPhase, reason string) {
	run := &rec.Analyses[i]
	if run.Phase.Done() {
		return
	}
	if phase != "" {
		for k := range run.Metrics {
			if !run.Metrics[k].Phase.Done() {
				run.Metrics[k].Phase = phase
			}
		}
		run.Phase, run.Reason = phase, reason
	} else {
		assessRun(run, true)
	}
	r.endRun(rec, now, run)
}

func (r *Runner) endRun(rec *state.Record, now time.Time, run *state.AnalysisRun) {
	run.End = now
	outcome := outcomeOf(run.Phase)
	r.note(rec, now, state.EntryAnalysis, outcome, run.Name, fmt.Sprintf("%s analysis at step %s: %s", run.Kind, run.StepName, run.Reason))
	if r.listening() {
		c := *run
		c.Metrics = make([]state.MetricRun, len(run.Metrics))
		for k, m := range run.Metrics {
			m.Measurements = nil
			c.Metrics[k] = m
		}
		r.emit(rec, Event{Kind: EventAnalysis, Step: run.StepName, Analysis: &c,
			Message: fmt.Sprintf("analysis %s (%s) %s: %s", run.Name, run.Kind, run.Phase, run.Reason)})
	}
}

func metricOf(a *Analysis, name string) (AnalysisMetric, bool) {
	for _, m := range a.Metrics {
		if m.Name == name {
			return m, true
		}
	}
	return AnalysisMetric{}, false
}

// target is what the monitors are asked about for rec now.
func (r *Runner) target(rec *state.Record, phase, step string, since time.Time) monitor.Target {
	t := monitor.Target{
		DeploymentID: rec.ID, Service: rec.Release.Service, Version: rec.Release.Version,
		PreviousVersion: rec.Release.PreviousVersion, Environment: rec.Release.Environment,
		Exposure: rec.Exposure, Phase: phase, Step: step, Since: since, Labels: rec.Release.Labels,
	}
	stages := r.stages(rec.Release)
	if rec.Stage >= 0 && rec.Stage < len(stages) {
		t.Stage, t.Environment = stages[rec.Stage].Name, stages[rec.Stage].Environment
	}
	return t
}

// measure takes one measurement of m, bounded by the observe timeout: an
// error, a timeout, a panic or no data is an error measurement.
func (r *Runner) measure(ctx context.Context, lp *loop, analysis string, m AnalysisMetric, t monitor.Target) measurement {
	mctx, span := lp.tracer().Start(ctx, "deploy.measurement", trace.WithAttributes(
		attribute.String("deploy.analysis", analysis), attribute.String("deploy.metric", m.Name)))
	defer span.End()
	call := "analysis " + analysis + " metric " + m.Name
	var v float64
	var err error
	detail := "" // a check's detail, when the value is a check's
	if m.Measure != nil {
		v, err = bounded(mctx, call, r.cfg.timeouts.Observe, func(ctx context.Context) (float64, error) { return m.Measure(ctx, t) })
	} else {
		var obs monitor.Observation
		obs, err = bounded(mctx, call, r.cfg.timeouts.Observe, func(ctx context.Context) (monitor.Observation, error) { return m.Source.Observe(ctx, t) })
		if err == nil {
			key := m.Metric
			if key == "" {
				key = m.Name
			}
			x, ok := obs.Metrics[key]
			c, isCheck := checkNamed(obs, key)
			switch {
			case !ok && isCheck:
				// A pass/fail check (monitor.Job, a webhook) measures 1
				// or 0, as Argo's job provider passes or fails.
				v, detail = 0, c.Detail
				if c.OK {
					v = 1
				}
			case !ok:
				err = fmt.Errorf("monitor %s reported no metric or check %q (%s)", nameOf(m.Source), key, reported(obs))
			case !x.HasData():
				v = math.NaN()
			default:
				v = x.Value
			}
		}
	}
	var x measurement
	switch {
	case err != nil:
		x = measurement{phase: state.AnalysisError, value: math.NaN(), reason: m.Name + ": could not measure: " + err.Error()}
		recordError(span, err)
	case math.IsNaN(v) || math.IsInf(v, 0):
		x = measurement{phase: state.AnalysisError, value: math.NaN(), reason: m.Name + ": no data"}
	default:
		x = judgeValue(m, v)
		if detail != "" {
			x.reason += " (" + detail + ")"
		}
		span.SetAttributes(attribute.Float64("deploy.measurement.value", v))
	}
	span.SetAttributes(attribute.String("deploy.measurement.phase", string(x.phase)))
	if x.phase == state.AnalysisFailed && !m.DryRun {
		span.SetStatus(codes.Error, x.reason)
	}
	return x
}

// checkNamed returns obs's check named name.
func checkNamed(obs monitor.Observation, name string) (monitor.Check, bool) {
	for _, c := range obs.Checks {
		if c.Name == name {
			return c, true
		}
	}
	return monitor.Check{}, false
}

// reported says which metrics and checks obs holds, for an error.
func reported(obs monitor.Observation) string {
	q := func(names []string) string {
		for i, n := range names {
			names[i] = strconv.Quote(n)
		}
		return strings.Join(names, ", ")
	}
	var checks []string
	for _, c := range obs.Checks {
		checks = append(checks, c.Name)
	}
	switch {
	case len(obs.Metrics) == 0 && len(checks) == 0:
		return "it reported nothing"
	case len(checks) == 0:
		return "metrics: " + q(obs.Names())
	case len(obs.Metrics) == 0:
		return "checks: " + q(checks)
	}
	return "metrics: " + q(obs.Names()) + "; checks: " + q(checks)
}

// judgeValue applies the metric's conditions to v, as Argo Rollouts does:
// failure met → failed; else success met → successful; else with both
// conditions inconclusive, with success alone failed, with failure alone
// successful. The reason names the metric, the value with its unit, and
// the bound in words ("at most 10 %"), never "10 > 10".
func judgeValue(m AnalysisMetric, v float64) measurement {
	val := m.Name + " = " + withUnit(v, m.Unit)
	fail := !m.Failure.IsZero() && m.Failure.Met(v)
	succ := !m.Success.IsZero() && m.Success.Met(v)
	switch {
	case fail:
		return measurement{state.AnalysisFailed, v, val + ", failure condition met: " + m.Failure.describe(m.Unit)}
	case succ:
		return measurement{state.AnalysisSuccessful, v, val + ", success condition met: " + m.Success.describe(m.Unit)}
	case !m.Success.IsZero() && !m.Failure.IsZero():
		return measurement{state.AnalysisInconclusive, v, val + ", neither " + m.Success.describe(m.Unit) + " (success) nor " + m.Failure.describe(m.Unit) + " (failure)"}
	case !m.Success.IsZero():
		return measurement{state.AnalysisFailed, v, val + ", success condition not met: needs " + m.Success.describe(m.Unit)}
	}
	return measurement{state.AnalysisSuccessful, v, val + ", failure condition not met: " + m.Failure.describe(m.Unit)}
}

// tally counts measurement x in mr, as Argo Rollouts does: an error does
// not count toward Count (the metric is measured again at the next
// interval) but toward the consecutive errors.
func tally(mr *state.MetricRun, x measurement, now time.Time) {
	switch x.phase {
	case state.AnalysisSuccessful:
		mr.Count++
		mr.Successful++
		mr.ConsecutiveSuccesses++
		mr.ConsecutiveErrors = 0
	case state.AnalysisFailed:
		mr.Count++
		mr.Failed++
		mr.ConsecutiveSuccesses, mr.ConsecutiveErrors = 0, 0
	case state.AnalysisInconclusive:
		mr.Count++
		mr.Inconclusive++
		mr.ConsecutiveSuccesses, mr.ConsecutiveErrors = 0, 0
	case state.AnalysisError:
		mr.Errors++
		mr.ConsecutiveErrors++
		mr.ConsecutiveSuccesses = 0
	}
	ms := state.AnalysisMeasurement{At: now, Phase: x.phase, Reason: x.reason}
	if !math.IsNaN(x.value) {
		v := x.value
		ms.Value = &v
	}
	if n := len(mr.Measurements); n >= state.MeasurementsKept {
		// The oldest goes; the counters keep counting it. The runs are
		// the holder's own (stores deep-copy them), so they shift in place.
		copy(mr.Measurements, mr.Measurements[n-state.MeasurementsKept+1:])
		mr.Measurements = mr.Measurements[:state.MeasurementsKept-1]
	}
	mr.Measurements = append(mr.Measurements, ms)
}

// assessMetric sets mr's phase from its counters and m's limits, in Argo
// Rollouts' order: failed, inconclusive, error, then complete.
func assessMetric(mr *state.MetricRun, m AnalysisMetric) {
	if mr.Phase.Done() {
		return
	}
	over := func(n, limit int) bool { return limit != Unlimited && n > limit }
	last := ""
	if n := len(mr.Measurements); n > 0 {
		last = ": last " + mr.Measurements[n-1].Reason
	}
	switch {
	case over(mr.Failed, m.FailureLimit):
		mr.Phase, mr.Reason = state.AnalysisFailed, fmt.Sprintf("%s failed %s (%s tolerated)%s", mr.Name, plural(mr.Failed, "time"), limitWord(m.FailureLimit), last)
	case over(mr.Inconclusive, m.InconclusiveLimit):
		mr.Phase, mr.Reason = state.AnalysisInconclusive, fmt.Sprintf("%s was inconclusive %s (%s tolerated)%s", mr.Name, plural(mr.Inconclusive, "time"), limitWord(m.InconclusiveLimit), last)
	case m.errorLimit() != Unlimited && mr.ConsecutiveErrors > m.errorLimit():
		mr.Phase, mr.Reason = state.AnalysisError, fmt.Sprintf("%s could not be measured %s in a row (%s tolerated)%s", mr.Name, plural(mr.ConsecutiveErrors, "time"), limitWord(m.errorLimit()), last)
	case m.ConsecutiveSuccessLimit > 0 && mr.ConsecutiveSuccesses >= m.ConsecutiveSuccessLimit:
		mr.Phase, mr.Reason = state.AnalysisSuccessful, fmt.Sprintf("%s succeeded %s in a row", mr.Name, plural(mr.ConsecutiveSuccesses, "time"))
	case m.count() > 0 && mr.Count >= m.count():
		if m.ConsecutiveSuccessLimit > 0 {
			mr.Phase, mr.Reason = state.AnalysisInconclusive, fmt.Sprintf("%s took its %s without %d successes in a row", mr.Name, plural(mr.Count, "measurement"), m.ConsecutiveSuccessLimit)
			return
		}
		mr.Phase, mr.Reason = state.AnalysisSuccessful, fmt.Sprintf("%s: %s, %d successful, %d failed, %d inconclusive", mr.Name, plural(mr.Count, "measurement"), mr.Successful, mr.Failed, mr.Inconclusive)
	}
}

func limitWord(n int) string {
	if n == 0 {
		return "none"
	}
	return fmt.Sprint(n)
}

// phaseRank orders results from best to worst, as Argo Rollouts does.
var phaseRank = map[state.AnalysisPhase]int{state.AnalysisSuccessful: 0, state.AnalysisSkipped: 0, state.AnalysisRunning: 1,
	state.AnalysisInconclusive: 2, state.AnalysisError: 3, state.AnalysisFailed: 4}

// assessRun sets the run's phase: over as soon as a metric that decides
// (not DryRun) failed, errored or was inconclusive — the worst of them —
// or once every metric, DryRun ones included, completed; with stop,
// metrics still running complete as successful (the run was terminated).
func assessRun(run *state.AnalysisRun, stop bool) {
	if run.Phase.Done() {
		return
	}
	worst, reason := state.AnalysisSuccessful, ""
	running := false
	var dry []string
	for k := range run.Metrics {
		mr := &run.Metrics[k]
		if mr.DryRun {
			if mr.Phase == state.AnalysisFailed || mr.Phase == state.AnalysisError || mr.Phase == state.AnalysisInconclusive {
				dry = append(dry, mr.Name+" "+string(mr.Phase)+" (dry run)")
			}
			// A dry-run metric never decides, but the run waits for it to
			// complete, as Argo's does: its results are what it is for.
			running = running || !mr.Phase.Done()
			continue
		}
		if !mr.Phase.Done() {
			running = true
			continue
		}
		if phaseRank[mr.Phase] > phaseRank[worst] {
			worst, reason = mr.Phase, mr.Reason
		}
	}
	if running && worst == state.AnalysisSuccessful && !stop {
		return
	}
	for k := range run.Metrics {
		mr := &run.Metrics[k]
		if !mr.Phase.Done() {
			mr.Phase, mr.Reason = state.AnalysisSuccessful, mr.Name+": run ended"
		}
	}
	if reason == "" {
		reason = "every metric completed"
		if stop {
			reason = "ended at the promotion; every metric within its limits"
		}
	}
	if len(dry) > 0 {
		reason += "; " + strings.Join(dry, ", ")
	}
	run.Phase, run.Reason = worst, reason
}

// noteMeasurement keeps a measurement that matters in the timeline: any
// but a success, and the one that ends the metric.
func (r *Runner) noteMeasurement(rec *state.Record, now time.Time, run *state.AnalysisRun, mr *state.MetricRun, x measurement) {
	outcome := outcomeOf(x.phase)
	detail := x.reason
	if mr.DryRun {
		detail += " (dry run: does not decide)"
	}
	r.note(rec, now, state.EntryAnalysis, outcome, run.Name+"/"+mr.Name, detail)
	if !math.IsNaN(x.value) {
		rec.Timeline[len(rec.Timeline)-1].Values = map[string]float64{mr.Name: x.value}
	}
}

// outcomeOf is the timeline's outcome for a run or measurement that ended
// in phase p.
func outcomeOf(p state.AnalysisPhase) state.Outcome {
	switch p {
	case state.AnalysisFailed:
		return state.OutcomeFailed
	case state.AnalysisInconclusive:
		return state.OutcomeInconclusive
	case state.AnalysisError:
		return state.OutcomeError
	case state.AnalysisSkipped:
		return state.OutcomeSkipped
	}
	return state.OutcomeSuccessful
}
