package deploy_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/deploykit/deploy"
	"github.com/deploykit/deploy/deploytest"
	"github.com/deploykit/deploy/monitor"
	"github.com/deploykit/deploy/rollback"
	"github.com/deploykit/deploy/state"
	"github.com/google/go-cmp/cmp"
)

// with FailureLimit 1, a rollback after which the error rate is still
// 30 % is reported "verified: healthy" because latency passed.
func TestRollbackVerificationToleratesNoFailure(t *testing.T) {
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

func TestRollbackThatFails(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := ramp()
		s.RollbackErr = errors.New("kubectl: connection refused")
		h := newHarness(t, s, deploytest.Regression(0.25, deploytest.Health{ErrorRate: 0.2, P95: time.Second}))
		rep, err := h.runner.Run(t.Context(), rel)
		if !errors.Is(err, deploy.ErrRollbackFailed) || !errors.Is(err, deploy.ErrUnhealthy) {
			t.Fatalf("err = %v, want ErrRollbackFailed joined with ErrUnhealthy", err)
		}
		if rep.Status != deploy.RollbackFailed {
			t.Errorf("status = %s", rep.Status)
		}
		urgent := false
		for _, e := range h.rec.Events() {
			urgent = urgent || e.Urgent
		}
		if !urgent {
			t.Error("no urgent event was sent")
		}
		md := rep.Markdown()
		for _, want := range []string{
			"## Rollback failed: Faster checkout",
			"- Unknown: the rollback of checkout v2 did not complete or did not restore health; the new version may still reach users until a person acts",
			"URGENT: restore the previous version by hand",
		} {
			if !strings.Contains(md, want) {
				t.Errorf("report lacks %q:\n%s", want, md)
			}
		}
	})
}

func TestRollbackSteps(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var ran []string
		steps := []rollback.PlanStep{
			{Name: "Revert PR 812", Run: func(ctx context.Context) error { ran = append(ran, "revert"); return nil }},
			{Name: "Tell the database team"},
			{Name: "Scale v1 back to 10 replicas", Run: func(ctx context.Context) error { ran = append(ran, "scale"); return nil }},
		}
		h := newHarness(t, ramp(), deploytest.Regression(0.05, deploytest.Health{ErrorRate: 0.5}), deploy.WithRollbackSteps(steps...))
		rep, err := h.runner.Run(t.Context(), rel)
		if !errors.Is(err, deploy.ErrUnhealthy) || rep.Status != deploy.RolledBack {
			t.Fatalf("err %v status %s", err, rep.Status)
		}
		if diff := cmp.Diff([]string{"revert", "scale"}, ran); diff != "" {
			t.Errorf("ran (-want +got):\n%s", diff)
		}
		md := rep.Markdown()
		for _, want := range []string{"2. Revert PR 812 — done", "3. Tell the database team\n", "4. Scale v1 back to 10 replicas — done", "5. Verify rollback"} {
			if !strings.Contains(md, want) {
				t.Errorf("report lacks %q:\n%s", want, md)
			}
		}

		failing := []rollback.PlanStep{{Name: "Revert PR 812", Run: func(ctx context.Context) error { return errors.New("merge conflict") }}}
		h = newHarness(t, ramp(), deploytest.Regression(0.05, deploytest.Health{ErrorRate: 0.5}), deploy.WithRollbackSteps(failing...))
		rep, err = h.runner.Run(t.Context(), rel)
		if !errors.Is(err, deploy.ErrRollbackFailed) || rep.Status != deploy.RollbackFailed {
			t.Fatalf("err %v status %s", err, rep.Status)
		}
		if !strings.Contains(rep.Error, `rollback step "Revert PR 812": merge conflict`) {
			t.Errorf("error %q", rep.Error)
		}
	})
}

// TestLogScanVerifiesTheRollback: a new error signature rolls the release
// back, and the rollback is verified on the lines written since it, so the
// release's own errors (even one stamped while the rollback ran) do not make
// it "rollback failed".
func TestLogScanVerifiesTheRollback(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var buf bytes.Buffer
		logs := &monitor.LogScan{Reader: &buf}
		defer logs.Close()
		order := 0
		m := deploy.MonitorFunc(func(ctx context.Context, tg monitor.Target) (monitor.Observation, error) {
			stamp := func(at time.Time, what string) {
				order++
				fmt.Fprintf(&buf, "%s ERROR %s in handler /api/orders/%d\n", at.UTC().Format(time.RFC3339Nano), what, order)
			}
			stamp(time.Now(), "payment declined") // known: in the log from the start
			switch {
			case tg.Phase == "rollback":
				stamp(tg.Since.Add(-time.Second), "nil map write") // a request in flight during the rollback
			case tg.Exposure >= 0.25:
				stamp(time.Now(), "nil map write")
			}
			return logs.Observe(ctx, tg)
		})
		h := newHarness(t, ramp(), nil, deploy.WithMonitors(m),
			deploy.WithRollbackPolicy(rollback.Policy{Triggers: []rollback.Trigger{rollback.CriticalChecks{}}}))
		rep, err := h.runner.Run(t.Context(), rel)
		if !errors.Is(err, deploy.ErrUnhealthy) || rep.Status != deploy.RolledBack {
			t.Fatalf("status %s, err %v; want rolled back\n%s", rep.Status, err, rep.Markdown())
		}
		if !strings.Contains(rep.Trigger.Reason, "1 new error signature since the baseline") {
			t.Errorf("trigger %q, want the new signature", rep.Trigger.Reason)
		}
		last := rep.RollbackSteps[len(rep.RollbackSteps)-1]
		if last.Kind != state.EntryVerify || last.Outcome != state.OutcomeVerified {
			t.Errorf("last rollback step %+v, want verified healthy", last)
		}
		if got, want := h.strategy.Applied(), []string{"production/1%", "production/5%", "production/25%"}; !cmp.Equal(got, want) {
			t.Errorf("applied %v, want %v", got, want)
		}
	})
}

// TestRollbackSettle: the rollback is verified WithRollbackSettle after the
// strategy's rollback, not one interval after.
func TestRollbackSettle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, ramp(), deploytest.Regression(0.25, deploytest.Health{ErrorRate: 0.2}), deploy.WithRollbackSettle(5*time.Minute))
		rep, _ := h.runner.Run(t.Context(), rel)
		var rolled, verified time.Time
		for _, e := range rep.RollbackSteps {
			switch e.Kind {
			case "rollback":
				rolled = e.At
			case "verify":
				verified = e.At
			}
		}
		if got := verified.Sub(rolled); got != 5*time.Minute {
			t.Errorf("verified %v after the rollback, want 5m", got)
		}
	})
}

// TestSlowRollbackSettles: a rollback that takes longer than the settle time
// is still verified the settle time after it finished, on the window that
// starts when it finished.
func TestSlowRollbackSettles(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := ramp()
		slow := &slowRollback{Strategy: s, took: 3 * time.Minute}
		var since []time.Time
		m := deploy.MonitorFunc(func(ctx context.Context, tg monitor.Target) (monitor.Observation, error) {
			h := deploytest.Health{ErrorRate: 0.001, P95: 100 * time.Millisecond}
			if tg.Phase == "bake" && tg.Exposure >= 0.25 {
				h.ErrorRate = 0.2
			}
			if tg.Phase == "rollback" {
				since = append(since, tg.Since)
			}
			return h.Observation(), nil
		})
		r, err := deploy.NewRunner(slow, deploy.WithStore(state.NewMemory()), deploy.WithMonitors(m),
			deploy.WithNotifiers(&deploytest.Recorder{}), deploy.WithWaiver(deploy.FridayDeploy, "test clock"),
			deploy.WithRollbackSettle(2*time.Minute), deploy.WithSchedule(monitor.Schedule{}))
		if err != nil {
			t.Fatal(err)
		}
		rep, _ := r.Run(t.Context(), rel)
		var rolled, verified time.Time
		for _, e := range rep.RollbackSteps {
			switch e.Kind {
			case "rollback":
				rolled = e.At
			case "verify":
				verified = e.At
			}
		}
		if got := verified.Sub(rolled); got != 2*time.Minute {
			t.Errorf("verified %v after the rollback finished, want the 2m settle", got)
		}
		if len(since) != 1 || !since[0].Equal(rolled) {
			t.Errorf("rollback observed since %v, want since the end of the rollback %v", since, rolled)
		}
	})
}

// TestRollbackWithoutDataIsNotVerified: when nothing can be measured after
// the rollback, the report says the rollback was not verified and asks a
// person to check, instead of "verified".
func TestRollbackWithoutDataIsNotVerified(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := deploy.MonitorFunc(func(ctx context.Context, tg monitor.Target) (monitor.Observation, error) {
			switch {
			case tg.Phase == "rollback":
				var o monitor.Observation
				o.Set(monitor.ErrorRate, monitor.NoData())
				o.Set(monitor.LatencyP95, monitor.NoData())
				return o, nil
			case tg.Exposure >= 0.25:
				return deploytest.Health{ErrorRate: 0.3}.Observation(), nil
			}
			return deploytest.Health{ErrorRate: 0.001, P95: 100 * time.Millisecond}.Observation(), nil
		})
		h := newHarness(t, ramp(), nil, deploy.WithMonitors(m))
		rep, err := h.runner.Run(t.Context(), rel)
		last := rep.RollbackSteps[len(rep.RollbackSteps)-1]
		if last.Kind != state.EntryVerify || last.Outcome != state.OutcomeUnverified {
			t.Errorf("last rollback step %+v, want not verified", last)
		}
		if rep.Status != deploy.RollbackUnverified || !errors.Is(err, deploy.ErrNotVerified) || !errors.Is(err, deploy.ErrUnhealthy) {
			t.Errorf("status %s, err %v; want %s with ErrNotVerified joined to the breach's ErrUnhealthy", rep.Status, err, deploy.RollbackUnverified)
		}
		if md := rep.Markdown(); !strings.Contains(md, "Check by hand that the rollback restored health") {
			t.Errorf("no follow-up to check by hand:\n%s", md)
		}
	})
}

// A cancelled Run rolls back and verifies the rollback under contexts that
// outlive the cancellation: a monitor that honours its context still
// measures the previous version.
func TestCancelledRunVerifiesItsRollbackWithMonitorsThatHonourTheContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := deploy.MonitorFunc(func(ctx context.Context, tg monitor.Target) (monitor.Observation, error) {
			if err := ctx.Err(); err != nil {
				return monitor.Observation{}, err
			}
			return deploytest.Health{ErrorRate: 0.001, P95: 100 * time.Millisecond}.Observation(), nil
		})
		ctx, cancel := context.WithCancel(t.Context())
		time.AfterFunc(15*time.Minute, cancel)
		s := ramp()
		rep, err := openRunner(t, s, state.NewMemory(), deploy.WithMonitors(m)).Run(ctx, rel)
		if !errors.Is(err, deploy.ErrAborted) || rep.Status != deploy.Aborted || s.Rollbacks() != 1 {
			t.Fatalf("status %s, err %v, rollbacks %d; want the cancelled release rolled back and verified (aborted)", rep.Status, err, s.Rollbacks())
		}
		last := rep.RollbackSteps[len(rep.RollbackSteps)-1]
		if last.Outcome != state.OutcomeVerified {
			t.Errorf("last rollback step %+v, want verified", last)
		}
	})
}

// A breach judged in the same reconcile in which Run's context is cancelled
// (Ctrl-C, a CI job timeout) is lost: the transition to the rollback phase is
// due at once, so reconcile.go skips its save ("skip the save when the next
// action is due at once"), and abort() (loop.go) reloads the stale stored
// record and records a *cancellation* instead. The record says "aborted:
// run cancelled" and Run returns ErrAborted although the release hurt users
// (ErrUnhealthy, trigger breach); the "rolling back: …" event for the breach
// is never sent.
func TestBreachJudgedAsTheRunIsCancelledIsRecordedAsTheBreach(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := state.NewMemory()
		s := &deploytest.Strategy{Steps: deploytest.Ramp(10*time.Minute, 0.1, 0.5, 1)}
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		bad := deploytest.Health{ErrorRate: 0.2, P95: 120 * time.Millisecond}.Observation()
		good := deploytest.Health{ErrorRate: 0.001, P95: 120 * time.Millisecond}.Observation()
		m := &deploytest.Monitor{Script: func(tg monitor.Target) (monitor.Observation, error) {
			if tg.Phase == "bake" && tg.Exposure >= 0.5 {
				cancel() // the operator presses Ctrl-C at that very moment
				return bad, nil
			}
			return good, nil
		}}
		rec := &deploytest.Recorder{}
		r := openRunner(t, s, store, deploy.WithMonitors(m), deploy.WithNotifiers(rec), deploy.WithInterval(time.Minute))
		rep, err := r.Run(ctx, rel)
		if rep == nil {
			t.Fatalf("no report: %v", err)
		}
		final, _ := store.Load(context.Background(), rep.ID)
		t.Logf("status %s, trigger %+v, err %v", final.Status, final.Trigger, err)
		if final.Trigger == nil || final.Trigger.Kind != state.TriggerBreach {
			t.Errorf("the breach the policy judged is not on the record: trigger %+v, status %s", final.Trigger, final.Status)
		}
		if !errors.Is(err, deploy.ErrUnhealthy) {
			t.Errorf("Run returned %v, want ErrUnhealthy: the release hurt users", err)
		}
	})
}
