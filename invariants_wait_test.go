package deploy_test

import (
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/deploykit/deploy"
	"github.com/deploykit/deploy/deploytest"
	"github.com/deploykit/deploy/state"
)

// The invariants on waits, decisions and analysis runs: a record that
// breaks one is refused with a *CorruptError naming the field, never
// acted on (no Apply while a release waits; a run's counters add up).
func TestDamagedWaitsDecisionsAndRunsAreRefused(t *testing.T) {
	run := func(m state.MetricRun) []state.AnalysisRun {
		return []state.AnalysisRun{{Name: "a", Kind: state.AnalysisInline, Phase: state.AnalysisRunning, Metrics: []state.MetricRun{m}}}
	}
	cases := []struct {
		field  string
		damage func(r *state.Record)
	}{
		{"Waiting.Kind", func(r *state.Record) { r.Waiting = &state.Wait{Kind: "coffee"} }},
		{"Waiting.Kind", func(r *state.Record) { r.Waiting = &state.Wait{Kind: state.WaitPause} }}, // in preflight
		{"Waiting.Kind", func(r *state.Record) {
			r.Phase, r.Trigger, r.Waiting = deploy.PhaseRollback, &state.Trigger{Kind: state.TriggerBreach}, &state.Wait{Kind: state.WaitAborted}
		}},
		{"Applying", func(r *state.Record) {
			r.Phase, r.Applying, r.Waiting = deploy.PhaseDeploy, true, &state.Wait{Kind: state.WaitApproval}
		}},
		{"Decisions[0].By", func(r *state.Record) { r.Decisions = []state.Decision{{Kind: state.DecisionPromote}} }},
		{"Decisions[0].Kind", func(r *state.Record) { r.Decisions = []state.Decision{{Kind: "veto", By: "x"}} }},
		{"Analyses[0].Metrics[0].Count", func(r *state.Record) {
			r.Analyses = run(state.MetricRun{Phase: state.AnalysisRunning, Count: 3, Successful: 1})
		}},
		{"Analyses[0].Metrics[0].ConsecutiveErrors", func(r *state.Record) {
			r.Analyses = run(state.MetricRun{Phase: state.AnalysisRunning, Errors: 1, ConsecutiveErrors: 2})
		}},
		{"Attempt", func(r *state.Record) { r.Attempt = -1 }},
	}
	for _, c := range cases {
		t.Run(c.field, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				store := state.NewMemory()
				s := ramp()
				r := openRunner(t, s, store, deploy.WithMonitors(deploytest.Healthy()))
				id, err := r.Start(t.Context(), rel)
				if err != nil {
					t.Fatal(err)
				}
				rec, _ := store.Load(t.Context(), id)
				c.damage(rec)
				rec.LeaseUntil = time.Time{}
				if err := store.Update(t.Context(), rec); err != nil {
					t.Fatal(err)
				}
				_, err = r.Resume(t.Context(), id)
				var ce *deploy.CorruptError
				if !errors.Is(err, deploy.ErrCorrupt) || !errors.As(err, &ce) || ce.Field != c.field {
					t.Fatalf("Resume: %v, want a *CorruptError naming %s", err, c.field)
				}
				if len(s.Applied()) != 0 {
					t.Errorf("applied %v from a damaged record", s.Applied())
				}
			})
		})
	}
}
