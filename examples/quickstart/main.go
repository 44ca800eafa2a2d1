// Command quickstart releases v2 of an in-process demo service with nothing to
// install: two versions behind an in-process router, real HTTP requests from a
// small load generator, two pre-deployment gates (a Flagger-style pre-rollout
// hook that checks v2 is ready, and a check that the metrics are flowing),
// the service's own error and latency metrics, its error log, a smoke probe
// of v2, a three-step canary, a short watch, live progress and the Markdown
// report.
//
//	go run ./examples/quickstart            # v2 is healthy: the release succeeds
//	go run ./examples/quickstart -regress   # v2 fails a share of requests: it rolls back
//
// It exits 0 when the release succeeds, 1 when it rolls back, 2 on any other error.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/deploykit/deploy"
	"github.com/deploykit/deploy/examples/internal/demo"
	"github.com/deploykit/deploy/gate"
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
	dir, err := os.MkdirTemp("", "deploykit-quickstart-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	logPath := filepath.Join(dir, "demo.log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()

	svc := &service{regress: regress, log: slog.New(slog.NewTextHandler(logFile, nil))}
	// 200 requests a second, and the flaky upstream logging its old error
	// from before the deploy.
	url, stop, err := demo.Start(ctx, svc, 200, nil, svc.flakyUpstream)
	if err != nil {
		return nil, err
	}
	defer stop()
	fmt.Fprintf(out, "demo service on %s: v1 serves everyone; releasing v2 (regress=%v); its log: %s\n\n", url, regress, logPath)

	stateDir := filepath.Join(dir, "state")
	store, err := state.NewFile(stateDir)
	if err != nil {
		return nil, err
	}
	// The service's error log: a signature already there before the deploy
	// (the flaky upstream) is known; one that first appears after it is new.
	logs := &monitor.LogScan{Path: logPath}
	defer logs.Close()
	// A smoke check of v2 itself, pinned with the header the router honours.
	smoke := &monitor.Probe{Name: "v2 answers", URL: url + "/", Header: http.Header{"X-Version": {"v2"}},
		Contains: "hello from v2", MaxLatency: 500 * time.Millisecond, Attempts: 3, Backoff: 50 * time.Millisecond, Critical: true}
	policy := deploy.DefaultPolicy()
	// A failed critical check wins whatever the order; otherwise the first
	// trigger that fails names the rollback, so the metrics come first.
	// The error rate is judged here by a fixed threshold (RelativeIncrease
	// with a 2 % floor), not by DefaultPolicy's rollback.Sequential: with
	// -regress, the threshold names the error rate within the first second
	// of the 10 % step, on a few dozen requests, where the sequential test
	// has not yet gathered enough evidence and the log check fires first.
	policy.Triggers = []rollback.Trigger{
		rollback.RelativeIncrease{Metric: monitor.ErrorRate, MaxIncrease: 0.5, Floor: 0.02, Confidence: 0.95},
		rollback.LatencyIncrease{Metric: monitor.LatencyP95, MaxIncrease: 50 * time.Millisecond},
		rollback.CriticalChecks{},
	}
	policy.MinSamples = 5
	runner, err := deploy.NewRunner(&canary{router: svc, weights: []float64{0.1, 0.5, 1}, bake: 4 * time.Second},
		deploy.WithGates(
			// Flagger's pre-rollout webhook: the service says whether the
			// version in the payload is deployed and ready, before any user
			// is sent to it.
			&gate.HTTP{Label: "pre-rollout", URL: url + "/hooks/pre-rollout", Attempts: 2},
			// "Confirm monitoring/alerting active": the metrics the runner
			// judges are flowing.
			&gate.MonitoringActive{Checker: svc},
		),
		deploy.WithMonitors(svc, smoke, logs),
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

func (c *canary) Plan(ctx context.Context, d *deploy.Deployment) ([]deploy.Step, error) {
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
	log     *slog.Logger
}

// flakyUpstream is an old, known error: the inventory upstream times out now
// and then, whatever the version. It is in the log before the deploy, so the
// log scan does not count it as new.
func (s *service) flakyUpstream(ctx context.Context) {
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			s.log.Error("inventory upstream timed out", "after", fmt.Sprintf("%dms", 800+rand.IntN(400)), "request", fmt.Sprintf("%016x", rand.Uint64()))
		}
	}
}

func (s *service) setWeight(w float64) { s.weight.Store(uint64(w * 10000)) }

func (s *service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/hooks/pre-rollout" {
		s.preRollout(w, r)
		return
	}
	start := time.Now()
	version := "v1"
	if rand.Uint64N(10000) < s.weight.Load() {
		version = "v2"
	}
	if v := r.Header.Get("X-Version"); v == "v1" || v == "v2" {
		version = v // a pinned request, such as the smoke probe's
	}
	request := fmt.Sprintf("%016x", rand.Uint64())
	failed := demo.Work(0)
	switch {
	case failed:
		s.log.Error("inventory upstream timed out", "after", "1000ms", "request", request)
	case version == "v2" && s.regress && rand.Float64() < 0.3:
		failed = true
		s.log.Error("pricing rule missing", "sku", rand.IntN(90000)+10000, "request", request, "version", version)
	}
	if failed {
		http.Error(w, "internal error", http.StatusInternalServerError)
	} else {
		fmt.Fprintf(w, "hello from %s\n", version)
	}
	if r.Header.Get("X-Version") == "" {
		s.metrics.Record(version, start, failed)
	}
}

// preRollout answers the runner's pre-rollout hook (gate.HTTP): 200 when the
// version in the payload is deployed and answers its readiness check.
func (s *service) preRollout(w http.ResponseWriter, r *http.Request) {
	var p gate.Payload
	if err := json.NewDecoder(r.Body).Decode(&p); err != nil {
		http.Error(w, "bad payload: "+err.Error(), http.StatusBadRequest)
		return
	}
	if p.Version != "v1" && p.Version != "v2" {
		http.Error(w, p.Name+" "+p.Version+" is not deployed", http.StatusPreconditionFailed)
		return
	}
	fmt.Fprintf(w, "%s %s deployed and ready\n", p.Name, p.Version)
}

// Check implements gate.MonitoringChecker: requests are being measured.
func (s *service) Check(ctx context.Context, service string) error {
	_, err := s.Confirm(ctx, service)
	return err
}

// Confirm implements gate.MonitoringConfirmer: it says how many requests the
// metrics saw in the last two seconds.
func (s *service) Confirm(ctx context.Context, service string) (string, error) {
	obs := s.metrics.Observe(monitor.Target{Phase: "baseline", Since: time.Now().Add(-2 * time.Second)}, "v2", "v1")
	n := obs.Metric(monitor.ErrorRate).Samples
	if n == 0 {
		return "", errors.New("no request measured in the last 2s")
	}
	return fmt.Sprintf("demo metrics measured %d requests in the last 2s", n), nil
}

// Observe implements deploy.Monitor: v2's error rate and p95 latency since
// t.Since, with v1 over the same window as the control.
func (s *service) Observe(ctx context.Context, t monitor.Target) (monitor.Observation, error) {
	return s.metrics.Observe(t, "v2", "v1"), nil
}

func (s *service) Name() string { return "demo-metrics" }
