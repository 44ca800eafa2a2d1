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

// panicAt is a test strategy whose step named at panics in Apply.
type panicAt struct {
	*deploytest.Strategy
	at string
}

func (s *panicAt) Plan(ctx context.Context, d *deploy.Deployment) ([]deploy.Step, error) {
	steps, err := s.Strategy.Plan(ctx, d)
	for i := range steps {
		if steps[i].Name == s.at {
			inner := steps[i].Apply
			steps[i].Apply = func(ctx context.Context, d *deploy.Deployment) error {
				_ = inner(ctx, d)
				panic("nil map in the load balancer client")
			}
		}
	}
	return steps, err
}

func TestApplyPanicRollsBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		inner := ramp()
		s := &panicAt{Strategy: inner, at: "25%"}
		store := state.NewMemory()
		r := openRunner(t, s, store, deploy.WithMonitors(deploytest.Healthy()))
		rep, err := r.Run(t.Context(), rel)
		if !errors.Is(err, deploy.ErrStepFailed) || rep.Status != deploy.RolledBack {
			t.Fatalf("err %v, status %s; want the panic to roll back with ErrStepFailed", err, rep.Status)
		}
		var pe *deploy.PanicError
		if !errors.As(err, &pe) || pe.Value != "nil map in the load balancer client" || len(pe.Stack) == 0 {
			t.Errorf("errors.As(err, *PanicError) = %v, %+v; want the panic with its stack", errors.As(err, &pe), pe)
		}
		if inner.Rollbacks() != 1 || inner.Exposure() != 0 {
			t.Errorf("strategy rollbacks %d, exposure %v; want the half-applied step rolled back", inner.Rollbacks(), inner.Exposure())
		}
		var stack bool
		for _, e := range rep.Timeline {
			stack = stack || e.Outcome == state.OutcomeFailed && strings.Contains(e.Detail, "panic: nil map in the load balancer client") && strings.Contains(e.Detail, "goroutine")
		}
		if !stack {
			t.Errorf("the timeline has no entry with the panic and its stack: %+v", rep.Timeline)
		}
		// The lease is not left held: a Rollback from the same runner
		// answers at once that the release is over.
		if _, err := r.Rollback(t.Context(), rep.ID, "again"); !errors.Is(err, deploy.ErrInvalid) {
			t.Errorf("Rollback after the panic: %v, want ErrInvalid (already rolled back)", err)
		}
	})
}

func TestMonitorPanicCountsAsSourceError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := deploy.MonitorFunc(func(ctx context.Context, tg monitor.Target) (monitor.Observation, error) {
			if tg.Phase == "bake" {
				var o *monitor.Observation
				return *o, nil // a nil dereference in a monitor
			}
			return deploytest.Health{ErrorRate: 0.001, P95: 100 * time.Millisecond}.Observation(), nil
		})
		s := ramp()
		r := openRunner(t, s, state.NewMemory(), deploy.WithMonitors(m))
		rep, err := r.Run(t.Context(), rel)
		if !errors.Is(err, deploy.ErrSourceFailed) || rep.Status != deploy.RolledBack {
			t.Fatalf("err %v, status %s; want the panicking monitor to count as a failing source", err, rep.Status)
		}
		if !strings.Contains(rep.Trigger.Reason, "panicked") {
			t.Errorf("trigger %q does not say the monitor panicked", rep.Trigger.Reason)
		}
		var stack bool
		for _, e := range rep.Timeline {
			stack = stack || e.Kind == state.EntryObservation && strings.Contains(e.Detail, "goroutine")
		}
		if !stack {
			t.Error("the timeline does not keep the monitor's panic stack")
		}
	})
}

func TestHangingMonitorIsBoundedAndRollsBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// A monitor that blocks until its context ends: without a bound
		// the release stays at 1 % forever.
		m := deploy.MonitorFunc(func(ctx context.Context, tg monitor.Target) (monitor.Observation, error) {
			if tg.Phase == "bake" {
				<-ctx.Done()
				return monitor.Observation{}, ctx.Err()
			}
			return deploytest.Health{ErrorRate: 0.001, P95: 100 * time.Millisecond}.Observation(), nil
		})
		start := time.Now()
		r := openRunner(t, ramp(), state.NewMemory(), deploy.WithMonitors(m), deploy.WithTimeouts(deploy.Timeouts{Observe: 20 * time.Second}))
		rep, err := r.Run(t.Context(), rel)
		if !errors.Is(err, deploy.ErrSourceFailed) || rep.Status != deploy.RolledBack {
			t.Fatalf("err %v, status %s; want a rollback for a hanging source", err, rep.Status)
		}
		if took := time.Since(start); took > 10*time.Minute {
			t.Errorf("the hanging monitor held the release for %v", took)
		}
		if !strings.Contains(rep.Trigger.Reason, "did not return within 20s") {
			t.Errorf("trigger %q does not say the monitor timed out", rep.Trigger.Reason)
		}
	})
}

func TestMonitorIgnoringItsContextDoesNotHoldTheRelease(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var calls atomic.Int32
		m := deploy.MonitorFunc(func(ctx context.Context, tg monitor.Target) (monitor.Observation, error) {
			if tg.Phase == "bake" && calls.Add(1) == 1 {
				time.Sleep(3 * time.Hour) // ignores ctx
			}
			return deploytest.Health{ErrorRate: 0.001, P95: 100 * time.Millisecond}.Observation(), nil
		})
		start := time.Now()
		r := openRunner(t, ramp(), state.NewMemory(), deploy.WithMonitors(m))
		rep, err := r.Run(t.Context(), rel)
		if err != nil || rep.Status != deploy.Succeeded {
			t.Fatalf("err %v, status %s; one slow look should only count as one source error", err, rep.Status)
		}
		if took := time.Since(start); took > 2*time.Hour {
			t.Errorf("a monitor that ignored its context held the release for %v", took)
		}
		time.Sleep(3 * time.Hour) // let the abandoned call end inside the bubble
	})
}

func TestNotifierPanicIsAFailedDelivery(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var calls atomic.Int32
		n := deploy.NotifierFunc(func(ctx context.Context, e deploy.Event) error {
			if calls.Add(1) <= 2 {
				panic("slack client bug")
			}
			return nil
		})
		r := openRunner(t, ramp(), state.NewMemory(), deploy.WithMonitors(deploytest.Healthy()), deploy.WithNotifiers(n))
		rep, err := r.Run(t.Context(), rel)
		if err != nil || rep.Status != deploy.Succeeded {
			t.Fatalf("err %v, status %s", err, rep.Status)
		}
		if rep.Pending != 0 || rep.Undelivered != 0 {
			t.Errorf("pending %d, undelivered %d: the panicking attempts should have been retried", rep.Pending, rep.Undelivered)
		}
	})
}

func TestGatePanicBlocks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := deploy.GateFunc(func(ctx context.Context, d *deploy.Deployment) error { panic("gate bug") })
		s := ramp()
		r := openRunner(t, s, state.NewMemory(), deploy.WithMonitors(deploytest.Healthy()), deploy.WithGates(g))
		rep, err := r.Run(t.Context(), rel)
		if !errors.Is(err, deploy.ErrBlocked) || rep.Status != deploy.Blocked || len(s.Applied()) != 0 {
			t.Fatalf("err %v, status %s, applied %v; want a panicking gate to block before anything is deployed", err, rep.Status, s.Applied())
		}
	})
}

// stubborn is a strategy whose first step's Apply ignores its context for
// an hour.
type stubborn struct{ *deploytest.Strategy }

func (s *stubborn) Plan(ctx context.Context, d *deploy.Deployment) ([]deploy.Step, error) {
	steps, err := s.Strategy.Plan(ctx, d)
	inner := steps[0].Apply
	steps[0].Apply = func(ctx context.Context, d *deploy.Deployment) error {
		time.Sleep(time.Hour)
		return inner(context.Background(), d)
	}
	return steps, err
}

func TestApplyPastTheProgressDeadlineIsAbandonedAndSaidSo(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &stubborn{ramp()}
		start := time.Now()
		r := openRunner(t, s, state.NewMemory(), deploy.WithMonitors(deploytest.Healthy()))
		rep, err := r.Run(t.Context(), rel)
		if !errors.Is(err, deploy.ErrStepFailed) || rep.Status != deploy.RolledBack {
			t.Fatalf("err %v, status %s", err, rep.Status)
		}
		if took := rep.Trigger.At.Sub(start); took > 11*time.Minute {
			t.Errorf("rolled back after %v, want within the 10-minute progress deadline", took)
		}
		var said bool
		for _, e := range rep.Timeline {
			said = said || e.Kind == state.EntryStep && e.Outcome == state.OutcomeAbandoned
		}
		if !said || !strings.Contains(rep.Trigger.Reason, "may still take effect") {
			t.Errorf("the record does not say the Apply was abandoned and may still land: %q %+v", rep.Trigger.Reason, rep.Timeline)
		}
		time.Sleep(time.Hour) // let the abandoned Apply end inside the bubble
	})
}

// Suspicion (run with -race): Timeouts.Plan abandons a Plan that is still
// running, and the Deployment it was given shares its Memo map with the
// record (record.go, deployment(): `Memo: rec.Memo`; plan.go: `dc := *d`
// copies the struct, not the map). The abandoned Plan's write races the
// runner's reads of rec.Memo at every save; with a JSON-encoding store the
// runtime's "concurrent map read and map write" is a fatal error no recover
// catches.
func TestPlanPastItsTimeoutWritesNothingTheRunnerReads(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := state.NewMemory()
		s := &memoPlanner{Strategy: &deploytest.Strategy{Steps: deploytest.Ramp(10*time.Minute, 0.5, 1)}}
		a := openRunner(t, s, store, deploy.WithMonitors(deploytest.Healthy()), deploy.WithHolder("a"))
		id, err := a.Start(t.Context(), rel)
		if err != nil {
			t.Fatal(err)
		}
		b := openRunner(t, s, store, deploy.WithMonitors(deploytest.Healthy()), deploy.WithHolder("b"))
		rep, err := b.Resume(t.Context(), id)
		t.Logf("status %v err %v", rep.Status, err)
		time.Sleep(time.Minute)
	})
}
