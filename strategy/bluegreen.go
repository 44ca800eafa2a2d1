package strategy

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/deploykit/deploy"
)

// BlueGreen deploys to the idle side, tests it before any user sees it,
// switches traffic, and keeps the old side for rollback: the checklist's
// "Blue-Green" for critical changes. Rollback switches traffic back to the
// old side, which is still running.
type BlueGreen struct {
	// Idle returns the side ("blue" or "green") not serving traffic now.
	// Required. It is asked once, when the release is created: the idle
	// side then is the release's target, kept in Deployment.Memo
	// ("bluegreen.target/<stage>"), so that the plan made again after the
	// switch, or after a crash in the middle of Switch, targets the same
	// side whatever Idle says by then. The release label
	// "bluegreen.target" sets the target instead.
	Idle func(ctx context.Context, d *deploy.Deployment) (string, error)
	// Deploy puts the new version on side. Required; idempotent.
	Deploy func(ctx context.Context, d *deploy.Deployment, side string) error
	// Test checks side before it takes traffic (smoke tests against the idle
	// side). Nil skips the test step.
	Test func(ctx context.Context, d *deploy.Deployment, side string) error
	// Switch sends all traffic to side. Required; idempotent.
	Switch func(ctx context.Context, d *deploy.Deployment, side string) error
	// Bake is how long monitors watch after the switch.
	Bake time.Duration
	// Approval waits for the runner's approval gate before the switch.
	Approval bool
}

var _ deploy.Strategy = (*BlueGreen)(nil)

// Name returns "blue-green".
func (s *BlueGreen) Name() string { return "blue-green" }

// Validate reports a missing callback or a negative Bake.
func (s *BlueGreen) Validate() error {
	switch {
	case s.Idle == nil:
		return errors.New("strategy: BlueGreen.Idle is nil")
	case s.Deploy == nil:
		return errors.New("strategy: BlueGreen.Deploy is nil")
	case s.Switch == nil:
		return errors.New("strategy: BlueGreen.Switch is nil")
	case s.Bake < 0:
		return fmt.Errorf("strategy: BlueGreen.Bake %v is negative", s.Bake)
	}
	return nil
}

// sides returns the target (new) side and the old side, remembered in the
// deployment's labels once known so that the plan stays deterministic.
func other(side string) string {
	if side == "blue" {
		return "green"
	}
	return "blue"
}

// Plan returns "deploy-<side>", "test-<side>" (when Test is set) and
// "switch-<side>". The side is the release's "bluegreen.target" label when
// set, else the one remembered in d.Memo, else the idle side, which is then
// remembered: the plan is the same every time it is made.
func (s *BlueGreen) Plan(ctx context.Context, d *deploy.Deployment) ([]deploy.Step, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	side, err := s.target(ctx, d)
	if err != nil {
		return nil, err
	}
	steps := []deploy.Step{{Name: "deploy-" + side, Exposure: 0, Apply: func(ctx context.Context, d *deploy.Deployment) error {
		return s.Deploy(ctx, d, side)
	}}}
	if s.Test != nil {
		steps = append(steps, deploy.Step{Name: "test-" + side, Exposure: 0, Apply: func(ctx context.Context, d *deploy.Deployment) error {
			return s.Test(ctx, d, side)
		}})
	}
	steps = append(steps, deploy.Step{Name: "switch-" + side, Exposure: 1, Bake: s.Bake, Approval: s.Approval, Apply: func(ctx context.Context, d *deploy.Deployment) error {
		return s.Switch(ctx, d, side)
	}})
	return steps, nil
}

func memoKey(d *deploy.Deployment) string { return "bluegreen.target/" + d.Stage.Name }

// target is the side the release deploys to: from the label, the memo, or
// (the first time) Idle, remembered in the memo.
func (s *BlueGreen) target(ctx context.Context, d *deploy.Deployment) (string, error) {
	if t := d.Release.Labels["bluegreen.target"]; t != "" {
		if t != "blue" && t != "green" {
			return "", fmt.Errorf("strategy: label bluegreen.target %q is neither blue nor green", t)
		}
		return t, nil
	}
	if t := d.Memo[memoKey(d)]; t == "blue" || t == "green" {
		return t, nil
	}
	side, err := s.Idle(ctx, d)
	if err != nil {
		return "", fmt.Errorf("strategy: BlueGreen.Idle: %w", err)
	}
	if side != "blue" && side != "green" {
		return "", fmt.Errorf("strategy: BlueGreen.Idle returned %q, neither blue nor green", side)
	}
	if d.Memo == nil {
		// No memo to remember it in (a Deployment built by hand): after
		// the switch the idle side is the old one.
		if d.Exposure > 0 {
			return other(side), nil
		}
		return side, nil
	}
	d.Memo[memoKey(d)] = side
	return side, nil
}

// Rollback switches traffic back to the old side, the other side of the
// target. Before the switch (d.Exposure 0) there is nothing to do; after a
// crash in the middle of Switch the runner rolls back at the switch's
// exposure, and Rollback undoes whatever part of it went through.
func (s *BlueGreen) Rollback(ctx context.Context, d *deploy.Deployment) error {
	if d.Exposure == 0 {
		return nil // traffic never switched: the old side still serves everyone
	}
	t := d.Release.Labels["bluegreen.target"]
	if t == "" {
		t = d.Memo[memoKey(d)]
	}
	if t == "blue" || t == "green" {
		return s.Switch(ctx, d, other(t))
	}
	idle, err := s.Idle(ctx, d)
	if err != nil {
		return fmt.Errorf("strategy: BlueGreen.Idle: %w", err)
	}
	return s.Switch(ctx, d, idle)
}

// DescribeRollback says what Rollback does, for the rollback procedure.
func (s *BlueGreen) DescribeRollback() string {
	return "switch traffic back to the old side, which is still running (nothing to do before the switch)"
}
