package deploy_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/deploykit/deploy"
	"github.com/deploykit/deploy/deploytest"
	"github.com/deploykit/deploy/state"
)

// The dry run shows where a release will hold: each step's analysis,
// pause and approvers, and the background and promotion analyses.
func TestPlanShowsAnalysesPausesAndApprovers(t *testing.T) {
	s := &deploytest.Strategy{Steps: deploytest.Ramp(10*time.Minute, 0.2, 0.5, 1)}
	a := deploy.Analysis{Name: "success-rate", Metrics: []deploy.AnalysisMetric{{Name: "success-rate", Measure: newSeries(1).measure, Success: deploy.AtLeast(0.95)}}}
	r, err := deploy.NewRunner(s, deploy.WithStore(state.NewMemory()),
		deploy.WithStepRules(deploy.StepRule{Step: "20%", Analysis: &a}, deploy.StepRule{Step: "50%", Pause: &deploy.Pause{}, Approval: true, Approvers: []string{"sre"}}),
		deploy.WithBackgroundAnalysis(a, 1), deploy.WithPostPromotionAnalysis(a))
	if err != nil {
		t.Fatal(err)
	}
	doc, err := r.Plan(context.Background(), rel)
	if err != nil {
		t.Fatal(err)
	}
	md := doc.Markdown()
	for _, want := range []string{
		"- Analyses: background success-rate from step 1 of each stage; post-promotion success-rate",
		"| 1 | 20% | 20 % | 10m0s |  | success-rate |  |",
		"| 2 | 50% | 50 % | 10m0s | by sre |  | until promoted |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("the plan has no %q:\n%s", want, md)
		}
	}
}
