package deploy_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/deploykit/deploy"
	"github.com/deploykit/deploy/deploytest"
	"github.com/deploykit/deploy/gate"
	"github.com/deploykit/deploy/monitor"
	"github.com/deploykit/deploy/notify"
	"github.com/deploykit/deploy/rollback"
	"github.com/deploykit/deploy/state"
)

func TestNewRunnerRefusesTypedNils(t *testing.T) {
	policyWith := func(tr rollback.Trigger) deploy.Option {
		p := deploy.DefaultPolicy()
		p.Triggers = append(p.Triggers, tr)
		return deploy.WithRollbackPolicy(p)
	}
	cases := []struct {
		name string
		s    deploy.Strategy
		opt  deploy.Option
		want string
	}{
		{"nil strategy", (*deploytest.Strategy)(nil), nil, "strategy is nil"},
		{"gate.CI", ramp(), deploy.WithGates((*gate.CI)(nil)), "WithGates argument 0"},
		{"gate.HTTP", ramp(), deploy.WithGates((*gate.HTTP)(nil)), "WithGates argument 0"},
		{"gate.Window", ramp(), deploy.WithGates((*gate.Window)(nil)), "WithGates argument 0"},
		{"GateFunc", ramp(), deploy.WithGates(deploy.GateFunc(nil)), "WithGates argument 0"},
		{"approval", ramp(), deploy.WithApproval((*gate.Approval)(nil)), "WithApproval"},
		{"monitor.Probe", ramp(), deploy.WithMonitors((*monitor.Probe)(nil)), "WithMonitors argument 1"},
		{"monitor.LogScan", ramp(), deploy.WithMonitors((*monitor.LogScan)(nil)), "WithMonitors argument 1"},
		{"monitor.Func", ramp(), deploy.WithMonitors(monitor.Func(nil)), "WithMonitors argument 1"},
		{"deploytest.Monitor", ramp(), deploy.WithMonitors((*deploytest.Monitor)(nil)), "WithMonitors argument 1"},
		{"notify.Slack", ramp(), deploy.WithNotifiers((*notify.Slack)(nil)), "WithNotifiers argument 0"},
		{"notify.Webhook", ramp(), deploy.WithNotifiers((*notify.Webhook)(nil)), "WithNotifiers argument 0"},
		{"notify.GitHub", ramp(), deploy.WithNotifiers((*notify.GitHub)(nil)), "WithNotifiers argument 0"},
		{"NotifierFunc", ramp(), deploy.WithNotifiers(deploy.NotifierFunc(nil)), "WithNotifiers argument 0"},
		{"rollback.Threshold", ramp(), policyWith((*rollback.Threshold)(nil)), "Triggers[3]"},
		{"rollback.RelativeIncrease", ramp(), policyWith((*rollback.RelativeIncrease)(nil)), "Triggers[3]"},
		{"state.File", ramp(), deploy.WithStore((*state.File)(nil)), "WithStore"},
		{"state.Memory", ramp(), deploy.WithStore((*state.Memory)(nil)), "WithStore"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			opts := []deploy.Option{deploy.WithMonitors(deploytest.Healthy())}
			if c.opt != nil {
				opts = append(opts, c.opt)
			}
			_, err := deploy.NewRunner(c.s, opts...)
			if !errors.Is(err, deploy.ErrInvalid) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("NewRunner: %v, want ErrInvalid naming %q", err, c.want)
			}
		})
	}
}

func TestNewRunnerRefusesWhatCannotBeMeant(t *testing.T) {
	critical := &monitor.Probe{URL: "http://127.0.0.1:1/health", Critical: true}
	noChecks := deploy.DefaultPolicy()
	noChecks.Triggers = noChecks.Triggers[1:]
	cases := []struct {
		name string
		opts []deploy.Option
		want string
	}{
		{"policy with no triggers", []deploy.Option{deploy.WithMonitors(deploytest.Healthy()), deploy.WithRollbackPolicy(rollback.Policy{})}, "has no Triggers"},
		{"critical checks nobody judges", []deploy.Option{deploy.WithMonitors(critical), deploy.WithRollbackPolicy(noChecks)}, "no rollback.CriticalChecks trigger"},
		{"lease grace that overflows", []deploy.Option{deploy.WithLeaseGrace(1 << 62)}, "WithLeaseGrace"},
		{"progress deadline that overflows", []deploy.Option{deploy.WithRollbackPolicy(rollback.Policy{Triggers: deploy.DefaultPolicy().Triggers, ProgressDeadline: 1 << 62})}, "ProgressDeadline"},
		{"negative observe timeout", []deploy.Option{deploy.WithTimeouts(deploy.Timeouts{Observe: -time.Second})}, "Timeouts.Observe"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := deploy.NewRunner(ramp(), c.opts...)
			if !errors.Is(err, deploy.ErrInvalid) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("NewRunner: %v, want ErrInvalid naming %q", err, c.want)
			}
		})
	}
}

// shortPlan ends at exposure 0.5, Partial or not.
type shortPlan struct {
	deploytest.Strategy
	partial bool
}

func (s *shortPlan) Plan(ctx context.Context, d *deploy.Deployment) ([]deploy.Step, error) {
	steps, err := s.Strategy.Plan(ctx, d)
	steps[len(steps)-1].Partial = s.partial
	return steps, err
}

func TestPlanThatNeverReachesEveryoneIsRefusedUnlessPartial(t *testing.T) {
	spec := deploytest.Ramp(0, 0.1, 0.5)
	r := openRunner(t, &shortPlan{Strategy: deploytest.Strategy{Steps: spec}}, state.NewMemory(), deploy.WithMonitors(deploytest.Healthy()))
	if _, err := r.Start(t.Context(), rel); !errors.Is(err, deploy.ErrInvalid) || !strings.Contains(err.Error(), "ends at exposure 0.5") {
		t.Errorf("Start with a plan ending at 50 %%: %v, want ErrInvalid", err)
	}
	r = openRunner(t, &shortPlan{Strategy: deploytest.Strategy{Steps: spec}, partial: true}, state.NewMemory(), deploy.WithMonitors(deploytest.Healthy()))
	if _, err := r.Start(t.Context(), rel); err != nil {
		t.Errorf("Start with a Partial plan: %v", err)
	}
}

func TestFailedCriticalCheckNoTriggerJudgesStillRollsBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// A monitor that does not say it reports critical checks, under a
		// policy without rollback.CriticalChecks.
		m := deploy.MonitorFunc(func(ctx context.Context, tg monitor.Target) (monitor.Observation, error) {
			o := deploytest.Health{ErrorRate: 0.001, P95: 100 * time.Millisecond}.Observation()
			if tg.Phase == "bake" && tg.Exposure >= 0.25 {
				o.Checks = []monitor.Check{{Name: "checkout works", Critical: true, Detail: "500 on /pay"}}
			}
			return o, nil
		})
		p := deploy.DefaultPolicy()
		p.Triggers = p.Triggers[1:]
		s := ramp()
		rep, err := openRunner(t, s, state.NewMemory(), deploy.WithMonitors(m), deploy.WithRollbackPolicy(p)).Run(t.Context(), rel)
		if !errors.Is(err, deploy.ErrUnhealthy) || rep.Status != deploy.RolledBack || !strings.Contains(rep.Trigger.Reason, "critical check checkout works failed") {
			t.Fatalf("err %v, status %s, trigger %+v; want the failed critical check to roll back", err, rep.Status, rep.Trigger)
		}
	})
}
