package deploy_test

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/deploykit/deploy"
	"github.com/deploykit/deploy/deploytest"
	"github.com/deploykit/deploy/state"
)

// A run's counters are saved with the release: a process that crashes in
// the middle of an inline analysis (count 5, failureLimit 1) and is resumed
// by another goes on with the run's counters — the failure before the crash
// and the one after add up to 2, past the limit, and the release rolls
// back. Argo Rollouts keeps them in the AnalysisRun's status for the same
// reason (https://argo-rollouts.readthedocs.io/en/stable/features/analysis/).
func TestAnalysisCountersSurviveResume(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &deploytest.Strategy{Steps: deploytest.Ramp(10*time.Minute, 0.2, 1)}
		sr := newSeries(0.5, 0.99, 0.5)
		a := &deploy.Analysis{Name: "success-rate", Metrics: []deploy.AnalysisMetric{{
			Name: "success-rate", Measure: sr.measure, Interval: time.Minute, Count: 5, FailureLimit: 1, Success: deploy.AtLeast(0.95),
		}}}
		shared := state.NewMemory()
		fs := deploytest.NewFaultStore(shared)
		rule := deploy.WithStepRules(deploy.StepRule{Step: "20%", Analysis: a})
		first := decisionRunner(t, s, fs, rule, deploy.WithHolder("first"))
		id, err := first.Start(t.Context(), rel)
		if err != nil {
			t.Fatal(err)
		}
		done := runInBackground(first, t.Context(), id)
		waitFor(t, shared, id, time.Hour, func(rec *state.Record) bool {
			return len(rec.Analyses) == 1 && rec.Analyses[0].Metrics[0].Count == 2
		})
		fs.Crash()
		<-done
		time.Sleep(5 * time.Minute) // the crashed runner's lease runs out
		second := decisionRunner(t, s, shared, rule, deploy.WithHolder("second"))
		rep, err := second.Resume(t.Context(), id)
		if err == nil || rep.Status != deploy.RolledBack {
			t.Fatalf("status %s, err %v; want rolled back", rep.Status, err)
		}
		m := rep.Analyses[0].Metrics[0]
		if len(rep.Analyses) != 1 || m.Failed != 2 || m.Count != 3 {
			t.Errorf("runs %d, metric %+v; want one run whose counters went on (2 failed of 3)", len(rep.Analyses), m)
		}
	})
}
