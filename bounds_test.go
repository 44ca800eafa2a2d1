package deploy_test

import (
	"context"
	"testing"
	"time"

	"github.com/deploykit/deploy"
	"github.com/deploykit/deploy/rollback"
	"github.com/deploykit/deploy/state"
)

// a scheduler sizes its job timeout on Bounds: the defaults, and every
// option that changes one, show in it.
func TestBoundsSayHowLongARunnerMayTake(t *testing.T) {
	r := openRunner(t, ramp(), state.NewMemory())
	b := r.Bounds()
	if b.Apply != rollback.DefaultProgressDeadline || b.Rollback != 5*time.Minute || b.LeaseGrace != 2*time.Minute ||
		b.Timeouts.Observe != 30*time.Second || b.Timeouts.Notify != 10*time.Second || b.Holder == "" {
		t.Fatalf("default bounds %+v", b)
	}
	if b.Action() != 10*time.Minute {
		t.Errorf("Action() = %v, want the progress deadline", b.Action())
	}
	step := rollback.PlanStep{Name: "drain", Run: func(context.Context) error { return nil }}
	p := deploy.DefaultPolicy()
	p.ProgressDeadline = time.Minute
	r = openRunner(t, ramp(), state.NewMemory(), deploy.WithRollbackPolicy(p), deploy.WithRollbackTimeout(2*time.Minute),
		deploy.WithRollbackSteps(step, step), deploy.WithLeaseGrace(time.Minute), deploy.WithHolder("w1"))
	b = r.Bounds()
	if b.Apply != time.Minute || b.RollbackSteps != 2 || b.LeaseGrace != time.Minute || b.Holder != "w1" {
		t.Fatalf("bounds %+v", b)
	}
	if b.Action() != 6*time.Minute {
		t.Errorf("Action() = %v, want the rollback and its two steps, 6m", b.Action())
	}
	// openRunner gives one notifier: 4 events' attempts after an observation.
	if want := 6*time.Minute + 30*time.Second + 4*10*time.Second; b.Reconcile() != want {
		t.Errorf("Reconcile() = %v, want %v", b.Reconcile(), want)
	}
}
