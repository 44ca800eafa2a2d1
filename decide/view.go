package decide

import (
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/deploykit/deploy/state"
)

// View is what the page shows of one release, and what
// GET /api/releases/{id} returns. Steps are counted as the runner counts
// them: by their index in the current stage's plan, from 0.
type View struct {
	ID       string        `json:"id"`
	Release  state.Release `json:"release"`
	Strategy string        `json:"strategy,omitempty"`
	Status   state.Status  `json:"status"`
	Phase    state.Phase   `json:"phase"`
	Stage    int           `json:"stage"`
	// Step is the step a decision is for now: the one waited at, else the
	// one being deployed (-1 once every step of the stage is done).
	Step     int         `json:"step"`
	Steps    []StepView  `json:"steps,omitempty"`
	Exposure float64     `json:"exposure"`
	Waiting  *state.Wait `json:"waiting,omitempty"`
	// Offers are the decisions that apply now.
	Offers    []Action            `json:"offers"`
	Decisions []state.Decision    `json:"decisions,omitempty"`
	Analyses  []state.AnalysisRun `json:"analyses,omitempty"`
	Gates     []state.Gate        `json:"gates,omitempty"`
	Metrics   []MetricView        `json:"metrics,omitempty"`
	Counters  state.Counters      `json:"counters"`
	Trigger   *state.Trigger      `json:"trigger,omitempty"`
	Error     string              `json:"error,omitempty"`
	Attempt   int                 `json:"attempt,omitempty"`
	Created   time.Time           `json:"created"`
	Updated   time.Time           `json:"updated"`
	Holder    string              `json:"holder,omitempty"`
	// Timeline holds the newest MaxTimeline entries, oldest first;
	// Omitted counts those left out.
	Timeline []state.Entry `json:"timeline"`
	Omitted  int           `json:"omitted,omitempty"`
}

// StepView is one step of the current stage.
type StepView struct {
	Index int    `json:"index"`
	Name  string `json:"name"`
	// State is done, current, waiting or next.
	State string `json:"state"`
}

// MetricView is the last measurement of a metric beside its baseline.
type MetricView struct {
	Name     string             `json:"name"`
	Last     *state.Measurement `json:"last,omitempty"`
	Baseline *state.Measurement `json:"baseline,omitempty"`
}

func viewOf(rec *state.Record) View {
	v := View{
		ID: rec.ID, Release: rec.Release, Strategy: rec.Strategy, Status: rec.Status, Phase: rec.Phase,
		Stage: rec.Stage, Step: stepOf(rec), Exposure: rec.Exposure, Offers: offers(rec),
		Decisions: rec.Decisions, Analyses: rec.Analyses,
		Gates: rec.Gates, Counters: rec.Counters, Trigger: rec.Trigger, Error: rec.Error, Attempt: rec.Attempt,
		Created: rec.Created, Updated: rec.Updated, Holder: rec.Holder,
	}
	if v.Offers == nil {
		v.Offers = []Action{}
	}
	w, waiting := waitingFor(rec)
	if waiting {
		v.Waiting = &w
	}
	deploying := rec.Phase == state.PhaseDeploy || rec.Phase == state.PhasePreflight
	for i, name := range rec.Steps {
		s := StepView{Index: i, Name: name, State: "next"}
		switch {
		case waiting && i == w.Step && deploying:
			s.State = "waiting"
		case i < rec.Step || !deploying:
			s.State = "done"
		case i == rec.Step:
			s.State = "current"
		}
		v.Steps = append(v.Steps, s)
	}
	names := map[string]bool{}
	for n := range rec.Last {
		names[n] = true
	}
	for n := range rec.Baseline {
		names[n] = true
	}
	for _, n := range slices.Sorted(maps.Keys(names)) {
		m := MetricView{Name: n}
		if x, ok := rec.Last[n]; ok {
			m.Last = &x
		}
		if x, ok := rec.Baseline[n]; ok {
			m.Baseline = &x
		}
		v.Metrics = append(v.Metrics, m)
	}
	v.Timeline = rec.Timeline
	if n := len(v.Timeline); n > MaxTimeline {
		v.Omitted = n - MaxTimeline
		v.Timeline = v.Timeline[n-MaxTimeline:]
	}
	if v.Timeline == nil {
		v.Timeline = []state.Entry{}
	}
	return v
}

func percent(x float64) string { return strconv.FormatFloat(x*100, 'f', -1, 64) + " %" }
