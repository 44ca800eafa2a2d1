package deploy_test

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
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

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s (-want +got):\n%s", name, diff)
	}
}

func TestReportSucceeded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &deploytest.Strategy{Steps: deploytest.Ramp(5*time.Minute, 0.1, 1)}
		h := newHarness(t, s, deploytest.Healthy(), deploy.WithSchedule(monitor.Schedule{Windows: []monitor.Window{{Name: "intensive", Duration: 10 * time.Minute, Interval: 5 * time.Minute}}}))
		rep, err := h.runner.Run(t.Context(), rel)
		if err != nil {
			t.Fatal(err)
		}
		golden(t, "report-succeeded.md", rep.Markdown())

		var ws map[string]any
		if err := json.Unmarshal(rep.WorkflowState(), &ws); err != nil {
			t.Fatal(err)
		}
		want := map[string]any{
			"currentPhase":    "complete",
			"completedPhases": []any{"understand", "research", "scope", "design", "decompose", "implement", "validate", "deploy"},
			"completedAt":     "2000-01-01T00:20:00Z",
			"status":          "succeeded",
		}
		if diff := cmp.Diff(want, ws); diff != "" {
			t.Errorf("workflow state (-want +got):\n%s", diff)
		}
	})
}

func TestReportRolledBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &deploytest.Strategy{Steps: deploytest.Ramp(5*time.Minute, 0.1, 1)}
		h := newHarness(t, s, deploytest.Regression(1, deploytest.Health{ErrorRate: 0.001, P95: 900 * time.Millisecond}))
		rep, err := h.runner.Run(t.Context(), rel)
		if err == nil {
			t.Fatal("no error")
		}
		golden(t, "report-rolled-back.md", rep.Markdown())
		var ws deploy.WorkflowState
		if err := json.Unmarshal(rep.WorkflowState(), &ws); err != nil {
			t.Fatal(err)
		}
		want := deploy.WorkflowState{CurrentPhase: "deploy", CompletedPhases: deploy.WorkflowPhases[:7], Status: deploy.RolledBack}
		if diff := cmp.Diff(want, ws); diff != "" {
			t.Errorf("workflow state (-want +got):\n%s", diff)
		}
	})
}

func TestPlanIsADryRun(t *testing.T) {
	s := &deploytest.Strategy{Steps: deploytest.Ramp(time.Hour, 0.01, 0.05, 0.25, 0.5, 1)}
	h := newHarness(t, s, deploytest.Healthy())
	doc, err := h.runner.Plan(context.Background(), rel)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "plan.md", doc.Markdown())
	if len(s.Applied()) != 0 || h.monitor.Calls() != 0 || len(h.rec.Events()) != 0 {
		t.Error("Plan had side effects")
	}
}

// TestPlanListsEveryProblem: a dry run of a release Run would refuse lists
// every pitfall at once, and its rollback procedure says there is no way back.
func TestPlanListsEveryProblem(t *testing.T) {
	s := &deploytest.Strategy{Steps: deploytest.Ramp(time.Minute, 1), NoRollback: true}
	r, err := deploy.NewRunner(s, deploy.WithStore(state.NewMemory()))
	if err != nil {
		t.Fatal(err)
	}
	doc, err := r.Plan(context.Background(), deploy.Release{Service: "checkout", Version: "v2"})
	if err != nil {
		t.Fatal(err)
	}
	var pitfalls []string
	for _, p := range doc.Problems {
		for _, pf := range []string{"no-rollback-plan", "no-monitoring", "silent-deploy"} {
			if strings.Contains(p, "pitfall "+pf+":") {
				pitfalls = append(pitfalls, pf)
			}
		}
	}
	if diff := cmp.Diff([]string{"no-rollback-plan", "no-monitoring", "silent-deploy"}, pitfalls); diff != "" {
		t.Errorf("problems (-want +got):\n%s\n%v", diff, doc.Problems)
	}
	if md := doc.Markdown(); !strings.Contains(md, "1. test rollback: none: the strategy has no way back (pitfall no-rollback-plan); the new version stays") {
		t.Errorf("the procedure does not say there is no way back:\n%s", md)
	}
	// Run refuses it with all three reasons.
	_, err = r.Run(t.Context(), deploy.Release{Service: "checkout", Version: "v2"})
	if !errors.Is(err, deploy.ErrBlocked) || strings.Count(err.Error(), "pitfall ") != 3 {
		t.Errorf("Run: %v, want ErrBlocked naming the three pitfalls", err)
	}
}

// a Failed release (no rollback path) at the second stage reports
// "Nothing: failed before it reached users" although staging serves it.
func TestReportOfAFailedSecondStageNamesTheCompletedOne(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &deploytest.Strategy{Steps: deploytest.Ramp(time.Minute, 1), NoRollback: true}
		calls := 0
		s2 := &failSecondStage{Strategy: s, calls: &calls}
		r := openRunner(t, s2, state.NewMemory(), deploy.WithMonitors(deploytest.Healthy()),
			deploy.WithWaiver(deploy.NoRollbackPlan, "test"),
			deploy.WithStages(deploy.Stage{Name: "staging", Environment: "staging"}, deploy.Stage{Name: "production", Environment: "production"}))
		rep, err := r.Run(t.Context(), rel)
		md := rep.Markdown()
		t.Logf("status %s err %v", rep.Status, err)
		if strings.Contains(md, "failed before it reached users") {
			t.Errorf("report says nothing reached users, but staging runs v2:\n%s", md[:min(len(md), 400)])
		}
	})
}

type failSecondStage struct {
	*deploytest.Strategy
	calls *int
}

func (s *failSecondStage) Plan(ctx context.Context, d *deploy.Deployment) ([]deploy.Step, error) {
	steps, err := s.Strategy.Plan(ctx, d)
	if err != nil {
		return nil, err
	}
	if d.Stage.Name == "production" {
		steps[0].Apply = func(ctx context.Context, d *deploy.Deployment) error {
			return errors.New("kubectl: connection refused")
		}
	}
	return steps, nil
}
