package rollback

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/deploykit/deploy/monitor"
)

// reference returns what the new version's metric is compared against: the
// control (stable version over the same window) when the source measured it,
// else the preflight baseline. ok is false when neither has data.
func reference(m monitor.Metric, baseline monitor.Observation, name string) (v float64, label string, ok bool) {
	if m.HasControl() {
		return m.Control, "control", true
	}
	b := baseline.Metric(name)
	if b.HasData() {
		return b.Value, "baseline", true
	}
	return math.NaN(), "baseline", false
}

func noData(trigger, metric string) Result {
	return Result{Trigger: trigger, Metric: metric, Outcome: Inconclusive, Observed: math.NaN(), Baseline: math.NaN(), Reason: fmt.Sprintf("%s: no data", metric)}
}

// RelativeIncrease rolls back when a metric rises by more than MaxIncrease
// relative to the control or baseline: the checklist's "Error rate increases
// by >X%". Values at or below Floor always pass, so that a baseline of zero
// errors does not make one failed request an infinite increase.
type RelativeIncrease struct {
	// Metric is the metric name; empty means monitor.ErrorRate.
	Metric string
	// MaxIncrease is the largest tolerated relative increase: 0.5 is +50 %.
	MaxIncrease float64
	// Floor is an absolute value at or below which the metric always passes.
	Floor float64
	// Percent formats values as percentages (for ratios such as error rate).
	// It is on by default for monitor.ErrorRate.
	Percent bool
}

func (t RelativeIncrease) metric() string {
	if t.Metric == "" {
		return monitor.ErrorRate
	}
	return t.Metric
}

// Name returns "relative-increase:" and the metric name.
func (t RelativeIncrease) Name() string { return "relative-increase:" + t.metric() }

// Condition describes the trigger.
func (t RelativeIncrease) Condition() string {
	return fmt.Sprintf("%s increases by >%s relative to the baseline", human(t.metric()), pct(t.MaxIncrease))
}

// Validate reports a negative or NaN MaxIncrease or Floor.
func (t RelativeIncrease) Validate() error {
	if !(t.MaxIncrease >= 0) || math.IsInf(t.MaxIncrease, 0) {
		return fmt.Errorf("RelativeIncrease.MaxIncrease %v must be a finite number >= 0: %w", t.MaxIncrease, ErrInvalid)
	}
	if !(t.Floor >= 0) {
		return fmt.Errorf("RelativeIncrease.Floor %v must be >= 0: %w", t.Floor, ErrInvalid)
	}
	return nil
}

// Evaluate judges obs.
func (t RelativeIncrease) Evaluate(obs, baseline monitor.Observation) Result {
	name := t.metric()
	m := obs.Metric(name)
	if !m.HasData() {
		return noData(t.Name(), name)
	}
	ref, label, ok := reference(m, baseline, name)
	if !ok {
		return Result{Trigger: t.Name(), Metric: name, Outcome: Inconclusive, Observed: m.Value, Baseline: math.NaN(), Samples: m.Samples,
			Reason: fmt.Sprintf("%s %s: no baseline to compare with", human(name), t.format(m.Value))}
	}
	limit := ref * (1 + t.MaxIncrease)
	r := Result{Trigger: t.Name(), Metric: name, Observed: m.Value, Baseline: ref, Threshold: limit, Samples: m.Samples}
	change := "n/a"
	if ref > 0 {
		change = fmt.Sprintf("%+.0f %%", (m.Value/ref-1)*100)
	}
	desc := fmt.Sprintf("%s %s vs %s %s (%s)", human(name), t.format(m.Value), label, t.format(ref), change)
	if m.Value > limit && m.Value > t.Floor {
		r.Outcome = Fail
		r.Reason = fmt.Sprintf("%s > +%s", desc, strings.TrimSuffix(pct(t.MaxIncrease), "%")+" %")
	} else {
		r.Reason = fmt.Sprintf("%s within +%s", desc, strings.TrimSuffix(pct(t.MaxIncrease), "%")+" %")
	}
	return r
}

func (t RelativeIncrease) format(v float64) string {
	if t.Percent || t.metric() == monitor.ErrorRate {
		return fmt.Sprintf("%.1f %%", v*100)
	}
	return fmt.Sprintf("%.4g", v)
}

// LatencyIncrease rolls back when a latency metric, in seconds, rises by more
// than MaxIncrease over the control or baseline: the checklist's "Response
// time increases by >Yms".
type LatencyIncrease struct {
	// Metric is the metric name, in seconds; empty means monitor.LatencyP95.
	Metric string
	// MaxIncrease is the largest tolerated absolute increase.
	MaxIncrease time.Duration
}

func (t LatencyIncrease) metric() string {
	if t.Metric == "" {
		return monitor.LatencyP95
	}
	return t.Metric
}

// Name returns "latency-increase:" and the metric name.
func (t LatencyIncrease) Name() string { return "latency-increase:" + t.metric() }

// Condition describes the trigger.
func (t LatencyIncrease) Condition() string {
	return fmt.Sprintf("%s increases by >%dms", human(t.metric()), t.MaxIncrease.Milliseconds())
}

// Validate reports a negative MaxIncrease.
func (t LatencyIncrease) Validate() error {
	if t.MaxIncrease < 0 {
		return fmt.Errorf("LatencyIncrease.MaxIncrease %v is negative: %w", t.MaxIncrease, ErrInvalid)
	}
	return nil
}

// Evaluate judges obs.
func (t LatencyIncrease) Evaluate(obs, baseline monitor.Observation) Result {
	name := t.metric()
	m := obs.Metric(name)
	if !m.HasData() {
		return noData(t.Name(), name)
	}
	ref, label, ok := reference(m, baseline, name)
	if !ok {
		return Result{Trigger: t.Name(), Metric: name, Outcome: Inconclusive, Observed: m.Value, Baseline: math.NaN(), Samples: m.Samples,
			Reason: fmt.Sprintf("%s %s: no baseline to compare with", human(name), ms(m.Value))}
	}
	limit := ref + t.MaxIncrease.Seconds()
	r := Result{Trigger: t.Name(), Metric: name, Observed: m.Value, Baseline: ref, Threshold: limit, Samples: m.Samples}
	desc := fmt.Sprintf("%s %s vs %s %s (%+.0f ms)", human(name), ms(m.Value), label, ms(ref), (m.Value-ref)*1000)
	if m.Value > limit {
		r.Outcome = Fail
		r.Reason = fmt.Sprintf("%s > +%d ms", desc, t.MaxIncrease.Milliseconds())
	} else {
		r.Reason = fmt.Sprintf("%s within +%d ms", desc, t.MaxIncrease.Milliseconds())
	}
	return r
}

// Threshold rolls back when a metric leaves an absolute range: CPU above 80 %,
// memory above 2 GiB, throughput below a floor. A bound that is NaN is not
// checked; the zero value of Min and Max are real bounds, so set the one you
// do not want to math.NaN() or use [Above] and [Below].
type Threshold struct {
	Metric string
	Min    float64
	Max    float64
	// Critical makes a breach roll back at once, whatever the failure limit.
	Critical bool
}

// Above returns a Threshold that fails when metric exceeds max.
func Above(metric string, max float64) Threshold {
	return Threshold{Metric: metric, Min: math.NaN(), Max: max}
}

// Below returns a Threshold that fails when metric falls under min.
func Below(metric string, min float64) Threshold {
	return Threshold{Metric: metric, Min: min, Max: math.NaN()}
}

// Name returns "threshold:" and the metric name.
func (t Threshold) Name() string { return "threshold:" + t.Metric }

// Condition describes the trigger.
func (t Threshold) Condition() string {
	var parts []string
	if !math.IsNaN(t.Max) {
		parts = append(parts, fmt.Sprintf("%s above %.4g", human(t.Metric), t.Max))
	}
	if !math.IsNaN(t.Min) {
		parts = append(parts, fmt.Sprintf("%s below %.4g", human(t.Metric), t.Min))
	}
	return strings.Join(parts, " or ")
}

// Validate reports an empty metric name, no bound, or Min > Max.
func (t Threshold) Validate() error {
	switch {
	case t.Metric == "":
		return fmt.Errorf("Threshold.Metric is empty: %w", ErrInvalid)
	case math.IsNaN(t.Min) && math.IsNaN(t.Max):
		return fmt.Errorf("Threshold for %q has neither Min nor Max: %w", t.Metric, ErrInvalid)
	case t.Min > t.Max:
		return fmt.Errorf("Threshold for %q: Min %v > Max %v: %w", t.Metric, t.Min, t.Max, ErrInvalid)
	}
	return nil
}

// Evaluate judges obs; baseline is not used.
func (t Threshold) Evaluate(obs, _ monitor.Observation) Result {
	m := obs.Metric(t.Metric)
	if !m.HasData() {
		return noData(t.Name(), t.Metric)
	}
	r := Result{Trigger: t.Name(), Metric: t.Metric, Observed: m.Value, Baseline: math.NaN(), Samples: m.Samples, Critical: t.Critical}
	switch {
	case !math.IsNaN(t.Max) && m.Value > t.Max:
		r.Outcome, r.Threshold = Fail, t.Max
		r.Reason = fmt.Sprintf("%s %.4g > %.4g (%d samples)", human(t.Metric), m.Value, t.Max, m.Samples)
	case !math.IsNaN(t.Min) && m.Value < t.Min:
		r.Outcome, r.Threshold = Fail, t.Min
		r.Reason = fmt.Sprintf("%s %.4g < %.4g (%d samples)", human(t.Metric), m.Value, t.Min, m.Samples)
	default:
		r.Threshold = t.Max
		if math.IsNaN(t.Max) {
			r.Threshold = t.Min
		}
		r.Reason = fmt.Sprintf("%s %.4g within bounds", human(t.Metric), m.Value)
	}
	return r
}

// CriticalChecks rolls back at once when any critical check in the
// observation failed: the checklist's "Critical functionality broken".
// Non-critical failed checks count as ordinary failures.
type CriticalChecks struct{}

// Name returns "checks".
func (CriticalChecks) Name() string { return "checks" }

// Condition describes the trigger.
func (CriticalChecks) Condition() string {
	return "Critical functionality broken (a critical check fails)"
}

// Evaluate judges the checks of obs.
func (CriticalChecks) Evaluate(obs, _ monitor.Observation) Result {
	r := Result{Trigger: "checks", Metric: "checks", Observed: math.NaN(), Baseline: math.NaN(), Samples: len(obs.Checks)}
	var failed []string
	for _, c := range obs.Checks {
		if c.OK {
			continue
		}
		r.Outcome = Fail
		if c.Critical {
			r.Critical = true
		}
		s := c.Name
		if c.Detail != "" {
			s += ": " + c.Detail
		}
		failed = append(failed, s)
	}
	if len(failed) == 0 {
		r.Reason = fmt.Sprintf("%d checks passed", len(obs.Checks))
		return r
	}
	kind := "check"
	if r.Critical {
		kind = "critical check"
	}
	r.Reason = fmt.Sprintf("%s failed: %s", kind, strings.Join(failed, "; "))
	return r
}

func human(metric string) string {
	switch metric {
	case monitor.ErrorRate:
		return "error rate"
	case monitor.LatencyP95:
		return "p95 latency"
	case monitor.CPU:
		return "CPU"
	case monitor.Memory:
		return "memory"
	}
	return metric
}

func pct(f float64) string { return fmt.Sprintf("%g%%", f*100) }

func ms(sec float64) string { return fmt.Sprintf("%.0f ms", sec*1000) }
