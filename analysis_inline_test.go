package deploy_test

import (
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/deploykit/deploy"
	"github.com/deploykit/deploy/deploytest"
	"github.com/deploykit/deploy/monitor"
	"github.com/deploykit/deploy/state"
)

// Argo Rollouts, "Analysis as a Canary Step"
// (https://argo-rollouts.readthedocs.io/en/stable/features/analysis/#analysis-as-a-canary-step):
// an analysis step runs a success-rate metric (interval 1m, count 3,
// successCondition result >= 0.95, failureLimit 0); a failed run aborts
// the rollout and sets the canary's weight back to 0. The run measures at
// once, then every minute: the 2nd measurement fails at +1m, and the
// release rolls back then, without waiting for the 3rd.
func TestInlineAnalysisFailingOnSecondMeasurementRollsBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &deploytest.Strategy{Steps: deploytest.Ramp(5*time.Minute, 0.2, 0.4, 1)}
		sr := newSeries(0.99, 0.90, 0.99)
		a := &deploy.Analysis{Name: "success-rate", Metrics: []deploy.AnalysisMetric{{
			Name: "success-rate", Measure: sr.measure, Unit: "ratio", Interval: time.Minute, Count: 3, Success: deploy.AtLeast(0.95),
		}}}
		store := state.NewMemory()
		r := decisionRunner(t, s, store, deploy.WithStepRules(deploy.StepRule{Step: "20%", Analysis: a}))
		start := time.Now()
		rep, err := r.Run(t.Context(), rel)
		if !errors.Is(err, deploy.ErrUnhealthy) {
			t.Fatalf("err = %v, want ErrUnhealthy", err)
		}
		if rep.Status != deploy.RolledBack || s.Exposure() != 0 || rep.Exposure != 0 {
			t.Fatalf("status %s, exposure %v/%v; want rolled back to 0", rep.Status, s.Exposure(), rep.Exposure)
		}
		if diff := cmp.Diff([]time.Duration{0, time.Minute}, sr.times()); diff != "" {
			t.Errorf("measurements at (-want +got):\n%s", diff)
		}
		if got := rep.Trigger.At.Sub(start); got != time.Minute {
			t.Errorf("rolled back at +%v, want +1m (the 2nd measurement)", got)
		}
		if !strings.Contains(rep.Trigger.Reason, "success-rate = 0.9 ratio, success condition not met: needs at least 0.95 ratio") || rep.Trigger.Metric != "success-rate" {
			t.Errorf("trigger = %+v", rep.Trigger)
		}
		if diff := cmp.Diff([]string{"production/20%"}, s.Applied()); diff != "" {
			t.Errorf("applied (-want +got):\n%s", diff)
		}
		if len(rep.Analyses) != 1 {
			t.Fatalf("analyses = %+v, want 1 run", rep.Analyses)
		}
		run := rep.Analyses[0]
		m := run.Metrics[0]
		if run.Phase != state.AnalysisFailed || run.Kind != state.AnalysisInline || run.StepName != "20%" || m.Count != 2 || m.Failed != 1 || m.Successful != 1 || len(m.Measurements) != 2 {
			t.Errorf("run = %+v", run)
		}
		md := rep.Markdown()
		if !strings.Contains(md, "## Analysis") || !strings.Contains(md, "success-rate") {
			t.Errorf("the report has no analysis section:\n%s", md)
		}
	})
}

// Argo Rollouts, "Analysis as a Canary Step": a successful run lets the
// rollout go on to the next step once its count is reached (3
// measurements, at +0, +1m, +2m); the step's bake (5m) runs alongside, so
// the next step comes at +5m. Each run's counters are its own: the second
// step's run starts from zero (a failure in the first, within its
// failureLimit 1, does not count against the second).
func TestInlineAnalysisCountersBelongToTheRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &deploytest.Strategy{Steps: deploytest.Ramp(5*time.Minute, 0.2, 0.4, 1)}
		sr := newSeries(0.99, 0.90, 0.99, 0.90, 0.99, 0.99)
		a := &deploy.Analysis{Name: "success-rate", Metrics: []deploy.AnalysisMetric{{
			Name: "success-rate", Measure: sr.measure, Interval: time.Minute, Count: 3, FailureLimit: 1, Success: deploy.AtLeast(0.95),
		}}}
		store := state.NewMemory()
		r := decisionRunner(t, s, store, deploy.WithStepRules(deploy.StepRule{Step: "20%", Analysis: a}, deploy.StepRule{Step: "40%", Analysis: a}))
		rep, err := r.Run(t.Context(), rel)
		if err != nil {
			t.Fatalf("Run: %v\n%s", err, rep.Markdown())
		}
		want := []time.Duration{0, time.Minute, 2 * time.Minute, 5 * time.Minute, 6 * time.Minute, 7 * time.Minute}
		if diff := cmp.Diff(want, sr.times()); diff != "" {
			t.Errorf("measurements at (-want +got):\n%s", diff)
		}
		if len(rep.Analyses) != 2 {
			t.Fatalf("runs = %d, want 2", len(rep.Analyses))
		}
		for i, run := range rep.Analyses {
			if m := run.Metrics[0]; run.Phase != state.AnalysisSuccessful || m.Failed != 1 || m.Count != 3 {
				t.Errorf("run %d = %s, %d failed of %d; want successful, 1 failed of 3", i, run.Phase, m.Failed, m.Count)
			}
		}
	})
}

// Argo Rollouts' job provider
// (https://argo-rollouts.readthedocs.io/en/stable/analysis/job/) makes a
// pass/fail measurement of a Kubernetes Job inside an AnalysisTemplate;
// here monitor.Job (and the hooks' checks) report a pass/fail Check, not
// a metric. An AnalysisMetric whose Source reports a check of its name
// measures 1 when it passed and 0 when it failed, with the check's detail
// in the reason; a name that matches nothing says what was reported.
func TestAnalysisMetricMeasuresACheckOfItsName(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var n atomic.Int32
		smoke := &deploytest.Monitor{Script: func(monitor.Target) (monitor.Observation, error) {
			ok := n.Add(1) < 3
			return monitor.Observation{At: time.Now(), Checks: []monitor.Check{{Name: "smoke", OK: ok, Detail: "exit status 1: curl: (7) refused"}}}, nil
		}}
		a := &deploy.Analysis{Name: "smoke", Metrics: []deploy.AnalysisMetric{{
			Name: "smoke", Source: smoke, Interval: time.Minute, Count: 3, Success: deploy.AtLeast(1)}}}
		s := &deploytest.Strategy{Steps: deploytest.Ramp(time.Minute, 0.2, 1)}
		rep, err := decisionRunner(t, s, state.NewMemory(), deploy.WithStepRules(deploy.StepRule{Step: "20%", Analysis: a})).Run(t.Context(), rel)
		if !errors.Is(err, deploy.ErrUnhealthy) {
			t.Fatalf("Run: %v, want ErrUnhealthy on the third, failed, check", err)
		}
		m := rep.Analyses[0].Metrics[0]
		if m.Successful != 2 || m.Failed != 1 || m.Errors != 0 {
			t.Errorf("metric = %+v, want 2 successful and 1 failed measurements", m)
		}
		if last := m.Measurements[len(m.Measurements)-1].Reason; !strings.Contains(last, "smoke = 0") || !strings.Contains(last, "curl: (7) refused") {
			t.Errorf("reason %q, want the value 0 and the check's detail", last)
		}

		// A name that matches no metric and no check: the error says what
		// the source reported.
		other := &deploy.Analysis{Name: "smoke", Metrics: []deploy.AnalysisMetric{{
			Name: "smoke-test", Source: smoke, Success: deploy.AtLeast(1), ConsecutiveErrorLimit: deploy.NoErrors}}}
		rep, err = decisionRunner(t, s, state.NewMemory(), deploy.WithStepRules(deploy.StepRule{Step: "20%", Analysis: other})).Run(t.Context(), rel)
		if !errors.Is(err, deploy.ErrSourceFailed) {
			t.Fatalf("Run: %v, want ErrSourceFailed", err)
		}
		if got := rep.Analyses[0].Metrics[0].Measurements[0].Reason; !strings.Contains(got, `no metric or check "smoke-test"`) || !strings.Contains(got, `checks: "smoke"`) {
			t.Errorf("reason %q, want it to name the checks reported", got)
		}
	})
}
