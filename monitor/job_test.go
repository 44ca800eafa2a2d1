//go:build unix

package monitor_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/deploykit/deploy/monitor"
)

func jobCheck(t *testing.T, j *monitor.Job) monitor.Check {
	t.Helper()
	obs, err := j.Observe(t.Context(), webTarget)
	if err != nil {
		t.Fatal(err)
	}
	if len(obs.Checks) != 1 {
		t.Fatalf("checks %+v", obs.Checks)
	}
	return obs.Checks[0]
}

// TestJobExitStatusDecides reproduces Argo Rollouts' job provider
// (https://argoproj.github.io/argo-rollouts/analysis/job/: the job
// succeeding is a successful measurement, failing a failed one) with a real
// process: exit 0 passes, exit 3 fails, and what it wrote is in the detail.
func TestJobExitStatusDecides(t *testing.T) {
	c := jobCheck(t, &monitor.Job{Name: "smoke", Command: []string{"sh", "-c", "echo checking {{.Service}}; echo 'HTTP 500 on /cart' >&2; exit 3"}})
	if c.OK || c.Name != "smoke" || !strings.Contains(c.Detail, "exit status 3") ||
		!strings.Contains(c.Detail, "checking checkout") || !strings.Contains(c.Detail, "HTTP 500 on /cart") {
		t.Errorf("check %+v", c)
	}
	c = jobCheck(t, &monitor.Job{Command: []string{"sh", "-c", `test "$1" = v2 && echo ok`, "sh", "{{.Version}}"}})
	if !c.OK || c.Name != "job sh" || !strings.Contains(c.Detail, "exit status 0") || !strings.Contains(c.Detail, ": ok") {
		t.Errorf("check %+v", c)
	}
}

// TestJobOutputIsBoundedAndRedacted keeps the end of a long output, and
// masks the values of Env.
func TestJobOutputIsBoundedAndRedacted(t *testing.T) {
	c := jobCheck(t, &monitor.Job{Command: []string{"sh", "-c", `yes line | head -n 50000; echo "token $API_TOKEN"; exit 1`},
		Env: []string{"API_TOKEN=s3cr3t-t0ken"}, MaxOutput: 256})
	if c.OK || len(c.Detail) > 400 || !strings.Contains(c.Detail, "token REDACTED") || strings.Contains(c.Detail, "s3cr3t") {
		t.Errorf("check (%d bytes) %+v", len(c.Detail), c)
	}
}

func TestJobThatCannotRunIsAnError(t *testing.T) {
	for _, j := range []*monitor.Job{
		{Command: []string{"/nonexistent/deploykit-check"}},
		{},
		{Command: []string{"true"}, Timeout: -1},
		{Command: []string{"echo", "{{.Nope}}"}},
	} {
		if _, err := j.Observe(t.Context(), webTarget); err == nil {
			t.Errorf("%+v: no error", j)
		}
	}
}

// TestJobKilledByTheCallersDeadlineSaysSo: under the runner, the observe
// timeout (30 s by default) bounds a Job whose own Timeout (1 min by
// default) is longer; the check says how long the job ran and which bound
// stopped it, not the Timeout it never reached.
func TestJobKilledByTheCallersDeadlineSaysSo(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	obs, err := (&monitor.Job{Command: []string{"sleep", "30"}}).Observe(ctx, webTarget)
	if err != nil {
		t.Fatal(err)
	}
	c := obs.Checks[0]
	if c.OK || strings.Contains(c.Detail, "killed after the timeout 1m0s") || !strings.Contains(c.Detail, "at the caller's deadline") {
		t.Errorf("check %+v, want it killed at the caller's deadline, naming it", c)
	}
}
