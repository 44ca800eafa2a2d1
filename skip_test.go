package deploy_test

import (
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/deploykit/deploy"
	"github.com/deploykit/deploy/deploytest"
	"github.com/deploykit/deploy/state"
)

// Argo Rollouts lets a person skip an analysis that holds a rollout
// ("promote" skips the current step, the analysis step included). Here
// Skip ends the inline run of the step being deployed as skipped: the
// release goes on as if it had succeeded. Skip of another step, or of a
// step with nothing to skip, is refused.
func TestSkipEndsTheStepsAnalysis(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &deploytest.Strategy{Steps: deploytest.Ramp(10*time.Minute, 0.2, 1)}
		slow := newSeries(0.99)
		a := &deploy.Analysis{Name: "soak", Metrics: []deploy.AnalysisMetric{{Name: "ok", Measure: slow.measure, Interval: time.Hour, Count: 24, Success: deploy.AtLeast(0.95)}}}
		store := state.NewMemory()
		r := decisionRunner(t, s, store, deploy.WithStepRules(deploy.StepRule{Step: "20%", Analysis: a}))
		start := time.Now()
		id, err := r.Start(t.Context(), rel)
		if err != nil {
			t.Fatal(err)
		}
		done := runInBackground(r, t.Context(), id)
		time.Sleep(30 * time.Minute)
		if err := r.Skip(t.Context(), id, 1, deploy.Decision{By: "gina"}); !errors.Is(err, deploy.ErrNotWaiting) {
			t.Errorf("Skip of step 1 while step 0 deploys: %v, want ErrNotWaiting", err)
		}
		if err := r.Skip(t.Context(), id, 0, deploy.Decision{By: "gina", Reason: "soak test not needed for a config change"}); err != nil {
			t.Fatal(err)
		}
		res := <-done
		if res.err != nil {
			t.Fatal(res.err)
		}
		run := res.rep.Analyses[0]
		if run.Phase != state.AnalysisSkipped || run.Metrics[0].Count != 1 {
			t.Errorf("run = %+v, want skipped after 1 measurement", run)
		}
		// Skipped at +30m, the 10-minute bake long done: 100 % at once,
		// then its bake.
		if got := res.rep.Finished.Sub(start); got != 40*time.Minute {
			t.Errorf("release took %v, want 40m", got)
		}
	})
}

// Skip of a step that has no analysis to skip is refused (the person
// would believe they skipped something), and so is a Skip before the
// deploy phase, saying why rather than "step 0 is not the step being
// deployed (0)".
func TestSkipWithNothingToSkipIsRefused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &deploytest.Strategy{Steps: deploytest.Ramp(10*time.Minute, 0.2, 1)}
		store := state.NewMemory()
		r := decisionRunner(t, s, store)
		id, err := r.Start(t.Context(), rel)
		if err != nil {
			t.Fatal(err)
		}
		err = r.Skip(t.Context(), id, 0, deploy.Decision{By: "gina"})
		if !errors.Is(err, deploy.ErrNotWaiting) || strings.Contains(err.Error(), "(0)") || !strings.Contains(err.Error(), "preflight") {
			t.Errorf("Skip in preflight: %v, want ErrNotWaiting naming the phase", err)
		}
		done := runInBackground(r, t.Context(), id)
		time.Sleep(5 * time.Minute) // step 0 bakes; it has no analysis
		if err := r.Skip(t.Context(), id, 0, deploy.Decision{By: "gina"}); !errors.Is(err, deploy.ErrNotWaiting) || !strings.Contains(err.Error(), "no analysis") {
			t.Errorf("Skip of a step without an analysis: %v, want ErrNotWaiting saying it has no analysis", err)
		}
		if res := <-done; res.err != nil {
			t.Fatal(res.err)
		}
	})
}
