// Regression tests from the fourth code review of 2026-11-26.

package deploy_test

import (
	"context"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/deploykit/deploy"
	"github.com/deploykit/deploy/deploytest"
	"github.com/deploykit/deploy/state"
)

type slowSteps struct {
	*deploytest.Strategy
	entered chan struct{}
	started atomic.Int32
	maxExp  atomic.Value
}

func (s *slowSteps) Plan(ctx context.Context, d *deploy.Deployment) ([]deploy.Step, error) {
	steps, err := s.Strategy.Plan(ctx, d)
	if err != nil {
		return nil, err
	}
	for i := range steps {
		inner := steps[i].Apply
		exp := steps[i].Exposure
		steps[i].Apply = func(ctx context.Context, d *deploy.Deployment) error {
			if s.started.Add(1) == 1 {
				close(s.entered)
			}
			time.Sleep(10*time.Second + 300*time.Millisecond) // deploy the idle side, say
			if m, _ := s.maxExp.Load().(float64); exp > m {
				s.maxExp.Store(exp)
			}
			return inner(ctx, d)
		}
	}
	return steps, nil
}

// BlueGreen-like: deploy (bake 0), test (bake 0), switch (100 %). A person
// asks for a rollback during the first Apply: the runner goes on to the
// switch before the Rollback gets in.
func TestReview4RollbackStarvedByZeroBakeSteps(t *testing.T) {
	for _, same := range []bool{true, false} {
		t.Run(map[bool]string{true: "same runner", false: "other runner"}[same], func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				store := state.NewMemory()
				s := &slowSteps{Strategy: &deploytest.Strategy{Steps: []deploytest.StepSpec{
					{Name: "deploy-green", Exposure: 0},
					{Name: "test-green", Exposure: 0},
					{Name: "switch-green", Exposure: 1, Bake: 10 * time.Minute},
				}}, entered: make(chan struct{})}
				r := openRunner(t, s, store, deploy.WithMonitors(deploytest.Healthy()))
				id, err := r.Start(t.Context(), rel)
				if err != nil {
					t.Fatal(err)
				}
				go r.Resume(t.Context(), id)
				<-s.entered
				rb := r
				if !same {
					rb = openRunner(t, s, store, deploy.WithMonitors(deploytest.Healthy()))
				}
				rep, err := rb.Rollback(t.Context(), id, "stop it")
				t.Logf("Rollback: %s %v; steps started %d", rep.Status, err, s.started.Load())
				if m, _ := s.maxExp.Load().(float64); m > 0 {
					t.Errorf("a Rollback asked during deploy-green let the runner apply %d steps, up to exposure %v", s.started.Load(), m)
				}
				time.Sleep(time.Hour)
			})
		})
	}
}
