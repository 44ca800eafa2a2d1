package deploy

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/deploykit/deploy/monitor"
)

// Analysis is a set of metrics measured and judged together, as an Argo
// Rollouts AnalysisTemplate is: each metric has its own interval, count,
// conditions and limits. Each time an analysis is attached to a release
// (inline to a step, in the background from a starting step, before or
// after the promotion; see [Step.Analysis], [WithBackgroundAnalysis],
// [WithPrePromotionAnalysis], [WithPostPromotionAnalysis]) the runner
// starts a run of it: a record with the run's own counters, saved with the
// release (a Resume goes on with them; the next run starts from zero).
//
// A run is Successful when every metric that is not DryRun completed
// within its limits and the DryRun ones completed too (as in Argo, the run
// waits for them), Failed (or Error) as soon as one metric went past its
// failure (or consecutive-error) limit, Inconclusive when a metric went past
// its inconclusive limit. A Failed or Error run rolls back; an Inconclusive
// one pauses for a person ([Runner.Promote] goes on, [Runner.Abort] rolls
// back) or rolls back, as OnInconclusive says. The release-wide
// rollback.Policy keeps judging every interval meanwhile: it is the guard
// rail, and analyses add to it.
type Analysis struct {
	// Name names the analysis in the report, the timeline and spans.
	// Required.
	Name string
	// Metrics are measured concurrently, each on its own schedule.
	// At least one is required.
	Metrics []AnalysisMetric
	// OnInconclusive says what an inconclusive run does: pause for a
	// person (the default, as Argo Rollouts) or roll back.
	OnInconclusive InconclusiveAction
}

// InconclusiveAction is what an inconclusive analysis run does.
type InconclusiveAction int

const (
	// InconclusivePause pauses the release until a person promotes it
	// (Runner.Promote) or aborts it (Runner.Abort). The users already
	// exposed stay watched by the rollback policy while it waits.
	InconclusivePause InconclusiveAction = iota
	// InconclusiveRollback rolls the release back, with ErrInconclusive.
	InconclusiveRollback
)

// Limit values for an AnalysisMetric's limits.
const (
	// Unlimited: no limit (Argo's -1).
	Unlimited = -1
	// NoErrors, as ConsecutiveErrorLimit, tolerates no error: the first
	// one ends the run in Error (0 means Argo's default, 4).
	NoErrors = -2
)

// DefaultConsecutiveErrorLimit is Argo Rollouts' default: the fifth error
// in a row ends the run in Error.
const DefaultConsecutiveErrorLimit = 4

// ErrorRetryInterval is how soon a measurement that erred is taken again
// when the metric's interval is longer, as Argo Rollouts' analysis
// controller does (DefaultErrorRetryInterval): with the default
// ConsecutiveErrorLimit of 4, a source that keeps failing ends the run
// 40 s after its first error.
const ErrorRetryInterval = 10 * time.Second

// AnalysisMetric is one metric of an [Analysis], with Argo Rollouts'
// semantics by default.
//
// The first measurement is taken when the run starts (after InitialDelay),
// then one every Interval, Count times in all. Without Count, a metric with
// an Interval is measured until the run ends (a background analysis, at
// the promotion), and one without is measured once.
//
// Each measurement is judged by the conditions: Failure met → failed;
// else Success met → successful; else, with both set, inconclusive; with
// Success alone, failed; with Failure alone, successful. A measurement that
// could not be taken (an error, a timeout, a panic, no data) is an error.
// The metric fails once more than FailureLimit measurements failed, is
// inconclusive once more than InconclusiveLimit were inconclusive, ends in
// error once more than ConsecutiveErrorLimit errors came in a row, and
// succeeds once ConsecutiveSuccessLimit successes came in a row (when set)
// or once Count measurements were taken within the limits.
type AnalysisMetric struct {
	// Name names the metric in reasons, the report and spans. Required,
	// unique within the analysis.
	Name string
	// Source is the monitor measured; the value is its observation's
	// metric named Metric (Name when empty) or, when it has no such
	// metric, its check of that name: 1 when the check passed, 0 when it
	// failed (monitor.Job, a hook: judge it with AtLeast(1)), as Argo's job
	// provider passes or fails. Exactly one of Source and Measure is
	// required.
	Source Monitor
	Metric string
	// Measure measures the value directly, as an alternative to Source.
	// An error means "could not measure"; NaN means no data (an error).
	Measure func(ctx context.Context, t monitor.Target) (float64, error)
	// Unit is shown after values in reasons and the report ("%", "s", "req/s").
	Unit string
	// Interval between measurements. Required when Count is above 1.
	Interval time.Duration
	// Count is how many measurements to take; 0: see above.
	Count int
	// InitialDelay delays the first measurement.
	InitialDelay time.Duration
	// Success and Failure are the conditions (AtMost, Below, AtLeast,
	// Above, Between). At least one is required.
	Success, Failure Condition
	// FailureLimit is how many failed measurements are tolerated (Argo's
	// default 0: the first fails the metric); Unlimited for no limit. A
	// limit above the measurements taken (Count) is refused, as by Argo.
	FailureLimit int
	// InconclusiveLimit is how many inconclusive measurements are
	// tolerated (default 0); Unlimited for no limit.
	InconclusiveLimit int
	// ConsecutiveErrorLimit is how many errors in a row are tolerated: 0
	// means Argo's default 4; NoErrors tolerates none; Unlimited, any.
	ConsecutiveErrorLimit int
	// ConsecutiveSuccessLimit, when above 0, completes the metric as
	// successful after that many successful measurements in a row.
	ConsecutiveSuccessLimit int
	// DryRun metrics are measured, recorded and reported, and never decide
	// the run's result; the run waits for them to complete (their Count),
	// as Argo's does.
	DryRun bool
}

func (m AnalysisMetric) errorLimit() int {
	switch m.ConsecutiveErrorLimit {
	case 0:
		return DefaultConsecutiveErrorLimit
	case NoErrors:
		return 0
	}
	return m.ConsecutiveErrorLimit
}

// count is how many measurements the metric takes; 0 means until the run
// ends.
func (m AnalysisMetric) count() int {
	if m.Count > 0 {
		return m.Count
	}
	if m.Interval > 0 {
		return 0
	}
	return 1
}

// Condition is a bound a measured value is compared with: AtMost, Below,
// AtLeast, Above or Between. The zero Condition is unset.
type Condition struct {
	op     condOp
	lo, hi float64
}

type condOp int

const (
	condNone condOp = iota
	condAtMost
	condBelow
	condAtLeast
	condAbove
	condBetween
)

// AtMost is met by a value v ≤ max (inclusive).
func AtMost(max float64) Condition { return Condition{op: condAtMost, hi: max} }

// Below is met by a value v < max (strict).
func Below(max float64) Condition { return Condition{op: condBelow, hi: max} }

// AtLeast is met by a value v ≥ min (inclusive).
func AtLeast(min float64) Condition { return Condition{op: condAtLeast, lo: min} }

// Above is met by a value v > min (strict).
func Above(min float64) Condition { return Condition{op: condAbove, lo: min} }

// Between is met by a value lo ≤ v ≤ hi (inclusive at both ends).
func Between(lo, hi float64) Condition { return Condition{op: condBetween, lo: lo, hi: hi} }

// IsZero reports whether c is unset.
func (c Condition) IsZero() bool { return c.op == condNone }

// Met reports whether v meets c. NaN meets nothing; an unset condition
// meets nothing.
func (c Condition) Met(v float64) bool {
	if math.IsNaN(v) {
		return false
	}
	switch c.op {
	case condAtMost:
		return v <= c.hi
	case condBelow:
		return v < c.hi
	case condAtLeast:
		return v >= c.lo
	case condAbove:
		return v > c.lo
	case condBetween:
		return v >= c.lo && v <= c.hi
	}
	return false
}

// String says the bound in words: "at most 10", "between 0.9 and 1".
func (c Condition) String() string { return c.describe("") }

func (c Condition) describe(unit string) string {
	f := func(x float64) string { return withUnit(x, unit) }
	switch c.op {
	case condAtMost:
		return "at most " + f(c.hi)
	case condBelow:
		return "below " + f(c.hi)
	case condAtLeast:
		return "at least " + f(c.lo)
	case condAbove:
		return "above " + f(c.lo)
	case condBetween:
		return "between " + f(c.lo) + " and " + f(c.hi)
	}
	return "unset"
}

func (c Condition) valid() bool {
	switch c.op {
	case condNone:
		return true
	case condBetween:
		return !math.IsNaN(c.lo) && !math.IsNaN(c.hi) && c.lo <= c.hi
	}
	return !math.IsNaN(c.lo) && !math.IsNaN(c.hi)
}

// withUnit formats a value with its unit: "0.12 %"-style, "350 ms".
func withUnit(v float64, unit string) string {
	s := strconv.FormatFloat(v, 'g', 6, 64)
	if unit == "" {
		return s
	}
	return s + " " + unit
}

// Pause makes a step wait, after its bake and its analysis, for Duration
// or, when Duration is 0, until a person promotes the release
// ([Runner.Promote]), as Argo Rollouts' pause step with and without a
// duration. While it waits, the users already exposed stay watched by the
// rollback policy every interval; a breach rolls back.
type Pause struct {
	Duration time.Duration
}

// StepRule adds a pause, an inline analysis or an approval to steps a
// strategy plans (WithStepRules): to the step named Step, in every stage
// or in Stage only. What the strategy set on the step itself is kept; a
// rule that names no step of the plan is refused with ErrInvalid.
type StepRule struct {
	Stage string
	Step  string
	// Analysis runs inline: the step waits for its result.
	Analysis *Analysis
	// Pause makes the step wait after its bake and analysis.
	Pause *Pause
	// Approval makes the step wait for an approval before it is applied;
	// Approvers, when set, say who may give it (Runner.Approve).
	Approval  bool
	Approvers []string
}

// checkAnalysis refuses an analysis that cannot mean anything, naming the
// field: where says where it is attached ("WithBackgroundAnalysis").
func checkAnalysis(where string, a *Analysis, observe time.Duration) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrInvalid, where, fmt.Sprintf(format, args...))
	}
	if a.Name == "" {
		return bad("Analysis.Name is empty")
	}
	if len(a.Metrics) == 0 {
		return bad("Analysis %q has no Metrics", a.Name)
	}
	if a.OnInconclusive != InconclusivePause && a.OnInconclusive != InconclusiveRollback {
		return bad("Analysis %q: OnInconclusive %d is not InconclusivePause or InconclusiveRollback", a.Name, a.OnInconclusive)
	}
	seen := map[string]bool{}
	for i, m := range a.Metrics {
		at := fmt.Sprintf("Analysis %q Metrics[%d] (%q)", a.Name, i, m.Name)
		switch {
		case m.Name == "":
			return bad("Analysis %q Metrics[%d]: Name is empty", a.Name, i)
		case seen[m.Name]:
			return bad("%s: Name is repeated", at)
		case (m.Source == nil || isNil(m.Source)) == (m.Measure == nil):
			return bad("%s: exactly one of Source and Measure is required", at)
		case m.Success.IsZero() && m.Failure.IsZero():
			return bad("%s: neither Success nor Failure is set: the metric would judge nothing", at)
		case !m.Success.valid():
			return bad("%s: Success %v is not a bound", at, m.Success)
		case !m.Failure.valid():
			return bad("%s: Failure %v is not a bound", at, m.Failure)
		case m.Interval < 0 || m.Interval > maxDuration:
			return bad("%s: Interval %v is outside [0, %v]", at, m.Interval, maxDuration)
		case m.InitialDelay < 0 || m.InitialDelay > maxDuration:
			return bad("%s: InitialDelay %v is outside [0, %v]", at, m.InitialDelay, maxDuration)
		case m.Count < 0:
			return bad("%s: Count %d is negative", at, m.Count)
		case m.Count > 1 && m.Interval == 0:
			return bad("%s: Count %d needs an Interval between measurements", at, m.Count)
		case m.FailureLimit < Unlimited:
			return bad("%s: FailureLimit %d is below Unlimited (-1)", at, m.FailureLimit)
		case m.InconclusiveLimit < Unlimited:
			return bad("%s: InconclusiveLimit %d is below Unlimited (-1)", at, m.InconclusiveLimit)
		case m.ConsecutiveErrorLimit < NoErrors:
			return bad("%s: ConsecutiveErrorLimit %d is below NoErrors (-2)", at, m.ConsecutiveErrorLimit)
		case m.ConsecutiveSuccessLimit < 0:
			return bad("%s: ConsecutiveSuccessLimit %d is negative", at, m.ConsecutiveSuccessLimit)
		case m.count() > 0 && m.FailureLimit > m.count():
			// As Argo's "count must be >= failureLimit": the metric
			// could never fail.
			return bad("%s: FailureLimit %d is above the %s taken: the metric could never fail", at, m.FailureLimit, plural(m.count(), "measurement"))
		case m.count() > 0 && m.InconclusiveLimit > m.count():
			return bad("%s: InconclusiveLimit %d is above the %s taken: the metric could never be inconclusive", at, m.InconclusiveLimit, plural(m.count(), "measurement"))
		}
		// The source is checked as the runner's monitors are, before
		// anything is deployed (a Validate that panics is an error).
		if v, ok := m.Source.(interface{ Validate() error }); ok {
			if err := safely(at+" Source Validate", v.Validate); err != nil {
				return bad("%s: Source %s: %v", at, nameOf(m.Source), err)
			}
		}
		// A measurement is bounded by the observe timeout, as a monitor's
		// look is: a source whose own timeout is longer would be cut short.
		if m.Source != nil {
			if err := checkCallTimeout(at+" Source "+nameOf(m.Source), m.Source, observe, "Observe"); err != nil {
				return err
			}
		}
		seen[m.Name] = true
	}
	// An analysis of dry-run metrics only is allowed: it always succeeds.
	return nil
}
