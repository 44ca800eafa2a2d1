package hook

import (
	"context"
	"time"

	"github.com/deploykit/deploy/monitor"
)

// observed reports whether a hook that runs during the analysis is called
// for t: only while a step bakes ("bake"), never for the baseline (nothing
// is deployed yet), the post-deployment verification (the analysis is over,
// as after Flagger's promotion) or the rollback's verification (a rollback
// hook that still answers yes must not fail the rollback's own check).
func observed(t monitor.Target) bool { return t.Phase == "bake" }

// environment is the namespace a hook sends for t.
func environment(t monitor.Target) string { return t.Environment }

// analysisPayload is the payload of a hook called during the analysis.
func (w *Webhook) analysisPayload(t monitor.Target, phase Phase) Payload {
	return w.payload(t.DeploymentID, t.Service, t.Version, environment(t), phase)
}

// checkName names the check a hook reports: "pre-rollout acceptance".
func checkName(typ Type, w *Webhook) string { return string(typ) + " " + w.Label() }

// checkOf turns an answer into the check of a pre-rollout or rollout hook:
// passed on 200–202, failed (not critical: it counts toward the failure
// limit, Flagger's threshold) otherwise.
func checkOf(typ Type, w *Webhook, a Answer) monitor.Check {
	return monitor.Check{Name: checkName(typ, w), OK: a.OK(), Detail: a.String()}
}

// one returns an observation holding one check.
func one(c monitor.Check) monitor.Observation {
	return monitor.Observation{At: time.Now(), Checks: []monitor.Check{c}}
}

// none is the observation of a hook that was not called.
func none() monitor.Observation { return monitor.Observation{At: time.Now()} }

// Rollout is Flagger's rollout webhook (also its webhook without a type):
// it is called on every observation while a step bakes — every interval of
// the analysis — and reports a check named "rollout NAME" that passes on
// 200–202 and fails otherwise, a timeout or an unreachable receiver
// included. A failed check is not critical: it counts toward the rollback
// policy's failure limit, as a failed call counts toward Flagger's
// threshold, and makes the step wait (no promotion that interval).
//
// Use it as a monitor (deploy.WithMonitors) with a policy that has a
// rollback.CriticalChecks trigger, which judges the check; the runner
// refuses a policy without one (Rollout is a monitor.CriticalChecker for that
// reason). It is not called for the baseline, the post-deployment
// verification or the rollback's verification.
type Rollout struct {
	Webhook
}

// Name returns "rollout" and the webhook's name.
func (h *Rollout) Name() string { return checkName(TypeRollout, &h.Webhook) }

// CriticalChecks reports true, so that a runner refuses a policy that would
// not judge the check (one without rollback.CriticalChecks), although the
// check itself is never critical.
func (h *Rollout) CriticalChecks() bool { return true }

// Observe calls the webhook for t while a step bakes.
func (h *Rollout) Observe(ctx context.Context, t monitor.Target) (monitor.Observation, error) {
	if err := h.Validate(); err != nil {
		return monitor.Observation{}, err
	}
	if !observed(t) {
		return none(), nil
	}
	return one(checkOf(TypeRollout, &h.Webhook, h.Call(ctx, h.analysisPayload(t, PhaseProgressing)))), nil
}
