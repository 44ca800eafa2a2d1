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
	// Required. The plan targets the idle side; once the switch step has
	// applied (the deployment's exposure is above 0) the plan, made again
	// for a rollback or a Resume, targets the other side of Idle, which is
	// then the serving one. So the step names and the rollback stay right
	// when Idle flips at the switch. Only a process that crashed in the
	// middle of Switch, before the runner saved it, cannot tell from Idle
	// whether the switch happened: set the release label "bluegreen.target"
	// to make the target certain.
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
// set, else the idle side before the switch and the serving side after it
// (see Idle), so that the plan is the same every time it is made.
func (s *BlueGreen) Plan(ctx context.Context, d *deploy.Deployment) ([]deploy.Step, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	side, err := s.target(context.Background(), d)
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

func (s *BlueGreen) target(ctx context.Context, d *deploy.Deployment) (string, error) {
	if t := d.Release.Labels["bluegreen.target"]; t != "" {
		if t != "blue" && t != "green" {
			return "", fmt.Errorf("strategy: label bluegreen.target %q is neither blue nor green", t)
		}
		return t, nil
	}
	side, err := s.Idle(ctx, d)
	if err != nil {
		return "", fmt.Errorf("strategy: BlueGreen.Idle: %w", err)
	}
	if side != "blue" && side != "green" {
		return "", fmt.Errorf("strategy: BlueGreen.Idle returned %q, neither blue nor green", side)
	}
	if d.Exposure > 0 {
		return other(side), nil // switched: the target now serves and the old side is idle
	}
	return side, nil
}

// Rollback switches traffic back to the old side. It reads the target side
// from the release label "bluegreen.target" when set, else asks Idle: after
// the switch the idle side is the old one.
func (s *BlueGreen) Rollback(ctx context.Context, d *deploy.Deployment) error {
	if t := d.Release.Labels["bluegreen.target"]; t != "" {
		return s.Switch(ctx, d, other(t))
	}
	if d.Exposure == 0 {
		return nil // traffic never switched: the old side still serves everyone
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
