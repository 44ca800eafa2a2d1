package deploy_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/deploykit/deploy"
	"github.com/deploykit/deploy/deploytest"
	"github.com/deploykit/deploy/monitor"
	"github.com/deploykit/deploy/state"
	"github.com/google/go-cmp/cmp"
)

func TestPitfallGuards(t *testing.T) {
	s := ramp()
	cases := []struct {
		name string
		opts []deploy.Option
		want string
	}{
		{"no monitor", []deploy.Option{deploy.WithNotifiers(&deploytest.Recorder{})}, "pitfall no-monitoring"},
		{"no notifier", []deploy.Option{deploy.WithMonitors(deploytest.Healthy())}, "pitfall silent-deploy"},
	}
	for _, c := range cases {
		r, err := deploy.NewRunner(s, append(c.opts, deploy.WithStore(state.NewMemory()))...)
		if err != nil {
			t.Fatal(err)
		}
		_, err = r.Run(t.Context(), rel)
		if !errors.Is(err, deploy.ErrBlocked) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want ErrBlocked naming %q", c.name, err, c.want)
		}
	}
	noRollback := &deploytest.Strategy{Steps: s.Steps, NoRollback: true}
	r, _ := deploy.NewRunner(noRollback, deploy.WithStore(state.NewMemory()), deploy.WithMonitors(deploytest.Healthy()), deploy.WithNotifiers(&deploytest.Recorder{}))
	if _, err := r.Run(t.Context(), rel); !errors.Is(err, deploy.ErrBlocked) || !strings.Contains(err.Error(), "no-rollback-plan") {
		t.Errorf("no rollback path: err = %v", err)
	}
	if len(noRollback.Applied()) != 0 || len(s.Applied()) != 0 {
		t.Error("a guarded release applied steps")
	}
	if _, err := deploy.NewRunner(s, deploy.WithWaiver(deploy.NoMonitoring, " ")); !errors.Is(err, deploy.ErrInvalid) {
		t.Errorf("waiver without reason: err = %v", err)
	}
	// Staging needs none of it.
	r, _ = deploy.NewRunner(s, deploy.WithStore(state.NewMemory()), deploy.WithSchedule(monitor.Schedule{}))
	staging := rel
	staging.Environment = "staging"
	synctest.Test(t, func(t *testing.T) {
		if rep, err := r.Run(t.Context(), staging); err != nil || rep.Status != deploy.Succeeded {
			t.Errorf("staging release: %v", err)
		}
	})
}

func TestWaiverAppearsInReport(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r, err := deploy.NewRunner(ramp(), deploy.WithStore(state.NewMemory()), deploy.WithNotifiers(&deploytest.Recorder{}),
			deploy.WithWaiver(deploy.NoMonitoring, "metrics pipeline migration; on-call watching dashboards by hand"),
			deploy.WithWaiver(deploy.FridayDeploy, "hotfix for incident 4711"), deploy.WithSchedule(monitor.Schedule{}))
		if err != nil {
			t.Fatal(err)
		}
		rep, err := r.Run(t.Context(), rel)
		if err != nil {
			t.Fatal(err)
		}
		md := rep.Markdown()
		for _, want := range []string{
			"- Waived pitfall no-monitoring: metrics pipeline migration; on-call watching dashboards by hand",
			"- Waived pitfall friday-deploy: hotfix for incident 4711",
			"- [ ] Revisit waived pitfall no-monitoring",
		} {
			if !strings.Contains(md, want) {
				t.Errorf("report lacks %q:\n%s", want, md)
			}
		}
	})
}

func TestDefaultWindowRefusesWeekend(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// synctest's clock starts at 2000-01-01, a Saturday.
		s := ramp()
		r, _ := deploy.NewRunner(s, deploy.WithStore(state.NewMemory()), deploy.WithMonitors(deploytest.Healthy()),
			deploy.WithNotifiers(&deploytest.Recorder{}), deploy.WithLocation(time.UTC))
		rep, err := r.Run(t.Context(), rel)
		if !errors.Is(err, deploy.ErrBlocked) || rep.Status != deploy.Blocked {
			t.Fatalf("err = %v, want blocked", err)
		}
		if !strings.Contains(rep.Trigger.Reason, "window closed until Monday 09:00 UTC: weekend") {
			t.Errorf("reason = %q", rep.Trigger.Reason)
		}
		if len(s.Applied()) != 0 {
			t.Error("applied steps on a weekend")
		}

		// With a gate deadline past Monday morning, the release waits for the window.
		s = ramp()
		start := time.Now()
		r, _ = deploy.NewRunner(s, deploy.WithStore(state.NewMemory()), deploy.WithMonitors(deploytest.Healthy()),
			deploy.WithNotifiers(&deploytest.Recorder{}), deploy.WithLocation(time.UTC), deploy.WithGateDeadline(72*time.Hour),
			deploy.WithSchedule(monitor.Schedule{}))
		rep, err = r.Run(t.Context(), rel)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range rep.Timeline {
			if e.Kind == "step" {
				if want := start.Add(2*24*time.Hour + 9*time.Hour); !e.At.Equal(want) {
					t.Errorf("first step at %v, want Monday 09:00 (%v)", e.At, want)
				}
				break
			}
		}
	})
}

func TestGates(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// A gate that asks to wait 20 minutes, then passes.
		start := time.Now()
		approvedAt := start.Add(20 * time.Minute)
		pending := deploy.GateFunc(func(ctx context.Context, d *deploy.Deployment) error {
			if time.Now().Before(approvedAt) {
				return deploy.RetryAt(approvedAt, "approval pending")
			}
			return nil
		})
		h := newHarness(t, ramp(), deploytest.Healthy(), deploy.WithGates(pending))
		rep, err := h.runner.Run(t.Context(), rel)
		if err != nil {
			t.Fatal(err)
		}
		if first := rep.Timeline[0]; first.Kind != "waiver" {
			t.Errorf("first timeline entry %+v", first)
		}
		var applied time.Time
		for _, e := range rep.Timeline {
			if e.Kind == state.EntryStep && e.Outcome == state.OutcomeApplied {
				applied = e.At
				break
			}
		}
		if applied.Sub(start) != 20*time.Minute {
			t.Errorf("first step applied at +%v, want +20m", applied.Sub(start))
		}

		// A gate that blocks.
		h = newHarness(t, ramp(), deploytest.Healthy(), deploy.WithGates(deploy.GateFunc(func(context.Context, *deploy.Deployment) error {
			return errors.New("CI pipeline 812 is red")
		})))
		rep, err = h.runner.Run(t.Context(), rel)
		if !errors.Is(err, deploy.ErrBlocked) || !strings.Contains(err.Error(), "CI pipeline 812 is red") || rep.Status != deploy.Blocked {
			t.Errorf("err = %v, status %s; want ErrBlocked with the gate's reason", err, rep.Status)
		}
		if len(h.strategy.Applied()) != 0 {
			t.Error("a blocked release applied steps")
		}

		// A gate that would wait past the deadline.
		h = newHarness(t, ramp(), deploytest.Healthy(), deploy.WithGateDeadline(time.Hour), deploy.WithGates(deploy.GateFunc(func(context.Context, *deploy.Deployment) error {
			return deploy.RetryAt(time.Now().Add(48*time.Hour), "window closed until Monday 09:00")
		})))
		rep, err = h.runner.Run(t.Context(), rel)
		if !errors.Is(err, deploy.ErrBlocked) || !strings.Contains(rep.Trigger.Reason, "window closed until Monday 09:00") {
			t.Errorf("err = %v, want ErrBlocked past the deadline", err)
		}
	})
}

// migrationsGate ticks "Database migrations tested" with what it saw.
type migrationsGate struct{ attempts int }

func (g *migrationsGate) Name() string { return "migrations" }

func (g *migrationsGate) ChecklistItems() []deploy.Item {
	return []deploy.Item{deploy.ItemMigrationsTested}
}

func (g *migrationsGate) Check(ctx context.Context, d *deploy.Deployment) error {
	g.attempts++
	deploy.Evidence(ctx, "attempt %d", g.attempts)
	if g.attempts == 1 {
		return deploy.RetryAt(time.Now().Add(time.Minute), "migration job still running")
	}
	deploy.Evidence(ctx, "migration 0042_add_index applied to a copy of production in %v", 3*time.Second)
	return nil
}

// TestGateEvidence: what a passing gate reports with deploy.Evidence ticks
// its checklist items and shows in the gate record and the timeline; what a
// gate said before asking to retry is dropped.
func TestGateEvidence(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, ramp(), deploytest.Healthy(), deploy.WithGates(&migrationsGate{}))
		rep, err := h.runner.Run(t.Context(), rel)
		if err != nil {
			t.Fatal(err)
		}
		const want = "attempt 2; migration 0042_add_index applied to a copy of production in 3s"
		if diff := cmp.Diff([]state.Gate{{Name: "migrations", Passed: true, Evidence: want, At: rep.Gates[0].At}}, rep.Gates); diff != "" {
			t.Errorf("gates (-want +got):\n%s", diff)
		}
		var line deploy.ChecklistLine
		for _, l := range rep.Checklist {
			if l.Item == deploy.ItemMigrationsTested {
				line = l
			}
		}
		if !line.Done || line.Evidence != "gate migrations: "+want {
			t.Errorf("migrations item = %+v, want ticked with the gate's evidence", line)
		}
		if md := rep.Markdown(); !strings.Contains(md, "- [x] Database migrations tested (if applicable) — gate migrations: "+want) {
			t.Errorf("report lacks the evidence:\n%s", md)
		}
		found := false
		for _, e := range rep.Timeline {
			if e.Kind == state.EntryGate && e.Name == "migrations" && e.Outcome == state.OutcomePassed && e.Detail == want {
				found = true
			}
		}
		if !found {
			t.Errorf("timeline lacks the gate's evidence: %+v", rep.Timeline)
		}
	})
	// Outside a run, Evidence does nothing.
	deploy.Evidence(context.Background(), "ignored %d", 1)
}
