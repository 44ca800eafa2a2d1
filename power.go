package deploy

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/deploykit/deploy/monitor"
	"github.com/deploykit/deploy/rollback"
	"github.com/deploykit/deploy/state"
)

// WithTraffic declares the service's expected traffic — requests per
// second over all versions and the usual error rate — for the power check
// of Plan: how many canary requests each step will see and what the
// policy's sequential triggers can detect with them. Without it, Plan has
// no power check, and preflight checks with the traffic its baseline
// measures (the baseline's error-rate requests over its window).
func WithTraffic(t rollback.Traffic) Option {
	return func(c *config) { c.traffic = &t }
}

// powerOf returns the power checks of the policy for the steps of each
// stage at tr; nil when the policy has no sequential trigger.
func (r *Runner) powerOf(tr rollback.Traffic, plans [][]Step) []rollback.Power {
	var out []rollback.Power
	for _, steps := range plans {
		ex := make([]rollback.Exposure, len(steps))
		for i, s := range steps {
			ex[i] = rollback.Exposure{Name: s.Name, Exposure: s.Exposure, Bake: s.Bake}
		}
		out = append(out, r.cfg.policy.Power(tr, ex)...)
	}
	return out
}

// powerProblems returns why a policy that asks for power (RequirePower)
// refuses the plan: one line per check that cannot catch its rise before
// full exposure.
func (r *Runner) powerProblems(checks []rollback.Power) []string {
	if !r.cfg.policy.RequirePower {
		return nil
	}
	var p []string
	for _, c := range checks {
		if !c.OK {
			p = append(p, "power check (the policy's RequirePower): "+c.Summary)
		}
	}
	return p
}

// measuredTraffic returns the traffic the baseline measured: its error
// rate, and its requests over the baseline window. ok is false when the
// baseline has no counted error rate.
func (r *Runner) measuredTraffic(obs monitor.Observation) (rollback.Traffic, bool) {
	m := obs.Metric(monitor.ErrorRate)
	if !m.HasData() || !m.Counted || r.cfg.baselineWindow <= 0 {
		return rollback.Traffic{}, false
	}
	return rollback.Traffic{RequestsPerSecond: float64(m.Samples) / r.cfg.baselineWindow.Seconds(), ErrorRate: m.Value, Measured: true}, true
}

// checkPower runs the power check of preflight for the stage being
// deployed, with the declared traffic or the baseline's, notes it in the
// timeline, and blocks the release when the policy asks for power and no
// step can catch its rise before full exposure. blocked reports that.
func (r *Runner) checkPower(rec *state.Record, lp *loop, now time.Time, obs monitor.Observation) (blocked bool) {
	tr, ok := rollback.Traffic{}, false
	if r.cfg.traffic != nil {
		tr, ok = *r.cfg.traffic, true
	} else {
		tr, ok = r.measuredTraffic(obs)
	}
	// The plans Run made; a resumed release plans again only when the
	// policy asks for power, so that the check adds no call into the
	// strategy otherwise.
	plans := lp.plan
	if plans == nil && r.cfg.policy.RequirePower {
		var err error
		if plans, err = lp.plans(r.deployment(rec)); err != nil {
			return false // the deploy phase reports a bad plan
		}
	}
	if plans == nil || rec.Stage < 0 || rec.Stage >= len(plans) {
		return false
	}
	if !ok {
		if len(r.cfg.policy.Power(rollback.Traffic{}, nil)) > 0 {
			r.note(rec, now, state.EntryNote, state.OutcomeNone, "power", "power check not done: no declared traffic (WithTraffic) and no counted error rate in the baseline")
		}
		return false
	}
	checks := r.powerOf(tr, plans[rec.Stage:rec.Stage+1])
	for _, c := range checks {
		lines := []string{c.Summary}
		for _, s := range c.Steps {
			lines = append(lines, s.Line)
		}
		r.note(rec, now, state.EntryNote, state.OutcomeNone, "power", strings.Join(lines, "; "))
		if !c.OK {
			r.cfg.logger.Warn("deploy: "+c.Summary, "release", rec.ID)
		}
	}
	problems := r.powerProblems(checks)
	if len(problems) == 0 {
		return false
	}
	reason := strings.Join(problems, "; ")
	rec.Trigger = &state.Trigger{Kind: state.TriggerBlocked, Reason: reason, At: now}
	r.note(rec, now, state.EntryGate, state.OutcomeBlocked, "power", reason)
	r.emit(rec, Event{Kind: EventGate, Gate: "blocked", Message: "blocked: " + reason})
	r.toCommunicate(rec, now, Blocked, reason)
	return true
}

// powerMarkdown renders the power checks of a plan.
func powerMarkdown(b *strings.Builder, checks []rollback.Power) {
	if len(checks) == 0 {
		return
	}
	b.WriteString("\n### Power check\n")
	for _, c := range checks {
		fmt.Fprintf(b, "- %s\n", c.Summary)
		for _, s := range c.Steps {
			mark := " "
			if s.Catches {
				mark = "x"
			}
			fmt.Fprintf(b, "  - [%s] %s\n", mark, s.Line)
		}
	}
}

// validTraffic checks a declared traffic.
func validTraffic(t *rollback.Traffic) error {
	switch {
	case t == nil:
		return nil
	case !(t.RequestsPerSecond > 0) || math.IsInf(t.RequestsPerSecond, 0):
		return fmt.Errorf("%w: WithTraffic: RequestsPerSecond %v must be a finite number > 0", ErrInvalid, t.RequestsPerSecond)
	case !(t.ErrorRate >= 0 && t.ErrorRate < 1):
		return fmt.Errorf("%w: WithTraffic: ErrorRate %v must be in [0, 1)", ErrInvalid, t.ErrorRate)
	}
	return nil
}
