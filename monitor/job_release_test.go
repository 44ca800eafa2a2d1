//go:build unix

package monitor_test

import (
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/deploykit/deploy"
	"github.com/deploykit/deploy/deploytest"
	"github.com/deploykit/deploy/monitor"
	"github.com/deploykit/deploy/state"
)

// TestJobRollsAReleaseBack runs a release whose only monitor is a Job: a
// smoke script that fails against v2 rolls it back at the first look, and
// the same script, run after the rollback, verifies it.
func TestJobRollsAReleaseBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		job := &monitor.Job{Name: "smoke", Command: []string{"sh", "-c",
			`if [ "$1" = bake ] && [ "$2" = v2 ]; then echo "GET /cart: 502"; exit 1; fi; echo ok`, "sh", "{{.Phase}}", "{{.Version}}"}}
		s := &deploytest.Strategy{Steps: deploytest.Ramp(5*time.Minute, 0.1, 1)}
		r, err := deploy.NewRunner(s, deploy.WithStore(state.NewMemory()), deploy.WithMonitors(job),
			deploy.WithNotifiers(&deploytest.Recorder{}), deploy.WithWaiver(deploy.FridayDeploy, "test"))
		if err != nil {
			t.Fatal(err)
		}
		rep, err := r.Run(t.Context(), deploy.Release{Service: "checkout", Version: "v2", PreviousVersion: "v1", Environment: "staging"})
		if !errors.Is(err, deploy.ErrUnhealthy) || rep.Status != deploy.RolledBack {
			t.Fatalf("status %s, err %v", rep.Status, err)
		}
		if !strings.Contains(rep.Trigger.Reason, "smoke") || !strings.Contains(rep.Trigger.Reason, "GET /cart: 502") {
			t.Errorf("trigger %q", rep.Trigger.Reason)
		}
	})
}
