package state

import (
	"slices"
	"time"
)

// AnalysisKind says how an analysis run is attached to a release.
type AnalysisKind string

// Analysis kinds.
const (
	// AnalysisInline: bound to a step, which waits for its result.
	AnalysisInline AnalysisKind = "inline"
	// AnalysisBackground: from a starting step until the stage's last step.
	AnalysisBackground AnalysisKind = "background"
	// AnalysisPrePromotion: before the step that brings the release to
	// full exposure is applied.
	AnalysisPrePromotion AnalysisKind = "pre-promotion"
	// AnalysisPostPromotion: after that step was applied.
	AnalysisPostPromotion AnalysisKind = "post-promotion"
)

// AnalysisPhase is the state of an analysis run, of one of its metrics, or
// the result of one measurement.
type AnalysisPhase string

// Analysis phases (Argo Rollouts' names).
const (
	AnalysisRunning      AnalysisPhase = "running"
	AnalysisSuccessful   AnalysisPhase = "successful"
	AnalysisFailed       AnalysisPhase = "failed"
	AnalysisInconclusive AnalysisPhase = "inconclusive"
	AnalysisError        AnalysisPhase = "error"
	// AnalysisSkipped: a person skipped the run (deploy.Runner.Skip), or a
	// full promotion did.
	AnalysisSkipped AnalysisPhase = "skipped"
)

// Valid reports whether p is one of the phases.
func (p AnalysisPhase) Valid() bool {
	switch p {
	case AnalysisRunning, AnalysisSuccessful, AnalysisFailed, AnalysisInconclusive, AnalysisError, AnalysisSkipped:
		return true
	}
	return false
}

// Done reports whether p ends a run or a metric.
func (p AnalysisPhase) Done() bool { return p != AnalysisRunning && p != "" }

// AnalysisRun is one run of an analysis: its metrics, their counters and
// their last measurements. Counters belong to the run: a new run (the next
// step's, or after a Retry) starts from zero; a Resume goes on with them.
type AnalysisRun struct {
	// Name is the analysis's name; Kind how it is attached.
	Name string       `json:"name"`
	Kind AnalysisKind `json:"kind"`
	// Stage, Step and StepName say which step started it.
	Stage    string `json:"stage,omitempty"`
	Step     int    `json:"step"`
	StepName string `json:"stepName,omitempty"`
	// Attempt is the release's attempt (Record.Attempt) it belongs to.
	Attempt int           `json:"attempt,omitempty"`
	Phase   AnalysisPhase `json:"phase"`
	Start   time.Time     `json:"start"`
	End     time.Time     `json:"end,omitzero"`
	// Reason says why it ended so, naming the metric.
	Reason string `json:"reason,omitempty"`
	// Accepted is set on an inconclusive run a person promoted past.
	Accepted bool        `json:"accepted,omitempty"`
	Metrics  []MetricRun `json:"metrics"`
}

// MetricRun is one metric of an analysis run.
type MetricRun struct {
	Name   string        `json:"name"`
	Unit   string        `json:"unit,omitempty"`
	DryRun bool          `json:"dryRun,omitempty"`
	Phase  AnalysisPhase `json:"phase"`
	// Count is the number of measurements taken; the others count them by
	// result, and the consecutive ones the current streak.
	Count                int `json:"count"`
	Successful           int `json:"successful"`
	Failed               int `json:"failed"`
	Inconclusive         int `json:"inconclusive"`
	Errors               int `json:"errors"`
	ConsecutiveErrors    int `json:"consecutiveErrors"`
	ConsecutiveSuccesses int `json:"consecutiveSuccesses"`
	// Next is when the next measurement is due.
	Next time.Time `json:"next,omitzero"`
	// Measurements are the last measurements (up to MeasurementsKept).
	Measurements []AnalysisMeasurement `json:"measurements,omitempty"`
	Reason       string                `json:"reason,omitempty"`
}

// MeasurementsKept is how many measurements a MetricRun keeps, the most
// recent; its counters count them all.
const MeasurementsKept = 20

// AnalysisMeasurement is one measurement of a metric.
type AnalysisMeasurement struct {
	At    time.Time     `json:"at"`
	Phase AnalysisPhase `json:"phase"`
	// Value is what was measured; nil when nothing was (an error, no data).
	Value  *float64 `json:"value,omitempty"`
	Reason string   `json:"reason,omitempty"`
}

func cloneRuns(runs []AnalysisRun) []AnalysisRun {
	if runs == nil {
		return nil
	}
	out := make([]AnalysisRun, len(runs))
	for i, r := range runs {
		out[i] = r
		out[i].Metrics = make([]MetricRun, len(r.Metrics))
		for j, m := range r.Metrics {
			out[i].Metrics[j] = m
			out[i].Metrics[j].Measurements = slices.Clone(m.Measurements)
			for k, x := range m.Measurements {
				out[i].Metrics[j].Measurements[k].Value = clonePtr(x.Value)
			}
		}
	}
	return out
}
