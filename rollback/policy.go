package rollback

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/deploykit/deploy/monitor"
)

// Outcome is what a trigger makes of one observation.
type Outcome int

const (
	// Pass: the metric is within its threshold.
	Pass Outcome = iota
	// Inconclusive: no data, or too few samples to judge.
	Inconclusive
	// Fail: the metric breached its threshold.
	Fail
)

// String returns "pass", "inconclusive" or "fail".
func (o Outcome) String() string {
	switch o {
	case Pass:
		return "pass"
	case Inconclusive:
		return "inconclusive"
	case Fail:
		return "fail"
	}
	return fmt.Sprintf("Outcome(%d)", int(o))
}

// Result is one trigger's judgement of one observation.
type Result struct {
	// Trigger is the trigger's Name.
	Trigger string `json:"trigger"`
	// Metric is the metric judged ("checks" for CriticalChecks).
	Metric string `json:"metric"`
	// Outcome is pass, inconclusive or fail.
	Outcome Outcome `json:"outcome"`
	// Observed is the new version's value, NaN when there is none.
	Observed float64 `json:"observed"`
	// Baseline is what Observed was compared with (the control or the
	// preflight baseline), NaN when nothing was.
	Baseline float64 `json:"baseline"`
	// Reference says which Baseline is: "control" (the stable version over
	// the same window) or "baseline" (the preflight observation); empty
	// for absolute thresholds and checks.
	Reference string `json:"reference,omitempty"`
	// Threshold is the value Observed had to stay within, NaN when none.
	Threshold float64 `json:"threshold"`
	// Samples is how many samples back the judgement: the new version's, or
	// the smaller of the new version's and the control's when the control
	// was used.
	Samples int `json:"samples"`
	// Critical results roll back at once, whatever the failure limit.
	Critical bool `json:"critical,omitempty"`
	// Reason is a sentence a person can act on.
	Reason string `json:"reason"`
	// Traces are trace IDs of failing or slow requests behind a failed
	// result, when its metric's source gave them (from exemplars); the
	// reason cites them too.
	Traces []string `json:"traces,omitempty"`
}

// Trigger judges one aspect of an observation against the baseline.
//
// baseline is the preflight observation; when a metric in obs carries a
// control value (the stable version over the same window), triggers compare
// against that instead. Evaluate must be safe for concurrent use and must not
// keep obs or baseline.
type Trigger interface {
	// Name identifies the trigger in results and reports.
	Name() string
	// Condition describes the trigger for the rollback procedure,
	// e.g. "Error rate increases by >50%".
	Condition() string
	// Evaluate judges obs.
	Evaluate(obs, baseline monitor.Observation) Result
}

// Verdict is the policy's decision on one observation.
type Verdict string

const (
	// Continue: healthy; the step may be promoted once its bake is over.
	Continue Verdict = "continue"
	// Wait: inconclusive or a tolerated failure; keep watching, do not promote.
	Wait Verdict = "wait"
	// Rollback: roll the release back now.
	Rollback Verdict = "rollback"
)

// Decision is a verdict and why.
type Decision struct {
	Verdict Verdict  `json:"verdict"`
	Reason  string   `json:"reason"`
	Results []Result `json:"results,omitempty"`
	// Cause is the result that made the verdict Rollback or Wait, if any.
	Cause *Result `json:"cause,omitempty"`
}

// Counters are the policy's memory between observations of one release. The
// runner persists them with the release so that limits survive a restart.
// The zero Counters start a release.
type Counters struct {
	// Failures counts observations with a failed result.
	Failures int `json:"failures"`
	// Inconclusive counts observations with an inconclusive result and no
	// failed one.
	Inconclusive int `json:"inconclusive"`
	// ConsecutiveErrors counts measuring errors since the last observation
	// that was measured.
	ConsecutiveErrors int `json:"consecutiveErrors"`
	// Judge holds the state of the policy's stateful triggers
	// ([StatefulTrigger], such as [Sequential]): a JSON object of their
	// states in base64 by trigger name, "" when there is none. It is a string so that Counters stay
	// comparable; Judge replaces it, never changes it in place.
	Judge string `json:"judge,omitempty"`
}

// Defaults of the limits, as in Argo Rollouts.
const (
	// DefaultConsecutiveErrorLimit is the number of measuring errors in a
	// row that rolls back when Policy.ConsecutiveErrorLimit is 0.
	DefaultConsecutiveErrorLimit = 4
	// DefaultProgressDeadline is the step deadline when
	// Policy.ProgressDeadline is 0 (Argo's progressDeadlineSeconds: 600).
	DefaultProgressDeadline = 10 * time.Minute
)

// Policy turns observations into verdicts. The zero Policy has no triggers and
// Argo Rollouts' default limits.
type Policy struct {
	// Triggers are evaluated in order on every observation.
	Triggers []Trigger
	// FailureLimit is how many failed observations are tolerated; the next
	// one rolls back. 0 (the default) rolls back on the first failure.
	FailureLimit int
	// InconclusiveLimit is how many inconclusive observations are tolerated
	// (the step pauses and keeps watching); the next one rolls back. 0 (the
	// default) rolls back on the first inconclusive observation. An
	// inconclusive observation never promotes.
	InconclusiveLimit int
	// ConsecutiveErrorLimit is how many observations in a row that fail to
	// measure at all roll the release back (fail closed): with the default
	// of 4, the 4th error in a row rolls back. 0 means
	// DefaultConsecutiveErrorLimit; a measured observation resets the count.
	ConsecutiveErrorLimit int
	// ProgressDeadline bounds how long one step may take to apply and verify.
	// 0 means DefaultProgressDeadline.
	ProgressDeadline time.Duration
	// MinSamples is the fewest samples a metric result needs to count as a
	// pass or a failure; fewer is inconclusive. It does not apply to checks.
	// Triggers may ask for more of their own (MannWhitney.MinSamples). 0
	// means 1.
	MinSamples int
	// RequirePower refuses a release whose plan cannot catch the rise of a
	// Sequential trigger before full exposure at the expected traffic (see
	// [Policy.Power]): Plan lists it as a problem, and preflight blocks
	// the release. Without it, the power check only warns.
	RequirePower bool
}

// Validate reports a negative limit, a nil trigger or a trigger whose own
// Validate method fails. Every error names the field and its value and wraps
// [ErrInvalid].
func (p *Policy) Validate() error {
	switch {
	case p.FailureLimit < 0:
		return fmt.Errorf("rollback: Policy.FailureLimit %d is negative: %w", p.FailureLimit, ErrInvalid)
	case p.InconclusiveLimit < 0:
		return fmt.Errorf("rollback: Policy.InconclusiveLimit %d is negative: %w", p.InconclusiveLimit, ErrInvalid)
	case p.ConsecutiveErrorLimit < 0:
		return fmt.Errorf("rollback: Policy.ConsecutiveErrorLimit %d is negative: %w", p.ConsecutiveErrorLimit, ErrInvalid)
	case p.ProgressDeadline < 0:
		return fmt.Errorf("rollback: Policy.ProgressDeadline %v is negative: %w", p.ProgressDeadline, ErrInvalid)
	case p.MinSamples < 0:
		return fmt.Errorf("rollback: Policy.MinSamples %d is negative: %w", p.MinSamples, ErrInvalid)
	}
	for i, t := range p.Triggers {
		if t == nil {
			return fmt.Errorf("rollback: Policy.Triggers[%d] is nil: %w", i, ErrInvalid)
		}
		if v, ok := t.(interface{ Validate() error }); ok {
			if err := v.Validate(); err != nil {
				return fmt.Errorf("rollback: Policy.Triggers[%d] (%s): %w", i, t.Name(), err)
			}
		}
	}
	return nil
}

// ErrorLimit returns the effective consecutive-error limit: the number of
// measuring errors in a row that rolls back.
func (p *Policy) ErrorLimit() int {
	if p.ConsecutiveErrorLimit == 0 {
		return DefaultConsecutiveErrorLimit
	}
	return p.ConsecutiveErrorLimit
}

// Deadline returns the effective progress deadline, which the runner
// enforces on each step.
func (p *Policy) Deadline() time.Duration {
	if p.ProgressDeadline == 0 {
		return DefaultProgressDeadline
	}
	return p.ProgressDeadline
}

func (p *Policy) minSamples() int {
	if p.MinSamples <= 0 {
		return 1
	}
	return p.MinSamples
}

// Conditions lists the triggers' conditions and then the limits, one line
// each, for the "Trigger Conditions" of the rollback procedure (see
// [NewPlan]).
func (p *Policy) Conditions() []string {
	var c []string
	for _, t := range p.Triggers {
		c = append(c, t.Condition())
	}
	c = append(c,
		fmt.Sprintf("More than %d failed observation(s)", p.FailureLimit),
		fmt.Sprintf("More than %d inconclusive observation(s) (no data or too few samples)", p.InconclusiveLimit),
		fmt.Sprintf("%d metric-source errors in a row", p.ErrorLimit()),
		fmt.Sprintf("A step not completing within %v", p.Deadline()),
	)
	return c
}

// Judge decides on one observation and updates c, the release's counters.
// obsErr is the error from measuring, if measuring failed altogether; obs is
// then ignored.
//
// The verdict is, in this order:
//   - Rollback after ErrorLimit measuring errors in a row, Wait before that
//     (a successful measurement resets the count);
//   - Rollback when a critical result failed;
//   - when a result failed: Rollback once more than FailureLimit
//     observations failed, else Wait;
//   - when a result was inconclusive (no data, no reference, fewer than
//     MinSamples samples): Rollback once more than InconclusiveLimit
//     observations were inconclusive, else Wait;
//   - Continue.
//
// An observation counts once, as failed or as inconclusive, however many of
// its results were. Judge is safe to call concurrently for different
// counters.
func (p *Policy) Judge(c *Counters, obs, baseline monitor.Observation, obsErr error) Decision {
	return p.judge(c, obs, baseline, obsErr, false)
}

// JudgeBrief is Judge for a caller that reads what a look found only when
// it does not continue — a healthy minute of a week-long watch that nobody
// announces or traces. Its verdict and counters (a stateful trigger's
// state included) are Judge's. When every result passes and every trigger
// is one of this package's, the decision is Continue with no Reason and no
// Results: nothing is written or kept. (A policy with a trigger of another
// package is judged as Judge judges it, so that no trigger is called twice
// for one look.) Otherwise the decision is Judge's, results and reasons,
// except that a passing result's reason may leave out what only informs
// (the sequential test's p-value and what its requests could detect),
// which costs more to work out than the rest of the look.
func (p *Policy) JudgeBrief(c *Counters, obs, baseline monitor.Observation, obsErr error) Decision {
	return p.judge(c, obs, baseline, obsErr, true)
}

func (p *Policy) judge(c *Counters, obs, baseline monitor.Observation, obsErr error, brief bool) Decision {
	if obsErr != nil {
		c.ConsecutiveErrors++
		if c.ConsecutiveErrors >= p.ErrorLimit() {
			return Decision{Verdict: Rollback, Reason: fmt.Sprintf("metric source failed %d times in a row (limit %d): %v", c.ConsecutiveErrors, p.ErrorLimit(), obsErr)}
		}
		return Decision{Verdict: Wait, Reason: fmt.Sprintf("could not measure (%d of %d errors in a row): %v", c.ConsecutiveErrors, p.ErrorLimit(), obsErr)}
	}
	c.ConsecutiveErrors = 0
	var states triggerStates
	if brief {
		if d, ok := p.judgeQuiet(c, &states, &obs, &baseline); ok {
			return d
		}
		states.reset()
	}

	// Every reason is written into buf, joined by "; " as the summary of a
	// healthy observation is, then the names that are not constants; one
	// string holds them all and the results take slices of it.
	var (
		bufArr  [2048]byte
		spanArr [16]span
	)
	buf, spans := bufArr[:0], spanArr[:0]
	if len(p.Triggers) > len(spanArr) {
		spans = make([]span, 0, len(p.Triggers))
	}
	results := make([]Result, 0, len(p.Triggers))
	var failed, inconclusive, critical *Result
	min := p.minSamples()
	for i, t := range p.Triggers {
		if i > 0 {
			buf = append(buf, "; "...)
		}
		start := len(buf)
		results = results[:i+1]
		r := &results[i]
		b, own := evaluate(t, r, buf, &obs, &baseline, false)
		if st, ok := t.(StatefulTrigger); ok && !own {
			*r = judgeStateful(c, &states, st, obs, baseline, brief, false)
			b = append(buf, r.Reason...)
		} else if !own {
			*r = t.Evaluate(obs, baseline)
			b = append(buf, r.Reason...)
			if r.Trigger == "" {
				r.Trigger = t.Name()
			}
		}
		buf = b
		if r.Outcome != Inconclusive && r.Samples > 0 && r.Samples < min && !isChecks(t) {
			reason := string(buf[start:])
			buf = append(buf[:start], r.Metric...)
			buf = append(buf, ": "...)
			buf = strconv.AppendInt(buf, int64(r.Samples), 10)
			buf = append(buf, " samples, fewer than the "...)
			buf = strconv.AppendInt(buf, int64(min), 10)
			buf = append(buf, " needed ("...)
			buf = append(buf, reason...)
			buf = append(buf, ')')
			r.Outcome = Inconclusive
		}
		spans = append(spans, span{reason: [2]int32{int32(start), int32(len(buf))}, own: own})
	}
	states.save(c)
	reasons := len(buf)
	for i, t := range p.Triggers {
		if !spans[i].own {
			continue
		}
		prefix, suffix := nameParts(t)
		if suffix == "" {
			results[i].Trigger = prefix
			continue
		}
		start := len(buf)
		buf = append(buf, prefix...)
		buf = append(buf, suffix...)
		spans[i].name = [2]int32{int32(start), int32(len(buf))}
	}
	all := string(buf)
	for i := range results {
		r, sp := &results[i], spans[i]
		r.Reason = all[sp.reason[0]:sp.reason[1]]
		if sp.name[1] > 0 {
			r.Trigger = all[sp.name[0]:sp.name[1]]
		}
	}
	for i := range results {
		r := &results[i]
		switch r.Outcome {
		case Fail:
			if r.Critical && critical == nil {
				critical = r
			}
			if failed == nil {
				failed = r
			}
		case Inconclusive:
			if inconclusive == nil {
				inconclusive = r
			}
		}
	}
	if failed != nil {
		cite(failed, &obs)
	}
	if critical != nil && critical != failed {
		cite(critical, &obs)
	}
	switch {
	case critical != nil:
		c.Failures++
		return Decision{Verdict: Rollback, Reason: critical.Reason, Results: results, Cause: critical}
	case failed != nil:
		c.Failures++
		if c.Failures > p.FailureLimit {
			return Decision{Verdict: Rollback, Reason: failed.Reason, Results: results, Cause: failed}
		}
		return Decision{Verdict: Wait, Reason: fmt.Sprintf("%s (failure %d of %d tolerated)", failed.Reason, c.Failures, p.FailureLimit), Results: results, Cause: failed}
	case inconclusive != nil:
		c.Inconclusive++
		if c.Inconclusive > p.InconclusiveLimit {
			return Decision{Verdict: Rollback, Reason: fmt.Sprintf("inconclusive %d times (limit %d): %s", c.Inconclusive, p.InconclusiveLimit, inconclusive.Reason), Results: results, Cause: inconclusive}
		}
		return Decision{Verdict: Wait, Reason: fmt.Sprintf("inconclusive (%d of %d tolerated): %s", c.Inconclusive, p.InconclusiveLimit, inconclusive.Reason), Results: results, Cause: inconclusive}
	}
	if len(results) == 0 {
		return Decision{Verdict: Continue, Reason: "no triggers", Results: results}
	}
	return Decision{Verdict: Continue, Reason: all[:reasons], Results: results}
}

// judgeQuiet judges a brief look without writing any reason or keeping
// any result, for the usual look of a healthy watch whose every result
// passes. ok is false when some result does not pass (or would be
// inconclusive for too few samples): c is then as it was, states are read
// but hold no new state, and the caller judges the look again with
// reasons. Judging again gives the same results: the triggers are pure
// functions of the observation, the baseline and, for a stateful one, the
// state it was given, which is unchanged.
func (p *Policy) judgeQuiet(c *Counters, states *triggerStates, obs, baseline *monitor.Observation) (Decision, bool) {
	if len(p.Triggers) == 0 {
		return Decision{}, false
	}
	for _, t := range p.Triggers {
		if !quietable(t) {
			// A trigger of another package would be evaluated twice when
			// the look does not pass, and nothing says that is harmless.
			return Decision{}, false
		}
	}
	min := p.minSamples()
	var r Result
	for _, t := range p.Triggers {
		if _, own := evaluate(t, &r, nil, obs, baseline, true); !own {
			r = judgeStateful(c, states, t.(StatefulTrigger), *obs, *baseline, true, true)
		}
		if r.Outcome != Pass || r.Samples > 0 && r.Samples < min && !isChecks(t) {
			return Decision{}, false
		}
	}
	states.save(c)
	return Decision{Verdict: Continue}, true
}

// quietable reports one of the package's triggers, which judgeQuiet may
// evaluate twice.
func quietable(t Trigger) bool {
	switch t.(type) {
	case RelativeIncrease, *RelativeIncrease, LatencyIncrease, *LatencyIncrease, Threshold, *Threshold,
		RelativeDecrease, *RelativeDecrease, CriticalChecks, *CriticalChecks, Sequential, *Sequential:
		return true
	}
	return false
}

// span locates a result's reason and, when it is not a constant, its
// trigger's name in the string Judge writes them to. own reports one of the
// package's triggers, whose name Judge writes.
type span struct {
	reason, name [2]int32
	own          bool
}

// evaluate runs the package's triggers through their eval methods, which
// fill in r but for its Trigger and Reason and append the reason to b; own is
// false, and r untouched, for other triggers. The type switch makes the calls
// static, so that b, obs and baseline do not escape.
func evaluate(t Trigger, r *Result, b []byte, obs, baseline *monitor.Observation, quiet bool) (out []byte, own bool) {
	switch t := t.(type) {
	case RelativeIncrease:
		return t.eval(r, b, obs, baseline, quiet), true
	case *RelativeIncrease:
		return t.eval(r, b, obs, baseline, quiet), true
	case LatencyIncrease:
		return t.eval(r, b, obs, baseline, quiet), true
	case *LatencyIncrease:
		return t.eval(r, b, obs, baseline, quiet), true
	case Threshold:
		return t.eval(r, b, obs, baseline, quiet), true
	case *Threshold:
		return t.eval(r, b, obs, baseline, quiet), true
	case RelativeDecrease:
		return t.eval(r, b, obs, baseline, quiet), true
	case *RelativeDecrease:
		return t.eval(r, b, obs, baseline, quiet), true
	case CriticalChecks:
		return t.eval(r, b, obs, baseline, quiet), true
	case *CriticalChecks:
		return t.eval(r, b, obs, baseline, quiet), true
	}
	return b, false
}

// nameParts returns t's name as a prefix and a suffix, the prefix alone
// when the suffix is empty, for the package's triggers, and t.Name() for
// others.
func nameParts(t Trigger) (prefix, suffix string) {
	if n, ok := t.(interface{ nameParts() (string, string) }); ok {
		return n.nameParts()
	}
	return t.Name(), ""
}

// isChecks reports whether t judges checks rather than sampled metrics, so
// that MinSamples does not apply to it.
func isChecks(t Trigger) bool {
	switch t.(type) {
	case CriticalChecks, *CriticalChecks:
		return true
	}
	return false
}

// ErrInvalid is wrapped by the errors of [Policy.Validate] and of the
// triggers' Validate methods.
var ErrInvalid = errors.New("invalid")

// validFraction reports whether f is a finite number >= 0.
func validFraction(f float64) bool { return f >= 0 && !math.IsInf(f, 0) }
