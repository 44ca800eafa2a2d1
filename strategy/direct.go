package strategy

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/deploykit/deploy"
)

// Direct deploys in one step to full exposure, then bakes while monitors
// watch: the checklist's "Direct Deploy" for low-risk changes.
type Direct struct {
	// Deploy puts the new version in place. Required; must be idempotent.
	Deploy func(ctx context.Context, d *deploy.Deployment) error
	// Revert puts the previous version back. Nil means there is no rollback
	// path, which the runner refuses for production unless waived.
	Revert func(ctx context.Context, d *deploy.Deployment) error
	// Bake is how long monitors watch after the deploy before verification.
	Bake time.Duration
}

var _ deploy.Strategy = (*Direct)(nil)

// Name returns "direct".
func (s *Direct) Name() string { return "direct" }

// Validate reports a nil Deploy or a negative Bake.
func (s *Direct) Validate() error {
	if s.Deploy == nil {
		return errors.New("strategy: Direct.Deploy is nil")
	}
	if s.Bake < 0 {
		return fmt.Errorf("strategy: Direct.Bake %v is negative", s.Bake)
	}
	return nil
}

// Plan returns one step, "deploy", at exposure 1.
func (s *Direct) Plan(ctx context.Context, d *deploy.Deployment) ([]deploy.Step, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return []deploy.Step{{Name: "deploy", Exposure: 1, Bake: s.Bake, Apply: s.Deploy}}, nil
}

// Rollback calls Revert.
func (s *Direct) Rollback(ctx context.Context, d *deploy.Deployment) error {
	if s.Revert == nil {
		return errors.New("strategy: Direct has no Revert")
	}
	return s.Revert(ctx, d)
}

// RollbackPath reports whether Revert is set.
func (s *Direct) RollbackPath() bool { return s.Revert != nil }

// DescribeRollback says what Rollback does, for the rollback procedure.
func (s *Direct) DescribeRollback() string { return "run Revert, which puts the previous version back" }
