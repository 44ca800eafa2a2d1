package deploy_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/deploykit/deploy"
	"github.com/deploykit/deploy/deploytest"
	"github.com/deploykit/deploy/monitor"
	"github.com/deploykit/deploy/rollback"
	"github.com/deploykit/deploy/state"
	"github.com/deploykit/deploy/strategy"
	"github.com/google/go-cmp/cmp"
)

// BlueGreen in two stages; the process crashes while stage 1 bakes
// after its switch; Resume caches the plan of stage 2 computed with
// stage 1's exposure (1) and deploys onto production's LIVE side.
func TestResumeOfBlueGreenAfterAStageDeploysOntoTheIdleSide(t *testing.T) {
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

func TestResumeAfterStopDoesNotReapply(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		s := ramp()
		open := func() *deploy.Runner {
			fs, err := state.NewFile(dir)
			if err != nil {
				t.Fatal(err)
			}
			return openRunner(t, s, fs, deploy.WithMonitors(deploytest.Healthy()))
		}
		r1 := open()
		id, err := r1.Start(t.Context(), rel)
		if err != nil {
			t.Fatal(err)
		}
		// Drive the first runner until two steps are done and the third is
		// applied, then "crash" with its lease running until its next action.
		for {
			next, _, err := r1.Reconcile(t.Context(), id)
			if err != nil {
				t.Fatal(err)
			}
			if len(s.Applied()) >= 3 {
				break
			}
			time.Sleep(time.Until(next))
		}
		r2 := open()
		if _, err := r2.Resume(t.Context(), id); !errors.Is(err, deploy.ErrLocked) {
			t.Fatalf("Resume while the lease is held: err = %v, want ErrLocked", err)
		}
		time.Sleep(5 * time.Minute) // the lease expires
		rep, err := r2.Resume(t.Context(), id)
		if err != nil {
			t.Fatalf("Resume: %v", err)
		}
		if rep.Status != deploy.Succeeded {
			t.Fatalf("status = %s", rep.Status)
		}
		want := []string{"production/1%", "production/5%", "production/25%", "production/50%", "production/100%"}
		if diff := cmp.Diff(want, s.Applied()); diff != "" {
			t.Errorf("applied (-want +got):\n%s", diff)
		}
		// The first runner has lost the release.
		if _, _, err := r1.Reconcile(t.Context(), id); err != nil {
			t.Errorf("Reconcile of a finished release: %v", err)
		}
	})
}

func TestResumeFinishesARollbackUnderWay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := state.NewMemory()
		s := ramp()
		rec1 := &deploytest.Recorder{}
		open := func(n deploy.Notifier) *deploy.Runner {
			return openRunner(t, s, store, deploy.WithNotifiers(n),
				deploy.WithMonitors(deploytest.Regression(0.05, deploytest.Health{ErrorRate: 0.3})))
		}
		r1 := open(rec1)
		id, err := r1.Start(t.Context(), rel)
		if err != nil {
			t.Fatal(err)
		}
		for {
			next, rep, err := r1.Reconcile(t.Context(), id)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Phase == deploy.PhaseRollback {
				break
			}
			time.Sleep(time.Until(next))
		}
		if s.Rollbacks() != 0 {
			t.Fatalf("rolled back before the crash")
		}
		// The first runner dies with the rollback decided but not carried out.
		rec2 := &deploytest.Recorder{}
		r2 := open(rec2)
		time.Sleep(5 * time.Minute)
		rep, err := r2.Resume(t.Context(), id)
		if !errors.Is(err, deploy.ErrUnhealthy) || rep.Status != deploy.RolledBack {
			t.Fatalf("Resume: status %s err %v", rep.Status, err)
		}
		if s.Rollbacks() != 1 || s.Exposure() != 0 {
			t.Errorf("rollbacks %d, exposure %v", s.Rollbacks(), s.Exposure())
		}
		if rep.Pending != 0 {
			t.Errorf("%d events left undelivered", rep.Pending)
		}
	})
}

// TestResumeKeepsTheLogBaseline: a release with a log scan is resumed by a
// new process whose LogScan has never seen the log before the deploy. The
// runner hands it the baseline it saved (monitor.Stateful), so the resumed
// release neither fails for want of a baseline nor takes the old errors for
// new ones; a new error after the resume still rolls back.
func TestResumeKeepsTheLogBaseline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		logPath := dir + "/app.log"
		appendLog := func(line string) {
			f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(f, "%s %s\n", time.Now().UTC().Format(time.RFC3339), line)
			f.Close()
		}
		appendLog("ERROR payment declined for order 17") // known before the deploy
		s := ramp()
		open := func() (*deploy.Runner, *monitor.LogScan) {
			fs, err := state.NewFile(dir + "/state")
			if err != nil {
				t.Fatal(err)
			}
			logs := &monitor.LogScan{Path: logPath}
			r := openRunner(t, s, fs, deploy.WithMonitors(logs), deploy.WithInterval(time.Minute),
				deploy.WithRollbackPolicy(rollback.Policy{Triggers: []rollback.Trigger{rollback.CriticalChecks{}}}))
			return r, logs
		}
		r1, logs1 := open()
		id, err := r1.Start(t.Context(), rel)
		if err != nil {
			t.Fatal(err)
		}
		for len(s.Applied()) < 2 {
			next, _, err := r1.Reconcile(t.Context(), id)
			if err != nil {
				t.Fatal(err)
			}
			time.Sleep(time.Until(next))
		}
		logs1.Close()                                    // the first process is gone
		appendLog("ERROR payment declined for order 18") // an old error, again
		time.Sleep(5 * time.Minute)                      // its lease expires

		r2, logs2 := open()
		defer logs2.Close()
		rep, err := r2.Resume(t.Context(), id)
		if err != nil || rep.Status != deploy.Succeeded {
			t.Fatalf("Resume: status %s, err %v\n%s", rep.Status, err, rep.Markdown())
		}

		// A new error in a release resumed the same way rolls back.
		s2 := ramp()
		s = s2
		appendLog("ERROR payment declined for order 19")
		r3, logs3 := open()
		id, err = r3.Start(t.Context(), deploy.Release{Service: "checkout", Version: "v3", PreviousVersion: "v2"})
		if err != nil {
			t.Fatal(err)
		}
		for len(s2.Applied()) < 2 {
			next, _, err := r3.Reconcile(t.Context(), id)
			if err != nil {
				t.Fatal(err)
			}
			time.Sleep(time.Until(next))
		}
		logs3.Close()
		appendLog("ERROR nil map write in handler /api/orders/7")
		time.Sleep(5 * time.Minute)
		r4, logs4 := open()
		defer logs4.Close()
		rep, err = r4.Resume(t.Context(), id)
		if !errors.Is(err, deploy.ErrUnhealthy) || !strings.Contains(rep.Trigger.Reason, "nil map write") || strings.Contains(rep.Trigger.Reason, "payment declined") {
			t.Fatalf("Resume: err %v, trigger %q; want a rollback for the new error only", err, rep.Trigger.Reason)
		}
	})
}
