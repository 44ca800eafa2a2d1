package deploy_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/deploykit/deploy"
	"github.com/deploykit/deploy/deploytest"
	"github.com/deploykit/deploy/monitor"
	"github.com/deploykit/deploy/state"
)

// a person's Rollback while a LIVE runner is inside the strategy's
// rollback runs a second strategy rollback at the same time.
func TestManualRollbackDuringALiveRollbackWaitsForIt(t *testing.T) {
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

// Rollback while the first step's Apply is in flight: the record says
// nothing is deployed, so the release is "aborted" with no rollback, and the
// Apply then completes: the new version serves users with no rollback.
func TestManualRollbackDuringTheFirstApplyRollsItBack(t *testing.T) {
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

// The SAME Runner (one process: Run in a goroutine, Rollback from an HTTP
// handler) skips the wait because rec.Holder == r.holder.
func TestManualRollbackFromTheSameRunnerWaitsForItsApply(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := state.NewMemory()
		s := &slowFirstApply{Strategy: ramp(), entered: make(chan struct{})}
		r := openRunner(t, s, store, deploy.WithMonitors(deploytest.Healthy()))
		id, err := r.Start(t.Context(), rel)
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { _, err := r.Resume(t.Context(), id); done <- err }()
		<-s.entered
		rep, err := r.Rollback(t.Context(), id, "stop it")
		t.Logf("Rollback: status %s err %v; run: %v", rep.Status, err, <-done)
		if s.overlap.Load() {
			t.Errorf("strategy Rollback ran while the same runner's Apply was in flight")
		}
	})
}

// A crash after the pre-Apply save leaves StepStart set, Applied false.
// The resumed holder then waits for approval (watching users, exposure > 0)
// and extends its lease forever: a manual Rollback never takes over.
func TestManualRollbackTakesOverAnApprovalWaitAfterACrash(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := state.NewMemory()
		s := &deploytest.Strategy{Steps: deploytest.Ramp(10*time.Minute, 0.05, 0.25, 1)}
		s.Steps[1].Approval = true
		var approvals atomic.Int32
		approval := deploy.GateFunc(func(context.Context, *deploy.Deployment) error {
			if approvals.Add(1) == 1 {
				return nil // approved once...
			}
			return deploy.RetryAt(time.Now().Add(time.Hour), "approval expired; re-approve") // ...then asks again
		})
		crash := &crashSecond{Strategy: s}
		open := func() *deploy.Runner {
			return openRunner(t, crash, store, deploy.WithMonitors(deploytest.Healthy()), deploy.WithApproval(approval))
		}
		id, err := open().Start(t.Context(), rel)
		if err != nil {
			t.Fatal(err)
		}
		// Process A crashes inside step 2's Apply (Goexit ~ kill -9 after the save).
		crashed := make(chan struct{})
		go func() { defer close(crashed); open().Resume(t.Context(), id) }()
		<-crashed
		rec, _ := store.Load(t.Context(), id)
		t.Logf("after crash: phase %s step %d applied %v stepStart %v lease %v", rec.Phase, rec.Step, rec.Applied, rec.StepStart, rec.LeaseUntil.Sub(time.Now()))
		time.Sleep(20 * time.Minute) // lease over
		ctx, cancel := context.WithCancel(t.Context())
		go func() { open().Resume(ctx, id) }() // process B resumes, waits for approval
		time.Sleep(time.Minute)
		rctx, rcancel := context.WithTimeout(t.Context(), 6*time.Hour)
		defer rcancel()
		_, err = open().Rollback(rctx, id, "on-call: roll back now")
		t.Logf("Rollback: %v", err)
		if errors.Is(err, deploy.ErrLocked) {
			t.Errorf("manual Rollback waited 6 h behind a holder that is only waiting for approval: %v", err)
		}
		cancel()
		time.Sleep(time.Hour)
	})
}

// Single-stage release in the verify phase before the post-deployment checks
// pass (they wait for data): exposure is 100 %, but a manual Rollback
// "aborts" without rolling back.
func TestManualRollbackBeforeThePostDeploymentChecksRollsBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := state.NewMemory()
		s := &deploytest.Strategy{Steps: deploytest.Ramp(time.Minute, 1)}
		m := deploy.MonitorFunc(func(ctx context.Context, tg monitor.Target) (monitor.Observation, error) {
			if tg.Phase == "verify" {
				return monitor.Observation{At: time.Now(), Metrics: map[string]monitor.Metric{monitor.ErrorRate: monitor.NoData(), monitor.LatencyP95: monitor.NoData()}}, nil
			}
			return deploytest.Health{ErrorRate: 0.001, P95: 100 * time.Millisecond}.Observation(), nil
		})
		p := deploy.DefaultPolicy()
		p.InconclusiveLimit = 100
		r := openRunner(t, s, store, deploy.WithMonitors(m), deploy.WithRollbackPolicy(p))
		id, _ := r.Start(t.Context(), rel)
		ctx, cancel := context.WithCancel(t.Context())
		go r.Resume(ctx, id)
		for {
			time.Sleep(30 * time.Second)
			if rec, _ := store.Load(t.Context(), id); rec.Phase == "verify" {
				t.Logf("verify: stage %d step %d applied %v exposure %v", rec.Stage, rec.Step, rec.Applied, rec.Exposure)
				break
			}
		}
		rep, err := openRunner(t, s, store, deploy.WithMonitors(m), deploy.WithRollbackPolicy(p)).Rollback(t.Context(), id, "roll it back")
		t.Logf("Rollback: %s %v; strategy rollbacks %d exposure %v", rep.Status, err, s.Rollbacks(), s.Exposure())
		if s.Exposure() > 0 && s.Rollbacks() == 0 {
			t.Errorf("release ended %s with v2 at %v exposure and no strategy rollback", rep.Status, s.Exposure())
		}
		cancel()
		time.Sleep(time.Hour)
	})
}

// BlueGreen-like: deploy (bake 0), test (bake 0), switch (100 %). A person
// asks for a rollback during the first Apply: the runner goes on to the
// switch before the Rollback gets in.
func TestManualRollbackIsNotStarvedByZeroBakeSteps(t *testing.T) {
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

// A Rollback whose ctx ends while the holder is applying reports ErrLocked
// ("in the middle of an action"), yet the request it left is carried out.
func TestManualRollbackWhoseWaitEndsIsStillCarriedOut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := state.NewMemory()
		s := &slowSteps{Strategy: &deploytest.Strategy{Steps: []deploytest.StepSpec{
			{Name: "a", Exposure: 0.1, Bake: time.Minute},
			{Name: "b", Exposure: 1, Bake: 10 * time.Minute},
		}}, entered: make(chan struct{})}
		r := openRunner(t, s, store, deploy.WithMonitors(deploytest.Healthy()))
		id, err := r.Start(t.Context(), rel)
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan *deploy.Report)
		go func() { rep, _ := r.Resume(t.Context(), id); done <- rep }()
		<-s.entered
		rb := openRunner(t, s, store, deploy.WithMonitors(deploytest.Healthy()))
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		defer cancel()
		_, err = rb.Rollback(ctx, id, "stop it")
		t.Logf("Rollback returned: %v", err)
		rep := <-done
		t.Logf("final: %s", rep.Status)
		// Rollback stopped waiting before the holder acted: it must say the
		// rollback was requested and will happen, not that it was refused.
		if rep.Status != deploy.RolledBack || err == nil || errors.Is(err, deploy.ErrLocked) || !strings.Contains(err.Error(), "requested") {
			t.Errorf("Rollback returned %v and the release ended %s; want it rolled back and an error saying the rollback was requested", err, rep.Status)
		}
	})
}

// Two people ask for a rollback during the same Apply: the second one
// gets an error although the release ends rolled back as both asked.
func TestSecondManualRollbackCountsAsRequested(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := state.NewMemory()
		s := &slowSteps{Strategy: &deploytest.Strategy{Steps: []deploytest.StepSpec{
			{Name: "a", Exposure: 0.1, Bake: 0},
			{Name: "b", Exposure: 1, Bake: 10 * time.Minute},
		}}, entered: make(chan struct{})}
		r := openRunner(t, s, store, deploy.WithMonitors(deploytest.Healthy()))
		id, err := r.Start(t.Context(), rel)
		if err != nil {
			t.Fatal(err)
		}
		go r.Resume(t.Context(), id)
		<-s.entered
		errs := make(chan error, 2)
		for range 2 {
			rb := openRunner(t, s, store, deploy.WithMonitors(deploytest.Healthy()))
			go func() { _, err := rb.Rollback(t.Context(), id, "stop it"); errs <- err }()
			time.Sleep(100 * time.Millisecond)
		}
		for range 2 {
			if err := <-errs; err != nil {
				t.Errorf("Rollback: %v", err)
			}
		}
		rec, _ := store.Load(t.Context(), id)
		t.Logf("status %s", rec.Status)
	})
}

func TestManualRollback(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, ramp(), deploytest.Healthy())
		id, err := h.runner.Start(t.Context(), rel)
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() {
			_, err := h.runner.Resume(t.Context(), id)
			done <- err
		}()
		time.Sleep(25 * time.Minute)
		other, _ := deploy.NewRunner(h.strategy, deploy.WithStore(h.store), deploy.WithMonitors(deploytest.Healthy()), deploy.WithNotifiers(&deploytest.Recorder{}))
		rep, err := other.Rollback(t.Context(), id, "product asked to hold the launch")
		if err != nil || rep == nil || rep.Status != deploy.RolledBack {
			t.Fatalf("Rollback: report %v, err %v; want rolled back and no error", rep, err)
		}
		// The first runner either finds the lease taken or the release over.
		if err := <-done; !errors.Is(err, deploy.ErrLocked) && !errors.Is(err, deploy.ErrAborted) {
			t.Errorf("the first runner: err = %v, want ErrLocked or the release's ErrAborted", err)
		}
		if h.strategy.Rollbacks() != 1 || h.strategy.Exposure() != 0 {
			t.Errorf("rollbacks %d exposure %v", h.strategy.Rollbacks(), h.strategy.Exposure())
		}
		if rep.Trigger.Kind != "manual" || rep.Trigger.Reason != "product asked to hold the launch" {
			t.Errorf("trigger %+v", rep.Trigger)
		}
	})
}

// The runner that was baking when a person rolled the release back from
// another runner stops with an error that says so: it matches ErrAborted
// (someone stopped it on purpose), not only ErrLocked (retry later).
func TestRunnerDisplacedByAManualRollbackSaysAborted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := state.NewMemory()
		s := ramp()
		first := openRunner(t, s, store, deploy.WithMonitors(deploytest.Healthy()), deploy.WithHolder("first"))
		id, err := first.Start(t.Context(), rel)
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { _, err := first.Resume(t.Context(), id); done <- err }()
		time.Sleep(25 * time.Minute) // baking 25 %
		rep, err := openRunner(t, s, store, deploy.WithMonitors(deploytest.Healthy()), deploy.WithHolder("person")).Rollback(t.Context(), id, "on-call: checkout errors")
		if err != nil || rep.Status != deploy.RolledBack {
			t.Fatalf("Rollback: status %s, err %v", rep.Status, err)
		}
		err = <-done
		if !errors.Is(err, deploy.ErrAborted) || !errors.Is(err, deploy.ErrLocked) || !strings.Contains(err.Error(), "on-call: checkout errors") {
			t.Errorf("the displaced runner ended with %v, want ErrAborted (and ErrLocked) with the person's reason", err)
		}
	})
}
