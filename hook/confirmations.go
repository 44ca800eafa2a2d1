package hook

import (
	"context"
	"errors"
	"fmt"

	"github.com/deploykit/deploy"
)

// Confirmations puts Flagger's confirmation webhooks before the steps of a
// strategy where Flagger puts them, using the steps' approvals:
//
//	confirm-rollout           before the first step of each stage (Flagger:
//	                          before it scales the canary up)
//	confirm-traffic-increase  before every step that raises the exposure
//	                          (Flagger: before every weight increase,
//	                          the promotion included)
//	confirm-promotion         before the last step of each stage (Flagger:
//	                          before it promotes the canary)
//
// It is both the strategy and its approval gate: its Plan is the wrapped
// strategy's with Approval set on those steps, and Check asks the
// confirmations of the step about to be applied. Give it to the runner twice:
//
//	c := &hook.Confirmations{Strategy: s, Hooks: confirms}
//	r, err := deploy.NewRunner(c, deploy.WithApproval(c), …)
//
// A step's approval waits with no deadline (unless a Confirm sets one), re-
// checked after Confirm.Poll or the runner's interval, whichever is sooner,
// and the runner keeps observing the users already on the new version
// meanwhile — Flagger too keeps running its metric checks and rollout
// hooks while the promotion waits. Rollbacks are polled on every check while
// a confirmation waits, as Flagger polls rollback hooks while a canary waits
// for approval: a yes refuses the approval, which rolls the release back with
// deploy.ErrAborted.
//
// The wrapped strategy's Name, RollbackPath, DescribeRollback and Validate
// are Confirmations'.
type Confirmations struct {
	// Strategy is the strategy whose steps wait. Required.
	Strategy deploy.Strategy
	// Hooks are the confirmations; those that apply to a step are asked in
	// this order, and all must say yes.
	Hooks []*Confirm
	// Rollbacks are asked, before the confirmations, on every check.
	Rollbacks []*Rollback
	// Approval, when set, is asked first for the steps that the wrapped
	// strategy itself marks Approval, such as a gate.Approval.
	Approval deploy.Gate
}

var (
	_ deploy.Strategy = (*Confirmations)(nil)
	_ deploy.Gate     = (*Confirmations)(nil)
)

// applies reports whether a confirmation of type typ comes before step i of
// steps.
func applies(typ Type, steps []deploy.Step, i int) bool {
	switch typ {
	case TypeConfirmRollout:
		return i == 0
	case TypeConfirmTrafficIncrease:
		prev := 0.0
		if i > 0 {
			prev = steps[i-1].Exposure
		}
		return steps[i].Exposure > prev
	case TypeConfirmPromotion:
		return i == len(steps)-1
	}
	return false
}

// Plan returns the wrapped strategy's plan with Approval set on every step
// that a confirmation comes before.
func (c *Confirmations) Plan(ctx context.Context, d *deploy.Deployment) ([]deploy.Step, error) {
	steps, err := c.Strategy.Plan(ctx, d)
	if err != nil {
		return nil, err
	}
	out := make([]deploy.Step, len(steps))
	for i, s := range steps {
		for _, h := range c.Hooks {
			if applies(h.Type, steps, i) {
				s.Approval = true
			}
		}
		out[i] = s
	}
	return out, nil
}

// Rollback is the wrapped strategy's.
func (c *Confirmations) Rollback(ctx context.Context, d *deploy.Deployment) error {
	return c.Strategy.Rollback(ctx, d)
}

// Check asks, for the step about to be applied (d.Step of the stage's plan),
// the rollback webhooks, then Approval when the wrapped strategy marks the
// step, then the confirmations that come before it. In the preflight phase
// (as a gate of deploy.WithGates) it asks the confirm-rollout ones only.
func (c *Confirmations) Check(ctx context.Context, d *deploy.Deployment) error {
	for _, r := range c.Rollbacks {
		a := r.Call(ctx, r.payload(d.ID, d.Release.Service, d.Release.Version, envOf(d), PhaseWaiting))
		if a.OK() {
			return fmt.Errorf("%s asked to roll back while a confirmation waited: %s", r.Name(), a.String())
		}
	}
	if d.Phase == deploy.PhasePreflight {
		return c.ask(ctx, d, func(h *Confirm) bool { return h.Type == TypeConfirmRollout })
	}
	steps, err := c.Strategy.Plan(ctx, d)
	if err != nil {
		return fmt.Errorf("confirmations: the plan: %w", err)
	}
	if d.Step < 0 || d.Step >= len(steps) {
		return fmt.Errorf("confirmations: step %d is not in the plan of %d step(s)", d.Step, len(steps))
	}
	if steps[d.Step].Approval && c.Approval != nil {
		if err := c.Approval.Check(ctx, d); err != nil {
			return err
		}
	}
	return c.ask(ctx, d, func(h *Confirm) bool { return applies(h.Type, steps, d.Step) })
}

func (c *Confirmations) ask(ctx context.Context, d *deploy.Deployment, ok func(*Confirm) bool) error {
	for _, h := range c.Hooks {
		if !ok(h) {
			continue
		}
		if err := h.Check(ctx, d); err != nil {
			return err
		}
	}
	return nil
}

// Name returns the wrapped strategy's name, if it has one, else
// "confirmations".
func (c *Confirmations) Name() string {
	if n, ok := c.Strategy.(interface{ Name() string }); ok {
		return n.Name()
	}
	return "confirmations"
}

// RollbackPath returns the wrapped strategy's, true when it does not say.
func (c *Confirmations) RollbackPath() bool {
	if rp, ok := c.Strategy.(interface{ RollbackPath() bool }); ok {
		return rp.RollbackPath()
	}
	return true
}

// DescribeRollback returns the wrapped strategy's, or the runner's default.
func (c *Confirmations) DescribeRollback() string {
	if d, ok := c.Strategy.(interface{ DescribeRollback() string }); ok {
		return d.DescribeRollback()
	}
	return "return every user to the previous version"
}

// Validate reports a nil strategy or hook, a hook's problems and the wrapped
// strategy's.
func (c *Confirmations) Validate() error {
	if c.Strategy == nil {
		return fmt.Errorf("%w: hook.Confirmations: Strategy is nil", deploy.ErrInvalid)
	}
	var errs []error
	for i, h := range c.Hooks {
		if h == nil {
			errs = append(errs, fmt.Errorf("%w: hook.Confirmations: Hooks[%d] is nil", deploy.ErrInvalid, i))
			continue
		}
		errs = append(errs, h.Validate())
	}
	for i, r := range c.Rollbacks {
		if r == nil {
			errs = append(errs, fmt.Errorf("%w: hook.Confirmations: Rollbacks[%d] is nil", deploy.ErrInvalid, i))
			continue
		}
		errs = append(errs, r.Validate())
	}
	if v, ok := c.Strategy.(interface{ Validate() error }); ok {
		errs = append(errs, v.Validate())
	}
	return errors.Join(errs...)
}
