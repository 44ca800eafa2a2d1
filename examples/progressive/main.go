// Command progressive releases a new code path behind a feature flag with
// nothing to install: an in-process demo service evaluates the flag per request
// through the OpenFeature SDK (the targeting key is the user id sent by a small
// load generator), the new binary goes out dark, then the flag's share goes
// 1 % → 5 % → 25 % → 50 % → 100 % while the service's own per-path error and
// latency metrics are compared, new path against old path.
//
//	go run ./examples/progressive            # the new path is healthy: the release succeeds
//	go run ./examples/progressive -regress   # the new path fails ~30 % of requests: the share drops back to 0
//
// It exits 0 when the release succeeds, 1 when it rolls back, 2 on any other error.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/open-feature/go-sdk/openfeature"
	"github.com/open-feature/go-sdk/openfeature/isolated"

	"github.com/deploykit/deploy"
	"github.com/deploykit/deploy/examples/internal/demo"
	"github.com/deploykit/deploy/flags"
	"github.com/deploykit/deploy/gate"
	"github.com/deploykit/deploy/monitor"
	"github.com/deploykit/deploy/notify"
	"github.com/deploykit/deploy/rollback"
	"github.com/deploykit/deploy/state"
	"github.com/deploykit/deploy/strategy/progressive"
)

const flagKey = "new-checkout"

func main() {
	regress := flag.Bool("regress", false, "make the new code path fail a share of its requests, so the runner rolls back")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	rep, err := run(ctx, os.Stdout, *regress)
	switch {
	case err == nil:
	case rep != nil && (rep.Status == deploy.RolledBack || rep.Status == deploy.Aborted):
		fmt.Fprintf(os.Stderr, "\nrelease rolled back: %v\n", err)
		os.Exit(1)
	default:
		fmt.Fprintf(os.Stderr, "progressive: %v\n", err)
		os.Exit(2)
	}
}

func run(ctx context.Context, out io.Writer, regress bool) (*deploy.Report, error) {
	// The flag, served in process and evaluated through an isolated OpenFeature API.
	provider, err := flags.NewProvider(flags.BoolFlag(flagKey, 0))
	if err != nil {
		return nil, err
	}
	api := isolated.NewAPI()
	defer api.Shutdown(context.Background())
	if err := api.SetProviderAndWait(ctx, provider); err != nil {
		return nil, err
	}
	client := api.NewClient()

	svc := &service{flags: client, regress: regress}
	// About 400 requests a second, each from one of 10,000 users.
	url, stop, err := demo.Start(ctx, svc, 400, demo.Users("/checkout"))
	if err != nil {
		return nil, err
	}
	defer stop()
	fmt.Fprintf(out, "demo service on %s: flag %q is off, everyone gets the old code path; releasing the new one (regress=%v)\n\n", url, flagKey, regress)

	dir, err := os.MkdirTemp("", "deploykit-progressive-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	store, err := state.NewFile(dir)
	if err != nil {
		return nil, err
	}
	policy := deploy.DefaultPolicy()
	policy.Triggers = []rollback.Trigger{
		rollback.CriticalChecks{},
		rollback.RelativeIncrease{Metric: monitor.ErrorRate, MaxIncrease: 0.5, Floor: 0.02, Confidence: 0.95},
		rollback.LatencyIncrease{Metric: monitor.LatencyP95, MaxIncrease: 50 * time.Millisecond},
	}
	policy.MinSamples = 5
	policy.InconclusiveLimit = 3 // 1 % of the load is a few requests a second: wait for enough
	runner, err := deploy.NewRunner(&progressive.Strategy{
		Flag:       flagKey,
		Controller: provider,
		Client:     client,
		Deploy: func(ctx context.Context, d *deploy.Deployment) error {
			svc.deployed.Store(true) // the new binary, with the new path behind the flag
			return nil
		},
		Bake: 3 * time.Second, // the dark binary, then each of 1 %, 5 %, 25 %, 50 %, 100 %
	},
		deploy.WithGates(gate.FlagOff{Flag: flagKey, Client: client, Controller: provider}),
		deploy.WithMonitors(svc),
		deploy.WithNotifiers(&notify.Console{W: out, Report: true}),
		deploy.WithRollbackPolicy(policy),
		deploy.WithInterval(time.Second),
		deploy.WithBaselineWindow(2*time.Second),
		deploy.WithSchedule(monitor.Schedule{Windows: []monitor.Window{
			{Name: "intensive", Duration: 4 * time.Second, Interval: time.Second},
		}}),
		deploy.WithStore(store),
		deploy.WithWaiver(deploy.FridayDeploy, "demo service on localhost: no users to hurt on a Friday"),
	)
	if err != nil {
		return nil, err
	}
	rep, err := runner.Run(ctx, deploy.Release{
		Service: "demo", Version: "v2", PreviousVersion: "v1", Environment: "production",
		Description: "New checkout code path behind the feature flag " + flagKey,
		Links:       map[string]string{"design": "docs/stories/demo/design.md", "tasks": "docs/stories/demo/tasks.md"},
	})
	share, serr := provider.Share(context.Background(), flagKey)
	if serr == nil {
		fmt.Fprintf(out, "flag %q now serves the new code path to %s of users\n", flagKey, strconv.FormatFloat(share*100, 'f', -1, 64)+" %")
	}
	return rep, err
}

// service is the demo: one HTTP handler that evaluates the flag for each
// request's user and takes the new code path when it is on. It is also the
// release's monitor: its own error rate and p95 latency, new path against old.
type service struct {
	flags    *openfeature.Client
	regress  bool
	deployed atomic.Bool
	metrics  demo.Metrics
}

func (s *service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	user := r.URL.Query().Get("user")
	path := "old"
	if s.deployed.Load() {
		on, _ := s.flags.BooleanValue(r.Context(), flagKey, false, openfeature.NewEvaluationContext(user, nil))
		if on {
			path = "new"
		}
	}
	failRate := 0.0
	if path == "new" && s.regress {
		failRate = 0.3
	}
	failed := demo.Work(failRate)
	if failed {
		http.Error(w, "internal error", http.StatusInternalServerError)
	} else {
		fmt.Fprintf(w, "hello %s from the %s code path\n", user, path)
	}
	s.metrics.Record(path, start, failed)
}

// Observe implements deploy.Monitor: the new code path's error rate and p95
// latency since t.Since, with the old path over the same window as the
// control; while the binary is dark, everyone's requests against the baseline.
func (s *service) Observe(ctx context.Context, t monitor.Target) (monitor.Observation, error) {
	return s.metrics.Observe(t, "new", "old"), nil
}

func (s *service) Name() string { return "demo-metrics" }
