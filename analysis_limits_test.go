package deploy_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/deploykit/deploy"
	"github.com/deploykit/deploy/deploytest"
	"github.com/deploykit/deploy/monitor"
	"github.com/deploykit/deploy/state"
)

// Argo Rollouts, "Dry-Run Mode"
// (https://argo-rollouts.readthedocs.io/en/stable/features/analysis/#dry-run-mode):
// a dry-run metric is measured and its results recorded, and it never
// decides the run: a failing dry-run metric leaves the run successful.
func TestDryRunMetricIsMeasuredAndNeverDecides(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &deploytest.Strategy{Steps: deploytest.Ramp(5*time.Minute, 0.2, 1)}
		good, bad := newSeries(0.99), newSeries(0.5)
		a := &deploy.Analysis{Name: "checks", Metrics: []deploy.AnalysisMetric{
			{Name: "success-rate", Measure: good.measure, Interval: time.Minute, Count: 3, Success: deploy.AtLeast(0.95)},
			{Name: "new-latency-slo", Measure: bad.measure, Interval: time.Minute, Count: 3, Success: deploy.AtLeast(0.95), DryRun: true},
		}}
		r := decisionRunner(t, s, state.NewMemory(), deploy.WithStepRules(deploy.StepRule{Step: "20%", Analysis: a}))
		rep, err := r.Run(t.Context(), rel)
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
		run := rep.Analyses[0]
		if run.Phase != state.AnalysisSuccessful || run.Metrics[1].Failed != 1 || run.Metrics[1].Phase != state.AnalysisFailed {
			t.Errorf("run = %+v, want successful with the dry-run metric failed", run)
		}
		if !strings.Contains(rep.Markdown(), "new-latency-slo (dry run)") {
			t.Errorf("the report does not show the dry-run metric")
		}
	})
}

// Argo Rollouts, "Consecutive error limit"
// (https://argo-rollouts.readthedocs.io/en/stable/features/analysis/#failure-conditions-and-failure-limit):
// errors do not count as measurements; consecutiveErrorLimit defaults to
// 4, so the fifth error in a row ends the run in Error, and the rollout
// aborts. A measurement that panics or hangs past the observe timeout is
// an error, and an error is measured again after 10 s (Argo's
// DefaultErrorRetryInterval), not a whole interval later: +0 (panic),
// then three hangs of 30 s each 10 s apart, then the fifth error.
func TestConsecutiveErrorsEndTheRunInError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &deploytest.Strategy{Steps: deploytest.Ramp(30*time.Minute, 0.2, 1)}
		var n atomic.Int32
		measure := func(ctx context.Context, t monitor.Target) (float64, error) {
			switch n.Add(1) {
			case 1:
				panic("nil map")
			case 2, 3, 4:
				time.Sleep(time.Hour) // past the 30 s observe timeout
			}
			return 0, errors.New("prometheus: 503")
		}
		a := &deploy.Analysis{Name: "success-rate", Metrics: []deploy.AnalysisMetric{{Name: "success-rate", Measure: measure, Interval: time.Minute, Count: 5, Success: deploy.AtLeast(0.95)}}}
		r := decisionRunner(t, s, state.NewMemory(), deploy.WithStepRules(deploy.StepRule{Step: "20%", Analysis: a}))
		start := time.Now()
		rep, err := r.Run(t.Context(), rel)
		if !errors.Is(err, deploy.ErrSourceFailed) || rep.Status != deploy.RolledBack {
			t.Fatalf("status %s, err %v; want rolled back with ErrSourceFailed", rep.Status, err)
		}
		m := rep.Analyses[0].Metrics[0]
		if m.Errors != 5 || m.Count != 0 || rep.Analyses[0].Phase != state.AnalysisError {
			t.Errorf("metric = %+v, want 5 errors, no measurement counted, run in error", m)
		}
		if !strings.Contains(m.Measurements[0].Reason, "panicked: nil map") || !strings.Contains(m.Measurements[1].Reason, "did not return within 30s") {
			t.Errorf("measurements = %+v", m.Measurements)
		}
		// Three hangs of 30 s and four retries 10 s apart: the 5th error
		// ends it within about two minutes, not five intervals.
		if got := rep.Trigger.At.Sub(start); got < 90*time.Second || got > 150*time.Second {
			t.Errorf("rolled back at +%v, want after the 5th error, about +2m", got)
		}
		time.Sleep(time.Hour) // let the abandoned measurements end
	})
}

// Argo Rollouts' analysis controller takes a measurement that erred again
// after DefaultErrorRetryInterval (10 s), whatever the metric's interval:
// a source that fails at once ends a run with the default
// consecutiveErrorLimit (4) 40 s after its first error, with errors at
// +0, +10s, +20s, +30s and +40s.
func TestAnErrorIsMeasuredAgainAfterTenSeconds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &deploytest.Strategy{Steps: deploytest.Ramp(30*time.Minute, 0.2, 1)}
		var at []time.Duration
		start := time.Now()
		measure := func(ctx context.Context, _ monitor.Target) (float64, error) {
			at = append(at, time.Since(start).Round(time.Second))
			return 0, errors.New("prometheus: 503")
		}
		a := &deploy.Analysis{Name: "success-rate", Metrics: []deploy.AnalysisMetric{{Name: "success-rate", Measure: measure, Interval: 5 * time.Minute, Count: 5, Success: deploy.AtLeast(0.95)}}}
		r := decisionRunner(t, s, state.NewMemory(), deploy.WithStepRules(deploy.StepRule{Step: "20%", Analysis: a}))
		_, err := r.Run(t.Context(), rel)
		if !errors.Is(err, deploy.ErrSourceFailed) {
			t.Fatalf("err %v, want ErrSourceFailed", err)
		}
		want := []time.Duration{0, 10 * time.Second, 20 * time.Second, 30 * time.Second, 40 * time.Second}
		if !slices.Equal(at, want) {
			t.Errorf("measured at %v, want %v", at, want)
		}
	})
}

// Argo Rollouts, consecutiveSuccessLimit (v1.8): the metric completes as
// successful once that many successes came in a row, before its count.
func TestConsecutiveSuccessLimitCompletesEarly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &deploytest.Strategy{Steps: deploytest.Ramp(0, 0.2, 1)}
		sr := newSeries(0.5, 0.99, 0.99, 0.99)
		a := &deploy.Analysis{Name: "warmup", Metrics: []deploy.AnalysisMetric{{Name: "success-rate", Measure: sr.measure, Interval: time.Minute, Count: 10,
			FailureLimit: deploy.Unlimited, ConsecutiveSuccessLimit: 3, Success: deploy.AtLeast(0.95)}}}
		r := decisionRunner(t, s, state.NewMemory(), deploy.WithStepRules(deploy.StepRule{Step: "20%", Analysis: a}))
		rep, err := r.Run(t.Context(), rel)
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
		if m := rep.Analyses[0].Metrics[0]; m.Count != 4 || m.Phase != state.AnalysisSuccessful {
			t.Errorf("metric = %+v, want successful after 4 measurements", m)
		}
	})
}

// Conditions are bounds said in words, inclusive or strict, with the
// metric's unit: never "10 > 10" for an inclusive bound.
func TestConditionsSayTheirBound(t *testing.T) {
	for _, tc := range []struct {
		c    deploy.Condition
		v    float64
		met  bool
		want string
	}{
		{deploy.AtMost(10), 10, true, "at most 10"},
		{deploy.Below(10), 10, false, "below 10"},
		{deploy.AtLeast(0.95), 0.95, true, "at least 0.95"},
		{deploy.Above(0.95), 0.95, false, "above 0.95"},
		{deploy.Between(1, 2), 2, true, "between 1 and 2"},
		{deploy.Between(1, 2), 2.5, false, "between 1 and 2"},
	} {
		if got := tc.c.Met(tc.v); got != tc.met {
			t.Errorf("%v met by %v = %v, want %v", tc.c, tc.v, got, tc.met)
		}
		if got := tc.c.String(); got != tc.want {
			t.Errorf("String = %q, want %q", got, tc.want)
		}
	}
}

// An analysis that cannot mean anything is refused by NewRunner, before
// any release, naming the field.
func TestBadAnalysesAreRefused(t *testing.T) {
	s := &deploytest.Strategy{Steps: deploytest.Ramp(time.Minute, 1)}
	m := func(v float64) func(context.Context, monitor.Target) (float64, error) {
		return func(context.Context, monitor.Target) (float64, error) { return v, nil }
	}
	for _, tc := range []struct {
		opt  deploy.Option
		want string
	}{
		{deploy.WithBackgroundAnalysis(deploy.Analysis{Name: "a"}, 0), `Analysis "a" has no Metrics`},
		{deploy.WithBackgroundAnalysis(deploy.Analysis{Name: "a", Metrics: []deploy.AnalysisMetric{{Name: "x", Measure: m(1)}}}, 0), `Metrics[0] ("x"): neither Success nor Failure is set`},
		{deploy.WithPrePromotionAnalysis(deploy.Analysis{Name: "a", Metrics: []deploy.AnalysisMetric{{Name: "x", Success: deploy.AtLeast(1)}}}), "exactly one of Source and Measure"},
		{deploy.WithPostPromotionAnalysis(deploy.Analysis{Name: "a", Metrics: []deploy.AnalysisMetric{{Name: "x", Measure: m(1), Count: 3, Success: deploy.AtLeast(1)}}}), "Count 3 needs an Interval"},
		{deploy.WithBackgroundAnalysis(deploy.Analysis{Name: "a", Metrics: []deploy.AnalysisMetric{{Name: "x", Measure: m(1), FailureLimit: -3, Success: deploy.AtLeast(1)}}}, 0), "FailureLimit -3"},
		{deploy.WithBackgroundAnalysis(deploy.Analysis{Name: "a", Metrics: []deploy.AnalysisMetric{{Name: "x", Measure: m(1), Success: deploy.Between(2, 1)}}}, 0), "Success between 2 and 1 is not a bound"},
		{deploy.WithBackgroundAnalysis(deploy.Analysis{Name: "a", Metrics: []deploy.AnalysisMetric{{Name: "x", Measure: m(1), Interval: time.Minute, Count: 3, FailureLimit: 5, Success: deploy.AtLeast(1)}}}, 0), "FailureLimit 5 is above the 3 measurements taken"},
		{deploy.WithPostPromotionAnalysis(deploy.Analysis{Name: "a", Metrics: []deploy.AnalysisMetric{{Name: "x", Measure: m(1), InconclusiveLimit: 2, Success: deploy.AtLeast(1), Failure: deploy.Below(0.5)}}}), "InconclusiveLimit 2 is above the 1 measurement taken"},
		{deploy.WithStepRules(deploy.StepRule{Step: "1"}), "adds nothing"},
		{deploy.WithStepRules(deploy.StepRule{Step: "1", Pause: &deploy.Pause{Duration: -time.Second}}), "Pause.Duration -1s"},
	} {
		_, err := deploy.NewRunner(s, deploy.WithStore(state.NewMemory()), tc.opt)
		if !errors.Is(err, deploy.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("err = %v, want ErrInvalid with %q", err, tc.want)
		}
	}
	// A rule for a step the plan does not have is refused at Run, before
	// anything is deployed.
	r, err := deploy.NewRunner(s, deploy.WithStore(state.NewMemory()), deploy.WithStepRules(deploy.StepRule{Step: "50%", Pause: &deploy.Pause{}}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Plan(context.Background(), rel); !errors.Is(err, deploy.ErrInvalid) || !strings.Contains(err.Error(), `has no step "50%"`) {
		t.Errorf("Plan: %v, want ErrInvalid naming the step", err)
	}
}

// Argo Rollouts assesses a run as Running while any of its metrics,
// dry-run ones included, has not completed (analysis.go, assessRunStatus:
// "if any metric is in-progress, then entire analysis run will be
// considered running"): a dry-run metric is measured to its count, so its
// results are there to read. Only a deciding metric's failure terminates
// the run early.
func TestDryRunMetricIsMeasuredToItsCount(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &deploytest.Strategy{Steps: deploytest.Ramp(time.Minute, 0.2, 1)}
		good, shadow := newSeries(0.99), newSeries(0.5, 0.99)
		a := &deploy.Analysis{Name: "checks", Metrics: []deploy.AnalysisMetric{
			{Name: "success-rate", Measure: good.measure, Interval: time.Minute, Count: 2, Success: deploy.AtLeast(0.95)},
			{Name: "new-slo", Measure: shadow.measure, Interval: time.Minute, Count: 4, FailureLimit: 1, Success: deploy.AtLeast(0.95), DryRun: true},
		}}
		r := decisionRunner(t, s, state.NewMemory(), deploy.WithStepRules(deploy.StepRule{Step: "20%", Analysis: a}))
		rep, err := r.Run(t.Context(), rel)
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
		run := rep.Analyses[0]
		dry := run.Metrics[1]
		if run.Phase != state.AnalysisSuccessful || dry.Count != 4 || dry.Failed != 1 || dry.Phase != state.AnalysisSuccessful {
			t.Errorf("run %s, dry-run metric = %+v; want the dry-run metric measured 4 times, successful within its limit", run.Phase, dry)
		}
		want := []time.Duration{0, time.Minute, 2 * time.Minute, 3 * time.Minute}
		if got := shadow.times(); len(got) != len(want) {
			t.Errorf("dry-run metric measured at %v, want %v", got, want)
		}
	})
}

// panicValidator is a monitor whose Validate panics.
type panicValidator struct{ deploytest.Monitor }

func (*panicValidator) Validate() error { panic("nil config") }

// A metric source is checked as the runner's monitors are — its Validate,
// if it has one, before anything is deployed — naming the analysis and the
// metric, and a Validate that panics is an error, not a crash.
func TestAnAnalysisSourceIsValidatedBeforeAnythingHappens(t *testing.T) {
	s := &deploytest.Strategy{Steps: deploytest.Ramp(time.Minute, 0.2, 1)}
	for _, tc := range []struct {
		src  deploy.Monitor
		want string
	}{
		{&monitor.Web{Metric: "ok", URL: "ftp://metrics.example/q", JSONPath: "$.ok"}, `Analysis "smoke" Metrics[0] ("ok"): Source`},
		{&monitor.Job{}, `Analysis "smoke" Metrics[0] ("ok"): Source`},
		{&panicValidator{}, "panicked: nil config"},
	} {
		a := deploy.Analysis{Name: "smoke", Metrics: []deploy.AnalysisMetric{{Name: "ok", Source: tc.src, Success: deploy.AtLeast(1)}}}
		for _, opt := range []deploy.Option{
			deploy.WithBackgroundAnalysis(a, 0),
			deploy.WithPostPromotionAnalysis(a),
			deploy.WithStepRules(deploy.StepRule{Step: "20%", Analysis: &a}),
		} {
			_, err := deploy.NewRunner(s, deploy.WithStore(state.NewMemory()), opt)
			if !errors.Is(err, deploy.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("NewRunner with %T: %v, want ErrInvalid with %q", tc.src, err, tc.want)
			}
		}
	}
}
