// Regression tests from the third code review of 2026-11-26.

package deploy_test

import (
	"context"
	"errors"
	"runtime"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/deploykit/deploy"
	"github.com/deploykit/deploy/deploytest"
	"github.com/deploykit/deploy/monitor"
	"github.com/deploykit/deploy/state"
)

// The SAME Runner (one process: Run in a goroutine, Rollback from an HTTP
// handler) skips the wait because rec.Holder == r.holder.
func TestReview3SameRunnerRollbackDuringApply(t *testing.T) {
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
func TestReview3RollbackWaitsForeverBehindApprovalWait(t *testing.T) {
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

type crashSecond struct{ *deploytest.Strategy }

func (s *crashSecond) Plan(ctx context.Context, d *deploy.Deployment) ([]deploy.Step, error) {
	steps, err := s.Strategy.Plan(ctx, d)
	if err != nil {
		return nil, err
	}
	inner := steps[1].Apply
	first := true
	steps[1].Apply = func(ctx context.Context, d *deploy.Deployment) error {
		if first {
			first = false
			runtime.Goexit()
		}
		return inner(ctx, d)
	}
	return steps, nil
}

// Single-stage release in the verify phase before the post-deployment checks
// pass (they wait for data): exposure is 100 %, but a manual Rollback
// "aborts" without rolling back.
func TestReview3RollbackInVerifyBeforeChecks(t *testing.T) {
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
