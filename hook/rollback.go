package hook

import (
	"context"

	"github.com/deploykit/deploy/monitor"
)

// Rollback is Flagger's rollback webhook: polled during the analysis, a yes
// (200–202) rolls the release back. It is called on every observation while
// a step bakes — and while a step waits for its approval with users already
// on the new version, which the runner keeps observing — and reports a check
// named "rollback NAME": passing (with the answer) while the receiver says
// no, failed and critical when it says yes, so that rollback.CriticalChecks
// rolls back at once, naming the webhook. A receiver that does not answer is
// a no, as in Flagger.
//
// It is not called for the baseline, the post-deployment verification or
// the rollback's own verification, so a receiver that keeps saying yes does
// not fail the rollback it asked for. While a confirmation waits with no
// user on the new version the runner observes nothing: give the Rollback to
// Confirmations.Rollbacks too, which polls it then.
//
// Flagger marks such a canary failed; here the release ends rolled back with
// deploy.ErrUnhealthy (a trigger fired) — not ErrAborted, which is kept for
// decisions made through the runner (Runner.Rollback), as a refused
// confirmation is.
type Rollback struct {
	Webhook
}

// Name returns "rollback" and the webhook's name.
func (h *Rollback) Name() string { return checkName(TypeRollback, &h.Webhook) }

// CriticalChecks reports true: a yes is a failed critical check.
func (h *Rollback) CriticalChecks() bool { return true }

// Observe asks the webhook whether to roll back, while a step bakes.
func (h *Rollback) Observe(ctx context.Context, t monitor.Target) (monitor.Observation, error) {
	if err := h.Validate(); err != nil {
		return monitor.Observation{}, err
	}
	if !observed(t) {
		return none(), nil
	}
	return one(h.check(h.Call(ctx, h.analysisPayload(t, PhaseProgressing)))), nil
}

// check is the check of an answer: a yes fails, critically.
func (h *Rollback) check(a Answer) monitor.Check {
	c := monitor.Check{Name: h.Name(), OK: true, Detail: "not signaling a rollback: " + a.String()}
	if a.OK() {
		c.OK, c.Critical, c.Detail = false, true, "rollback asked: "+a.String()
	}
	return c
}
