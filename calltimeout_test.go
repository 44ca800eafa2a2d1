package deploy_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/deploykit/deploy"
	"github.com/deploykit/deploy/deploytest"
	"github.com/deploykit/deploy/monitor"
)

// A monitor whose own timeout is longer than the runner's Observe bound
// would be cut short without saying why: NewRunner refuses it, naming the
// monitor, both durations and the option to change, before any release
// exists. Raising the bound, or leaving the monitor's timeout to its
// default, is accepted.
func TestACallTimeoutLongerThanTheRunnersBoundIsRefused(t *testing.T) {
	s := &deploytest.Strategy{Steps: deploytest.Ramp(0, 1)}
	job := &monitor.Job{Name: "smoke", Command: []string{"true"}, Timeout: time.Minute}
	_, err := deploy.NewRunner(s, deploy.WithMonitors(job))
	if !errors.Is(err, deploy.ErrInvalid) {
		t.Fatalf("NewRunner: %v, want ErrInvalid", err)
	}
	for _, want := range []string{"monitor 0", "1m0s", "30s", "Timeouts.Observe"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if _, err := deploy.NewRunner(s, deploy.WithMonitors(job), deploy.WithTimeouts(deploy.Timeouts{Observe: 2 * time.Minute})); err != nil {
		t.Errorf("with the bound raised: %v", err)
	}
	if _, err := deploy.NewRunner(s, deploy.WithMonitors(&monitor.Job{Name: "smoke", Command: []string{"true"}})); err != nil {
		t.Errorf("with the job's default timeout: %v", err)
	}
}

// An analysis metric's measurement is bounded by the observe timeout too: a
// Source whose own timeout is longer is refused, naming the analysis and
// the metric.
func TestAnAnalysisSourceWithALongerTimeoutIsRefused(t *testing.T) {
	s := &deploytest.Strategy{Steps: deploytest.Ramp(0, 0.2, 1)}
	job := &monitor.Job{Name: "e2e", Command: []string{"true"}, Timeout: 5 * time.Minute}
	a := &deploy.Analysis{Name: "e2e", Metrics: []deploy.AnalysisMetric{{Name: "e2e", Source: job, Count: 1, Success: deploy.AtLeast(1)}}}
	_, err := deploy.NewRunner(s, deploy.WithMonitors(deploytest.Healthy()), deploy.WithStepRules(deploy.StepRule{Step: "20%", Analysis: a}))
	if !errors.Is(err, deploy.ErrInvalid) || !strings.Contains(err.Error(), "e2e") || !strings.Contains(err.Error(), "Timeouts.Observe") {
		t.Fatalf("NewRunner: %v, want ErrInvalid naming the metric and Timeouts.Observe", err)
	}
}
