package hook

import (
	"cmp"
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/deploykit/deploy"
)

// DefaultPoll is how soon a confirmation that said no is asked again when
// Confirm.Poll is zero: Flagger's default analysis interval. The runner asks
// sooner when its own interval (deploy.WithInterval) is shorter.
const DefaultPoll = time.Minute

// Confirm is one of Flagger's confirmation webhooks — confirm-rollout,
// confirm-traffic-increase or confirm-promotion, as Type says — as a
// deploy.Gate: a yes (200–202) passes; anything else, a timeout included,
// asks the runner to check again after Poll (deploy.RetryAt), for as long
// as it takes, like Flagger's halted canary. With Deadline set, a wait longer
// than Deadline refuses instead.
//
// Confirmations puts each kind before the steps Flagger puts it before. A
// Confirm works on its own too, as a step's approval (deploy.WithApproval,
// which waits with no deadline) or as a pre-deployment gate
// (deploy.WithGates, where the runner's gate deadline applies).
//
// A Confirm remembers in memory since when it waits, for Deadline; a process
// that resumes the release starts counting again. It is safe for concurrent
// use by several releases.
type Confirm struct {
	Webhook
	// Type is TypeConfirmRollout, TypeConfirmTrafficIncrease or
	// TypeConfirmPromotion. Required.
	Type Type
	// Poll is how soon a no is asked again; 0 means DefaultPoll.
	Poll time.Duration
	// Deadline, when positive, is how long the confirmation may wait: a no
	// after that refuses. 0 waits as long as it takes, as in Flagger.
	Deadline time.Duration

	mu    sync.Mutex
	since map[string]time.Time // release/stage/step: first no
}

// Name returns the type and the webhook's name: "confirm-promotion gate".
func (h *Confirm) Name() string { return checkName(h.Type, &h.Webhook) }

// Validate reports a bad webhook, a type that is not a confirmation, and
// negative durations.
func (h *Confirm) Validate() error {
	if err := h.Webhook.Validate(); err != nil {
		return err
	}
	switch h.Type {
	case TypeConfirmRollout, TypeConfirmTrafficIncrease, TypeConfirmPromotion:
	default:
		return fmt.Errorf("%w: hook %q: Type %q is not confirm-rollout, confirm-traffic-increase or confirm-promotion", deploy.ErrInvalid, h.Webhook.Label(), h.Type)
	}
	if h.Poll < 0 || h.Deadline < 0 {
		return fmt.Errorf("%w: hook %q: Poll %v or Deadline %v is negative", deploy.ErrInvalid, h.Webhook.Label(), h.Poll, h.Deadline)
	}
	return nil
}

// phase is the phase a confirmation sends: Flagger sends a confirm-rollout
// the canary's phase, Waiting once it halted, and the others Progressing.
func (h *Confirm) phase() Phase {
	if h.Type == TypeConfirmRollout {
		return PhaseWaiting
	}
	return PhaseProgressing
}

// Check asks the webhook: a yes passes, a no asks to be checked again.
func (h *Confirm) Check(ctx context.Context, d *deploy.Deployment) error {
	if err := h.Validate(); err != nil {
		return err
	}
	key := d.ID + "\x00" + d.Stage.Name + "\x00" + strconv.Itoa(d.Step)
	a := h.Call(ctx, h.payload(d.ID, d.Release.Service, d.Release.Version, envOf(d), h.phase()))
	now := time.Now()
	h.mu.Lock()
	defer h.mu.Unlock()
	if a.OK() {
		delete(h.since, key)
		deploy.Evidence(ctx, "%s: %s", h.Name(), a.String())
		return nil
	}
	if h.since == nil {
		h.since = map[string]time.Time{}
	}
	since, ok := h.since[key]
	if !ok {
		since, h.since[key] = now, now
	}
	if h.Deadline > 0 && now.Sub(since) >= h.Deadline {
		delete(h.since, key)
		return fmt.Errorf("%s did not confirm within %v: %s", h.Name(), h.Deadline, a.String())
	}
	return deploy.RetryAt(now.Add(cmp.Or(h.Poll, DefaultPoll)), fmt.Sprintf("waiting for %s: %s", h.Name(), a.String()))
}

// envOf is the environment a gate's payload names: the stage's, else the
// release's.
func envOf(d *deploy.Deployment) string {
	return cmp.Or(d.Stage.Environment, d.Release.Environment)
}
