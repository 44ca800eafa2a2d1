package rollback

import (
	"fmt"
	"math"
	"strconv"

	"github.com/deploykit/deploy/monitor"
)

// reference returns what the new version's metric is compared against: the
// control (stable version over the same window) when the source measured it,
// else the preflight baseline. n is the number of samples the judgement
// rests on: the smaller of the two when the control is used, the new
// version's otherwise. ok is false when there is nothing to compare with.
func reference(m *monitor.Metric, baseline *monitor.Observation, name string) (v float64, label string, n int, ok bool) {
	if m.HasControl() {
		return m.Control, "control", min(m.Samples, m.ControlSamples), true
	}
	b := baseline.Metric(name)
	if b.HasData() {
		return b.Value, "baseline", m.Samples, true
	}
	return math.NaN(), "baseline", m.Samples, false
}

// The package's triggers judge in an eval method that appends the reason to
// a buffer and leaves Result.Trigger and Result.Reason empty, so that
// [Policy.Judge] writes every reason and name of an observation into one
// buffer and allocates one string for them all. Their Evaluate methods wrap
// eval.

// noData returns the result for a metric with no data and appends its reason.
func noData(r *Result, b []byte, metric string) []byte {
	*r = Result{Metric: metric, Outcome: Inconclusive, Observed: math.NaN(), Baseline: math.NaN(), Threshold: math.NaN()}
	b = append(b, human(metric)...)
	return append(b, ": no data (0 samples)"...)
}

// noReference returns the result for a metric with nothing to compare with;
// b holds the start of the reason, the metric and its value.
func noReference(r *Result, b []byte, metric string, m monitor.Metric) []byte {
	*r = Result{Metric: metric, Outcome: Inconclusive, Observed: m.Value, Baseline: math.NaN(), Threshold: math.NaN(), Samples: m.Samples}
	b = append(b, ": no baseline or control to compare with ("...)
	b = strconv.AppendInt(b, int64(m.Samples), 10)
	return append(b, " samples)"...)
}

// finish sets the trigger's name and the reason in b on r.
func finish(r *Result, name string, b []byte) Result {
	r.Trigger, r.Reason = name, string(b)
	return *r
}

// joinName returns prefix + suffix, without allocating when suffix is empty.
func joinName(prefix, suffix string) string {
	if suffix == "" {
		return prefix
	}
	return prefix + suffix
}

// appendSamples appends " (n samples)" or, when the control was used,
// " (n vs c samples)".
func appendSamples(b []byte, m monitor.Metric) []byte {
	b = append(b, " ("...)
	b = strconv.AppendInt(b, int64(m.Samples), 10)
	if m.HasControl() {
		b = append(b, " vs "...)
		b = strconv.AppendInt(b, int64(m.ControlSamples), 10)
	}
	return append(b, " samples)"...)
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
	// Confidence, when set (0.95, say), makes a rise fail only when it is
	// also statistically significant, so that a small canary's one failed
	// request out of 20 is not a breach while 6 out of 20 is. It applies to a
	// rate in [0, 1] whose Samples count the events it is made of
	// (monitor.Metric.Counted, set by monitor.Rate and by a PromQL instant
	// query with a Count): the one-sided exact binomial test must reject, at
	// this confidence, that the new version's true rate is at or below the
	// threshold (the reference plus MaxIncrease, or the Floor, whichever is
	// higher); the reference is taken as exact, as a threshold is. A rise
	// that is not significant passes, saying so. The failures counted are
	// the rate times the samples, rounded up; when the samples are so few
	// that even all of them failing would not be significant, the rise is
	// inconclusive (the step pauses and, past the inconclusive limit, rolls
	// back), never a pass. Other metrics — data points of a range query, a
	// value with no count — are judged without the test, as if Confidence
	// were 0.
	Confidence float64
}

func (t RelativeIncrease) metric() string {
	if t.Metric == "" {
		return monitor.ErrorRate
	}
	return t.Metric
}

// Name returns "relative-increase:" and the metric name.
func (t RelativeIncrease) Name() string { return joinName(t.nameParts()) }

// nameParts returns the name as a prefix and a suffix; the prefix alone is
// the name when the suffix is empty.
func (t RelativeIncrease) nameParts() (string, string) {
	if t.Metric == "" || t.Metric == monitor.ErrorRate {
		return "relative-increase:" + monitor.ErrorRate, "" // a constant
	}
	return "relative-increase:", t.Metric
}

// Condition describes the trigger.
func (t RelativeIncrease) Condition() string {
	s := fmt.Sprintf("%s increases by >%s relative to the control or baseline", human(t.metric()), pct(t.MaxIncrease))
	if t.Confidence > 0 {
		s += fmt.Sprintf(" (significant at %s confidence)", pct(t.Confidence))
	}
	return s
}

// Validate reports a negative or NaN MaxIncrease or Floor.
func (t RelativeIncrease) Validate() error {
	if !validFraction(t.MaxIncrease) {
		return fmt.Errorf("RelativeIncrease.MaxIncrease %v must be a finite number >= 0: %w", t.MaxIncrease, ErrInvalid)
	}
	if !validFraction(t.Floor) {
		return fmt.Errorf("RelativeIncrease.Floor %v must be a finite number >= 0: %w", t.Floor, ErrInvalid)
	}
	if math.IsNaN(t.Confidence) || t.Confidence < 0 || t.Confidence >= 1 {
		return fmt.Errorf("RelativeIncrease.Confidence %v must be in [0, 1): %w", t.Confidence, ErrInvalid)
	}
	return nil
}

// Evaluate judges obs against the control, else the baseline. It is
// inconclusive when the metric has no data or there is nothing to compare
// it with.
func (t RelativeIncrease) Evaluate(obs, baseline monitor.Observation) Result {
	var (
		arr [160]byte
		r   Result
	)
	b := t.eval(&r, arr[:0], &obs, &baseline, false)
	return finish(&r, t.Name(), b)
}

// significance is the outcome of the test of a rise above the threshold.
type significance int

const (
	significant    significance = iota // or the test does not apply
	notSignificant                     // no more than chance gives
	tooFew                             // no outcome of so few samples could be significant
)

// test runs the exact binomial test of m above threshold at t.Confidence.
// k, the events counted, is the value times the samples rounded up, and at
// least 1: a sample count that is not a count of trials (1 for an instant
// PromQL ratio) then errs towards a significant rise, never hides one. It
// returns k and the p-value.
func (t RelativeIncrease) test(m monitor.Metric, threshold float64) (significance, int, float64) {
	if t.Confidence <= 0 || !m.Counted || m.Samples <= 0 || m.Value < 0 || m.Value > 1 || threshold <= 0 || threshold >= 1 {
		return significant, 0, 0
	}
	alpha := 1 - t.Confidence
	n := m.Samples
	if binomialSF(n, n, threshold) >= alpha {
		return tooFew, n, 1
	}
	k := max(1, int(math.Ceil(m.Value*float64(n)-1e-9)))
	p := binomialSF(k, n, threshold)
	if p < alpha {
		return significant, k, p
	}
	return notSignificant, k, p
}

func (t RelativeIncrease) eval(r *Result, b []byte, obs, baseline *monitor.Observation, quiet bool) []byte {
	name := t.metric()
	m := obs.Metric(name)
	if !m.HasData() {
		return noData(r, b, name)
	}
	percent := t.Percent || name == monitor.ErrorRate
	ref, label, n, ok := reference(&m, baseline, name)
	if !ok {
		b = append(b, human(name)...)
		b = append(b, ' ')
		return noReference(r, appendValue(b, m.Value, percent), name, m)
	}
	limit := ref * (1 + t.MaxIncrease)
	// The effective threshold: the relative limit, but never below the floor.
	*r = Result{Metric: name, Observed: m.Value, Baseline: ref, Reference: label, Threshold: max(limit, t.Floor), Samples: n}
	above := m.Value > limit && m.Value > t.Floor
	if quiet && !above {
		return b // passes: no reason wanted
	}
	b = append(b, human(name)...)
	b = append(b, ' ')
	b = appendValue(b, m.Value, percent)
	b = append(b, " vs "...)
	b = append(b, label...)
	b = append(b, ' ')
	b = appendValue(b, ref, percent)
	b = appendChange(b, m.Value, ref)
	sig, k, p := significant, 0, 0.0
	if above {
		sig, k, p = t.test(m, max(limit, t.Floor))
	}
	switch {
	case above && sig == tooFew:
		// Above the threshold, but so few samples that even all of them
		// failing would prove nothing: wait for more, never promote.
		r.Outcome = Inconclusive
		b = append(b, " above the threshold "...)
		b = appendValue(b, max(limit, t.Floor), percent)
		b = append(b, ", but "...)
		b = strconv.AppendInt(b, int64(m.Samples), 10)
		b = append(b, " samples are too few to tell at "...)
		b = appendPct(b, t.Confidence)
		return append(b, " confidence"...)
	case above && sig == notSignificant:
		// Above the threshold, but no more than chance would give.
		r.Outcome = Pass
		b = append(b, " above the threshold "...)
		b = appendValue(b, max(limit, t.Floor), percent)
		b = append(b, ", but not significantly at "...)
		b = appendPct(b, t.Confidence)
		b = append(b, " confidence ("...)
		b = strconv.AppendInt(b, int64(k), 10)
		b = append(b, " of "...)
		b = strconv.AppendInt(b, int64(m.Samples), 10)
		b = append(b, ", p = "...)
		b = strconv.AppendFloat(b, p, 'g', 2, 64)
		return append(b, ')')
	case above:
		r.Outcome = Fail
		if ref <= 0 {
			// No relative change from zero: the floor is what was crossed.
			if t.Floor > 0 {
				b = append(b, " > the "...)
				b = appendValue(b, t.Floor, percent)
				b = append(b, " floor"...)
			} else {
				b = append(b, " > 0 (any rise from zero)"...)
			}
			break
		}
		b = append(b, " > +"...)
		b = appendPct(b, t.MaxIncrease)
		if t.Floor > limit {
			// The floor is the threshold recorded: say it was crossed too.
			b = append(b, " and the "...)
			b = appendValue(b, t.Floor, percent)
			b = append(b, " floor"...)
		}
	case m.Value > limit:
		b = append(b, " at or below the "...)
		b = appendValue(b, t.Floor, percent)
		b = append(b, " floor"...)
	default:
		b = append(b, " within +"...)
		b = appendPct(b, t.MaxIncrease)
	}
	return appendSamples(b, m)
}

// appendValue formats v as a percentage ("2.4 %") or with 4 significant
// digits.
func appendValue(b []byte, v float64, percent bool) []byte {
	if percent {
		b = strconv.AppendFloat(b, v*100, 'f', 1, 64)
		return append(b, " %"...)
	}
	return strconv.AppendFloat(b, v, 'g', 4, 64)
}

// appendChange appends the relative change of v over ref: " (+700 %)".
func appendChange(b []byte, v, ref float64) []byte {
	if ref <= 0 {
		return append(b, " (n/a)"...)
	}
	c := math.Round((v/ref - 1) * 100)
	b = append(b, " ("...)
	if c >= 0 {
		b = append(b, '+')
	}
	b = strconv.AppendFloat(b, c, 'f', 0, 64)
	return append(b, " %)"...)
}

// appendPct appends the fraction f as a percentage: 0.5 is "50 %".
func appendPct(b []byte, f float64) []byte {
	if x := f * 100; x == math.Trunc(x) && math.Abs(x) < 1e15 {
		b = strconv.AppendInt(b, int64(x), 10)
	} else {
		b = strconv.AppendFloat(b, math.Round(x*1e6)/1e6, 'f', -1, 64)
	}
	return append(b, " %"...)
}

// RelativeDecrease rolls back when a metric falls by more than MaxDecrease
// relative to the control or baseline: a business metric (orders, sign-ups,
// revenue per minute) down by more than Z %. It is the mirror of
// [RelativeIncrease].
type RelativeDecrease struct {
	// Metric is the metric name; it is required.
	Metric string
	// MaxDecrease is the largest tolerated relative decrease, in [0, 1]: 0.1
	// is -10 %.
	MaxDecrease float64
	// Percent formats values as percentages (for ratios such as a
	// conversion rate).
	Percent bool
	// Critical makes a breach roll back at once, whatever the failure limit.
	Critical bool
}

// Name returns "relative-decrease:" and the metric name.
func (t RelativeDecrease) Name() string { return joinName(t.nameParts()) }

func (t RelativeDecrease) nameParts() (string, string) { return "relative-decrease:", t.Metric }

// Condition describes the trigger, e.g. "orders_per_minute decreases by
// >10% relative to the control or baseline".
func (t RelativeDecrease) Condition() string {
	return fmt.Sprintf("%s decreases by >%s relative to the control or baseline", human(t.Metric), pct(t.MaxDecrease))
}

// Validate reports an empty metric name or a MaxDecrease outside [0, 1].
func (t RelativeDecrease) Validate() error {
	switch {
	case t.Metric == "":
		return fmt.Errorf("RelativeDecrease.Metric is empty: %w", ErrInvalid)
	case !(t.MaxDecrease >= 0 && t.MaxDecrease <= 1):
		return fmt.Errorf("RelativeDecrease.MaxDecrease %v must be in [0, 1]: %w", t.MaxDecrease, ErrInvalid)
	}
	return nil
}

// Evaluate judges obs against the control, else the baseline. It is
// inconclusive when the metric has no data or there is nothing to compare
// it with.
func (t RelativeDecrease) Evaluate(obs, baseline monitor.Observation) Result {
	var (
		arr [160]byte
		r   Result
	)
	b := t.eval(&r, arr[:0], &obs, &baseline, false)
	return finish(&r, t.Name(), b)
}

func (t RelativeDecrease) eval(r *Result, b []byte, obs, baseline *monitor.Observation, quiet bool) []byte {
	m := obs.Metric(t.Metric)
	if !m.HasData() {
		return noData(r, b, t.Metric)
	}
	ref, label, n, ok := reference(&m, baseline, t.Metric)
	if !ok {
		b = append(b, human(t.Metric)...)
		b = append(b, ' ')
		return noReference(r, appendValue(b, m.Value, t.Percent), t.Metric, m)
	}
	limit := ref * (1 - t.MaxDecrease)
	*r = Result{Metric: t.Metric, Observed: m.Value, Baseline: ref, Reference: label, Threshold: limit, Samples: n, Critical: t.Critical}
	if quiet && m.Value >= limit {
		return b // passes: no reason wanted
	}
	b = append(b, human(t.Metric)...)
	b = append(b, ' ')
	b = appendValue(b, m.Value, t.Percent)
	b = append(b, " vs "...)
	b = append(b, label...)
	b = append(b, ' ')
	b = appendValue(b, ref, t.Percent)
	b = appendChange(b, m.Value, ref)
	if m.Value < limit {
		r.Outcome = Fail
		b = append(b, " < -"...)
	} else {
		b = append(b, " within -"...)
	}
	b = appendPct(b, t.MaxDecrease)
	return appendSamples(b, m)
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

// Evaluate judges the checks of obs: it fails when any failed, and the
// result is critical when a critical one did. Samples is the number of
// checks; no checks at all pass.
func (t CriticalChecks) Evaluate(obs, baseline monitor.Observation) Result {
	var (
		arr [160]byte
		r   Result
	)
	b := t.eval(&r, arr[:0], &obs, &baseline, false)
	return finish(&r, "checks", b)
}

func (CriticalChecks) nameParts() (string, string) { return "checks", "" }

func (CriticalChecks) eval(r *Result, b []byte, obs, _ *monitor.Observation, quiet bool) []byte {
	*r = Result{Metric: "checks", Observed: math.NaN(), Baseline: math.NaN(), Threshold: math.NaN(), Samples: len(obs.Checks)}
	for _, c := range obs.Checks {
		if !c.OK {
			r.Outcome = Fail
			r.Critical = r.Critical || c.Critical
		}
	}
	if r.Outcome == Pass {
		if quiet {
			return b // no reason wanted
		}
		if len(obs.Checks) == 0 {
			return append(b, "no checks reported"...)
		}
		b = strconv.AppendInt(b, int64(len(obs.Checks)), 10)
		if len(obs.Checks) == 1 {
			b = append(b, " check passed: "...)
		} else {
			b = append(b, " checks passed: "...)
		}
		for i, c := range obs.Checks {
			if i > 0 {
				b = append(b, ", "...)
			}
			b = append(b, c.Name...)
		}
		return b
	}
	if r.Critical {
		b = append(b, "critical "...)
	}
	b = append(b, "check failed: "...)
	sep := false
	for _, c := range obs.Checks {
		if c.OK {
			continue
		}
		if sep {
			b = append(b, "; "...)
		}
		sep = true
		b = append(b, c.Name...)
		if c.Detail != "" {
			b = append(b, ": "...)
			b = append(b, c.Detail...)
		}
	}
	return b
}

func human(metric string) string {
	switch metric {
	case monitor.ErrorRate:
		return "error rate"
	case monitor.LatencyP95:
		return "p95 latency"
	case monitor.SlowRate:
		return "slow-request rate"
	case monitor.CPU:
		return "CPU"
	case monitor.Memory:
		return "memory"
	}
	return metric
}

// pct formats a fraction as a percentage without a space: 0.5 is "50%".
func pct(f float64) string {
	return strconv.FormatFloat(math.Round(f*100*1e6)/1e6, 'f', -1, 64) + "%"
}
