package decide

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/deploykit/deploy/state"
)

// Every section of a release's page renders: a template error would only
// show when a record has that section.
func TestEverySectionOfAReleasesPageRenders(t *testing.T) {
	f := newFixture(t)
	rec := waitingRecord("r1")
	t0 := rec.Created
	v := 0.031
	rec.Waiting = &state.Wait{Kind: state.WaitInconclusive, Stage: "production", Step: 1, StepName: "50%", Since: t0, Until: t0.Add(time.Hour),
		Reason: "error_rate inconclusive 2 of 2 tolerated", Approvers: []string{"alice", "bob"}, Analysis: "errors"}
	rec.Attempt = 1
	rec.Analyses = []state.AnalysisRun{{Name: "errors", Kind: state.AnalysisInline, Stage: "production", Step: 1, StepName: "50%", Attempt: 1,
		Phase: state.AnalysisInconclusive, Start: t0, End: t0.Add(time.Minute), Reason: "error_rate: inconclusive",
		Metrics: []state.MetricRun{{Name: "error_rate", Unit: "ratio", DryRun: true, Phase: state.AnalysisInconclusive, Count: 3, Successful: 1, Inconclusive: 2,
			Measurements: []state.AnalysisMeasurement{{At: t0, Phase: state.AnalysisInconclusive, Value: &v}}}}}}
	rec.Decisions = []state.Decision{
		{Kind: state.DecisionAbort, Step: 1, By: "bob", Reason: "odd", At: t0, Taken: t0.Add(time.Second), Outcome: "rolled back"},
		{Kind: state.DecisionRetry, By: "bob", At: t0.Add(time.Minute), Taken: t0.Add(time.Minute)},
		{Kind: state.DecisionPromote, Full: true, Step: 1, By: "alice", At: t0.Add(2 * time.Minute)},
	}
	rec.Gates = []state.Gate{{Name: "ci", Passed: true, Evidence: "build 42 green", At: t0}}
	rec.Trigger = &state.Trigger{Kind: state.TriggerManual, Reason: "asked", At: t0}
	rec.Error = "an earlier attempt was aborted"
	for i := range MaxTimeline + 5 {
		rec.Timeline = append(rec.Timeline, state.Entry{At: t0.Add(time.Duration(i) * time.Second), Kind: state.EntryObservation, Outcome: state.OutcomeHealthy, Exposure: 0.5})
	}
	f.store.set(rec)
	w := f.do("GET", "/releases/r1", aliceToken, nil)
	body := w.Body.String()
	if w.Code != http.StatusOK {
		t.Fatalf("GET: %d %s", w.Code, body)
	}
	for _, want := range []string{
		`inconclusive at step 2 (50%)`, "approvers: alice, bob", `<th>Attempt</th><td>2</td>`,
		`id="analyses"`, "error_rate (dry run): inconclusive, 3 measured",
		`id="decisions-taken"`, "promote (full)", "pending", "rolled back",
		`id="gates"`, "build 42 green", "manual: asked", "an earlier attempt was aborted",
		"7 earlier entries are in the", `id="promote"`, `id="promote-full"`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
}
