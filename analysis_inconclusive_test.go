package deploy_test

import (
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/deploykit/deploy"
	"github.com/deploykit/deploy/deploytest"
	"github.com/deploykit/deploy/state"
)

// inconclusiveAnalysis measures 0.92 against success ≥ 0.95 and failure
// < 0.90: neither condition holds, so each measurement is inconclusive,
// and with Argo's default inconclusiveLimit 0 the first one makes the run
// inconclusive.
func inconclusiveAnalysis() *deploy.Analysis {
	return &deploy.Analysis{Name: "success-rate", Metrics: []deploy.AnalysisMetric{{
		Name: "success-rate", Measure: newSeries(0.92).measure, Unit: "ratio", Interval: time.Minute, Count: 3,
		Success: deploy.AtLeast(0.95), Failure: deploy.Below(0.90),
	}}}
}

// Argo Rollouts, "Inconclusive Runs"
// (https://argo-rollouts.readthedocs.io/en/stable/features/analysis/#inconclusive-runs):
// an inconclusive AnalysisRun pauses the rollout; "the rollout will remain
// paused until a user either resumes (promotes) or aborts it". The run
// measures at +0 (the step is applied at +0), is inconclusive then, and the
// release waits; a Promote at +2h goes on to the next step at once.
func TestInconclusiveAnalysisPausesThenPromoteContinues(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &deploytest.Strategy{Steps: deploytest.Ramp(5*time.Minute, 0.2, 1)}
		store := state.NewMemory()
		r := decisionRunner(t, s, store, deploy.WithStepRules(deploy.StepRule{Step: "20%", Analysis: inconclusiveAnalysis()}))
		start := time.Now()
		id, err := r.Start(t.Context(), rel)
		if err != nil {
			t.Fatal(err)
		}
		done := runInBackground(r, t.Context(), id)
		rec := waitFor(t, store, id, time.Hour, waiting(state.WaitInconclusive))
		if rec.Waiting.Since != start || rec.Waiting.Analysis != "success-rate" || !strings.Contains(rec.Waiting.Reason, "neither at least 0.95 ratio (success) nor below 0.9 ratio (failure)") {
			t.Errorf("wait = %+v", rec.Waiting)
		}
		time.Sleep(2 * time.Hour)
		if err := r.Promote(t.Context(), id, false, deploy.Decision{By: "bob", Reason: "0.92 is fine for this service"}); err != nil {
			t.Fatal(err)
		}
		res := <-done
		if res.err != nil || res.rep.Status != deploy.Succeeded {
			t.Fatalf("status %s, err %v\n%s", res.rep.Status, res.err, res.rep.Markdown())
		}
		if diff := cmp.Diff([]string{"production/20%", "production/100%"}, s.Applied()); diff != "" {
			t.Errorf("applied (-want +got):\n%s", diff)
		}
		run := res.rep.Analyses[0]
		if run.Phase != state.AnalysisInconclusive || !run.Accepted || !strings.Contains(run.Reason, "promoted by bob") {
			t.Errorf("run = %+v", run)
		}
	})
}

// Argo Rollouts, "Inconclusive Runs": aborting the paused rollout rolls it
// back (weight 0), and the rollout stays aborted until retried.
func TestInconclusiveAnalysisPausesThenAbortRollsBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &deploytest.Strategy{Steps: deploytest.Ramp(5*time.Minute, 0.2, 1)}
		store := state.NewMemory()
		r := decisionRunner(t, s, store, deploy.WithStepRules(deploy.StepRule{Step: "20%", Analysis: inconclusiveAnalysis()}))
		id, err := r.Start(t.Context(), rel)
		if err != nil {
			t.Fatal(err)
		}
		done := runInBackground(r, t.Context(), id)
		waitFor(t, store, id, time.Hour, waiting(state.WaitInconclusive))
		if err := r.Abort(t.Context(), id, deploy.Decision{By: "carol", Reason: "not sure"}); err != nil {
			t.Fatal(err)
		}
		rec := waitFor(t, store, id, time.Hour, waiting(state.WaitAborted))
		if s.Exposure() != 0 || rec.Exposure != 0 || s.Rollbacks() != 1 || rec.Status != deploy.Running {
			t.Errorf("after the abort: exposure %v/%v, %d rollbacks, status %s; want 0, 1 rollback, still running", s.Exposure(), rec.Exposure, s.Rollbacks(), rec.Status)
		}
		if rec.Trigger == nil || rec.Trigger.Kind != state.TriggerAbort || !strings.Contains(rec.Trigger.Reason, "aborted by carol: not sure") {
			t.Errorf("trigger = %+v", rec.Trigger)
		}
		open, err := r.Report(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		if h := open.Headline(); !strings.Contains(h, "running, waiting for aborted at step 20%") {
			t.Errorf("headline = %q", h)
		}
		if md := open.Markdown(); !strings.Contains(md, "- In progress: checkout v2 at 0 % exposure, waiting for aborted") || !strings.Contains(md, "### Waiting") {
			t.Errorf("the report of the aborted release does not say it waits:\n%s", md)
		}
		// A Rollback ends the aborted release: rolled back, ErrAborted.
		rep, err := r.Rollback(t.Context(), id, "giving up on v2")
		if err != nil || rep.Status != deploy.RolledBack {
			t.Fatalf("Rollback: %v, status %s", err, rep.Status)
		}
		res := <-done
		if !errors.Is(res.err, deploy.ErrAborted) || res.rep.Status != deploy.RolledBack {
			t.Errorf("Resume ended %s with %v; want rolled back, ErrAborted", res.rep.Status, res.err)
		}
	})
}

// OnInconclusive: InconclusiveRollback rolls back at once, with
// ErrInconclusive, instead of waiting for a person.
func TestInconclusiveAnalysisCanRollBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &deploytest.Strategy{Steps: deploytest.Ramp(5*time.Minute, 0.2, 1)}
		a := inconclusiveAnalysis()
		a.OnInconclusive = deploy.InconclusiveRollback
		r := decisionRunner(t, s, state.NewMemory(), deploy.WithStepRules(deploy.StepRule{Step: "20%", Analysis: a}))
		rep, err := r.Run(t.Context(), rel)
		if !errors.Is(err, deploy.ErrInconclusive) || rep.Status != deploy.RolledBack {
			t.Fatalf("status %s, err %v; want rolled back with ErrInconclusive", rep.Status, err)
		}
	})
}
