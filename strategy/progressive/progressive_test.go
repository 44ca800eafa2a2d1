package progressive_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/open-feature/go-sdk/openfeature"
	"github.com/open-feature/go-sdk/openfeature/isolated"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/deploykit/deploy"
	"github.com/deploykit/deploy/deploytest"
	"github.com/deploykit/deploy/flags"
	"github.com/deploykit/deploy/monitor"
	"github.com/deploykit/deploy/state"
	"github.com/deploykit/deploy/strategy/progressive"
)

const flagKey = "new-checkout"

var rel = deploy.Release{Service: "checkout", Version: "v2", PreviousVersion: "v1"}

// newFlag serves flagKey at share from a new flags.Provider registered with an
// isolated OpenFeature API, and returns the provider and a client.
func newFlag(t testing.TB, share float64) (*flags.Provider, *openfeature.Client) {
	t.Helper()
	p, err := flags.NewProvider(flags.BoolFlag(flagKey, share))
	if err != nil {
		t.Fatal(err)
	}
	api := isolated.NewAPI()
	if err := api.SetProviderAndWait(t.Context(), p); err != nil {
		t.Fatalf("SetProviderAndWait: %v", err)
	}
	t.Cleanup(func() { api.Shutdown(context.Background()) })
	return p, api.NewClient()
}

// setCall is one SetShare call, at a time relative to the start of the test.
type setCall struct {
	At    time.Duration
	Share float64
}

// recController records the SetShare calls made through it.
type recController struct {
	flags.Controller
	start time.Time

	mu    sync.Mutex
	calls []setCall
}

func (c *recController) SetShare(ctx context.Context, key string, share float64) error {
	c.mu.Lock()
	c.calls = append(c.calls, setCall{time.Since(c.start), share})
	c.mu.Unlock()
	return c.Controller.SetShare(ctx, key, share)
}

func (c *recController) Calls() []setCall {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]setCall(nil), c.calls...)
}

func newRunner(t *testing.T, s deploy.Strategy, m deploy.Monitor, opts ...deploy.Option) *deploy.Runner {
	t.Helper()
	base := []deploy.Option{
		deploy.WithStore(state.NewMemory()),
		deploy.WithMonitors(m),
		deploy.WithNotifiers(&deploytest.Recorder{}),
		deploy.WithInterval(time.Minute),
		deploy.WithSchedule(monitor.Schedule{}),
		deploy.WithWaiver(deploy.FridayDeploy, "test clock starts on a Saturday"),
	}
	r, err := deploy.NewRunner(s, append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func stepNames(rep *deploy.Report, outcome state.Outcome) []string {
	var names []string
	for _, e := range rep.Timeline {
		if e.Kind == state.EntryStep && e.Outcome == outcome {
			names = append(names, e.Name)
		}
	}
	return names
}

func TestProgressivePlan(t *testing.T) {
	p, client := newFlag(t, 0)
	s := &progressive.Strategy{Flag: flagKey, Controller: p, Client: client, Bake: time.Hour}
	steps, err := s.Plan(context.Background(), &deploy.Deployment{ID: "r1"})
	if err != nil {
		t.Fatal(err)
	}
	type step struct {
		Name     string
		Exposure float64
		Bake     time.Duration
	}
	var got []step
	for _, st := range steps {
		got = append(got, step{st.Name, st.Exposure, st.Bake})
	}
	want := []step{{"dark", 0, time.Hour}, {"1%", 0.01, time.Hour}, {"5%", 0.05, time.Hour}, {"25%", 0.25, time.Hour}, {"50%", 0.5, time.Hour}, {"100%", 1, time.Hour}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("default plan (-want +got):\n%s", diff)
	}

	s.Steps = []progressive.Step{{Share: 0.0005, Bake: time.Minute}, {Share: 1.0 / 3, Bake: 2 * time.Minute, Approval: true}, {Share: 1}}
	steps, err = s.Plan(context.Background(), &deploy.Deployment{ID: "r1"})
	if err != nil {
		t.Fatal(err)
	}
	got = got[:0]
	for _, st := range steps {
		got = append(got, step{st.Name, st.Exposure, st.Bake})
	}
	want = []step{{"dark", 0, time.Hour}, {"0.05%", 0.0005, time.Minute}, {"33.33%", 1.0 / 3, 2 * time.Minute}, {"100%", 1, 0}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("custom plan (-want +got):\n%s", diff)
	}
	if !steps[2].Approval || steps[1].Approval {
		t.Errorf("approvals = %v, %v; want only 33.33%%", steps[1].Approval, steps[2].Approval)
	}
	if got, _ := p.Share(t.Context(), flagKey); got != 0 {
		t.Errorf("Plan changed the share to %v", got)
	}
	if s.Name() != "progressive" || !s.RollbackPath() {
		t.Errorf("Name %q, RollbackPath %v", s.Name(), s.RollbackPath())
	}
}

func TestProgressiveValidate(t *testing.T) {
	p, client := newFlag(t, 0)
	ok := func() progressive.Strategy {
		return progressive.Strategy{Flag: flagKey, Controller: p, Client: client}
	}
	cases := []struct {
		name   string
		change func(*progressive.Strategy)
		want   string
	}{
		{"no flag", func(s *progressive.Strategy) { s.Flag = "" }, "Strategy.Flag is empty"},
		{"nil controller", func(s *progressive.Strategy) { s.Controller = nil }, "Strategy.Controller is nil"},
		{"nil client", func(s *progressive.Strategy) { s.Client = nil }, "Strategy.Client is nil"},
		{"negative bake", func(s *progressive.Strategy) { s.Bake = -time.Second }, "Strategy.Bake -1s is negative"},
		{"negative samples", func(s *progressive.Strategy) { s.Samples = -5 }, "Strategy.Samples -5 is negative"},
		{"negative tolerance", func(s *progressive.Strategy) { s.Tolerance = -0.1 }, "Strategy.Tolerance -0.1 is outside [0, 1)"},
		{"tolerance 1", func(s *progressive.Strategy) { s.Tolerance = 1 }, "Strategy.Tolerance 1 is outside [0, 1)"},
		{"NaN tolerance", func(s *progressive.Strategy) { s.Tolerance = math.NaN() }, "Strategy.Tolerance NaN is outside [0, 1)"},
		{"negative settle", func(s *progressive.Strategy) { s.Settle = -time.Millisecond }, "Strategy.Settle -1ms is negative"},
		{"traced above samples", func(s *progressive.Strategy) { s.Samples, s.Traced = 100, 101 }, "Strategy.Traced 101 is more than the 100 samples"},
		{"share 0", func(s *progressive.Strategy) { s.Steps = []progressive.Step{{Share: 0}} }, "Strategy.Steps[0].Share 0 is outside (0, 1]"},
		{"share above 1", func(s *progressive.Strategy) { s.Steps = []progressive.Step{{Share: 0.5}, {Share: 1.5}} }, "Strategy.Steps[1].Share 1.5 is outside (0, 1]"},
		{"share NaN", func(s *progressive.Strategy) { s.Steps = []progressive.Step{{Share: math.NaN()}} }, "Strategy.Steps[0].Share NaN is outside (0, 1]"},
		{"below a bucket", func(s *progressive.Strategy) { s.Steps = []progressive.Step{{Share: 0.00001}} }, "Strategy.Steps[0].Share 1e-05 rounds to 0 buckets"},
		{"decreasing", func(s *progressive.Strategy) {
			s.Steps = []progressive.Step{{Share: 0.05}, {Share: 0.25}, {Share: 0.1}}
		}, "Strategy.Steps[2].Share 0.1 is not above the previous step's 0.25"},
		{"repeated", func(s *progressive.Strategy) { s.Steps = []progressive.Step{{Share: 0.5}, {Share: 0.50001}} }, "Strategy.Steps[1].Share 0.50001 is not above the previous step's 0.5"},
		{"negative step bake", func(s *progressive.Strategy) {
			s.Steps = []progressive.Step{{Share: 0.5}, {Share: 1, Bake: -time.Minute}}
		}, "Strategy.Steps[1].Bake -1m0s is negative"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := ok()
			c.change(&s)
			err := s.Validate()
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Validate = %v, want an error containing %q", err, c.want)
			}
			if _, perr := s.Plan(context.Background(), &deploy.Deployment{}); perr == nil || perr.Error() != err.Error() {
				t.Errorf("Plan = %v, want Validate's error", perr)
			}
		})
	}
	good := ok()
	if err := good.Validate(); err != nil {
		t.Errorf("Validate of good settings: %v", err)
	}

	// The runner refuses the plan before anything touches the flag.
	synctest.Test(t, func(t *testing.T) {
		p, client := newFlag(t, 0.05)
		rc := &recController{Controller: p, start: time.Now()}
		s := &progressive.Strategy{Flag: flagKey, Controller: rc, Client: client, Steps: []progressive.Step{{Share: 0.5}, {Share: 0.25}}}
		r, err := deploy.NewRunner(s, deploy.WithStore(state.NewMemory()), deploy.WithMonitors(deploytest.Healthy()),
			deploy.WithNotifiers(&deploytest.Recorder{}), deploy.WithWaiver(deploy.FridayDeploy, "test clock starts on a Saturday"))
		if err == nil {
			_, err = r.Run(t.Context(), rel)
		}
		if !errors.Is(err, deploy.ErrInvalid) || !strings.Contains(err.Error(), "Strategy.Steps[1].Share 0.25 is not above the previous step's 0.5") {
			t.Errorf("NewRunner or Run = %v, want ErrInvalid naming the step", err)
		}
		if calls := rc.Calls(); len(calls) != 0 {
			t.Errorf("SetShare calls %v before the plan was valid", calls)
		}
	})
}

func TestProgressiveRampSucceeds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		p, of := newFlag(t, 0)
		client := &pinnedKeys{Client: of}
		rc := &recController{Controller: p, start: start}
		deployed := 0
		s := &progressive.Strategy{Flag: flagKey, Controller: rc, Client: client, Bake: 10 * time.Minute,
			Deploy: func(ctx context.Context, d *deploy.Deployment) error {
				if share, _ := p.Share(ctx, flagKey); share != 0 {
					t.Errorf("deployed with the flag at %v", share)
				}
				deployed++
				return nil
			}}
		sr := tracetest.NewSpanRecorder()
		tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
		r := newRunner(t, s, deploytest.Healthy(), deploy.WithTracerProvider(tp))
		rep, err := r.Run(t.Context(), rel)
		if err != nil {
			t.Fatalf("Run: %v\n%s", err, rep.Markdown())
		}
		if rep.Status != deploy.Succeeded || rep.Exposure != 1 {
			t.Fatalf("status %s, exposure %v; want succeeded at 1", rep.Status, rep.Exposure)
		}
		if share, err := p.Share(t.Context(), flagKey); share != 1 || err != nil {
			t.Errorf("share = %v, %v; want 1", share, err)
		}
		if deployed != 1 {
			t.Errorf("Deploy called %d times, want 1", deployed)
		}
		if diff := cmp.Diff([]string{rep.ID}, client.IDs()); diff != "" {
			t.Errorf("deployment ids in the synthetic targeting keys (-want +got):\n%s", diff)
		}
		wantCalls := []setCall{{0, 0}, {10 * time.Minute, 0.01}, {20 * time.Minute, 0.05}, {30 * time.Minute, 0.25}, {40 * time.Minute, 0.5}, {50 * time.Minute, 1}}
		if diff := cmp.Diff(wantCalls, rc.Calls()); diff != "" {
			t.Errorf("SetShare calls (-want +got):\n%s", diff)
		}
		wantSteps := []string{"dark", "1%", "5%", "25%", "50%", "100%"}
		if diff := cmp.Diff(wantSteps, stepNames(rep, "applied")); diff != "" {
			t.Errorf("applied steps (-want +got):\n%s", diff)
		}

		// Each step's span has a passing check of its share, and evaluations
		// recorded by the OpenTelemetry hook.
		type check struct {
			Step     string
			Share    float64
			OK       bool
			Attempt  int64
			Samples  int64
			Flagged  int
			Provider string
		}
		var got []check
		for _, sp := range sr.Ended() {
			if sp.Name() != "deploy.step" {
				continue
			}
			c := check{Step: attrOf(sp.Attributes(), "deploy.step").AsString()}
			for _, ev := range sp.Events() {
				switch ev.Name {
				case "deploy.flag.check":
					c.Share = attrOf(ev.Attributes, "deploy.flag.share").AsFloat64()
					c.OK = attrOf(ev.Attributes, "deploy.flag.ok").AsBool()
					c.Attempt = attrOf(ev.Attributes, "deploy.flag.attempt").AsInt64()
					c.Samples = attrOf(ev.Attributes, "deploy.flag.samples").AsInt64()
				case "feature_flag.evaluation":
					c.Flagged++
					if k := attrOf(ev.Attributes, "feature_flag.key").AsString(); k != flagKey {
						t.Errorf("feature_flag.key = %q", k)
					}
					c.Provider = attrOf(ev.Attributes, "feature_flag.provider.name").AsString()
					if v := attrOf(ev.Attributes, "feature_flag.result.variant").AsString(); v != "on" && v != "off" {
						t.Errorf("feature_flag.result.variant = %q", v)
					}
				}
			}
			got = append(got, c)
		}
		want := []check{
			{"dark", 0, true, 1, 2000, 10, flags.ProviderName},
			{"1%", 0.01, true, 1, 2000, 10, flags.ProviderName},
			{"5%", 0.05, true, 1, 2000, 10, flags.ProviderName},
			{"25%", 0.25, true, 1, 2000, 10, flags.ProviderName},
			{"50%", 0.5, true, 1, 2000, 10, flags.ProviderName},
			{"100%", 1, true, 1, 2000, 10, flags.ProviderName},
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("step spans (-want +got):\n%s", diff)
		}
	})
}

// pinnedKeys evaluates the flag for the strategy's synthetic targeting keys,
// "deploykit-verify-<id>-<step>-<attempt>-<n>", with the deployment id —
// random for every release — replaced by a fixed one. Which keys fall in the
// flag's buckets, and so whether a check passes at its first attempt, is then
// the same on every run: with random ids a share missed its tolerance by
// chance about once in 370 checks, and the test expecting first attempts
// failed about 3 runs in 403. It records the ids it replaced.
type pinnedKeys struct {
	flags.Client

	mu  sync.Mutex
	ids []string
}

func (c *pinnedKeys) BooleanValueDetails(ctx context.Context, flag string, def bool, ec openfeature.EvaluationContext, opts ...openfeature.Option) (openfeature.BooleanEvaluationDetails, error) {
	key := ec.TargetingKey()
	rest, ok := strings.CutPrefix(key, "deploykit-verify-")
	parts := strings.Split(rest, "-")
	if !ok || len(parts) < 4 {
		return openfeature.BooleanEvaluationDetails{}, fmt.Errorf("targeting key %q is not deploykit-verify-<id>-<step>-<attempt>-<n>", key)
	}
	id := strings.Join(parts[:len(parts)-3], "-")
	c.mu.Lock()
	if !slices.Contains(c.ids, id) {
		c.ids = append(c.ids, id)
	}
	c.mu.Unlock()
	pinned := "deploykit-verify-pinned-" + strings.Join(parts[len(parts)-3:], "-")
	return c.Client.BooleanValueDetails(ctx, flag, def, openfeature.NewEvaluationContext(pinned, ec.Attributes()), opts...)
}

// IDs returns the deployment ids seen in targeting keys, in order.
func (c *pinnedKeys) IDs() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.ids)
}

func attrOf(kvs []attribute.KeyValue, key attribute.Key) attribute.Value {
	for _, kv := range kvs {
		if kv.Key == key {
			return kv.Value
		}
	}
	return attribute.Value{}
}

func TestProgressiveRegressionAt25RollsBackWithinOneInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		p, client := newFlag(t, 0)
		rc := &recController{Controller: p, start: start}
		s := &progressive.Strategy{Flag: flagKey, Controller: rc, Client: client, Bake: 10 * time.Minute}
		r := newRunner(t, s, deploytest.Regression(0.25, deploytest.Health{ErrorRate: 0.09, P95: 130 * time.Millisecond}))
		rep, err := r.Run(t.Context(), rel)
		if !errors.Is(err, deploy.ErrUnhealthy) || rep.Status != deploy.RolledBack {
			t.Fatalf("err = %v, status %s; want rolled back as unhealthy", err, rep.Status)
		}
		if rep.Trigger.Step != "25%" {
			t.Errorf("trigger in step %q, want 25%%", rep.Trigger.Step)
		}
		// 25 % is set at +30m; the first observation, one interval later, breaches.
		want := []setCall{{0, 0}, {10 * time.Minute, 0.01}, {20 * time.Minute, 0.05}, {30 * time.Minute, 0.25}, {31 * time.Minute, 0}}
		if diff := cmp.Diff(want, rc.Calls()); diff != "" {
			t.Errorf("SetShare calls (-want +got):\n%s", diff)
		}
		if got := rep.Trigger.At.Sub(start); got != 31*time.Minute {
			t.Errorf("trigger at +%v, want +31m", got)
		}
		if share, _ := p.Share(t.Context(), flagKey); share != 0 || rep.Exposure != 0 {
			t.Errorf("share %v, exposure %v after rollback; want 0", share, rep.Exposure)
		}
		// Nobody gets the new code path any more.
		for _, user := range []string{"alice", "bob", "carol"} {
			if on, _ := client.BooleanValue(t.Context(), flagKey, true, openfeature.NewEvaluationContext(user, nil)); on {
				t.Errorf("%s still gets the flag after the rollback", user)
			}
		}
	})
}

// TestProgressiveProviderIgnoresChanges: the controller writes to a provider
// the client does not read, as when flagd misses a change to its file. The
// first share fails its check and the runner rolls back.
func TestProgressiveProviderIgnoresChanges(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		_, client := newFlag(t, 0)
		elsewhere, err := flags.NewProvider(flags.BoolFlag(flagKey, 0))
		if err != nil {
			t.Fatal(err)
		}
		rc := &recController{Controller: elsewhere, start: start}
		s := &progressive.Strategy{Flag: flagKey, Controller: rc, Client: client, Bake: 10 * time.Minute}
		r := newRunner(t, s, deploytest.Healthy())
		rep, err := r.Run(t.Context(), rel)
		if !errors.Is(err, deploy.ErrStepFailed) || rep.Status != deploy.RolledBack {
			t.Fatalf("err = %v, status %s; want a rollback after a failed step", err, rep.Status)
		}
		var pe *deploy.PhaseError
		if !errors.As(err, &pe) || pe.Step != "1%" {
			t.Errorf("err = %v, want a PhaseError in step 1%%", err)
		}
		wantReason := `step production/1% failed to apply: progressive: flag "new-checkout" was set to 1 % but serves 0 % of 2000 sampled keys (tolerance ±0.68 %) after 5s: the provider has not picked up the change`
		if rep.Trigger.Reason != wantReason {
			t.Errorf("reason:\n got %s\nwant %s", rep.Trigger.Reason, wantReason)
		}
		// The check retried for the settle time before giving up, then the
		// rollback set the share back to 0 (and its check passed: nobody is on).
		calls := rc.Calls()
		if len(calls) != 3 || calls[1] != (setCall{10 * time.Minute, 0.01}) || calls[2].Share != 0 {
			t.Fatalf("SetShare calls %v", calls)
		}
		if d := calls[2].At - calls[1].At; d < 4*time.Second || d > 5*time.Second {
			t.Errorf("rolled back %v after setting 1 %%, want within the 5 s settle time", d)
		}
		if diff := cmp.Diff([]string{"dark"}, stepNames(rep, "applied")); diff != "" {
			t.Errorf("applied steps (-want +got):\n%s", diff)
		}
	})
}

// lateController applies each change after a delay, like a file watcher.
type lateController struct {
	flags.Controller
	delay time.Duration
}

func (c lateController) SetShare(ctx context.Context, key string, share float64) error {
	time.AfterFunc(c.delay, func() { c.Controller.SetShare(context.Background(), key, share) })
	return nil
}

func TestProgressiveWaitsForASlowProvider(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, client := newFlag(t, 0)
		s := &progressive.Strategy{Flag: flagKey, Controller: lateController{p, 300 * time.Millisecond}, Client: client,
			Steps: []progressive.Step{{Share: 0.5, Bake: time.Minute}, {Share: 1, Bake: time.Minute}}}
		steps, err := s.Plan(context.Background(), &deploy.Deployment{ID: "slow"})
		if err != nil {
			t.Fatal(err)
		}
		sr := tracetest.NewSpanRecorder()
		tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
		ctx, span := tp.Tracer("test").Start(t.Context(), "deploy.step")
		begin := time.Now()
		err = steps[1].Apply(ctx, &deploy.Deployment{ID: "slow"})
		took := time.Since(begin)
		span.End()
		if err != nil {
			t.Fatalf("Apply 50%%: %v", err)
		}
		// Checks at 0 (and again at once with new keys, in case the first
		// sample missed by chance), 10, 30, 70, 150, 310 ms: the seventh sees
		// the change.
		if took != 310*time.Millisecond {
			t.Errorf("Apply took %v, want 310ms", took)
		}
		var oks []bool
		for _, ev := range sr.Ended()[0].Events() {
			if ev.Name == "deploy.flag.check" {
				oks = append(oks, attrOf(ev.Attributes, "deploy.flag.ok").AsBool())
			}
		}
		if diff := cmp.Diff([]bool{false, false, false, false, false, false, true}, oks); diff != "" {
			t.Errorf("checks (-want +got):\n%s", diff)
		}
		synctest.Wait()
	})
}

// errClient fails every evaluation.
type errClient struct{}

func (errClient) BooleanValueDetails(ctx context.Context, flag string, def bool, _ openfeature.EvaluationContext, _ ...openfeature.Option) (openfeature.BooleanEvaluationDetails, error) {
	return openfeature.BooleanEvaluationDetails{Value: def}, openfeature.NewProviderNotReadyResolutionError("flagd is not connected")
}

func TestProgressiveEvaluationErrorsFail(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, _ := newFlag(t, 0)
		s := &progressive.Strategy{Flag: flagKey, Controller: p, Client: errClient{}, Settle: time.Second}
		steps, err := s.Plan(context.Background(), &deploy.Deployment{ID: "x"})
		if err != nil {
			t.Fatal(err)
		}
		err = steps[0].Apply(t.Context(), &deploy.Deployment{ID: "x"})
		want := `progressive: flag "new-checkout" at 0 % could not be checked within 1s: evaluating for targeting key "deploykit-verify-x-dark-`
		if err == nil || !strings.HasPrefix(err.Error(), want) || !strings.Contains(err.Error(), "PROVIDER_NOT_READY") {
			t.Errorf("Apply dark = %v, want an error starting %q with the provider's error", err, want)
		}
		if err := s.Rollback(t.Context(), &deploy.Deployment{ID: "x"}); err == nil {
			t.Error("Rollback with a client that cannot evaluate: nil error, want one (the rollback is not verified)")
		}
	})
}

func TestProgressiveCheckStopsOnCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, client := newFlag(t, 0)
		other, _ := flags.NewProvider(flags.BoolFlag(flagKey, 0))
		s := &progressive.Strategy{Flag: flagKey, Controller: other, Client: client, Settle: time.Hour}
		steps, _ := s.Plan(context.Background(), &deploy.Deployment{})
		ctx, cancel := context.WithCancelCause(t.Context())
		time.AfterFunc(3*time.Second, func() { cancel(errors.New("operator pressed ctrl-c")) })
		begin := time.Now()
		err := steps[1].Apply(ctx, &deploy.Deployment{})
		if err == nil || err.Error() != "operator pressed ctrl-c" {
			t.Errorf("Apply = %v, want the cancel cause", err)
		}
		if took := time.Since(begin); took != 3*time.Second {
			t.Errorf("Apply returned after %v, want 3s", took)
		}
	})
}

// BenchmarkCheck measures one step: SetShare, then 2000 evaluations through
// the OpenFeature SDK (10 of them with the OpenTelemetry hook) with a recording
// tracer.
func BenchmarkCheck(b *testing.B) {
	p, client := newFlag(b, 0)
	s := &progressive.Strategy{Flag: flagKey, Controller: p, Client: client}
	steps, err := s.Plan(context.Background(), &deploy.Deployment{ID: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider()
	d := &deploy.Deployment{ID: "bench"}
	for b.Loop() {
		ctx, span := tp.Tracer("bench").Start(b.Context(), "deploy.step")
		if err := steps[3].Apply(ctx, d); err != nil {
			b.Fatal(err)
		}
		span.End()
	}
}

func TestProgressiveConformance(t *testing.T) {
	p, client := newFlag(t, 0)
	s := &progressive.Strategy{Flag: flagKey, Controller: p, Client: client, Bake: time.Hour,
		Deploy: func(context.Context, *deploy.Deployment) error { return nil }}
	if err := deploytest.TestStrategy(t.Context(), s, &deploy.Deployment{ID: "conformance", Release: rel}); err != nil {
		t.Error(err)
	}
	if share, _ := p.Share(t.Context(), flagKey); share != 0 {
		t.Errorf("share %v after the suite's rollback, want 0", share)
	}
}

// TestProgressiveStages: with staging before production, each stage ramps
// its own flag backend (Stages); a regression in production turns off
// production's flag only, and staging keeps the new code path.
func TestProgressiveStages(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		stagingP, stagingC := newFlag(t, 0)
		prodP, prodC := newFlag(t, 0)
		s := &progressive.Strategy{Flag: flagKey, Bake: 10 * time.Minute, Stages: map[string]progressive.Target{
			"staging":    {Controller: stagingP, Client: stagingC},
			"production": {Controller: prodP, Client: prodC},
		}}
		var prodShares []float64
		m := deploy.MonitorFunc(func(ctx context.Context, tg monitor.Target) (monitor.Observation, error) {
			h := deploytest.Health{ErrorRate: 0.001, P95: 100 * time.Millisecond, Samples: 1000}
			if tg.Stage == "production" {
				share, _ := prodP.Share(ctx, flagKey)
				prodShares = append(prodShares, share)
				if tg.Exposure >= 0.25 {
					h.ErrorRate = 0.09
				}
			}
			return h.Observation(), nil
		})
		r := newRunner(t, s, m, deploy.WithStages(deploy.Stage{Name: "staging", Environment: "staging"}, deploy.Stage{Name: "production"}))
		rep, err := r.Run(t.Context(), rel)
		if !errors.Is(err, deploy.ErrUnhealthy) || rep.Trigger.Stage != "production" || rep.Trigger.Step != "25%" {
			t.Fatalf("err %v, trigger %+v; want a rollback at production/25%%", err, rep.Trigger)
		}
		if share, _ := stagingP.Share(t.Context(), flagKey); share != 1 {
			t.Errorf("staging share %v, want 1: a finished stage keeps the new version", share)
		}
		if share, _ := prodP.Share(t.Context(), flagKey); share != 0 {
			t.Errorf("production share %v after the rollback, want 0", share)
		}
		// Production's flag stayed off while staging ramped.
		if len(prodShares) == 0 || prodShares[0] != 0 {
			t.Errorf("production shares seen %v, want it to start at 0", prodShares)
		}
	})
}

func TestProgressiveStagesValidate(t *testing.T) {
	p, c := newFlag(t, 0)
	for _, tc := range []struct {
		s    *progressive.Strategy
		want string
	}{
		{&progressive.Strategy{Flag: flagKey, Stages: map[string]progressive.Target{"staging": {Client: c}}}, `progressive: Strategy.Stages["staging"].Controller is nil`},
		{&progressive.Strategy{Flag: flagKey, Stages: map[string]progressive.Target{"staging": {Controller: p}}}, `progressive: Strategy.Stages["staging"].Client is nil`},
	} {
		if err := tc.s.Validate(); err == nil || err.Error() != tc.want {
			t.Errorf("Validate = %v, want %q", err, tc.want)
		}
	}
	// A stage with no backend of its own and none by default is refused when planned.
	s := &progressive.Strategy{Flag: flagKey, Stages: map[string]progressive.Target{"staging": {Controller: p, Client: c}}}
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	_, err := s.Plan(context.Background(), &deploy.Deployment{Stage: deploy.Stage{Name: "production"}})
	if want := `progressive: Strategy has no flag backend for stage "production": set Controller and Client, or Stages["production"]`; err == nil || err.Error() != want {
		t.Errorf("Plan(production) = %v, want %q", err, want)
	}
}
