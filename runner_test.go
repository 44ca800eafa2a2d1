package deploy_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/deploykit/deploy"
	"github.com/deploykit/deploy/deploytest"
	"github.com/deploykit/deploy/monitor"
	"github.com/deploykit/deploy/rollback"
	"github.com/deploykit/deploy/state"
)

var rel = deploy.Release{Service: "checkout", Version: "v2", PreviousVersion: "v1", Commit: "abc123",
	Description: "Faster checkout", Links: map[string]string{"design": "docs/stories/checkout/design.md", "tasks": "docs/stories/checkout/tasks.md"}}

// harness builds a runner with a memory store, a recorder and a monitor;
// Friday deploys are waived because synctest's clock starts on a Saturday.
type harness struct {
	strategy *deploytest.Strategy
	monitor  *deploytest.Monitor
	rec      *deploytest.Recorder
	store    state.Store
	runner   *deploy.Runner
}

func newHarness(t *testing.T, s *deploytest.Strategy, m *deploytest.Monitor, opts ...deploy.Option) *harness {
	t.Helper()
	h := &harness{strategy: s, monitor: m, rec: &deploytest.Recorder{}, store: state.NewMemory()}
	base := []deploy.Option{
		deploy.WithStore(h.store),
		deploy.WithNotifiers(h.rec),
		deploy.WithInterval(time.Minute),
		deploy.WithWaiver(deploy.FridayDeploy, "test clock starts on a Saturday"),
		deploy.WithSchedule(monitor.Schedule{Windows: []monitor.Window{{Name: "intensive", Duration: time.Hour, Interval: 30 * time.Second}}}),
	}
	if m != nil {
		base = append(base, deploy.WithMonitors(m))
	}
	r, err := deploy.NewRunner(s, append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	h.runner = r
	return h
}

// openRunner opens a runner on store as another process would: a recorder
// for notifier, the Friday waiver (synctest's clock starts on a Saturday), no
// watch after the checks, then extra.
func openRunner(t *testing.T, s deploy.Strategy, store state.Store, extra ...deploy.Option) *deploy.Runner {
	t.Helper()
	opts := append([]deploy.Option{deploy.WithStore(store), deploy.WithNotifiers(&deploytest.Recorder{}),
		deploy.WithWaiver(deploy.FridayDeploy, "test clock"), deploy.WithSchedule(monitor.Schedule{})}, extra...)
	r, err := deploy.NewRunner(s, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func ramp() *deploytest.Strategy {
	return &deploytest.Strategy{Steps: deploytest.Ramp(10*time.Minute, 0.01, 0.05, 0.25, 0.5, 1)}
}

func TestRunSucceeds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, ramp(), deploytest.Healthy())
		start := time.Now()
		rep, err := h.runner.Run(t.Context(), rel)
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
		if rep.Status != deploy.Succeeded {
			t.Fatalf("status = %s, want succeeded\n%s", rep.Status, rep.Markdown())
		}
		want := []string{"production/1%", "production/5%", "production/25%", "production/50%", "production/100%"}
		if diff := cmp.Diff(want, h.strategy.Applied()); diff != "" {
			t.Errorf("applied (-want +got):\n%s", diff)
		}
		// 5 bakes of 10 min, then the 1 h watch.
		if got, wantD := time.Since(start), 50*time.Minute+time.Hour; got != wantD {
			t.Errorf("release took %v, want %v", got, wantD)
		}
		if rep.Exposure != 1 {
			t.Errorf("exposure = %v, want 1", rep.Exposure)
		}
		// 1 baseline + 10 per step + post-deployment check + 120 in the watch.
		if got, want := h.monitor.Calls(), 1+50+1+120; got != want {
			t.Errorf("observations = %d, want %d", got, want)
		}
		if diff := cmp.Diff([]state.Window{{Name: "intensive", Interval: 30 * time.Second, Start: start.Add(50 * time.Minute), End: start.Add(110 * time.Minute), Observations: 120}}, rep.Windows); diff != "" {
			t.Errorf("windows (-want +got):\n%s", diff)
		}
		kinds := h.rec.Kinds()
		if kinds[0] != deploy.EventStarted || kinds[len(kinds)-1] != deploy.EventFinished {
			t.Errorf("events run from %s to %s, want started to finished", kinds[0], kinds[len(kinds)-1])
		}
	})
}

func TestBreachAtSecondStepRollsBackWithinOneInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, ramp(), deploytest.Regression(0.05, deploytest.Health{ErrorRate: 0.08, P95: 130 * time.Millisecond}))
		start := time.Now()
		rep, err := h.runner.Run(t.Context(), rel)
		if !errors.Is(err, deploy.ErrUnhealthy) {
			t.Fatalf("err = %v, want ErrUnhealthy", err)
		}
		var pe *deploy.PhaseError
		if !errors.As(err, &pe) || pe.Phase != deploy.PhaseDeploy || pe.Step != "5%" {
			t.Errorf("err = %#v, want a PhaseError in deploy step 5%%", err)
		}
		if rep.Status != deploy.RolledBack {
			t.Fatalf("status = %s, want rolled back", rep.Status)
		}
		if got := h.strategy.Rollbacks(); got != 1 {
			t.Errorf("rollbacks = %d, want 1", got)
		}
		// Step 1 bakes 10 min; step 2 is applied at +10m and breaches at its first observation.
		if got, want := rep.Trigger.At.Sub(start), 11*time.Minute; got != want {
			t.Errorf("trigger at +%v, want +%v (one interval after the step)", got, want)
		}
		if rep.Trigger.Metric != monitor.ErrorRate || *rep.Trigger.Observed != 0.08 || *rep.Trigger.Baseline != 0.001 {
			t.Errorf("trigger = %+v", rep.Trigger)
		}
		if !strings.Contains(rep.Trigger.Reason, "error rate 8.0 % vs baseline 0.1 % (+7900 %): a significant rise over +0 %") {
			t.Errorf("reason = %q", rep.Trigger.Reason)
		}
		if h.strategy.Exposure() != 0 || rep.Exposure != 0 {
			t.Errorf("exposure after rollback = %v / %v, want 0", h.strategy.Exposure(), rep.Exposure)
		}
		if diff := cmp.Diff([]string{"production/1%", "production/5%"}, h.strategy.Applied()); diff != "" {
			t.Errorf("applied (-want +got):\n%s", diff)
		}
		if len(rep.RollbackSteps) != 2 || rep.RollbackSteps[1].Outcome != state.OutcomeVerified {
			t.Errorf("rollback steps = %+v, want the strategy's rollback then a healthy verification", rep.RollbackSteps)
		}
	})
}

func TestMonitorErrorsFailClosed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		calls := 0
		m := &deploytest.Monitor{Script: func(tg monitor.Target) (monitor.Observation, error) {
			mu.Lock()
			defer mu.Unlock()
			calls++
			if tg.Phase == "bake" {
				return monitor.Observation{}, errors.New("prometheus: connection refused")
			}
			return deploytest.Health{ErrorRate: 0.001, P95: 100 * time.Millisecond}.Observation(), nil
		}}
		h := newHarness(t, ramp(), m)
		start := time.Now()
		rep, err := h.runner.Run(t.Context(), rel)
		if !errors.Is(err, deploy.ErrSourceFailed) || errors.Is(err, deploy.ErrUnhealthy) || rep.Status != deploy.RolledBack {
			t.Fatalf("err = %v, status %s; want a rollback for a failing source, not for a breach", err, rep.Status)
		}
		if rep.Trigger.Kind != state.TriggerSource {
			t.Errorf("trigger kind %q, want %q", rep.Trigger.Kind, state.TriggerSource)
		}
		if !strings.Contains(rep.Trigger.Reason, "metric source failed 4 times in a row") {
			t.Errorf("reason = %q", rep.Trigger.Reason)
		}
		if got := rep.Trigger.At.Sub(start); got != 4*time.Minute {
			t.Errorf("rolled back at +%v, want +4m (4 errors, one a minute)", got)
		}
	})
}

func TestCancelMidBakeRollsBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, ramp(), deploytest.Healthy())
		ctx, cancel := context.WithCancelCause(t.Context())
		go func() {
			time.Sleep(15 * time.Minute) // mid-bake of the second step
			cancel(errors.New("operator pressed ctrl-c"))
		}()
		rep, err := h.runner.Run(ctx, rel)
		if !errors.Is(err, deploy.ErrAborted) {
			t.Fatalf("err = %v, want ErrAborted", err)
		}
		if rep.Status != deploy.Aborted {
			t.Errorf("status = %s, want aborted", rep.Status)
		}
		if h.strategy.Rollbacks() != 1 || h.strategy.Exposure() != 0 {
			t.Errorf("rollbacks = %d, exposure %v; want the service rolled back", h.strategy.Rollbacks(), h.strategy.Exposure())
		}
		if !strings.Contains(rep.Trigger.Reason, "operator pressed ctrl-c") {
			t.Errorf("reason = %q, want the cancel cause", rep.Trigger.Reason)
		}
	})
}

func TestBadInputIsRefusedBeforeAnySideEffect(t *testing.T) {
	good := deploytest.Ramp(time.Minute, 0.5, 1)
	cases := []struct {
		name  string
		steps []deploytest.StepSpec
		rel   deploy.Release
		want  string
	}{
		{"exposure", []deploytest.StepSpec{{Name: "a", Exposure: 1.5}}, rel, `step 0 ("a"): Exposure 1.5 is outside [0, 1]`},
		{"bake", []deploytest.StepSpec{{Name: "a", Exposure: 1, Bake: -time.Second}}, rel, `step 0 ("a"): Bake -1s is negative`},
		{"dup", []deploytest.StepSpec{{Name: "a", Exposure: 0.5}, {Name: "a", Exposure: 1}}, rel, `step 1 ("a"): Name is repeated`},
		{"service", good, deploy.Release{Version: "v2"}, "Release.Service is empty"},
		{"version", good, deploy.Release{Service: "checkout"}, "Release.Version is empty"},
	}
	for _, c := range cases {
		store := state.NewMemory()
		s := &deploytest.Strategy{Steps: c.steps}
		r, err := deploy.NewRunner(s, deploy.WithStore(store), deploy.WithMonitors(deploytest.Healthy()), deploy.WithNotifiers(&deploytest.Recorder{}))
		if err != nil {
			t.Fatal(err)
		}
		_, err = r.Run(t.Context(), c.rel)
		if !errors.Is(err, deploy.ErrInvalid) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want ErrInvalid naming %q", c.name, err, c.want)
		}
		if _, err := r.Plan(context.Background(), c.rel); err == nil {
			t.Errorf("%s: Plan accepted bad input", c.name)
		}
		if len(s.Applied()) != 0 {
			t.Errorf("%s: steps applied", c.name)
		}
	}
	if _, err := deploy.NewRunner(nil); !errors.Is(err, deploy.ErrInvalid) || !strings.Contains(err.Error(), "strategy is nil") {
		t.Errorf("nil strategy: %v", err)
	}
	var nilStrategy *deploytest.Strategy
	if _, err := deploy.NewRunner(nilStrategy); !errors.Is(err, deploy.ErrInvalid) {
		t.Errorf("typed nil strategy: %v", err)
	}
	if _, err := deploy.NewRunner(ramp(), deploy.WithRollbackPolicy(rollback.Policy{FailureLimit: -1})); err == nil || !strings.Contains(err.Error(), "FailureLimit -1") {
		t.Errorf("bad policy: %v", err)
	}
	if _, err := deploy.NewRunner(ramp(), deploy.WithInterval(0)); err == nil || !strings.Contains(err.Error(), "WithInterval") {
		t.Errorf("zero interval: %v", err)
	}
}

func TestStagingFirst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &deploytest.Strategy{Steps: deploytest.Ramp(5*time.Minute, 0.5, 1)}
		h := newHarness(t, s, deploytest.Healthy(), deploy.WithStages(deploy.Stage{Name: "staging", Environment: "staging"}, deploy.Stage{Name: "production"}))
		rep, err := h.runner.Run(t.Context(), rel)
		if err != nil {
			t.Fatal(err)
		}
		want := []string{"staging/50%", "staging/100%", "production/50%", "production/100%"}
		if diff := cmp.Diff(want, s.Applied()); diff != "" {
			t.Errorf("applied (-want +got):\n%s", diff)
		}
		envs := map[string]bool{}
		for _, tg := range h.monitor.Targets() {
			envs[tg.Environment] = true
		}
		if !envs["staging"] || !envs["production"] {
			t.Errorf("monitors saw environments %v", envs)
		}
		done := map[deploy.Item]bool{}
		for _, l := range rep.Checklist {
			done[l.Item] = l.Done
		}
		for _, it := range []deploy.Item{deploy.ItemStagingFirst, deploy.ItemStagingVerified, deploy.ItemProduction, deploy.ItemMonitorDeploy, deploy.ItemRollbackPlan, deploy.ItemStakeholders, deploy.ItemWorkflowComplete} {
			if !done[it] {
				t.Errorf("checklist item %q not ticked", it)
			}
		}
		for _, it := range []deploy.Item{deploy.ItemTestsPassing, deploy.ItemCodeReviewed, deploy.ItemMigrationsTested} {
			if done[it] {
				t.Errorf("checklist item %q ticked with no evidence", it)
			}
		}
	})
}

func TestInconclusivePausesThenRollsBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := &deploytest.Monitor{Script: func(tg monitor.Target) (monitor.Observation, error) {
			if tg.Phase == "bake" && tg.Exposure >= 0.25 {
				var o monitor.Observation
				o.Set(monitor.ErrorRate, monitor.NoData())
				o.Set(monitor.LatencyP95, monitor.NoData())
				return o, nil
			}
			return deploytest.Health{ErrorRate: 0.001, P95: 100 * time.Millisecond}.Observation(), nil
		}}
		p := deploy.DefaultPolicy()
		p.InconclusiveLimit = 3
		h := newHarness(t, ramp(), m, deploy.WithRollbackPolicy(p))
		rep, err := h.runner.Run(t.Context(), rel)
		if !errors.Is(err, deploy.ErrInconclusive) || errors.Is(err, deploy.ErrUnhealthy) || rep.Trigger.Kind != state.TriggerInconclusive {
			t.Fatalf("err = %v (trigger %+v), want ErrInconclusive and not ErrUnhealthy", err, rep.Trigger)
		}
		if diff := cmp.Diff([]string{"production/1%", "production/5%", "production/25%"}, h.strategy.Applied()); diff != "" {
			t.Errorf("an inconclusive step was promoted (-want +got):\n%s", diff)
		}
		if !strings.Contains(rep.Trigger.Reason, "inconclusive 4 times (limit 3)") {
			t.Errorf("reason %q", rep.Trigger.Reason)
		}
	})
}

func TestDarkStepWithoutDataContinues(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// A monitor that measures the new version only once users reach it.
		m := &deploytest.Monitor{Script: func(tg monitor.Target) (monitor.Observation, error) {
			if tg.Phase == "bake" && tg.Exposure == 0 {
				var o monitor.Observation
				o.Set(monitor.ErrorRate, monitor.NoData())
				o.Set(monitor.LatencyP95, monitor.NoData())
				return o, nil
			}
			return deploytest.Health{ErrorRate: 0.001, P95: 100 * time.Millisecond}.Observation(), nil
		}}
		s := &deploytest.Strategy{Steps: []deploytest.StepSpec{{Name: "dark", Exposure: 0, Bake: 30 * time.Minute}, {Name: "all", Exposure: 1, Bake: 10 * time.Minute}}}
		p := deploy.DefaultPolicy()
		p.InconclusiveLimit = 0
		h := newHarness(t, s, m, deploy.WithRollbackPolicy(p))
		rep, err := h.runner.Run(t.Context(), rel)
		if err != nil || rep.Status != deploy.Succeeded {
			t.Fatalf("a dark step with no data for the new version: status %s, err %v", rep.Status, err)
		}
	})
}

func TestNoRollbackPathWaived(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := ramp()
		s.NoRollback = true
		h := newHarness(t, s, deploytest.Regression(0.05, deploytest.Health{ErrorRate: 0.5}),
			deploy.WithWaiver(deploy.NoRollbackPlan, "one-way schema migration; forward fix only"))
		rep, err := h.runner.Run(t.Context(), rel)
		if err == nil || rep.Status != deploy.Failed {
			t.Fatalf("status %s, err %v; want failed", rep.Status, err)
		}
		if s.Rollbacks() != 0 || !strings.Contains(rep.Error, "v2 stays deployed") {
			t.Errorf("rollbacks %d, error %q", s.Rollbacks(), rep.Error)
		}
		if !strings.Contains(rep.Markdown(), "Waived pitfall no-rollback-plan: one-way schema migration") {
			t.Error("the waiver is not in the report")
		}
		if want := "- checkout v2 stays at 5 % exposure: the release failed with no way back"; !strings.Contains(rep.Markdown(), want) {
			t.Errorf("report lacks %q:\n%s", want, rep.Markdown())
		}
	})
}

// TestChecksTickTheirItems: after full exposure, passing smoke checks tick
// "Verify feature works in production" and passing log checks "Check error
// logs for new errors" (and, at the end, "No new errors observed").
func TestChecksTickTheirItems(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var buf bytes.Buffer
		logs := &monitor.LogScan{Reader: &buf}
		defer logs.Close()
		m := deploy.MonitorFunc(func(ctx context.Context, tg monitor.Target) (monitor.Observation, error) {
			fmt.Fprintf(&buf, "%s ERROR payment declined for order %d\n", time.Now().UTC().Format(time.RFC3339), time.Now().Unix())
			o, err := logs.Observe(ctx, tg)
			o.Checks = append(o.Checks, monitor.Check{Name: "checkout answers", OK: true, Kind: monitor.KindSmoke})
			return o, err
		})
		h := newHarness(t, ramp(), nil, deploy.WithMonitors(m),
			deploy.WithRollbackPolicy(rollback.Policy{Triggers: []rollback.Trigger{rollback.CriticalChecks{}}}))
		rep, err := h.runner.Run(t.Context(), rel)
		if err != nil {
			t.Fatal(err)
		}
		got := map[deploy.Item]string{}
		for _, l := range rep.Checklist {
			if l.Done {
				got[l.Item] = l.Evidence
			}
		}
		want := map[deploy.Item]string{
			deploy.ItemFeatureWorks:     "checks passed: checkout answers",
			deploy.ItemNoNewErrors:      "no new errors in logs: 51 error lines since the baseline, all with known signatures",
			deploy.ItemNoErrorsObserved: "no new errors in logs: 51 error lines since the baseline, all with known signatures",
		}
		for item, ev := range want {
			if got[item] != ev {
				t.Errorf("%q: evidence %q, want %q", item, got[item], ev)
			}
		}
	})
}

// TestWatchesWhileApprovalPending: users exposed by the steps before an
// approval step stay watched while the approval is pending, and a breach
// then rolls back, naming the step that exposed them.
func TestWatchesWhileApprovalPending(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		s := &deploytest.Strategy{Steps: deploytest.Ramp(10*time.Minute, 0.05, 0.25, 1)}
		s.Steps[1].Approval = true
		pending := deploy.GateFunc(func(context.Context, *deploy.Deployment) error {
			return deploy.RetryAt(time.Now().Add(time.Hour), "approval pending: nobody has looked yet")
		})
		broken := start.Add(3 * time.Hour) // the new version degrades during the wait
		m := deploy.MonitorFunc(func(ctx context.Context, tg monitor.Target) (monitor.Observation, error) {
			h := deploytest.Health{ErrorRate: 0.001, P95: 100 * time.Millisecond, Samples: 1000}
			if tg.Phase == "bake" && !time.Now().Before(broken) {
				h.ErrorRate = 0.2
			}
			return h.Observation(), nil
		})
		h := newHarness(t, s, nil, deploy.WithMonitors(m), deploy.WithApproval(pending))
		rep, err := h.runner.Run(t.Context(), rel)
		if !errors.Is(err, deploy.ErrUnhealthy) || rep.Status != deploy.RolledBack {
			t.Fatalf("status %s, err %v; want rolled back", rep.Status, err)
		}
		if got := rep.Trigger.At.Sub(broken); got < 0 || got > time.Minute {
			t.Errorf("rolled back %v after the breach, want within one interval (1m)", got)
		}
		if rep.Trigger.Step != "5%" || !strings.HasPrefix(rep.Trigger.Reason, "while step production/25% waited for approval: error rate 20.0 %") {
			t.Errorf("trigger at step %q: %q", rep.Trigger.Step, rep.Trigger.Reason)
		}
		if diff := cmp.Diff([]string{"production/5%"}, h.strategy.Applied()); diff != "" {
			t.Errorf("applied (-want +got):\n%s", diff)
		}
	})
}

// TestSmallCanaryNoiseDoesNotRollBack: at 1 % exposure the canary sees 20
// requests a minute; one of them failing (5 %) is above the 1 % floor but no
// more than chance gives against it, and the default policy's significance
// test lets it pass, while 6 failures of 20 roll back.
func TestSmallCanaryNoiseDoesNotRollBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		canary := func(failed int) deploy.Monitor {
			return deploy.MonitorFunc(func(ctx context.Context, tg monitor.Target) (monitor.Observation, error) {
				h := deploytest.Health{ErrorRate: 0.002, P95: 100 * time.Millisecond, Samples: 10000}
				if tg.Phase == "bake" && tg.Exposure <= 0.01 {
					h = deploytest.Health{ErrorRate: float64(failed) / 20, P95: 100 * time.Millisecond, Samples: 20}
				}
				return h.Observation(), nil
			})
		}
		rep, err := newHarness(t, ramp(), nil, deploy.WithMonitors(canary(1))).runner.Run(t.Context(), rel)
		if err != nil || rep.Status != deploy.Succeeded {
			t.Fatalf("1 failure of 20: status %s, err %v; want succeeded", rep.Status, err)
		}
		rep, err = newHarness(t, ramp(), nil, deploy.WithMonitors(canary(6))).runner.Run(t.Context(), rel)
		if !errors.Is(err, deploy.ErrUnhealthy) || rep.Trigger.Step != "1%" {
			t.Fatalf("6 failures of 20: status %s, err %v; want a rollback at 1%%", rep.Status, err)
		}
	})
}

// TestBaselineWithoutDataIsSaid: a baseline that measured nothing for a
// metric is said in the timeline and to the notifiers, not left to surface
// as "no baseline or control" at the first step.
func TestBaselineWithoutDataIsSaid(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := deploy.MonitorFunc(func(ctx context.Context, tg monitor.Target) (monitor.Observation, error) {
			o := deploytest.Health{ErrorRate: 0.001, P95: 100 * time.Millisecond}.Observation()
			if tg.Phase == "baseline" {
				o.Set(monitor.ErrorRate, monitor.NoData())
			}
			return o, nil
		})
		h := newHarness(t, ramp(), nil, deploy.WithMonitors(m))
		rep, _ := h.runner.Run(t.Context(), rel)
		const want = "baseline has no data for error_rate: triggers on them can compare only with a control, else they are inconclusive"
		said := false
		for _, e := range h.rec.Events() {
			said = said || e.Message == want
		}
		noted := false
		for _, e := range rep.Timeline {
			noted = noted || e.Detail == want
		}
		if !said || !noted {
			t.Errorf("event %v, timeline %v: want %q in both", said, noted, want)
		}
	})
}

// TestLogger: the runner's logger hears the release's events at levels that
// match their weight, and failed notification deliveries.
func TestLogger(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var buf bytes.Buffer
		logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
		h := newHarness(t, ramp(), deploytest.Regression(0.25, deploytest.Health{ErrorRate: 0.2}), deploy.WithLogger(logger))
		h.rec.FailNext(1)
		h.runner.Run(t.Context(), rel)
		out := buf.String()
		for _, want := range []string{
			`level=INFO msg="deploy: release of checkout v2 to production started`,
			`level=WARN msg="deploy: rolling back: error rate 20.0 %`,
			`level=WARN msg="deploy: notification not delivered, will retry" notifier=recorder`,
			`level=INFO msg="deploy: checkout v2 to production: rolled back`,
		} {
			if !strings.Contains(out, want) {
				t.Errorf("log lacks %q:\n%s", want, out)
			}
		}
		if strings.Contains(out, "level=DEBUG") {
			t.Error("Debug records at Info level")
		}
	})
}

// slowRollback is a strategy whose rollback takes a while.
type slowRollback struct {
	*deploytest.Strategy
	took time.Duration
}

func (s *slowRollback) Rollback(ctx context.Context, d *deploy.Deployment) error {
	time.Sleep(s.took)
	return s.Strategy.Rollback(ctx, d)
}

// countingSlowRollback counts strategy rollbacks running at once.
type countingSlowRollback struct {
	*deploytest.Strategy
	inFlight, most atomic.Int32
}

func (s *countingSlowRollback) Rollback(ctx context.Context, d *deploy.Deployment) error {
	n := s.inFlight.Add(1)
	if n > s.most.Load() {
		s.most.Store(n)
	}
	defer s.inFlight.Add(-1)
	time.Sleep(4 * time.Minute)
	return s.Strategy.Rollback(ctx, d)
}

// TestLeaseCoversALongRollback: while a live runner's strategy rollback runs
// longer than the lease grace, another runner's Resume finds the release
// locked and never runs a second rollback at the same time.
func TestLeaseCoversALongRollback(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := state.NewMemory()
		s := &countingSlowRollback{Strategy: ramp()}
		open := func() *deploy.Runner {
			return openRunner(t, s, store, deploy.WithMonitors(deploytest.Regression(0.25, deploytest.Health{ErrorRate: 0.3})))
		}
		r1 := open()
		id, err := r1.Start(t.Context(), rel)
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { _, err := r1.Resume(t.Context(), id); done <- err }()
		for {
			time.Sleep(10 * time.Second)
			if rec, _ := store.Load(t.Context(), id); rec.Phase == "rollback" {
				break
			}
		}
		time.Sleep(2*time.Minute + 30*time.Second) // r1 is alive, inside the strategy's rollback
		_, err = open().Resume(t.Context(), id)
		if !errors.Is(err, deploy.ErrLocked) {
			t.Errorf("Resume during a live rollback: %v, want ErrLocked", err)
		}
		if err := <-done; !errors.Is(err, deploy.ErrUnhealthy) {
			t.Errorf("r1: %v, want the release's ErrUnhealthy", err)
		}
		if s.most.Load() != 1 || s.Rollbacks() != 1 {
			t.Errorf("%d strategy rollbacks at once, %d in all; want 1 and 1", s.most.Load(), s.Rollbacks())
		}
	})
}

// TestManualRollbackTakesOverARollbackUnderWay: a runner dies with a
// rollback decided; a person's Rollback does not wait for its lease but
// takes over and finishes it.
func TestManualRollbackTakesOverARollbackUnderWay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := state.NewMemory()
		s := ramp()
		open := func() *deploy.Runner {
			return openRunner(t, s, store, deploy.WithMonitors(deploytest.Regression(0.05, deploytest.Health{ErrorRate: 0.3})))
		}
		r1 := open()
		id, err := r1.Start(t.Context(), rel)
		if err != nil {
			t.Fatal(err)
		}
		for {
			next, rep, err := r1.Reconcile(t.Context(), id)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Phase == deploy.PhaseRollback {
				break
			}
			time.Sleep(time.Until(next))
		}
		start := time.Now()
		rep, err := open().Rollback(t.Context(), id, "on-call: finish it now")
		if err != nil || rep.Status != deploy.RolledBack || s.Rollbacks() != 1 {
			t.Fatalf("Rollback: status %s, err %v, %d rollbacks", rep.Status, err, s.Rollbacks())
		}
		if waited := time.Since(start); waited > 2*time.Minute {
			t.Errorf("took %v: it waited for the dead runner's lease", waited)
		}
		// A release that already succeeded is not "rolled back" by a nil error.
		s2 := &deploytest.Strategy{Steps: deploytest.Ramp(time.Minute, 1)}
		r3, _ := deploy.NewRunner(s2, deploy.WithStore(state.NewMemory()), deploy.WithNotifiers(&deploytest.Recorder{}),
			deploy.WithMonitors(deploytest.Healthy()), deploy.WithWaiver(deploy.FridayDeploy, "test clock"), deploy.WithSchedule(monitor.Schedule{}))
		done, err := r3.Run(t.Context(), deploy.Release{Service: "search", Version: "v9"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r3.Rollback(t.Context(), done.ID, "too late"); !errors.Is(err, deploy.ErrInvalid) {
			t.Errorf("Rollback of a succeeded release: %v, want ErrInvalid", err)
		}
	})
}

// TestCronReconcile: a release driven by a cron job, each run a new process
// (a new Runner with its own holder) calling Reconcile once when the last
// one said the next action is due, completes without waiting out leases.
func TestCronReconcile(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := state.NewMemory()
		s := ramp()
		job := 0
		process := func() *deploy.Runner {
			job++
			r, err := deploy.NewRunner(s, deploy.WithStore(store), deploy.WithMonitors(deploytest.Healthy()),
				deploy.WithNotifiers(&deploytest.Recorder{}), deploy.WithWaiver(deploy.FridayDeploy, "test clock"),
				deploy.WithHolder(fmt.Sprintf("cron-run-%d", job)), deploy.WithSchedule(monitor.Schedule{}))
			if err != nil {
				t.Fatal(err)
			}
			return r
		}
		start := time.Now()
		id, err := process().Start(t.Context(), rel)
		if err != nil {
			t.Fatal(err)
		}
		for {
			next, rep, err := process().Reconcile(t.Context(), id)
			if rep != nil && rep.Status.Final() && rep.Pending == 0 {
				if rep.Status != deploy.Succeeded {
					t.Fatalf("status %s, err %v", rep.Status, err)
				}
				break
			}
			if err != nil {
				t.Fatalf("cron run %d: %v", job, err)
			}
			time.Sleep(time.Until(next))
		}
		// Five 10-minute bakes, not a lease's grace more per run.
		if took := time.Since(start); took != 50*time.Minute {
			t.Errorf("the release took %v, want 50m", took)
		}
	})
}
