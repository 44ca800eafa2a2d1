package deploy_test

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

func TestWatchScheduleClean24h(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &deploytest.Strategy{Steps: deploytest.Ramp(time.Hour, 0.01, 0.05, 0.25, 0.5, 1)}
		h := newHarness(t, s, deploytest.Healthy(), deploy.WithSchedule(monitor.DefaultSchedule()))
		start := time.Now()
		rep, err := h.runner.Run(t.Context(), rel)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := time.Since(start), 5*time.Hour+24*time.Hour; got != want {
			t.Errorf("release took %v, want %v", got, want)
		}
		if len(rep.Windows) != 2 {
			t.Fatalf("windows %+v", rep.Windows)
		}
		// Every 30 s for 1 h, then every 5 min for 23 h.
		for i, want := range []int{120, 276} {
			if got := rep.Windows[i].Observations; got != want {
				t.Errorf("window %s: %d observations, want %d", rep.Windows[i].Name, got, want)
			}
		}
		if d := rep.Windows[1].End.Sub(rep.Windows[0].Start); d != 24*time.Hour {
			t.Errorf("watch lasted %v, want 24h", d)
		}
		md := rep.Markdown()
		for _, want := range []string{"- Intensive: 1h0m0s, 120 observations every 30s", "- Regular: 23h0m0s, 276 observations every 5m0s"} {
			if !strings.Contains(md, want) {
				t.Errorf("report lacks %q", want)
			}
		}
	})
}

func TestWatchScheduleBreachAtHour3(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var fullAt time.Time
		m := &deploytest.Monitor{Script: func(tg monitor.Target) (monitor.Observation, error) {
			if tg.Phase == "verify" && fullAt.IsZero() {
				fullAt = time.Now()
			}
			if tg.Phase == "verify" && time.Since(fullAt) >= 3*time.Hour {
				return deploytest.Health{ErrorRate: 0.05, P95: 100 * time.Millisecond}.Observation(), nil
			}
			return deploytest.Health{ErrorRate: 0.001, P95: 100 * time.Millisecond}.Observation(), nil
		}}
		s := &deploytest.Strategy{Steps: deploytest.Ramp(time.Hour, 0.5, 1)}
		h := newHarness(t, s, m, deploy.WithSchedule(monitor.DefaultSchedule()))
		rep, err := h.runner.Run(t.Context(), rel)
		if !errors.Is(err, deploy.ErrUnhealthy) || rep.Status != deploy.RolledBack {
			t.Fatalf("err %v status %s", err, rep.Status)
		}
		var pe *deploy.PhaseError
		if !errors.As(err, &pe) || pe.Phase != deploy.PhaseVerify {
			t.Errorf("err %v, want a verify PhaseError", err)
		}
		// The sequential test weighs the breach against three healthy
		// hours of evidence: it may take one more look (5 min) than the
		// first bad one.
		if got := rep.Trigger.At.Sub(fullAt); got != 3*time.Hour && got != 3*time.Hour+5*time.Minute {
			t.Errorf("rolled back %v after full exposure, want 3h or 3h5m: %s", got, rep.Trigger.Reason)
		}
		if !strings.Contains(rep.Trigger.Reason, "during the regular watch") {
			t.Errorf("reason %q", rep.Trigger.Reason)
		}
		if h.strategy.Rollbacks() != 1 {
			t.Errorf("rollbacks %d", h.strategy.Rollbacks())
		}
		if n := rep.Windows[1].Observations; rep.Windows[0].Observations != 120 || n != 24 && n != 25 {
			t.Errorf("observations per window %d, %d; want 120, 24 or 25", rep.Windows[0].Observations, n)
		}
	})
}

// A day-long watch looked at every minute keeps about thirty of its looks,
// with their values, in the timeline (for the report's charts), not 1,440.
func TestWatchKeepsAboutThirtyLooksPerWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		day := monitor.Schedule{Windows: []monitor.Window{{Name: "day", Duration: 24 * time.Hour, Interval: time.Minute}}}
		s := &deploytest.Strategy{Steps: deploytest.Ramp(0, 1)}
		rep, err := openRunner(t, s, state.NewMemory(), deploy.WithMonitors(deploytest.Healthy()), deploy.WithSchedule(day)).Run(t.Context(), rel)
		if err != nil {
			t.Fatal(err)
		}
		kept := 0
		for _, e := range rep.Timeline {
			if e.Kind == state.EntryObservation && e.Name == "day" {
				kept++
				if e.Values[monitor.ErrorRate] != 0.001 {
					t.Errorf("look %+v has no error rate", e)
				}
			}
		}
		if kept < 25 || kept > 35 {
			t.Errorf("the timeline keeps %d looks of the day's 1,440, want about 30", kept)
		}
		if !strings.Contains(rep.Markdown(), "xychart-beta") {
			t.Error("no chart of the watch")
		}
	})
}
