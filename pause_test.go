package deploy_test

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/deploykit/deploy"
	"github.com/deploykit/deploy/deploytest"
	"github.com/deploykit/deploy/monitor"
	"github.com/deploykit/deploy/state"
)

// Argo Rollouts, canary pause steps
// (https://argo-rollouts.readthedocs.io/en/stable/features/canary/#overview):
// "pause: {}" pauses the rollout indefinitely until it is promoted
// (kubectl argo rollouts promote). Here the release waits 3 days of
// virtual time after the 20 % step, its users watched every interval, and
// goes on within a round of the Promote.
func TestIndefinitePauseWaitsDaysAndContinuesOnPromote(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &deploytest.Strategy{Steps: deploytest.Ramp(10*time.Minute, 0.2, 1)}
		store := state.NewMemory()
		m := deploytest.Healthy()
		events := &deploytest.Recorder{}
		r := openRunner(t, s, store, deploy.WithInterval(time.Minute), deploy.WithMonitors(m), deploy.WithNotifiers(events),
			deploy.WithStepRules(deploy.StepRule{Step: "20%", Pause: &deploy.Pause{}}))
		start := time.Now()
		id, err := r.Start(t.Context(), rel)
		if err != nil {
			t.Fatal(err)
		}
		done := runInBackground(r, t.Context(), id)
		rec := waitFor(t, store, id, time.Hour, waiting(state.WaitPause))
		if got := rec.Waiting.Since.Sub(start); got != 10*time.Minute || !rec.Waiting.Until.IsZero() {
			t.Errorf("wait = %+v, want a pause from +10m with no end", rec.Waiting)
		}
		calls := m.Calls()
		time.Sleep(3 * 24 * time.Hour)
		if got := m.Calls() - calls; got < 3*24*60-1 || got > 3*24*60+1 {
			t.Errorf("%d observations while paused 3 days, want one a minute (about %d)", got, 3*24*60)
		}
		if diff := cmp.Diff([]string{"production/20%"}, s.Applied()); diff != "" {
			t.Fatalf("applied while paused (-want +got):\n%s", diff)
		}
		promoted := time.Now()
		if err := r.Promote(t.Context(), id, false, deploy.Decision{By: "alice", Reason: "canary looks good"}); err != nil {
			t.Fatal(err)
		}
		res := <-done
		if res.err != nil {
			t.Fatalf("Resume: %v\n%s", res.err, res.rep.Markdown())
		}
		if diff := cmp.Diff([]string{"production/20%", "production/100%"}, s.Applied()); diff != "" {
			t.Errorf("applied (-want +got):\n%s", diff)
		}
		// The next step comes at once (same process: no round to wait for),
		// then bakes 10 minutes.
		var applied time.Time
		for _, e := range res.rep.Timeline {
			if e.Kind == state.EntryStep && e.Name == "100%" && e.Outcome == state.OutcomeApplied {
				applied = e.At
			}
		}
		if applied.Sub(promoted) != 0 {
			t.Errorf("100%% applied %v after the Promote, want at once", applied.Sub(promoted))
		}
		// 3 days of looks, and a handful of events: a pause is not
		// announced every minute.
		if n := len(events.Events()); n > 30 {
			t.Errorf("%d events during the release, want a handful", n)
		}
		var waited, decided bool
		for _, e := range events.Events() {
			waited = waited || e.Kind == deploy.EventWaiting && e.Wait != nil && e.Wait.Kind == state.WaitPause
			decided = decided || e.Kind == deploy.EventDecision && e.Decision != nil && e.Decision.By == "alice"
		}
		if !waited || !decided {
			t.Errorf("events: waiting %v, decision %v; want both announced", waited, decided)
		}
		if len(res.rep.Decisions) != 1 || res.rep.Decisions[0].By != "alice" || res.rep.Decisions[0].Pending() {
			t.Errorf("decisions = %+v", res.rep.Decisions)
		}
	})
}

// Argo Rollouts, "pause: {duration: 1h}": the rollout waits the duration,
// then goes on by itself; a Promote ends it early.
func TestTimedPauseEndsByItself(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &deploytest.Strategy{Steps: deploytest.Ramp(10*time.Minute, 0.2, 1)}
		store := state.NewMemory()
		r := decisionRunner(t, s, store, deploy.WithStepRules(deploy.StepRule{Step: "20%", Pause: &deploy.Pause{Duration: time.Hour}}))
		start := time.Now()
		rep, err := r.Run(t.Context(), rel)
		if err != nil {
			t.Fatal(err)
		}
		// 10m bake, 1h pause, 10m bake.
		if got := rep.Finished.Sub(start); got != 80*time.Minute {
			t.Errorf("release took %v, want 1h20m", got)
		}
		var waits []string
		for _, e := range rep.Timeline {
			if e.Kind == state.EntryWait {
				waits = append(waits, string(e.Outcome)+" "+e.Name+" +"+e.At.Sub(start).String())
			}
		}
		if diff := cmp.Diff([]string{"waiting pause +10m0s", "done pause +1h10m0s"}, waits); diff != "" {
			t.Errorf("waits (-want +got):\n%s", diff)
		}
	})
}

// While paused, the users already exposed stay watched: a breach rolls
// back (Argo Rollouts keeps background analysis running during a pause).
func TestBreachWhilePausedRollsBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &deploytest.Strategy{Steps: deploytest.Ramp(10*time.Minute, 0.2, 1)}
		store := state.NewMemory()
		healthy, regressed := deploytest.Healthy(), deploytest.Regression(0.2, deploytest.Health{ErrorRate: 0.08, P95: 130 * time.Millisecond})
		from := time.Now().Add(30 * time.Minute)
		bad := &deploytest.Monitor{Script: func(t monitor.Target) (monitor.Observation, error) {
			if time.Now().Before(from) {
				return healthy.Script(t)
			}
			return regressed.Script(t)
		}}
		r := openRunner(t, s, store, deploy.WithInterval(time.Minute), deploy.WithMonitors(bad),
			deploy.WithStepRules(deploy.StepRule{Step: "20%", Pause: &deploy.Pause{}}))
		start := time.Now()
		rep, err := r.Run(t.Context(), rel)
		if err == nil || rep.Status != deploy.RolledBack {
			t.Fatalf("status %s, err %v; want rolled back", rep.Status, err)
		}
		if got := rep.Trigger.At.Sub(start); got < 30*time.Minute || got > 32*time.Minute {
			t.Errorf("rolled back at +%v, want about +30m", got)
		}
		if rep.Waiting != nil {
			t.Errorf("still waiting for %+v after the rollback", rep.Waiting)
		}
	})
}

// Argo Rollouts' promote ends a timed pause too ("kubectl argo rollouts
// promote" resumes a paused rollout, whatever its pause's duration): paused
// for an hour after 20 %, a Promote at +20m goes on at once.
func TestPromoteEndsATimedPause(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &deploytest.Strategy{Steps: deploytest.Ramp(10*time.Minute, 0.2, 1)}
		store := state.NewMemory()
		r := decisionRunner(t, s, store, deploy.WithStepRules(deploy.StepRule{Step: "20%", Pause: &deploy.Pause{Duration: time.Hour}}))
		start := time.Now()
		id, err := r.Start(t.Context(), rel)
		if err != nil {
			t.Fatal(err)
		}
		done := runInBackground(r, t.Context(), id)
		waitFor(t, store, id, time.Hour, waiting(state.WaitPause))
		time.Sleep(10 * time.Minute)
		if err := r.Promote(t.Context(), id, false, deploy.Decision{By: "ivy"}); err != nil {
			t.Fatal(err)
		}
		res := <-done
		if res.err != nil {
			t.Fatal(res.err)
		}
		// 10m bake, promoted 10m into the pause, 10m bake.
		if got := res.rep.Finished.Sub(start); got > 31*time.Minute {
			t.Errorf("release took %v, want about 30m: the Promote ended the pause", got)
		}
	})
}
