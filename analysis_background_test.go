package deploy_test

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/deploykit/deploy"
	"github.com/deploykit/deploy/deploytest"
	"github.com/deploykit/deploy/monitor"
	"github.com/deploykit/deploy/state"
)

// Argo Rollouts, "Background Analysis" and "Delaying Background Analysis"
// (https://argo-rollouts.readthedocs.io/en/stable/features/analysis/#background-analysis):
// steps of 20, 40, 60, 80 % with 10-minute pauses, a success-rate metric
// every 5 minutes (successCondition >= 0.95, failureLimit 3) started with
// startingStep: 2, the setWeight: 40 step — Argo counts the pauses as
// steps; a deploykit step is a weight and its bake, so it is step 1 here.
// Before it, the canary has no data for the metric (the naive translation
// rolled back at 20 % on no data): nothing is measured then. The run
// measures from +10m every 5 minutes until the last step has baked (+50m)
// and ends successful at the promotion.
func TestBackgroundAnalysisFromStartingStepIgnoresNoDataBefore(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &deploytest.Strategy{Steps: deploytest.Ramp(10*time.Minute, 0.2, 0.4, 0.6, 0.8, 1)}
		sr := newSeries(0.99)
		measure := func(ctx context.Context, t monitor.Target) (float64, error) {
			if t.Exposure < 0.4 {
				return math.NaN(), nil // no data for the canary yet
			}
			return sr.measure(ctx, t)
		}
		a := deploy.Analysis{Name: "success-rate", Metrics: []deploy.AnalysisMetric{{
			Name: "success-rate", Measure: measure, Interval: 5 * time.Minute, FailureLimit: 3, Success: deploy.AtLeast(0.95),
		}}}
		r := decisionRunner(t, s, state.NewMemory(), deploy.WithBackgroundAnalysis(a, 1))
		rep, err := r.Run(t.Context(), rel)
		if err != nil {
			t.Fatalf("Run: %v\n%s", err, rep.Markdown())
		}
		var want []time.Duration
		for at := 10 * time.Minute; at <= 50*time.Minute; at += 5 * time.Minute {
			want = append(want, at)
		}
		if diff := cmp.Diff(want, sr.times()); diff != "" {
			t.Errorf("measurements at (-want +got):\n%s", diff)
		}
		if len(rep.Analyses) != 1 {
			t.Fatalf("runs = %+v, want 1", rep.Analyses)
		}
		run := rep.Analyses[0]
		if run.Kind != state.AnalysisBackground || run.StepName != "40%" || run.Phase != state.AnalysisSuccessful || run.Metrics[0].Errors != 0 || run.Metrics[0].Count != 9 {
			t.Errorf("run = %+v", run)
		}
	})
}

// Argo Rollouts, "Background Analysis": "if the measured metric is below
// 95% and there are three such measurements, the analysis is considered
// Failed" — failureLimit 3 tolerates three failures, the fourth fails the
// run, and the rollout aborts, the canary's weight back to zero. The
// metric fails from +20m: measurements at +20, +25, +30 fail within the
// limit, +35m is the fourth.
func TestBackgroundAnalysisFailingPastItsLimitRollsBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &deploytest.Strategy{Steps: deploytest.Ramp(10*time.Minute, 0.2, 0.4, 0.6, 0.8, 1)}
		sr := newSeries(0.99, 0.99, 0.90)
		a := deploy.Analysis{Name: "success-rate", Metrics: []deploy.AnalysisMetric{{
			Name: "success-rate", Measure: sr.measure, Interval: 5 * time.Minute, FailureLimit: 3, Success: deploy.AtLeast(0.95),
		}}}
		r := decisionRunner(t, s, state.NewMemory(), deploy.WithBackgroundAnalysis(a, 1))
		start := time.Now()
		rep, err := r.Run(t.Context(), rel)
		if !errors.Is(err, deploy.ErrUnhealthy) || rep.Status != deploy.RolledBack || s.Exposure() != 0 {
			t.Fatalf("status %s, err %v, exposure %v; want rolled back to 0 with ErrUnhealthy", rep.Status, err, s.Exposure())
		}
		if got := rep.Trigger.At.Sub(start); got != 35*time.Minute {
			t.Errorf("rolled back at +%v, want +35m (the fourth failure)", got)
		}
		if m := rep.Analyses[0].Metrics[0]; m.Failed != 4 || m.Successful != 2 {
			t.Errorf("metric = %+v, want 4 failed, 2 successful", m)
		}
	})
}

// A startingStep past a stage's last step would never start the
// background analysis: the release would go out unanalysed, silently.
// Argo's validation refuses a startingStep beyond the steps; so does
// the runner, before anything is created, naming the option and the stage.
func TestBackgroundAnalysisStartingStepPastThePlanIsRefused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &deploytest.Strategy{Steps: deploytest.Ramp(10*time.Minute, 0.2, 0.5, 1)}
		a := deploy.Analysis{Name: "success-rate", Metrics: []deploy.AnalysisMetric{{
			Name: "success-rate", Measure: newSeries(1).measure, Interval: time.Minute, Success: deploy.AtLeast(0.95)}}}
		store := state.NewMemory()
		r := openRunner(t, s, store, deploy.WithMonitors(deploytest.Healthy()), deploy.WithBackgroundAnalysis(a, 3))
		_, err := r.Run(context.Background(), rel)
		if !errors.Is(err, deploy.ErrInvalid) || !strings.Contains(err.Error(), "WithBackgroundAnalysis startingStep 3") || !strings.Contains(err.Error(), `"production"`) {
			t.Fatalf("Run: %v, want ErrInvalid naming startingStep 3 and the stage", err)
		}
		if len(s.Applied()) != 0 {
			t.Errorf("applied %v before refusing", s.Applied())
		}
		// The last step is a valid starting step.
		r = openRunner(t, s, state.NewMemory(), deploy.WithMonitors(deploytest.Healthy()), deploy.WithBackgroundAnalysis(a, 2))
		if _, err := r.Plan(context.Background(), rel); err != nil {
			t.Errorf("Plan with startingStep 2 of 3 steps: %v", err)
		}
	})
}
