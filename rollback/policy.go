// Package rollback decides, from observations, whether a release may go on.
//
// A [Policy] holds [Trigger]s (error rate up by more than X %, p95 latency up by
// more than Y ms, absolute thresholds, a failed critical check…) and limits
// with Argo Rollouts' semantics: a failure limit, an inconclusive limit (no
// data or too few samples pauses, then rolls back past the limit, and never
// promotes), a consecutive-error limit for a broken metric source (fail
// closed) and a progress deadline for a step that never completes.
//
// Every [Decision] carries a reason naming the metric, the observed value, the
// baseline, the threshold and the sample count, e.g.
// "error rate 2.4 % vs baseline 0.3 % (+700 %) > +50 %".
//
// This package imports nothing else of the project but monitor.
package rollback

import (
	"errors"
	"fmt"
	"strings"
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
	Trigger   string  `json:"trigger"`
	Metric    string  `json:"metric"`
	Outcome   Outcome `json:"outcome"`
	Observed  float64 `json:"observed"`
	Baseline  float64 `json:"baseline"`
	Threshold float64 `json:"threshold"`
	Samples   int     `json:"samples"`
	// Critical results roll back at once, whatever the failure limit.
	Critical bool `json:"critical,omitempty"`
	// Reason is a sentence a person can act on.
	Reason string `json:"reason"`
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
type Counters struct {
	Failures          int `json:"failures"`
	Inconclusive      int `json:"inconclusive"`
	ConsecutiveErrors int `json:"consecutiveErrors"`
}

// Defaults of the limits, as in Argo Rollouts.
const (
	DefaultConsecutiveErrorLimit = 4
	DefaultProgressDeadline      = 10 * time.Minute
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
	// ConsecutiveErrorLimit is how many observations in a row may fail to
	// measure at all before the release rolls back (fail closed). 0 means
	// DefaultConsecutiveErrorLimit; a success resets the count.
	ConsecutiveErrorLimit int
	// ProgressDeadline bounds how long one step may take to apply and verify.
	// 0 means DefaultProgressDeadline.
	ProgressDeadline time.Duration
	// MinSamples is the fewest samples a metric needs to be judged; fewer is
	// inconclusive. Triggers may set their own. 0 means 1.
	MinSamples int
}

// Validate reports a negative limit or a nil trigger.
func (p *Policy) Validate() error {
	switch {
	case p.FailureLimit < 0:
		return fmt.Errorf("rollback: Policy.FailureLimit %d is negative", p.FailureLimit)
	case p.InconclusiveLimit < 0:
		return fmt.Errorf("rollback: Policy.InconclusiveLimit %d is negative", p.InconclusiveLimit)
	case p.ConsecutiveErrorLimit < 0:
		return fmt.Errorf("rollback: Policy.ConsecutiveErrorLimit %d is negative", p.ConsecutiveErrorLimit)
	case p.ProgressDeadline < 0:
		return fmt.Errorf("rollback: Policy.ProgressDeadline %v is negative", p.ProgressDeadline)
	case p.MinSamples < 0:
		return fmt.Errorf("rollback: Policy.MinSamples %d is negative", p.MinSamples)
	}
	for i, t := range p.Triggers {
		if t == nil {
			return fmt.Errorf("rollback: Policy.Triggers[%d] is nil", i)
		}
		if v, ok := t.(interface{ Validate() error }); ok {
			if err := v.Validate(); err != nil {
				return fmt.Errorf("rollback: Policy.Triggers[%d] (%s): %w", i, t.Name(), err)
			}
		}
	}
	return nil
}

// ErrorLimit returns the effective consecutive-error limit.
func (p *Policy) ErrorLimit() int {
	if p.ConsecutiveErrorLimit == 0 {
		return DefaultConsecutiveErrorLimit
	}
	return p.ConsecutiveErrorLimit
}

// Deadline returns the effective progress deadline.
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

// Conditions lists the triggers' conditions and the limits, for the rollback
// procedure.
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

// Judge decides on one observation and updates c. obsErr is the error from
// measuring, if measuring failed; obs is then ignored.
func (p *Policy) Judge(c *Counters, obs, baseline monitor.Observation, obsErr error) Decision {
	if obsErr != nil {
		c.ConsecutiveErrors++
		if c.ConsecutiveErrors >= p.ErrorLimit() {
			return Decision{Verdict: Rollback, Reason: fmt.Sprintf("metric source failed %d times in a row (limit %d): %v", c.ConsecutiveErrors, p.ErrorLimit(), obsErr)}
		}
		return Decision{Verdict: Wait, Reason: fmt.Sprintf("could not measure (%d of %d errors in a row): %v", c.ConsecutiveErrors, p.ErrorLimit(), obsErr)}
	}
	c.ConsecutiveErrors = 0

	results := make([]Result, 0, len(p.Triggers))
	var failed, inconclusive *Result
	for _, t := range p.Triggers {
		r := t.Evaluate(obs, baseline)
		if r.Trigger == "" {
			r.Trigger = t.Name()
		}
		if r.Outcome == Pass && r.Samples > 0 && r.Samples < p.minSamples() {
			r.Outcome = Inconclusive
			r.Reason = fmt.Sprintf("%s: %d samples, fewer than the %d needed", r.Metric, r.Samples, p.minSamples())
		}
		results = append(results, r)
	}
	for i := range results {
		r := &results[i]
		switch r.Outcome {
		case Fail:
			if r.Critical {
				return Decision{Verdict: Rollback, Reason: r.Reason, Results: results, Cause: r}
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
	switch {
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
	return Decision{Verdict: Continue, Reason: summary(results), Results: results}
}

func summary(rs []Result) string {
	if len(rs) == 0 {
		return "no triggers"
	}
	parts := make([]string, 0, len(rs))
	for _, r := range rs {
		parts = append(parts, r.Reason)
	}
	return strings.Join(parts, "; ")
}

// ErrInvalid is wrapped by the Validate methods of triggers.
var ErrInvalid = errors.New("invalid")
