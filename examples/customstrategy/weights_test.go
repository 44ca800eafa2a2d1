package main

import (
	"context"
	"errors"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/deploykit/deploy"
	"github.com/deploykit/deploy/deploytest"
	"github.com/deploykit/deploy/monitor"
	"github.com/deploykit/deploy/state"
)

// lb stands in for nginx: the strategy's Reload hook reads the upstream file
// back, as nginx -s reload would, and lb remembers the canary share it saw.
type lb struct {
	mu     sync.Mutex
	shares []float64
}

func (l *lb) seen() []float64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.shares)
}

// newWeights returns the strategy on a fresh directory, reloading into an lb.
func newWeights(t *testing.T) (*Weights, *lb) {
	l := &lb{}
	w := &Weights{Dir: t.TempDir(), Upstream: "checkout", Stable: "10.0.0.1:8080", Canary: "10.0.0.2:8080", Bake: time.Hour}
	w.Reload = func(ctx context.Context) error {
		share, err := w.Current()
		l.mu.Lock()
		defer l.mu.Unlock()
		l.shares = append(l.shares, share)
		return err
	}
	return w, l
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The conformance suite: Plan is deterministic, steps are well formed, Apply
// and Rollback may run twice.
func TestConformance(t *testing.T) {
	w, l := newWeights(t)
	if err := deploytest.TestStrategy(t.Context(), w, nil); err != nil {
		t.Fatal(err)
	}
	// Each step applied twice, then two rollbacks: what nginx loaded, in order.
	if diff := cmp.Diff([]float64{0.05, 0.05, 0.25, 0.25, 0.5, 0.5, 1, 1, 0, 0}, l.seen()); diff != "" {
		t.Errorf("shares nginx loaded (-want +got):\n%s", diff)
	}
	want := `# Written by deploykit for conformance v2: 0 % canary. Do not edit.
upstream checkout {
    server 10.0.0.1:8080 weight=100;
    server 10.0.0.2:8080 down;
}
`
	if diff := cmp.Diff(want, readFile(t, w.Path())); diff != "" {
		t.Errorf("upstream file after the rollback (-want +got):\n%s", diff)
	}
	// Nothing but the file is left behind: no temporary files.
	entries, err := os.ReadDir(w.Dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if diff := cmp.Diff([]string{"checkout.conf"}, names); diff != "" {
		t.Errorf("files in Dir (-want +got):\n%s", diff)
	}
}

// Bad input is refused by NewRunner, before any release, naming the field
// and the value.
func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(w *Weights)
		want   string
	}{
		{"no dir", func(w *Weights) { w.Dir = "/nonexistent/upstreams" }, `Weights.Dir "/nonexistent/upstreams" is not a directory`},
		{"upstream", func(w *Weights) { w.Upstream = "check out" }, `Weights.Upstream "check out" is not an nginx upstream name`},
		{"stable", func(w *Weights) { w.Stable = "" }, `Weights.Stable "" is not a server address`},
		{"injection", func(w *Weights) { w.Canary = "10.0.0.2:8080; include /etc/passwd" }, `Weights.Canary "10.0.0.2:8080; include /etc/passwd" is not a server address`},
		{"same server", func(w *Weights) { w.Canary = w.Stable }, `Weights.Canary "10.0.0.1:8080" is the same server as Stable`},
		{"above one", func(w *Weights) { w.Steps = []float64{0.5, 1.5} }, `Weights.Steps[1] 1.5 is outside (0, 1]`},
		{"fraction", func(w *Weights) { w.Steps = []float64{0.001, 1} }, `Weights.Steps[0] 0.001 is not a whole percent`},
		{"decreasing", func(w *Weights) { w.Steps = []float64{0.25, 0.2, 1} }, `Weights.Steps[1] 0.2 does not go above the step before (0.25)`},
		{"never 100 %", func(w *Weights) { w.Steps = []float64{0.05, 0.5} }, `Weights.Steps [0.05 0.5] does not end at 1`},
		{"bake", func(w *Weights) { w.Bake = -time.Minute }, `Weights.Bake -1m0s is negative`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, _ := newWeights(t)
			tc.change(w)
			_, err := deploy.NewRunner(w, deploy.WithStore(state.NewMemory()))
			if !errors.Is(err, deploy.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("NewRunner: %v\nwant ErrInvalid with %q", err, tc.want)
			}
		})
	}
	w, _ := newWeights(t)
	if err := w.Validate(); err != nil {
		t.Errorf("a good configuration: %v", err)
	}
}

var release = deploy.Release{Service: "checkout", Version: "v2", PreviousVersion: "v1", Environment: "production",
	Description: "Checkout v2 on the canary pool"}

// newRunner runs w with the checklist's 24-hour watch, observing health and
// the upstream file every minute while a step bakes.
func newRunner(t *testing.T, w *Weights, health deploy.Monitor, opts ...deploy.Option) *deploy.Runner {
	t.Helper()
	r, err := deploy.NewRunner(w, append([]deploy.Option{
		deploy.WithStore(state.NewMemory()),
		deploy.WithMonitors(health, upstreamCheck{w}),
		deploy.WithInterval(time.Minute),
		deploy.WithSchedule(monitor.DefaultSchedule()), // every 30 s for 1 h, then every 5 min until 24 h
		deploy.WithWaiver(deploy.FridayDeploy, "synctest's clock starts on Saturday 1 January 2000"),
	}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// event is what a test asserts of a notification, leaving out observations.
type event struct {
	Kind     deploy.EventKind
	Phase    deploy.Phase
	Step     string
	Exposure float64
	Status   deploy.Status
}

func events(rec *deploytest.Recorder) (out []event, observations int) {
	for _, e := range rec.Events() {
		if e.Kind == deploy.EventObservation {
			observations++
			continue
		}
		out = append(out, event{e.Kind, e.Phase, e.Step, e.Exposure, e.Status})
	}
	return out, observations
}

// span is what a test asserts of a recorded step or rollback span.
type span struct {
	Name   string
	Step   string
	Status codes.Code
}

// spans sums up the recorded spans: the phases in order, the steps and
// rollbacks with their status, how many of each name, and the run span.
func spans(sr *tracetest.SpanRecorder) (phases []string, steps []span, count map[string]int, run sdktrace.ReadOnlySpan) {
	count = map[string]int{}
	for _, s := range sr.Ended() {
		count[s.Name()]++
		switch s.Name() {
		case "deploy.run":
			run = s
		case "deploy.phase":
			phases = append(phases, attrs(s)["deploy.phase"].AsString())
		case "deploy.step", "deploy.rollback":
			steps = append(steps, span{s.Name(), attrs(s)["deploy.step"].AsString(), s.Status().Code})
		}
	}
	return phases, steps, count, run
}

func attrs(s sdktrace.ReadOnlySpan) map[attribute.Key]attribute.Value {
	m := map[attribute.Key]attribute.Value{}
	for _, kv := range s.Attributes() {
		m[kv.Key] = kv.Value
	}
	return m
}

func ptr(f float64) *float64 { return &f }

// A progressive release planned for 28 hours (four one-hour steps, then the
// 24-hour watch) whose canary starts failing 8 % of requests at 25 %: the
// runner rolls back at the first observation of that step, nginx is back at
// 0 % canary, and the report, the notifications and the spans say so. In
// virtual time, so it takes milliseconds.
func TestRegressionAt25PercentRollsBack(t *testing.T) {
	wall := time.Now()
	var virtual time.Duration
	synctest.Test(t, func(t *testing.T) {
		w, l := newWeights(t)
		rec := &deploytest.Recorder{}
		sr := tracetest.NewSpanRecorder()
		tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
		health := deploytest.Regression(0.25, deploytest.Health{ErrorRate: 0.08, P95: 130 * time.Millisecond})
		r := newRunner(t, w, health, deploy.WithNotifiers(rec), deploy.WithTracerProvider(tp))

		start := time.Now()
		rep, err := r.Run(t.Context(), release)
		virtual = time.Since(start)

		// The error, the report and the trigger.
		if !errors.Is(err, deploy.ErrUnhealthy) {
			t.Fatalf("Run: %v, want ErrUnhealthy", err)
		}
		var pe *deploy.PhaseError
		if !errors.As(err, &pe) {
			t.Fatalf("Run: %v, want a *deploy.PhaseError", err)
		}
		if diff := cmp.Diff(&deploy.PhaseError{Phase: deploy.PhaseDeploy, Stage: "production", Step: "25%"}, pe,
			cmpopts.IgnoreFields(deploy.PhaseError{}, "Err")); diff != "" {
			t.Errorf("PhaseError (-want +got):\n%s", diff)
		}
		if rep.Status != deploy.RolledBack || rep.Exposure != 0 {
			t.Errorf("report: status %s at exposure %v, want rolled back at 0", rep.Status, rep.Exposure)
		}
		// 5 % bakes for an hour; 25 % breaches at its first observation, a minute in.
		wantTrigger := &state.Trigger{
			Kind:      "breach",
			Metric:    monitor.ErrorRate,
			Observed:  ptr(0.08),
			Baseline:  ptr(0.001),
			Reference: "baseline",
			Threshold: ptr(0.001), // the default policy tolerates no rise over the baseline
			Samples:   1000,
			Reason:    "error rate 8.0 % vs baseline 0.1 % (+7900 %): a significant rise over +0 % (always-valid p 3.1e-31 <= 0.04; 81 errors in 2000 canary requests judged)",
			Stage:     "production",
			Step:      "25%",
			At:        start.Add(time.Hour + time.Minute),
		}
		if diff := cmp.Diff(wantTrigger, rep.Trigger); diff != "" {
			t.Errorf("trigger (-want +got):\n%s", diff)
		}
		// The rollback is verified one interval later: health, and the file back at 0 %.
		wantRollback := []state.Entry{
			{At: wantTrigger.At, Phase: "rollback", Kind: "rollback", Outcome: state.OutcomeDone, Name: w.Name(), Detail: "exposure 0 %"},
			{At: wantTrigger.At.Add(time.Minute), Phase: "rollback", Kind: "verify", Outcome: state.OutcomeVerified,
				Detail: "error_rate=0.001, latency_p95_seconds=0.12, upstream sends the canary its share ok"},
		}
		if diff := cmp.Diff(wantRollback, rep.RollbackSteps); diff != "" {
			t.Errorf("rollback steps (-want +got):\n%s", diff)
		}
		if virtual != time.Hour+2*time.Minute {
			t.Errorf("release took %v of virtual time, want 1h2m", virtual)
		}

		// What nginx was told to load, and the file it is left with.
		if diff := cmp.Diff([]float64{0.05, 0.25, 0}, l.seen()); diff != "" {
			t.Errorf("shares nginx loaded (-want +got):\n%s", diff)
		}
		want := `# Written by deploykit for checkout v2: 0 % canary. Do not edit.
upstream checkout {
    server 10.0.0.1:8080 weight=100;
    server 10.0.0.2:8080 down;
}
`
		if diff := cmp.Diff(want, readFile(t, w.Path())); diff != "" {
			t.Errorf("upstream file (-want +got):\n%s", diff)
		}

		// The notifications people got.
		got, _ := events(rec)
		wantEvents := []event{
			{deploy.EventStarted, deploy.PhasePreflight, "", 0, deploy.Running},
			{deploy.EventPhase, deploy.PhasePreflight, "", 0, deploy.Running},
			{deploy.EventStep, deploy.PhaseDeploy, "5%", 0.05, deploy.Running},
			{deploy.EventStep, deploy.PhaseDeploy, "25%", 0.25, deploy.Running},
			{deploy.EventRollback, deploy.PhaseRollback, "25%", 0.25, deploy.Running},
			{deploy.EventFinished, deploy.PhaseCommunicate, "", 0, deploy.RolledBack},
		}
		if diff := cmp.Diff(wantEvents, got); diff != "" {
			t.Errorf("events (-want +got):\n%s", diff)
		}
		all := rec.Events()
		last := all[len(all)-1]
		if diff := cmp.Diff(rep.Trigger, last.Trigger); diff != "" {
			t.Errorf("finished event's trigger (-report +event):\n%s", diff)
		}
		if !strings.HasPrefix(last.Report, "## Rolled back: Checkout v2 on the canary pool") {
			t.Errorf("finished event's report starts %q", strings.SplitN(last.Report, "\n", 2)[0])
		}

		// The spans: the run failed, the 25 % step failed, one rollback.
		phases, steps, count, run := spans(sr)
		if diff := cmp.Diff([]string{"preflight", "deploy", "rollback", "communicate"}, phases); diff != "" {
			t.Errorf("phase spans (-want +got):\n%s", diff)
		}
		wantSteps := []span{
			{"deploy.step", "5%", codes.Unset},
			{"deploy.step", "25%", codes.Error},
			{"deploy.rollback", "", codes.Unset},
		}
		if diff := cmp.Diff(wantSteps, steps); diff != "" {
			t.Errorf("step and rollback spans (-want +got):\n%s", diff)
		}
		// An observation and a verdict every minute: 60 at 5 %, 1 at 25 %;
		// plus the baseline and the rollback's verification, with no verdict span.
		if diff := cmp.Diff(map[string]int{"deploy.observe": 63, "deploy.verdict": 61, "deploy.notify": len(rec.Events())},
			map[string]int{"deploy.observe": count["deploy.observe"], "deploy.verdict": count["deploy.verdict"], "deploy.notify": count["deploy.notify"]}); diff != "" {
			t.Errorf("span counts (-want +got):\n%s", diff)
		}
		if run == nil {
			t.Fatal("no deploy.run span")
		}
		wantAttrs := map[attribute.Key]attribute.Value{
			"service.name":                attribute.StringValue("checkout"),
			"service.version":             attribute.StringValue("v2"),
			"deployment.environment.name": attribute.StringValue("production"),
			"deploy.status":               attribute.StringValue("rolled back"),
		}
		gotAttrs := attrs(run)
		for k := range gotAttrs {
			if _, ok := wantAttrs[k]; !ok {
				delete(gotAttrs, k) // deployment.id and others this test does not pin
			}
		}
		if diff := cmp.Diff(wantAttrs, gotAttrs, cmp.Comparer(func(a, b attribute.Value) bool { return a == b })); diff != "" {
			t.Errorf("run span attributes (-want +got):\n%s", diff)
		}
		if run.Status().Code != codes.Error {
			t.Errorf("run span status %v, want Error", run.Status())
		}
	})
	t.Logf("%v of virtual time in %v of wall time", virtual, time.Since(wall).Round(time.Millisecond))
}

// A clean release: four one-hour steps, then the checklist's 24-hour watch,
// more than a day of virtual time.
func TestClean24HourRelease(t *testing.T) {
	wall := time.Now()
	var virtual time.Duration
	synctest.Test(t, func(t *testing.T) {
		w, l := newWeights(t)
		rec := &deploytest.Recorder{}
		health := deploytest.Healthy()
		r := newRunner(t, w, health, deploy.WithNotifiers(rec))

		start := time.Now()
		rep, err := r.Run(t.Context(), release)
		virtual = time.Since(start)
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
		if rep.Status != deploy.Succeeded || rep.Exposure != 1 {
			t.Errorf("report: status %s at exposure %v, want succeeded at 1", rep.Status, rep.Exposure)
		}
		if want := 4*time.Hour + 24*time.Hour; virtual != want {
			t.Errorf("release took %v of virtual time, want %v", virtual, want)
		}
		watchStart := start.Add(4 * time.Hour)
		wantWindows := []state.Window{
			{Name: "intensive", Interval: 30 * time.Second, Start: watchStart, End: watchStart.Add(time.Hour), Observations: 120},
			{Name: "regular", Interval: 5 * time.Minute, Start: watchStart.Add(time.Hour), End: watchStart.Add(24 * time.Hour), Observations: 276},
		}
		if diff := cmp.Diff(wantWindows, rep.Windows); diff != "" {
			t.Errorf("watch windows (-want +got):\n%s", diff)
		}
		// 1 baseline, 60 per step, 1 post-deployment check, 396 in the watch.
		if got, want := health.Calls(), 1+4*60+1+120+276; got != want {
			t.Errorf("%d observations, want %d", got, want)
		}

		if diff := cmp.Diff([]float64{0.05, 0.25, 0.5, 1}, l.seen()); diff != "" {
			t.Errorf("shares nginx loaded (-want +got):\n%s", diff)
		}
		want := `# Written by deploykit for checkout v2: 100 % canary. Do not edit.
upstream checkout {
    server 10.0.0.1:8080 down;
    server 10.0.0.2:8080 weight=100;
}
`
		if diff := cmp.Diff(want, readFile(t, w.Path())); diff != "" {
			t.Errorf("upstream file (-want +got):\n%s", diff)
		}

		got, observations := events(rec)
		wantEvents := []event{
			{deploy.EventStarted, deploy.PhasePreflight, "", 0, deploy.Running},
			{deploy.EventPhase, deploy.PhasePreflight, "", 0, deploy.Running},
			{deploy.EventStep, deploy.PhaseDeploy, "5%", 0.05, deploy.Running},
			{deploy.EventStep, deploy.PhaseDeploy, "25%", 0.25, deploy.Running},
			{deploy.EventStep, deploy.PhaseDeploy, "50%", 0.5, deploy.Running},
			{deploy.EventStep, deploy.PhaseDeploy, "100%", 1, deploy.Running},
			{deploy.EventPhase, deploy.PhaseDeploy, "", 1, deploy.Running}, // stage complete
			{deploy.EventPhase, deploy.PhaseVerify, "", 1, deploy.Running}, // post-deployment checks passed
			{deploy.EventPhase, deploy.PhaseVerify, "", 1, deploy.Running}, // intensive watch complete
			{deploy.EventPhase, deploy.PhaseVerify, "", 1, deploy.Running}, // regular watch complete
			{deploy.EventFinished, deploy.PhaseComplete, "", 1, deploy.Succeeded},
		}
		if diff := cmp.Diff(wantEvents, got); diff != "" {
			t.Errorf("events (-want +got):\n%s", diff)
		}
		t.Logf("%d observations, %d of them notified", health.Calls(), observations)
	})
	t.Logf("%v of virtual time in %v of wall time", virtual, time.Since(wall).Round(time.Millisecond))
}
