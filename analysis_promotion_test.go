package deploy_test

import (
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/deploykit/deploy"
	"github.com/deploykit/deploy/deploytest"
	"github.com/deploykit/deploy/state"
)

// blueGreen deploys the new version on the idle side (the preview, no
// users), then switches everyone to it.
func blueGreen() *deploytest.Strategy {
	return &deploytest.Strategy{Steps: []deploytest.StepSpec{{Name: "preview", Exposure: 0}, {Name: "switch", Exposure: 1, Bake: 10 * time.Minute}}}
}

func smoke(name string, s *series) deploy.Analysis {
	return deploy.Analysis{Name: name, Metrics: []deploy.AnalysisMetric{{Name: name, Measure: s.measure, Success: deploy.AtLeast(1)}}}
}

// Argo Rollouts, blue-green "PrePromotionAnalysis" and
// "PostPromotionAnalysis"
// (https://argo-rollouts.readthedocs.io/en/stable/features/bluegreen/#prepromotionanalysis):
// the pre-promotion analysis runs against the preview before the switch,
// which waits for it; the post-promotion analysis runs once after it. A
// metric without interval or count is measured once: here each at +0 —
// the post-promotion check once, not every interval (the issue saw 120).
func TestPromotionAnalysesRunOnceAroundTheSwitch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := blueGreen()
		pre, post := newSeries(1), newSeries(1)
		r := decisionRunner(t, s, state.NewMemory(), deploy.WithPrePromotionAnalysis(smoke("preview-smoke", pre)), deploy.WithPostPromotionAnalysis(smoke("post-smoke", post)))
		rep, err := r.Run(t.Context(), rel)
		if err != nil {
			t.Fatalf("Run: %v\n%s", err, rep.Markdown())
		}
		if len(pre.times()) != 1 || len(post.times()) != 1 {
			t.Errorf("pre-promotion measured %d times, post-promotion %d; want once each", len(pre.times()), len(post.times()))
		}
		var kinds []state.AnalysisKind
		for _, run := range rep.Analyses {
			kinds = append(kinds, run.Kind)
			if run.Phase != state.AnalysisSuccessful || run.StepName != "switch" {
				t.Errorf("run %s = %s at %s", run.Name, run.Phase, run.StepName)
			}
		}
		if diff := cmp.Diff([]state.AnalysisKind{state.AnalysisPrePromotion, state.AnalysisPostPromotion}, kinds); diff != "" {
			t.Errorf("runs (-want +got):\n%s", diff)
		}
	})
}

// Argo Rollouts, "PrePromotionAnalysis": "if the AnalysisRun fails, the
// rollout will abort and not promote" — the switch is never applied.
func TestFailedPrePromotionAnalysisNeverSwitches(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := blueGreen()
		r := decisionRunner(t, s, state.NewMemory(), deploy.WithPrePromotionAnalysis(smoke("preview-smoke", newSeries(0))))
		rep, err := r.Run(t.Context(), rel)
		if !errors.Is(err, deploy.ErrUnhealthy) || rep.Status != deploy.RolledBack {
			t.Fatalf("status %s, err %v", rep.Status, err)
		}
		if diff := cmp.Diff([]string{"production/preview"}, s.Applied()); diff != "" {
			t.Errorf("applied (-want +got):\n%s", diff)
		}
	})
}

// Argo Rollouts, "PostPromotionAnalysis": a failed run aborts the rollout
// and switches traffic back to the previous version.
func TestFailedPostPromotionAnalysisSwitchesBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := blueGreen()
		r := decisionRunner(t, s, state.NewMemory(), deploy.WithPostPromotionAnalysis(smoke("post-smoke", newSeries(0))))
		rep, err := r.Run(t.Context(), rel)
		if !errors.Is(err, deploy.ErrUnhealthy) || rep.Status != deploy.RolledBack || s.Exposure() != 0 {
			t.Fatalf("status %s, err %v, exposure %v", rep.Status, err, s.Exposure())
		}
		if got := rep.Trigger.At.Sub(rep.Started); got != 0 {
			t.Errorf("rolled back at +%v, want at the switch (+0)", got)
		}
	})
}
