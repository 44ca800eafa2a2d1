package deploy_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/deploykit/deploy"
	"github.com/deploykit/deploy/deploytest"
	"github.com/deploykit/deploy/monitor"
	"github.com/deploykit/deploy/state"
)

// a cron job that calls Reconcile every minute (not exactly at next)
// verifies a rollback before the settle time has passed.
func TestReconcileVerifiesTheRollbackOnlyAfterTheSettle(t *testing.T) {
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

func (retryLater) Error() string { return "503 busy" }

func (retryLater) Temporary() bool { return true }

func (retryLater) RetryAfter() time.Duration { return 10 * time.Minute }

// after the end, with a notifier asking to retry in 10 minutes and
// several messages queued behind the failed one, Reconcile says next = now
// over and over (a hot loop writing the store).
func TestReconcileNextSkipsMessagesQueuedBehindAHeldOne(t *testing.T) {
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

// A Reconcile that is refused because another runner holds the release
// (runner.go, Reconcile: a *LockedError is not mustStop, so it goes on to
// r.flushSync) still delivers the holder's outbox and writes the record
// (outbox.go, flushSync: `r.cfg.store.Update(ctx, rec)` with no lease
// check). The notifier gets every event twice, and the live holder's next
// save conflicts: Run stops with ErrLocked in the middle of a healthy
// release that nobody took over.
func TestReconcileOfAHeldReleaseTouchesNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := state.NewMemory()
		s := &deploytest.Strategy{Steps: deploytest.Ramp(30*time.Minute, 0.1, 0.5, 1)}
		recA, recB := &deploytest.Recorder{}, &deploytest.Recorder{}
		a := openRunner(t, s, store, deploy.WithMonitors(deploytest.Healthy()), deploy.WithNotifiers(recA), deploy.WithHolder("a"), deploy.WithInterval(time.Minute))
		b := openRunner(t, s, store, deploy.WithMonitors(deploytest.Healthy()), deploy.WithNotifiers(recB), deploy.WithHolder("cron"), deploy.WithInterval(time.Minute))
		id, err := a.Start(t.Context(), rel)
		if err != nil {
			t.Fatal(err)
		}
		var runErr error
		var rep *deploy.Report
		done := make(chan struct{})
		go func() { defer close(done); rep, runErr = a.Resume(t.Context(), id) }()
		time.Sleep(30*time.Minute + 30*time.Second) // a applied 50 % at 30:00; its next save is at 31:00
		_, _, err = b.Reconcile(t.Context(), id)
		t.Logf("cron Reconcile: %v; it delivered %d event(s)", err, len(recB.Events()))
		if !errors.Is(err, deploy.ErrLocked) {
			t.Errorf("Reconcile: %v, want ErrLocked", err)
		}
		<-done
		t.Logf("holder: status %v, err %v", rep.Status, runErr)
		if len(recB.Events()) > 0 {
			t.Errorf("a Reconcile refused with ErrLocked delivered %d event(s) the holder had delivered already", len(recB.Events()))
		}
		if runErr != nil {
			t.Errorf("the live holder was knocked out by a refused Reconcile: %v", runErr)
		}
	})
}
