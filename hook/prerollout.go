package hook

import (
	"context"
	"sync"

	"github.com/deploykit/deploy/monitor"
)

// PreRollout is Flagger's pre-rollout webhook: it runs against the deployed
// canary before its traffic grows. Flagger calls it while the canary has no
// traffic yet, every interval until it passes, and counts each failure
// toward the analysis threshold; here it is called on every observation of
// the bake of the first step of a stage (or of Step), until it has passed
// once for the release and stage, and reports a check named "pre-rollout
// NAME" that fails on anything but 200–202 (a timeout included). A failed
// check is not critical: it counts toward the rollback policy's failure limit
// and makes the step wait, so the step is not promoted while the hook fails,
// and the release rolls back when the limit is reached (see Threshold).
//
// Make the first step the canary without traffic (Exposure 0, as Flagger's
// scaled-up canary) and give it a Bake of at least one interval: a step
// without a bake is promoted without being observed, and the hook never runs.
//
// A PreRollout remembers in memory that it passed. A process that resumes
// the release in a later step calls it again, once, unless Step names the
// step it belongs to. It is safe for concurrent use by several releases.
type PreRollout struct {
	Webhook
	// Step is the name of the step during whose bake the hook runs. Empty
	// means the first step this PreRollout observes in each stage.
	Step string

	mu    sync.Mutex
	first map[string]string // release/stage: the step it runs for
	done  map[string]bool   // release/stage: passed
}

// Name returns "pre-rollout" and the webhook's name.
func (h *PreRollout) Name() string { return checkName(TypePreRollout, &h.Webhook) }

// CriticalChecks reports true, so that a runner refuses a policy that would
// not judge the check (one without rollback.CriticalChecks), although the
// check itself is never critical.
func (h *PreRollout) CriticalChecks() bool { return true }

// Observe calls the webhook during the pre-rollout step's bake until it
// passes; other observations return no check.
func (h *PreRollout) Observe(ctx context.Context, t monitor.Target) (monitor.Observation, error) {
	if err := h.Validate(); err != nil {
		return monitor.Observation{}, err
	}
	if !observed(t) {
		return none(), nil
	}
	key := t.DeploymentID + "\x00" + t.Stage
	h.mu.Lock()
	if h.first == nil {
		h.first, h.done = map[string]string{}, map[string]bool{}
	}
	step := h.Step
	if step == "" {
		if _, ok := h.first[key]; !ok {
			h.first[key] = t.Step
		}
		step = h.first[key]
	}
	skip := h.done[key] || t.Step != step
	h.mu.Unlock()
	if skip {
		return none(), nil
	}
	a := h.Call(ctx, h.analysisPayload(t, PhaseProgressing))
	if a.OK() {
		h.mu.Lock()
		h.done[key] = true
		h.mu.Unlock()
	}
	return one(checkOf(TypePreRollout, &h.Webhook, a)), nil
}
