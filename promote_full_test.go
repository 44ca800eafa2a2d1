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

// Argo Rollouts, "kubectl argo rollouts promote --full"
// (https://argo-rollouts.readthedocs.io/en/stable/generated/kubectl-argo-rollouts/kubectl-argo-rollouts_promote/):
// skips all remaining steps and analysis. Paused after 20 %, a full
// promotion goes straight to 100 %: the 40 % and 60 % steps, their inline
// analyses and their pauses are skipped, and the background analysis ends
// as skipped.
func TestFullPromotionSkipsTheRemainingStepsAndAnalyses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &deploytest.Strategy{Steps: deploytest.Ramp(10*time.Minute, 0.2, 0.4, 0.6, 1)}
		inline := newSeries(0.99)
		a := &deploy.Analysis{Name: "inline", Metrics: []deploy.AnalysisMetric{{Name: "ok", Measure: inline.measure, Success: deploy.AtLeast(0.95)}}}
		bg := newSeries(0.99)
		store := state.NewMemory()
		r := decisionRunner(t, s, store,
			deploy.WithStepRules(deploy.StepRule{Step: "20%", Pause: &deploy.Pause{}},
				deploy.StepRule{Step: "40%", Analysis: a, Pause: &deploy.Pause{}}, deploy.StepRule{Step: "60%", Analysis: a}),
			deploy.WithBackgroundAnalysis(deploy.Analysis{Name: "bg", Metrics: []deploy.AnalysisMetric{{Name: "bg", Measure: bg.measure, Interval: 5 * time.Minute, Success: deploy.AtLeast(0.95)}}}, 0))
		id, err := r.Start(t.Context(), rel)
		if err != nil {
			t.Fatal(err)
		}
		done := runInBackground(r, t.Context(), id)
		waitFor(t, store, id, time.Hour, waiting(state.WaitPause))
		if err := r.Promote(t.Context(), id, true, deploy.Decision{By: "frank", Reason: "hotfix"}); err != nil {
			t.Fatal(err)
		}
		res := <-done
		if res.err != nil {
			t.Fatalf("Resume: %v\n%s", res.err, res.rep.Markdown())
		}
		if diff := cmp.Diff([]string{"production/20%", "production/100%"}, s.Applied()); diff != "" {
			t.Errorf("applied (-want +got):\n%s", diff)
		}
		if n := len(inline.times()); n != 0 {
			t.Errorf("the skipped steps' analyses measured %d times", n)
		}
		if len(res.rep.Analyses) != 1 || res.rep.Analyses[0].Phase != state.AnalysisSkipped {
			t.Errorf("runs = %+v, want the background run, skipped", res.rep.Analyses)
		}
	})
}

// A full promotion asked before the release deploys is refused saying
// when it applies, not that "only a pause or an inconclusive analysis is
// promoted" — full applies while the release deploys, waiting or not.
func TestFullPromotionBeforeTheDeployPhaseSaysWhenItApplies(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &deploytest.Strategy{Steps: deploytest.Ramp(10*time.Minute, 0.2, 1)}
		r := decisionRunner(t, s, state.NewMemory())
		id, err := r.Start(t.Context(), rel)
		if err != nil {
			t.Fatal(err)
		}
		err = r.Promote(t.Context(), id, true, deploy.Decision{By: "hank"})
		if !errors.Is(err, deploy.ErrNotWaiting) || !strings.Contains(err.Error(), "a full promotion applies while the release deploys") {
			t.Errorf("Promote full in preflight: %v", err)
		}
	})
}
