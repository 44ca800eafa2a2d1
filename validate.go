package deploy

import (
	"fmt"
	"reflect"
	"time"

	"github.com/deploykit/deploy/monitor"
	"github.com/deploykit/deploy/rollback"
)

// maxDuration bounds every duration the runner adds to a time, so that no
// sum of them overflows (a lease dated 1734, a deadline in the past).
const maxDuration = 10 * 365 * 24 * time.Hour

// isNil reports whether x is nil or an interface holding a nil pointer,
// func, map, slice or channel: a typed nil such as (*gate.CI)(nil) or
// deploy.GateFunc(nil), which would panic when called.
func isNil(x any) bool {
	if x == nil {
		return true
	}
	v := reflect.ValueOf(x)
	switch v.Kind() {
	case reflect.Pointer, reflect.Func, reflect.Map, reflect.Slice, reflect.Chan, reflect.Interface:
		return v.IsNil()
	}
	return false
}

// checkConfig refuses what the options cannot mean: typed nils, durations
// that overflow, a policy that judges nothing or ignores critical checks.
func checkConfig(c *config) error {
	if err := validTraffic(c.traffic); err != nil {
		return err
	}
	nilIn := func(option string, i int, x any) error {
		if isNil(x) {
			return fmt.Errorf("%w: %s argument %d is a nil %T", ErrInvalid, option, i, x)
		}
		return nil
	}
	for i, g := range c.gates {
		if err := nilIn("WithGates", i, g); err != nil {
			return err
		}
	}
	for i, m := range c.monitors {
		if err := nilIn("WithMonitors", i, m); err != nil {
			return err
		}
	}
	for i, n := range c.notifiers {
		if err := nilIn("WithNotifiers", i, n); err != nil {
			return err
		}
	}
	if c.approval != nil {
		if err := nilIn("WithApproval", 0, c.approval); err != nil {
			return err
		}
	}
	if c.store != nil {
		if err := nilIn("WithStore", 0, c.store); err != nil {
			return err
		}
	}
	for i, t := range c.policy.Triggers {
		if t != nil && isNil(t) {
			return fmt.Errorf("%w: WithRollbackPolicy Triggers[%d] is a nil %T", ErrInvalid, i, t)
		}
	}
	for i, s := range c.rollbackSteps {
		if s.Run != nil && isNil(s.Run) {
			return fmt.Errorf("%w: WithRollbackSteps step %d (%q) has a nil Run", ErrInvalid, i, s.Name)
		}
	}
	for _, d := range []struct {
		name     string
		d        time.Duration
		positive bool // else 0 is allowed (a default was chosen)
	}{
		{"WithInterval", c.interval, true},
		{"WithRollbackTimeout", c.rollbackTimeout, true}, {"WithBaselineWindow", c.baselineWindow, true},
		{"WithNotifyTimeout", c.notifyTimeout, true}, {"WithLeaseGrace", c.leaseGrace, true},
		{"WithRollbackSettle", c.rollbackSettle, false}, {"WithRollbackPolicy ProgressDeadline", c.policy.ProgressDeadline, false},
		{"WithTimeouts Plan", c.timeouts.Plan, false}, {"WithTimeouts Check", c.timeouts.Check, false},
		{"WithTimeouts Observe", c.timeouts.Observe, false}, {"WithTimeouts Notify", c.timeouts.Notify, false},
	} {
		switch {
		case d.positive && d.d <= 0:
			return fmt.Errorf("%w: %s duration %v must be positive", ErrInvalid, d.name, d.d)
		case d.d > maxDuration:
			return fmt.Errorf("%w: %s duration %v is longer than %v", ErrInvalid, d.name, d.d, maxDuration)
		}
	}
	switch {
	case c.gateDeadline == NoDeadline:
	case c.gateDeadline <= 0:
		return fmt.Errorf("%w: WithGateDeadline duration %v must be positive; to wait as long as the gates ask, say WithGateDeadline(deploy.NoDeadline)", ErrInvalid, c.gateDeadline)
	case c.gateDeadline > maxDuration:
		return fmt.Errorf("%w: WithGateDeadline duration %v is longer than %v", ErrInvalid, c.gateDeadline, maxDuration)
	}
	if c.background != nil {
		if err := checkAnalysis("WithBackgroundAnalysis", c.background, c.timeouts.Observe); err != nil {
			return err
		}
		if c.startingAt < 0 {
			return fmt.Errorf("%w: WithBackgroundAnalysis startingStep %d is negative", ErrInvalid, c.startingAt)
		}
	}
	if c.prePromo != nil {
		if err := checkAnalysis("WithPrePromotionAnalysis", c.prePromo, c.timeouts.Observe); err != nil {
			return err
		}
	}
	if c.postPromo != nil {
		if err := checkAnalysis("WithPostPromotionAnalysis", c.postPromo, c.timeouts.Observe); err != nil {
			return err
		}
	}
	for i, sr := range c.stepRules {
		where := fmt.Sprintf("WithStepRules[%d] (step %q)", i, sr.Step)
		switch {
		case sr.Step == "":
			return fmt.Errorf("%w: WithStepRules[%d]: Step is empty", ErrInvalid, i)
		case sr.Analysis == nil && sr.Pause == nil && !sr.Approval:
			return fmt.Errorf("%w: %s adds nothing: set Analysis, Pause or Approval", ErrInvalid, where)
		case len(sr.Approvers) > 0 && !sr.Approval:
			return fmt.Errorf("%w: %s names Approvers without Approval", ErrInvalid, where)
		}
		if sr.Analysis != nil {
			if err := checkAnalysis(where, sr.Analysis, c.timeouts.Observe); err != nil {
				return err
			}
		}
		if sr.Pause != nil && (sr.Pause.Duration < 0 || sr.Pause.Duration > maxDuration) {
			return fmt.Errorf("%w: %s: Pause.Duration %v is outside [0, %v]", ErrInvalid, where, sr.Pause.Duration, maxDuration)
		}
	}
	for i, w := range c.schedule.Windows {
		if w.Duration > maxDuration || w.Interval > maxDuration {
			return fmt.Errorf("%w: WithSchedule window %d (%q) is longer than %v", ErrInvalid, i, w.Name, maxDuration)
		}
	}
	if len(c.monitors) > 0 && len(c.policy.Triggers) == 0 {
		return fmt.Errorf("%w: WithRollbackPolicy has no Triggers: it would judge nothing the %d monitor(s) measure, and any release would succeed; start from DefaultPolicy()", ErrInvalid, len(c.monitors))
	}
	if !judgesChecks(c.policy) {
		for i, m := range c.monitors {
			if cc, ok := m.(monitor.CriticalChecker); ok && cc.CriticalChecks() {
				return fmt.Errorf("%w: monitor %d (%s) reports critical checks, but WithRollbackPolicy has no rollback.CriticalChecks trigger to judge them: add one, or make the check non-critical", ErrInvalid, i, nameOf(m))
			}
		}
	}
	return nil
}

// judgesChecks reports whether the policy has a CriticalChecks trigger.
func judgesChecks(p rollback.Policy) bool {
	for _, t := range p.Triggers {
		switch t.(type) {
		case rollback.CriticalChecks, *rollback.CriticalChecks:
			return true
		}
	}
	return false
}
