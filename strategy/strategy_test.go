package strategy_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/deploykit/deploy"
	"github.com/deploykit/deploy/deploytest"
	"github.com/deploykit/deploy/monitor"
	"github.com/deploykit/deploy/state"
	"github.com/deploykit/deploy/strategy"
)

// lb is a fake load balancer with two sides.
type lb struct {
	mu     sync.Mutex
	live   string
	deploy map[string]string
	calls  []string
}

func newLB() *lb { return &lb{live: "blue", deploy: map[string]string{"blue": "v1"}} }

func (l *lb) bg(testErr error) *strategy.BlueGreen {
	return &strategy.BlueGreen{
		Idle: func(ctx context.Context, d *deploy.Deployment) (string, error) {
			l.mu.Lock()
			defer l.mu.Unlock()
			if l.live == "blue" {
				return "green", nil
			}
			return "blue", nil
		},
		Deploy: func(ctx context.Context, d *deploy.Deployment, side string) error {
			l.mu.Lock()
			defer l.mu.Unlock()
			l.deploy[side] = d.Release.Version
			l.calls = append(l.calls, "deploy "+side)
			return nil
		},
		Test: func(ctx context.Context, d *deploy.Deployment, side string) error {
			l.mu.Lock()
			defer l.mu.Unlock()
			l.calls = append(l.calls, "test "+side)
			return testErr
		},
		Switch: func(ctx context.Context, d *deploy.Deployment, side string) error {
			l.mu.Lock()
			defer l.mu.Unlock()
			l.live = side
			l.calls = append(l.calls, "switch "+side)
			return nil
		},
		Bake: 10 * time.Minute,
	}
}

func stRunner(t *testing.T, s deploy.Strategy, m deploy.Monitor) *deploy.Runner {
	t.Helper()
	r, err := deploy.NewRunner(s, deploy.WithStore(state.NewMemory()), deploy.WithMonitors(m),
		deploy.WithNotifiers(&deploytest.Recorder{}), deploy.WithWaiver(deploy.FridayDeploy, "synctest starts on a Saturday"),
		deploy.WithSchedule(monitor.Schedule{Windows: []monitor.Window{{Name: "intensive", Duration: 30 * time.Minute, Interval: time.Minute}}}))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

var stRel = deploy.Release{Service: "shop", Version: "v2", PreviousVersion: "v1"}

func TestBlueGreenSwitchesAndKeepsTheOldSide(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLB()
		rep, err := stRunner(t, l.bg(nil), deploytest.Healthy()).Run(t.Context(), stRel)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Status != deploy.Succeeded || l.live != "green" || l.deploy["blue"] != "v1" || l.deploy["green"] != "v2" {
			t.Errorf("status %s, live %s, sides %v", rep.Status, l.live, l.deploy)
		}
		if diff := cmp.Diff([]string{"deploy green", "test green", "switch green"}, l.calls); diff != "" {
			t.Errorf("calls (-want +got):\n%s", diff)
		}
	})
}

func TestBlueGreenRollsBackToTheOldSide(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLB()
		rep, err := stRunner(t, l.bg(nil), deploytest.Regression(1, deploytest.Health{ErrorRate: 0.2})).Run(t.Context(), stRel)
		if !errors.Is(err, deploy.ErrUnhealthy) || rep.Status != deploy.RolledBack {
			t.Fatalf("err %v", err)
		}
		if l.live != "blue" {
			t.Errorf("live side %s after rollback, want blue", l.live)
		}
		if diff := cmp.Diff([]string{"deploy green", "test green", "switch green", "switch blue"}, l.calls); diff != "" {
			t.Errorf("calls (-want +got):\n%s", diff)
		}
		// The plan made again for the rollback, with Idle now answering
		// blue, still names the step that was applied.
		if rep.Trigger.Step != "switch-green" {
			t.Errorf("trigger at step %q, want switch-green", rep.Trigger.Step)
		}
	})
}

// TestBlueGreenResumeAfterSwitch: a runner that stops during the bake after
// the switch leaves a release that another runner resumes without deploying
// to or switching to the old side, although Idle now answers blue.
func TestBlueGreenResumeAfterSwitch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLB()
		s := l.bg(nil)
		s.Bake = 10 * time.Minute
		store := state.NewMemory()
		open := func() *deploy.Runner {
			r, err := deploy.NewRunner(s, deploy.WithStore(store), deploy.WithMonitors(deploytest.Healthy()),
				deploy.WithNotifiers(&deploytest.Recorder{}), deploy.WithWaiver(deploy.FridayDeploy, "synctest starts on a Saturday"),
				deploy.WithSchedule(monitor.Schedule{}))
			if err != nil {
				t.Fatal(err)
			}
			return r
		}
		r1 := open()
		id, err := r1.Start(t.Context(), stRel)
		if err != nil {
			t.Fatal(err)
		}
		for l.live != "green" {
			next, _, err := r1.Reconcile(t.Context(), id)
			if err != nil {
				t.Fatal(err)
			}
			time.Sleep(time.Until(next))
		}
		time.Sleep(5 * time.Minute) // r1 is gone; its lease expires
		rep, err := open().Resume(t.Context(), id)
		if err != nil || rep.Status != deploy.Succeeded {
			t.Fatalf("Resume: status %s, err %v", rep.Status, err)
		}
		if diff := cmp.Diff([]string{"deploy green", "test green", "switch green"}, l.calls); diff != "" {
			t.Errorf("calls (-want +got):\n%s", diff)
		}
		if l.live != "green" {
			t.Errorf("live side %s, want green", l.live)
		}
	})
}

func TestBlueGreenFailedTestNeverSwitches(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLB()
		rep, err := stRunner(t, l.bg(errors.New("smoke test: GET /cart 500")), deploytest.Healthy()).Run(t.Context(), stRel)
		if err == nil || rep.Status != deploy.RolledBack {
			t.Fatalf("err %v status %s", err, rep.Status)
		}
		if l.live != "blue" || !strings.Contains(rep.Trigger.Reason, "smoke test: GET /cart 500") {
			t.Errorf("live %s, trigger %q", l.live, rep.Trigger.Reason)
		}
		for _, c := range l.calls {
			if strings.HasPrefix(c, "switch") {
				t.Errorf("switched traffic after a failed test: %v", l.calls)
			}
		}
	})
}

func TestDirect(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		version := "v1"
		s := &strategy.Direct{
			Deploy: func(ctx context.Context, d *deploy.Deployment) error { version = d.Release.Version; return nil },
			Revert: func(ctx context.Context, d *deploy.Deployment) error { version = d.Release.PreviousVersion; return nil },
			Bake:   15 * time.Minute,
		}
		rep, err := stRunner(t, s, deploytest.Regression(1, deploytest.Health{ErrorRate: 0.3})).Run(t.Context(), stRel)
		if !errors.Is(err, deploy.ErrUnhealthy) || version != "v1" {
			t.Fatalf("err %v, version %s", err, version)
		}
		if rep.Trigger.Step != "deploy" {
			t.Errorf("trigger at step %q", rep.Trigger.Step)
		}
	})
}

func TestConformance(t *testing.T) {
	l := newLB()
	d := &deploy.Deployment{ID: "x", Release: stRel, Stage: deploy.Stage{Name: "production"}}
	if err := deploytest.TestStrategy(t.Context(), l.bg(nil), d); err != nil {
		t.Errorf("BlueGreen: %v", err)
	}
	direct := &strategy.Direct{
		Deploy: func(context.Context, *deploy.Deployment) error { return nil },
		Revert: func(context.Context, *deploy.Deployment) error { return nil },
	}
	if err := deploytest.TestStrategy(t.Context(), direct, nil); err != nil {
		t.Errorf("Direct: %v", err)
	}
	// A strategy that breaks the contracts is caught.
	n := 0
	broken := &flaky{plan: func() []deploy.Step {
		n++
		apply := func(context.Context, *deploy.Deployment) error { return nil }
		return []deploy.Step{{Name: "a", Exposure: 0.5, Apply: apply}, {Name: "b", Exposure: 0.25 * float64(n), Apply: apply}}
	}}
	err := deploytest.TestStrategy(t.Context(), broken, nil)
	for _, want := range []string{"Plan is not deterministic at step 1", `step 1 ("b"): Exposure 0.25 is lower than the step before (0.5)`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("TestStrategy = %v, want it to say %q", err, want)
		}
	}
}

type flaky struct{ plan func() []deploy.Step }

func (f *flaky) Plan(_ context.Context, d *deploy.Deployment) ([]deploy.Step, error) {
	return f.plan(), nil
}
func (f *flaky) Rollback(context.Context, *deploy.Deployment) error { return nil }

func TestValidate(t *testing.T) {
	for _, c := range []struct {
		s    interface{ Validate() error }
		want string
	}{
		{&strategy.Direct{}, "Direct.Deploy is nil"},
		{&strategy.Direct{Deploy: func(context.Context, *deploy.Deployment) error { return nil }, Bake: -time.Second}, "Direct.Bake -1s is negative"},
		{&strategy.BlueGreen{}, "BlueGreen.Idle is nil"},
	} {
		if err := c.s.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Validate() = %v, want %q", err, c.want)
		}
	}
}

// stagedLB is a blue-green load balancer per stage.
type stagedLB struct {
	mu      sync.Mutex
	serving map[string]string // stage -> live side
	version map[string]string // stage/side -> version
	calls   []string
}

func (l *stagedLB) bg() *strategy.BlueGreen {
	return &strategy.BlueGreen{
		Idle: func(ctx context.Context, d *deploy.Deployment) (string, error) {
			l.mu.Lock()
			defer l.mu.Unlock()
			if l.serving[d.Stage.Name] == "blue" {
				return "green", nil
			}
			return "blue", nil
		},
		Deploy: func(ctx context.Context, d *deploy.Deployment, side string) error {
			l.mu.Lock()
			defer l.mu.Unlock()
			if l.serving[d.Stage.Name] == side {
				return fmt.Errorf("deploying onto the live side %s of %s", side, d.Stage.Name)
			}
			l.calls = append(l.calls, "deploy "+d.Stage.Name+"/"+side)
			l.version[d.Stage.Name+"/"+side] = d.Release.Version
			return nil
		},
		Switch: func(ctx context.Context, d *deploy.Deployment, side string) error {
			l.mu.Lock()
			defer l.mu.Unlock()
			l.calls = append(l.calls, "switch "+d.Stage.Name+"/"+side)
			l.serving[d.Stage.Name] = side
			return nil
		},
		Bake: 10 * time.Minute,
	}
}

// TestBlueGreenStagesByReconcile: staging then production, driven one
// Reconcile at a time as a cron job would. Each stage deploys to its own
// idle side and switches to it; production does not inherit staging's
// exposure and deploy onto its live side.
func TestBlueGreenStagesByReconcile(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := &stagedLB{serving: map[string]string{"staging": "blue", "production": "blue"}, version: map[string]string{}}
		r, err := deploy.NewRunner(l.bg(), deploy.WithStore(state.NewMemory()),
			deploy.WithStages(deploy.Stage{Name: "staging", Environment: "staging"}, deploy.Stage{Name: "production"}),
			deploy.WithMonitors(deploytest.Healthy()), deploy.WithNotifiers(&deploytest.Recorder{}),
			deploy.WithWaiver(deploy.FridayDeploy, "synctest starts on a Saturday"), deploy.WithSchedule(monitor.Schedule{}))
		if err != nil {
			t.Fatal(err)
		}
		id, err := r.Start(t.Context(), stRel)
		if err != nil {
			t.Fatal(err)
		}
		var rep *deploy.Report
		for rep == nil || !rep.Status.Final() {
			var next time.Time
			next, rep, err = r.Reconcile(t.Context(), id)
			if err != nil && !errors.Is(err, deploy.ErrUnhealthy) {
				t.Fatal(err)
			}
			time.Sleep(time.Until(next))
		}
		if rep.Status != deploy.Succeeded {
			t.Fatalf("status %s: %s", rep.Status, rep.Error)
		}
		want := []string{"deploy staging/green", "switch staging/green", "deploy production/green", "switch production/green"}
		if diff := cmp.Diff(want, l.calls); diff != "" {
			t.Errorf("calls (-want +got):\n%s", diff)
		}
	})
}
