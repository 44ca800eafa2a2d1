package notify_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/deploykit/deploy"
	"github.com/deploykit/deploy/notify"
)

var at = time.Date(2025, 3, 4, 10, 15, 30, 0, time.UTC)

var release = deploy.Release{Service: "checkout", Version: "v2", Environment: "production", PreviousVersion: "v1",
	Commit: "abc123", Description: "Faster checkout",
	Links: map[string]string{"ticket": "https://github.com/acme/checkout/issues/12", "log": "https://ci.example.com/run/7", "design": "docs/design.md"}}

const report = `## Rolled back: Faster checkout

### What Was Delivered
- Nothing: checkout v2 was rolled back
- Faster checkout

### Key Artifacts
- Ticket: https://github.com/acme/checkout/issues/12

### Deployment Details
- Deployed: 2025-03-04T10:00:00Z
- Environment: production
- Version/Commit: v2 / abc123
- Previous version: v1
- Strategy: test
- Duration: 25m0s
- Status: rolled back

### Rollback
- Trigger: error rate 5% > 1.5% (breach)
- At step: production/25%

### Follow-up Items
- [ ] Document what went wrong: error rate 5% > 1.5%
- [ ] Investigate root cause
- [ ] Plan fix before re-attempting

### Lessons Learned
- The rollback triggered on its own and restored the previous version in 2m0s
`

// events returns one event of each kind, as the runner emits them for a
// release that rolls back at 25 %.
func events() map[string]deploy.Event {
	base := deploy.Event{At: at, DeploymentID: "checkout-production-1", Release: release, Phase: deploy.PhaseDeploy,
		Stage: "production", Status: deploy.Running, Links: release.Links}
	with := func(f func(e *deploy.Event)) deploy.Event {
		e := base
		f(&e)
		return e
	}
	return map[string]deploy.Event{
		"started": with(func(e *deploy.Event) {
			e.Kind, e.Phase, e.Message = deploy.EventStarted, deploy.PhasePreflight, "release checkout v2 to production started"
		}),
		"waiting": with(func(e *deploy.Event) {
			e.Kind, e.Phase, e.Message = deploy.EventGate, deploy.PhasePreflight, "waiting: window: closed until Monday 09:00"
		}),
		"blocked": with(func(e *deploy.Event) {
			e.Kind, e.Phase, e.Message = deploy.EventGate, deploy.PhasePreflight, "blocked by gate ci: 2 checks failing"
		}),
		"phase": with(func(e *deploy.Event) {
			e.Kind, e.Phase, e.Message = deploy.EventPhase, deploy.PhasePreflight, "preflight passed (2 gates)"
		}),
		"step": with(func(e *deploy.Event) {
			e.Kind, e.Step, e.Exposure, e.Message = deploy.EventStep, "25%", 0.25, "step 25% applied: exposure 25%, bake 10m0s"
		}),
		"healthy": with(func(e *deploy.Event) {
			e.Kind, e.Step, e.Exposure, e.Verdict, e.Message = deploy.EventObservation, "25%", 0.25, "continue", "all triggers pass"
			e.Readings = []deploy.Reading{{Trigger: "error rate", Metric: "error_rate", Outcome: "pass", Reason: "error rate 0.1% <= 1.5%"}}
		}),
		"breach": with(func(e *deploy.Event) {
			e.Kind, e.Step, e.Exposure, e.Verdict, e.Message = deploy.EventObservation, "25%", 0.25, "rollback", "error rate 5% > 1.5%"
			e.Readings = []deploy.Reading{
				{Trigger: "error rate", Metric: "error_rate", Outcome: "fail", Reason: "error rate 5% > 1.5%"},
				{Trigger: "p95", Metric: "latency_p95", Outcome: "inconclusive", Reason: "p95: no data"},
				{Trigger: "cpu", Metric: "cpu", Outcome: "pass", Reason: "cpu 40% <= 80%"},
			}
		}),
		"rollback": with(func(e *deploy.Event) {
			e.Kind, e.Phase, e.Exposure, e.Message = deploy.EventRollback, deploy.PhaseRollback, 0.25, "rolling back: error rate 5% > 1.5%"
		}),
		"rollback failed": with(func(e *deploy.Event) {
			e.Kind, e.Phase, e.Urgent, e.Message = deploy.EventRollback, deploy.PhaseRollback, true, "ROLLBACK FAILED: strategy test rollback: boom — a person must act now"
		}),
		"finished": with(func(e *deploy.Event) {
			e.Kind, e.Phase, e.Status, e.Report = deploy.EventFinished, deploy.PhaseCommunicate, deploy.RolledBack, report
			e.Message = "checkout v2 to production: rolled back — error rate 5% > 1.5%"
		}),
		"succeeded": with(func(e *deploy.Event) {
			e.Kind, e.Phase, e.Status, e.Exposure = deploy.EventFinished, deploy.PhaseComplete, deploy.Succeeded, 1
			e.Message, e.Report = "checkout v2 to production: succeeded", "## Completed: Faster checkout\n"
		}),
		"finished urgent": with(func(e *deploy.Event) {
			e.Kind, e.Phase, e.Status, e.Urgent = deploy.EventFinished, deploy.PhaseRollback, deploy.RollbackFailed, true
			e.Message = "checkout v2 to production: rollback failed — boom"
		}),
	}
}

func TestLogLevels(t *testing.T) {
	evs := events()
	for _, tc := range []struct {
		event string
		level string
		extra map[string]any
	}{
		{"started", "INFO", nil},
		{"step", "INFO", map[string]any{"step": "25%"}},
		{"healthy", "INFO", map[string]any{"verdict": "continue", "step": "25%"}},
		{"breach", "WARN", map[string]any{"verdict": "rollback", "step": "25%"}},
		{"rollback", "WARN", nil},
		{"rollback failed", "ERROR", nil},
		{"finished", "INFO", map[string]any{"status": "rolled back"}},
		{"finished urgent", "ERROR", map[string]any{"status": "rollback failed"}},
	} {
		t.Run(tc.event, func(t *testing.T) {
			var buf bytes.Buffer
			l := notify.Log{Logger: slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))}
			e := evs[tc.event]
			if err := l.Notify(context.Background(), e); err != nil {
				t.Fatal(err)
			}
			var got map[string]any
			if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
				t.Fatalf("%v: %s", err, buf.Bytes())
			}
			delete(got, "time")
			want := map[string]any{
				"level": tc.level, "msg": e.Message, "event": string(e.Kind), "deployment.id": "checkout-production-1",
				"service.name": "checkout", "service.version": "v2", "deployment.environment.name": "production",
				"phase": string(e.Phase), "exposure": e.Exposure, "stage": "production",
			}
			for k, v := range tc.extra {
				want[k] = v
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("record (-want +got):\n%s", diff)
			}
		})
	}
	if (notify.Log{}).Name() != "log" {
		t.Error(`Log.Name() != "log"`)
	}
}

func TestConsoleFormat(t *testing.T) {
	evs := events()
	c := &notify.Console{Location: time.UTC}
	for _, tc := range []struct{ event, want string }{
		{"started", "10:15:30 ▶     0%  preflight  release checkout v2 to production started\n"},
		{"waiting", "10:15:30 □     0%  preflight  waiting: window: closed until Monday 09:00\n"},
		{"phase", "10:15:30 ■     0%  preflight  preflight passed (2 gates)\n"},
		{"step", "10:15:30 →    25%  deploy 25%  step 25% applied: exposure 25%, bake 10m0s\n"},
		{"healthy", "10:15:30 ·    25%  deploy 25%  CONTINUE\n           ok   error rate 0.1% <= 1.5%\n"},
		{"breach", "10:15:30 ·    25%  deploy 25%  ROLLBACK\n" +
			"           FAIL error rate 5% > 1.5%\n" +
			"           ?    p95: no data\n" +
			"           ok   cpu 40% <= 80%\n"},
		{"rollback", "10:15:30 ↩    25%  rollback  rolling back: error rate 5% > 1.5%\n"},
		{"rollback failed", "10:15:30 !!     0%  rollback  ROLLBACK FAILED: strategy test rollback: boom — a person must act now\n"},
		{"finished", "10:15:30 ●     0%  communicate  checkout v2 to production: rolled back — error rate 5% > 1.5%\n"},
		{"finished urgent", "10:15:30 !!     0%  rollback  checkout v2 to production: rollback failed — boom\n"},
	} {
		if diff := cmp.Diff(tc.want, c.Format(evs[tc.event])); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.event, diff)
		}
	}
}

func TestConsoleReport(t *testing.T) {
	var buf bytes.Buffer
	c := &notify.Console{W: &buf, Report: true, Location: time.UTC}
	evs := events()
	for _, k := range []string{"step", "finished"} {
		if err := c.Notify(context.Background(), evs[k]); err != nil {
			t.Fatal(err)
		}
	}
	got := buf.String()
	if !strings.HasSuffix(got, "\n\n"+report) {
		t.Errorf("the report does not follow the final line:\n%s", got)
	}
	if n := strings.Count(got, "### Follow-up Items"); n != 1 {
		t.Errorf("report printed %d times", n)
	}
	buf.Reset()
	c.Report = false
	c.Notify(context.Background(), evs["finished"])
	if strings.Contains(buf.String(), "###") {
		t.Errorf("report printed with Report false:\n%s", buf.String())
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errBroken }

var errBroken = errorString("broken pipe")

type errorString string

func (e errorString) Error() string { return string(e) }

func TestConsoleWriteError(t *testing.T) {
	c := &notify.Console{W: failWriter{}}
	if err := c.Notify(context.Background(), events()["step"]); err != errBroken {
		t.Errorf("Notify = %v, want the writer's error (so the runner retries)", err)
	}
}
