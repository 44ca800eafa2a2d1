package deploytest_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/deploykit/deploy"
	"github.com/deploykit/deploy/deploytest"
)

// flipping is a strategy whose plan depends on what it has done, the mistake
// a blue-green strategy makes when it names its steps after the idle side.
type flipping struct{ switched bool }

func (f *flipping) Plan(ctx context.Context, d *deploy.Deployment) ([]deploy.Step, error) {
	side := "green"
	if f.switched {
		side = "blue"
	}
	return []deploy.Step{{Name: "switch-" + side, Exposure: 1, Apply: func(context.Context, *deploy.Deployment) error {
		f.switched = true
		return nil
	}}}, nil
}

func (f *flipping) Rollback(context.Context, *deploy.Deployment) error { return nil }

// planFunc is a strategy made of a plan function and a rollback error.
type planFunc struct {
	plan        func(d *deploy.Deployment) ([]deploy.Step, error)
	rollbackErr error
}

func (p planFunc) Plan(ctx context.Context, d *deploy.Deployment) ([]deploy.Step, error) {
	return p.plan(d)
}
func (p planFunc) Rollback(context.Context, *deploy.Deployment) error {
	return p.rollbackErr
}

func steps(s ...deploy.Step) func(*deploy.Deployment) ([]deploy.Step, error) {
	return func(*deploy.Deployment) ([]deploy.Step, error) { return s, nil }
}

var ok = func(context.Context, *deploy.Deployment) error { return nil }

// TestTestStrategy: the conformance suite passes a good strategy and names
// each broken contract of a bad one.
func TestTestStrategy(t *testing.T) {
	good := &deploytest.Strategy{Steps: deploytest.Ramp(time.Minute, 0.05, 0.5, 1)}
	if err := deploytest.TestStrategy(t.Context(), good, nil); err != nil {
		t.Errorf("a good strategy: %v", err)
	}
	calls := 0
	for _, tc := range []struct {
		name string
		s    deploy.Strategy
		want string
	}{
		{"no steps", planFunc{plan: steps()}, "Plan returned no steps"},
		{"plan fails", planFunc{plan: func(*deploy.Deployment) ([]deploy.Step, error) { return nil, errors.New("no cluster") }}, "deploytest: Plan: no cluster"},
		{"empty name", planFunc{plan: steps(deploy.Step{Exposure: 1, Apply: ok})}, "step 0: Name is empty"},
		{"repeated name", planFunc{plan: steps(deploy.Step{Name: "a", Exposure: 0.5, Apply: ok}, deploy.Step{Name: "a", Exposure: 1, Apply: ok})}, `step 1: Name "a" is repeated`},
		{"exposure outside", planFunc{plan: steps(deploy.Step{Name: "a", Exposure: 1.5, Apply: ok})}, `step 0 ("a"): Exposure 1.5 is outside [0, 1]`},
		{"exposure falls", planFunc{plan: steps(deploy.Step{Name: "a", Exposure: 0.5, Apply: ok}, deploy.Step{Name: "b", Exposure: 0.25, Apply: ok}, deploy.Step{Name: "c", Exposure: 1, Apply: ok})}, `step 1 ("b"): Exposure 0.25 is lower than the step before (0.5)`},
		{"never everyone", planFunc{plan: steps(deploy.Step{Name: "half", Exposure: 0.5, Apply: ok})}, `the last step ("half") has Exposure 0.5`},
		{"negative bake", planFunc{plan: steps(deploy.Step{Name: "a", Exposure: 1, Bake: -time.Second, Apply: ok})}, `step 0 ("a"): Bake -1s is negative`},
		{"no apply", planFunc{plan: steps(deploy.Step{Name: "a", Exposure: 1})}, `step 0 ("a"): Apply is nil`},
		{"not idempotent", planFunc{plan: steps(deploy.Step{Name: "a", Exposure: 1, Apply: func(context.Context, *deploy.Deployment) error {
			if calls++; calls > 1 {
				return errors.New("already exists")
			}
			return nil
		}})}, `step 0 ("a"): Apply is not idempotent: the second call failed: already exists`},
		{"rollback fails", planFunc{plan: steps(deploy.Step{Name: "a", Exposure: 1, Apply: ok}), rollbackErr: errors.New("no way back")}, "Rollback: no way back"},
		{"plan changes once applied", &flipping{}, `Plan after the steps were applied differs at step 0: "switch-blue"/1, was "switch-green"/1`},
	} {
		err := deploytest.TestStrategy(t.Context(), tc.s, nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want it to say %q", tc.name, err, tc.want)
		}
	}
}
