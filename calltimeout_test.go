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
