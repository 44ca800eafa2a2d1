package gate_test

import (
	"context"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/deploykit/deploy"
	"github.com/deploykit/deploy/deploytest"
	"github.com/deploykit/deploy/gate"
	"github.com/deploykit/deploy/monitor"
	"github.com/deploykit/deploy/state"
)

// TestRunnerWaitsForWindow runs a production release that starts on a
// Saturday: the Window makes the runner wait until Monday 09:00 in Berlin,
// then the release succeeds and the gates' checklist items are ticked.
func TestRunnerWaitsForWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		loc := berlin(t)
		approvals := &gate.Manual{}
		approvals.Approve(gate.For{Service: "checkout", Version: "v2"}, "alice")
		ci := &gate.CI{Owner: "deploykit", Repo: "deploy", Token: "tok", Client: memClient(github(t, ciRefs))}
		s := &deploytest.Strategy{Steps: deploytest.Ramp(10*time.Minute, 0.05, 0.5, 1)}
		rec := &deploytest.Recorder{}
		r, err := deploy.NewRunner(s,
			deploy.WithStore(state.NewMemory()),
			deploy.WithMonitors(deploytest.Healthy()),
			deploy.WithNotifiers(rec),
			deploy.WithGateDeadline(72*time.Hour),
			deploy.WithSchedule(monitor.Schedule{Windows: []monitor.Window{{Name: "intensive", Duration: time.Hour, Interval: time.Minute}}}),
			deploy.WithGates(
				&gate.Window{Location: loc},
				ci,
				&gate.Approval{Approver: approvals, CodeReview: true},
				gate.Named("migrations-tested", gate.Func(func(context.Context, *deploy.Deployment) error { return nil }), deploy.ItemMigrationsTested),
				&gate.MonitoringActive{Checker: gate.MonitoringFunc(func(context.Context, string) error { return nil })},
			),
		)
		if err != nil {
			t.Fatal(err)
		}
		rel := deploy.Release{Service: "checkout", Version: "v2", PreviousVersion: "v1", Commit: dep.Release.Commit}

		rep, err := r.Run(t.Context(), rel)
		if err != nil {
			t.Fatalf("Run: %v\n%s", err, rep.Markdown())
		}
		if rep.Status != deploy.Succeeded {
			t.Fatalf("status = %s, want succeeded\n%s", rep.Status, rep.Markdown())
		}
		monday := time.Date(2000, 1, 3, 9, 0, 0, 0, loc)
		var firstStep time.Time
		var waited bool
		for _, e := range rep.Timeline {
			if e.Kind == state.EntryGate && e.Outcome == state.OutcomeWaiting && strings.Contains(e.Detail, "deploy-window: window closed until Monday 09:00 Europe/Berlin: weekend") {
				waited = true
			}
			if e.Kind == "step" && firstStep.IsZero() {
				firstStep = e.At
			}
		}
		if !waited {
			t.Errorf("the timeline does not show the wait for the window:\n%s", rep.Markdown())
		}
		if !firstStep.Equal(monday) {
			t.Errorf("first step applied at %s, want Monday 09:00 Berlin (%s)", firstStep, monday)
		}
		if diff := cmp.Diff([]string{"production/5%", "production/50%", "production/100%"}, s.Applied()); diff != "" {
			t.Errorf("applied (-want +got):\n%s", diff)
		}

		ticked := map[deploy.Item]string{}
		for _, l := range rep.Checklist {
			if l.Done {
				ticked[l.Item] = l.Evidence
			}
		}
		// Each item names its gate and what the gate saw (deploy.Evidence);
		// a gate that reports nothing is "passed".
		for item, want := range map[deploy.Item]string{
			deploy.ItemTestsPassing:     "gate ci: CI success for deploykit/deploy@0123456789ab: 2 of 2 contexts green: ci/test, lint",
			deploy.ItemCodeReviewed:     "gate approval: approved by alice",
			deploy.ItemMigrationsTested: "gate migrations-tested passed",
			deploy.ItemMonitoringActive: "gate monitoring-active passed",
		} {
			if ev, ok := ticked[item]; !ok {
				t.Errorf("%q not ticked", item)
			} else if ev != want {
				t.Errorf("%q ticked with evidence %q, want %q", item, ev, want)
			}
		}
		var gates []string
		for _, g := range rep.Gates {
			gates = append(gates, g.Name)
			if g.Name == "deploy-window" {
				if want := "deploy window open at Monday 09:00 Europe/Berlin, until 17:00"; g.Evidence != want {
					t.Errorf("deploy-window evidence = %q, want %q", g.Evidence, want)
				}
			}
		}
		// The Window replaces the built-in window: it is the only one.
		if diff := cmp.Diff([]string{"deploy-window", "ci", "approval", "migrations-tested", "monitoring-active"}, gates); diff != "" {
			t.Errorf("gates (-want +got):\n%s", diff)
		}
	})
}

// TestRunnerBlocksOnRejection: a rejected approval blocks the release with
// who rejected it and why.
func TestRunnerBlocksOnRejection(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		approvals := &gate.Manual{}
		approvals.Reject(gate.For{Service: "checkout", Version: "v2"}, "bob", "error budget spent")
		allWeek := &gate.Window{Location: time.UTC}
		for d := time.Sunday; d <= time.Saturday; d++ {
			allWeek.Hours = append(allWeek.Hours, gate.Hours{Day: d, To: 24 * time.Hour})
		}
		s := &deploytest.Strategy{Steps: deploytest.Ramp(time.Minute, 1)}
		r, err := deploy.NewRunner(s, deploy.WithStore(state.NewMemory()), deploy.WithMonitors(deploytest.Healthy()),
			deploy.WithNotifiers(&deploytest.Recorder{}), deploy.WithGates(allWeek, &gate.Approval{Approver: approvals}))
		if err != nil {
			t.Fatal(err)
		}
		_, err = r.Run(t.Context(), deploy.Release{Service: "checkout", Version: "v2"})
		if err == nil || !strings.Contains(err.Error(), "gate approval: rejected by bob: error budget spent") {
			t.Errorf("err = %v, want blocked by bob's rejection", err)
		}
		if len(s.Applied()) != 0 {
			t.Errorf("applied %v after a rejection", s.Applied())
		}
	})
}
