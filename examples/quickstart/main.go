// Command quickstart releases v2 of an in-process demo service with nothing to
// install: two versions behind an in-process router, real HTTP requests from a
// small load generator, the service's own error and latency metrics, a
// three-step canary, a short watch, live progress and the Markdown report.
//
//	go run ./examples/quickstart            # v2 is healthy: the release succeeds
//	go run ./examples/quickstart -regress   # v2 fails a share of requests: it rolls back
//
// It exits 0 when the release succeeds, 1 when it rolls back, 2 on any other error.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"time"

	"github.com/deploykit/deploy"
	"github.com/deploykit/deploy/examples/internal/demo"
	"github.com/deploykit/deploy/monitor"
	"github.com/deploykit/deploy/notify"
	"github.com/deploykit/deploy/rollback"
	"github.com/deploykit/deploy/state"
)

func main() {
	regress := flag.Bool("regress", false, "make v2 fail a share of its requests, so the runner rolls back")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	rep, err := run(ctx, os.Stdout, *regress)
	switch {
	case err == nil:
	case errors.Is(err, deploy.ErrUnhealthy) && rep != nil:
		fmt.Fprintf(os.Stderr, "\nrelease rolled back: %v\n", err)
		os.Exit(1)
	default:
		fmt.Fprintf(os.Stderr, "quickstart: %v\n", err)
		os.Exit(2)
	}
}

func run(ctx context.Context, out io.Writer, regress bool) (*deploy.Report, error) {
	svc := &service{regress: regress}
	url, stopServer, err := demo.Serve(svc)
	if err != nil {
		return nil, err
	}
	defer stopServer()
	fmt.Fprintf(out, "demo service on %s: v1 serves everyone; releasing v2 (regress=%v)\n\n", url, regress)

	loadCtx, stopLoad := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { stopLoad(); wg.Wait() }()
	wg.Go(func() { demo.Load(loadCtx, 200, func() string { return url }) })
	time.Sleep(2 * time.Second) // let the baseline fill

	dir, err := os.MkdirTemp("", "deploykit-quickstart-")
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
		rollback.RelativeIncrease{Metric: monitor.ErrorRate, MaxIncrease: 0.5, Floor: 0.02},
		rollback.LatencyIncrease{Metric: monitor.LatencyP95, MaxIncrease: 50 * time.Millisecond},
	}
	policy.MinSamples = 5
	runner, err := deploy.NewRunner(&canary{router: svc, weights: []float64{0.1, 0.5, 1}, bake: 4 * time.Second},
		deploy.WithMonitors(svc),
		deploy.WithNotifiers(&notify.Console{W: out, Report: true}),
		deploy.WithRollbackPolicy(policy),
		deploy.WithInterval(time.Second),
		deploy.WithBaselineWindow(2*time.Second),
		deploy.WithSchedule(monitor.Schedule{Windows: []monitor.Window{
			{Name: "intensive", Duration: 4 * time.Second, Interval: time.Second},
			{Name: "regular", Duration: 4 * time.Second, Interval: 2 * time.Second},
		}}),
		deploy.WithStore(store),
		deploy.WithWaiver(deploy.FridayDeploy, "demo service on localhost: no users to hurt on a Friday"),
	)
	if err != nil {
		return nil, err
	}
	return runner.Run(ctx, deploy.Release{
		Service: "demo", Version: "v2", PreviousVersion: "v1", Environment: "production",
		Description: "Demo service v2 behind an in-process router",
		Links:       map[string]string{"design": "docs/stories/demo/design.md", "tasks": "docs/stories/demo/tasks.md"},
	})
}

// canary is a custom strategy in a few lines: shift router weight to v2.
type canary struct {
	router  *service
	weights []float64
	bake    time.Duration
}

func (c *canary) Name() string { return "canary (router weight)" }

func (c *canary) Plan(d *deploy.Deployment) ([]deploy.Step, error) {
	steps := make([]deploy.Step, len(c.weights))
	for i, w := range c.weights {
		steps[i] = deploy.Step{Name: fmt.Sprintf("%g%%", w*100), Exposure: w, Bake: c.bake,
			Apply: func(ctx context.Context, d *deploy.Deployment) error { c.router.setWeight(w); return nil }}
	}
	return steps, nil
}

func (c *canary) Rollback(ctx context.Context, d *deploy.Deployment) error {
	c.router.setWeight(0)
	return nil
}

// service is the demo: an HTTP router in front of two versions. It is also
// the release's monitor: its own error rate and p95 latency, v2 against v1.
type service struct {
	weight  atomic.Uint64 // share of requests to v2, in 1/10000
	regress bool
	metrics demo.Metrics
}

func (s *service) setWeight(w float64) { s.weight.Store(uint64(w * 10000)) }

func (s *service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	version := "v1"
	if rand.Uint64N(10000) < s.weight.Load() {
		version = "v2"
	}
	failRate := 0.0
	if version == "v2" && s.regress {
		failRate = 0.3
	}
	failed := demo.Work(failRate)
	if failed {
		http.Error(w, "internal error", http.StatusInternalServerError)
	} else {
		fmt.Fprintf(w, "hello from %s\n", version)
	}
	s.metrics.Record(version, start, failed)
}

// Observe implements deploy.Monitor: v2's error rate and p95 latency since
// t.Since, with v1 over the same window as the control.
func (s *service) Observe(ctx context.Context, t monitor.Target) (monitor.Observation, error) {
	return s.metrics.Observe(t, "v2", "v1"), nil
}

func (s *service) Name() string { return "demo-metrics" }
