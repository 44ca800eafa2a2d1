// Regression tests from the code reviews of 2026-11-26: each reproduced a
// defect before its fix.

package deploy_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/deploykit/deploy"
	"github.com/deploykit/deploy/deploytest"
	"github.com/deploykit/deploy/monitor"
	"github.com/deploykit/deploy/rollback"
	"github.com/deploykit/deploy/state"
	"github.com/deploykit/deploy/strategy"
)

// R1: a person's Rollback while a LIVE runner is inside the strategy's
// rollback runs a second strategy rollback at the same time.
func TestReviewManualRollbackDuringLiveRollback(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := state.NewMemory()
		s := &countingSlowRollback{Strategy: ramp()}
		mon := deploy.WithMonitors(deploytest.Regression(0.25, deploytest.Health{ErrorRate: 0.3}))
		r1 := openRunner(t, s, store, mon)
		id, err := r1.Start(t.Context(), rel)
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { _, err := r1.Resume(t.Context(), id); done <- err }()
		for {
			time.Sleep(10 * time.Second)
			if rec, _ := store.Load(t.Context(), id); rec.Phase == "rollback" {
				break
			}
		}
		time.Sleep(30 * time.Second) // r1 is alive, 30 s into a 4-minute strategy rollback
		_, err = openRunner(t, s, store, mon).Rollback(t.Context(), id, "on-call: roll it back")
		t.Logf("manual Rollback: %v", err)
		t.Logf("r1: %v", <-done)
		if s.most.Load() != 1 {
			t.Errorf("%d strategy rollbacks ran at once (%d in all); want 1", s.most.Load(), s.Rollbacks())
		}
	})
}

// slowFirstApply: the first step's Apply takes a minute.
type slowFirstApply struct {
	*deploytest.Strategy
	entered chan struct{}
	once    sync.Once
	applied atomic.Bool
	// applying is set while the first Apply runs; overlap records a
	// strategy rollback that ran meanwhile.
	applying, overlap atomic.Bool
}

func (s *slowFirstApply) Plan(ctx context.Context, d *deploy.Deployment) ([]deploy.Step, error) {
	steps, err := s.Strategy.Plan(ctx, d)
	if err != nil {
		return nil, err
	}
	inner := steps[0].Apply
	steps[0].Apply = func(ctx context.Context, d *deploy.Deployment) error {
		s.applying.Store(true)
		defer s.applying.Store(false)
		s.once.Do(func() { close(s.entered) })
		time.Sleep(time.Minute)
		err := inner(ctx, d)
		s.applied.Store(err == nil)
		return err
	}
	return steps, nil
}

func (s *slowFirstApply) Rollback(ctx context.Context, d *deploy.Deployment) error {
	if s.applying.Load() {
		s.overlap.Store(true)
	}
	return s.Strategy.Rollback(ctx, d)
}

// R2: Rollback while the first step's Apply is in flight: the record says
// nothing is deployed, so the release is "aborted" with no rollback, and the
// Apply then completes: the new version serves users with no rollback.
func TestReviewManualRollbackDuringFirstApply(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := state.NewMemory()
		s := &slowFirstApply{Strategy: ramp(), entered: make(chan struct{})}
		mon := deploy.WithMonitors(deploytest.Healthy())
		r1 := openRunner(t, s, store, mon)
		id, err := r1.Start(t.Context(), rel)
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { _, err := r1.Resume(t.Context(), id); done <- err }()
		<-s.entered
		rep, err := openRunner(t, s, store, mon).Rollback(t.Context(), id, "stop it")
		t.Logf("Rollback: status %s err %v", rep.Status, err)
		t.Logf("r1: %v", <-done)
		if s.applied.Load() && s.Rollbacks() == 0 {
			t.Errorf("step applied (exposure %v) but the release ended %s with %d strategy rollbacks", s.Exposure(), rep.Status, s.Rollbacks())
		}
	})
}

// R3: a cron job that calls Reconcile every minute (not exactly at next)
// verifies a rollback before the settle time has passed.
func TestReviewCronVerifiesRollbackBeforeSettle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := state.NewMemory()
		s := ramp()
		var mu sync.Mutex
		var rbAt []time.Time
		m := deploy.MonitorFunc(func(ctx context.Context, tg monitor.Target) (monitor.Observation, error) {
			if tg.Phase == "rollback" {
				mu.Lock()
				rbAt = append(rbAt, time.Now())
				mu.Unlock()
				return deploytest.Health{ErrorRate: 0.001, P95: 100 * time.Millisecond}.Observation(), nil
			}
			if tg.Phase != "baseline" && tg.Exposure >= 0.05 {
				return deploytest.Health{ErrorRate: 0.3}.Observation(), nil
			}
			return deploytest.Health{ErrorRate: 0.001, P95: 100 * time.Millisecond}.Observation(), nil
		})
		open := func() *deploy.Runner {
			return openRunner(t, s, store, deploy.WithMonitors(m), deploy.WithRollbackSettle(5*time.Minute))
		}
		daemon := open() // one long-lived process reconciling every minute
		id, _ := daemon.Start(t.Context(), rel)
		var rollbackDone time.Time
		for range 200 {
			_, rep, _ := daemon.Reconcile(t.Context(), id)
			if rep.Status.Final() {
				break
			}
			if rollbackDone.IsZero() && len(rep.RollbackSteps) > 0 {
				rollbackDone = time.Now()
			}
			time.Sleep(time.Minute) // cron: * * * * *
		}
		mu.Lock()
		defer mu.Unlock()
		if len(rbAt) == 0 {
			t.Fatal("no rollback observation")
		}
		if d := rbAt[0].Sub(rollbackDone); d < 5*time.Minute {
			t.Errorf("rollback verified %v after it finished; settle is 5m", d)
		}
	})
}

// retryLater always fails with a Retry-After.
type retryLater struct{}

func (retryLater) Error() string             { return "503 busy" }
func (retryLater) Temporary() bool           { return true }
func (retryLater) RetryAfter() time.Duration { return 10 * time.Minute }

// R4: after the end, with a notifier asking to retry in 10 minutes and
// several messages queued behind the failed one, Reconcile says next = now
// over and over (a hot loop writing the store).
func TestReviewReconcileNextWithBlockedOutbox(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := state.NewMemory()
		s := &deploytest.Strategy{Steps: deploytest.Ramp(time.Minute, 1)}
		n := deploy.NotifierFunc(func(ctx context.Context, e deploy.Event) error { return retryLater{} })
		r, err := deploy.NewRunner(s, deploy.WithStore(store), deploy.WithNotifiers(n), deploy.WithMonitors(deploytest.Healthy()),
			deploy.WithWaiver(deploy.FridayDeploy, "test clock"), deploy.WithSchedule(monitor.Schedule{}))
		if err != nil {
			t.Fatal(err)
		}
		id, _ := r.Start(t.Context(), rel)
		calls, zeroWaits := 0, 0
		for calls < 1000 {
			next, rep, _ := r.Reconcile(t.Context(), id)
			calls++
			if rep.Status.Final() && rep.Pending == 0 {
				break
			}
			if rep.Status.Final() && !next.After(time.Now()) {
				zeroWaits++
			}
			time.Sleep(time.Until(next))
			if zeroWaits > 50 {
				break
			}
		}
		if zeroWaits > 5 {
			t.Errorf("%d Reconcile calls said next = now while the only notifier waits for its Retry-After", zeroWaits)
		}
	})
}

// R5: with FailureLimit 1, a rollback after which the error rate is still
// 30 % is reported "verified: healthy" because latency passed.
func TestReviewRollbackVerifiedDespiteFailure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := deploy.DefaultPolicy()
		p.FailureLimit = 1
		m := deploy.MonitorFunc(func(ctx context.Context, tg monitor.Target) (monitor.Observation, error) {
			switch {
			case tg.Phase == "rollback":
				return deploytest.Health{ErrorRate: 0.3, P95: 100 * time.Millisecond}.Observation(), nil
			case tg.Phase != "baseline" && tg.Exposure >= 0.25:
				return deploytest.Health{ErrorRate: 0.3, P95: 100 * time.Millisecond}.Observation(), nil
			}
			return deploytest.Health{ErrorRate: 0.001, P95: 100 * time.Millisecond}.Observation(), nil
		})
		h := newHarness(t, ramp(), nil, deploy.WithMonitors(m), deploy.WithRollbackPolicy(p))
		rep, err := h.runner.Run(t.Context(), rel)
		last := rep.RollbackSteps[len(rep.RollbackSteps)-1]
		t.Logf("status %s err %v last %+v", rep.Status, err, last)
		if strings.HasPrefix(last.Detail, "healthy") {
			t.Errorf("rollback 'verified healthy' while the error rate is still 30 %%: %s", last.Detail)
		}
	})
}

// R6: BlueGreen in two stages; the process crashes while stage 1 bakes
// after its switch; Resume caches the plan of stage 2 computed with
// stage 1's exposure (1) and deploys onto production's LIVE side.
func TestReviewBlueGreenResumeDeploysOntoLiveSide(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		live := map[string]string{"staging": "blue", "production": "blue"}
		var deployedTo []string
		bg := &strategy.BlueGreen{
			Idle: func(ctx context.Context, d *deploy.Deployment) (string, error) {
				mu.Lock()
				defer mu.Unlock()
				if live[d.Stage.Environment] == "blue" {
					return "green", nil
				}
				return "blue", nil
			},
			Deploy: func(ctx context.Context, d *deploy.Deployment, side string) error {
				mu.Lock()
				defer mu.Unlock()
				deployedTo = append(deployedTo, d.Stage.Environment+":"+side)
				return nil
			},
			Switch: func(ctx context.Context, d *deploy.Deployment, side string) error {
				mu.Lock()
				defer mu.Unlock()
				live[d.Stage.Environment] = side
				return nil
			},
			Bake: 10 * time.Minute,
		}
		store := state.NewMemory()
		open := func() *deploy.Runner {
			return openRunner(t, bg, store, deploy.WithMonitors(deploytest.Healthy()),
				deploy.WithStages(deploy.Stage{Name: "staging", Environment: "staging"}, deploy.Stage{Name: "production", Environment: "production"}))
		}
		id, err := open().Start(t.Context(), rel)
		if err != nil {
			t.Fatal(err)
		}
		// Drive with Reconcile until staging has switched and bakes.
		for {
			next, rep, err := open().Reconcile(t.Context(), id)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Exposure == 1 {
				break
			}
			time.Sleep(time.Until(next))
		}
		time.Sleep(3 * time.Minute) // the cron process "crashed"; lease is over
		rep, err := open().Resume(t.Context(), id)
		t.Logf("status %s err %v deployed %v live %v", rep.Status, err, deployedTo, live)
		mu.Lock()
		defer mu.Unlock()
		for _, d := range deployedTo {
			if d == "production:blue" {
				t.Errorf("deployed onto production's live side (blue): %v", deployedTo)
			}
		}
	})
}

// R7: a Failed release (no rollback path) at the second stage reports
// "Nothing: failed before it reached users" although staging serves it.
func TestReviewFailedReportAfterStageReset(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &deploytest.Strategy{Steps: deploytest.Ramp(time.Minute, 1), NoRollback: true}
		calls := 0
		s2 := &failSecondStage{Strategy: s, calls: &calls}
		r := openRunner(t, s2, state.NewMemory(), deploy.WithMonitors(deploytest.Healthy()),
			deploy.WithWaiver(deploy.NoRollbackPlan, "test"),
			deploy.WithStages(deploy.Stage{Name: "staging", Environment: "staging"}, deploy.Stage{Name: "production", Environment: "production"}))
		rep, err := r.Run(t.Context(), rel)
		md := rep.Markdown()
		t.Logf("status %s err %v", rep.Status, err)
		if strings.Contains(md, "failed before it reached users") {
			t.Errorf("report says nothing reached users, but staging runs v2:\n%s", md[:min(len(md), 400)])
		}
	})
}

type failSecondStage struct {
	*deploytest.Strategy
	calls *int
}

func (s *failSecondStage) Plan(ctx context.Context, d *deploy.Deployment) ([]deploy.Step, error) {
	steps, err := s.Strategy.Plan(ctx, d)
	if err != nil {
		return nil, err
	}
	if d.Stage.Name == "production" {
		steps[0].Apply = func(ctx context.Context, d *deploy.Deployment) error {
			return errors.New("kubectl: connection refused")
		}
	}
	return steps, nil
}

var _ = rollback.Pass
