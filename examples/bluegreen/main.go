// Command bluegreen releases v2 of an in-process demo service blue-green, with
// nothing to install: two sides, blue (serving v1) and green (idle), behind an
// in-process router, real HTTP requests from a small load generator, and the
// service's own error and latency metrics. v2 goes on the idle side, smoke
// tests reach that side directly before any user does, the router switches
// everyone to it, and the old side keeps running: a rollback is one switch
// back. A short watch, live progress and the Markdown report follow.
//
//	go run ./examples/bluegreen            # v2 is healthy: traffic switches to green and stays
//	go run ./examples/bluegreen -regress   # v2 passes its smoke tests but fails real users: traffic switches back to blue
//	go run ./examples/bluegreen -broken    # v2 fails its smoke tests on the idle side: no user ever reaches it
//
// It exits 0 when the release succeeds, 1 when it rolls back or stops before
// the switch, 2 on any other error.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/deploykit/deploy"
	"github.com/deploykit/deploy/examples/internal/demo"
	"github.com/deploykit/deploy/monitor"
	"github.com/deploykit/deploy/notify"
	"github.com/deploykit/deploy/rollback"
	"github.com/deploykit/deploy/state"
	"github.com/deploykit/deploy/strategy"
)

func main() {
	regress := flag.Bool("regress", false, "make v2 fail a share of real users' requests after the switch, so the runner switches back")
	broken := flag.Bool("broken", false, "make v2 fail its smoke tests on the idle side, so traffic never switches")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	rep, err := run(ctx, os.Stdout, *regress, *broken)
	switch {
	case err == nil:
	case errors.Is(err, deploy.ErrUnhealthy) && rep != nil:
		fmt.Fprintf(os.Stderr, "\nrelease rolled back: %v\n", err)
		os.Exit(1)
	case rep != nil && rep.Status == deploy.RolledBack:
		// A step failed before the switch: the old side never stopped serving.
		fmt.Fprintf(os.Stderr, "\nrelease stopped before the switch, no user reached v2: %v\n", err)
		os.Exit(1)
	default:
		fmt.Fprintf(os.Stderr, "bluegreen: %v\n", err)
		os.Exit(2)
	}
}

func run(ctx context.Context, out io.Writer, regress, broken bool) (*deploy.Report, error) {
	svc := &service{versions: map[string]string{"blue": "v1"}, live: "blue", regress: regress, broken: broken}
	// About 200 requests a second through the router, each from one of 10,000 users.
	url, stop, err := demo.Start(ctx, svc, 200, demo.Users("/checkout"))
	if err != nil {
		return nil, err
	}
	defer stop()
	fmt.Fprintf(out, "demo service on %s: blue (v1) serves everyone, green is idle; releasing v2 (regress=%v, broken=%v)\n\n", url, regress, broken)

	dir, err := os.MkdirTemp("", "deploykit-bluegreen-")
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
	runner, err := deploy.NewRunner(&strategy.BlueGreen{
		Idle: func(ctx context.Context, d *deploy.Deployment) (string, error) { return svc.idle(), nil },
		Deploy: func(ctx context.Context, d *deploy.Deployment, side string) error {
			svc.deploy(side, d.Release.Version)
			return nil
		},
		// The smoke tests reach the idle side directly, at /<side>/…, before
		// any user traffic goes there.
		Test: func(ctx context.Context, d *deploy.Deployment, side string) error {
			return smoke(ctx, d, url, side)
		},
		Switch: func(ctx context.Context, d *deploy.Deployment, side string) error {
			svc.switchTo(side)
			return nil
		},
		Bake: 4 * time.Second, // after the switch, before the watch
	},
		// The service's own metrics, and a critical smoke test against the
		// live URL: its failure switches back at once.
		deploy.WithMonitors(svc, &monitor.Probe{
			Name: "smoke live checkout", URL: url + "/checkout?user=smoke-test", Status: http.StatusOK,
			Contains: "checkout ok", MaxLatency: time.Second, Attempts: 2, Backoff: 100 * time.Millisecond, Critical: true,
		}),
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
	rep, err := runner.Run(ctx, deploy.Release{
		Service: "demo", Version: "v2", PreviousVersion: "v1", Environment: "production",
		Description: "Demo service v2, blue-green behind an in-process router",
		Links:       map[string]string{"design": "docs/stories/demo/design.md", "tasks": "docs/stories/demo/tasks.md"},
	})
	fmt.Fprintf(out, "router: %s\n", svc)
	return rep, err
}

// smoke runs the smoke tests against one side of the service at url, directly:
// real HTTP requests with monitor.Probe, each tried a few times, outside the
// runner's monitors.
func smoke(ctx context.Context, d *deploy.Deployment, url, side string) error {
	base := url + "/" + side
	t := monitor.Target{DeploymentID: d.ID, Service: d.Release.Service, Version: d.Release.Version, Environment: d.Release.Environment}
	for _, p := range []*monitor.Probe{
		{Name: "health", URL: base + "/healthz", Status: http.StatusOK, Attempts: 3, Backoff: 100 * time.Millisecond},
		{Name: "checkout", URL: base + "/checkout?user=smoke-test", Status: http.StatusOK, Contains: "from " + d.Release.Version,
			MaxLatency: time.Second, Attempts: 3, Backoff: 100 * time.Millisecond},
	} {
		obs, err := p.Observe(ctx, t)
		if err != nil {
			return err
		}
		for _, c := range obs.Checks {
			if !c.OK {
				return fmt.Errorf("smoke test %s of %s failed: %s", c.Name, side, c.Detail)
			}
		}
	}
	return nil
}

// service is the demo: a router in front of two sides, blue and green, each
// running a version of the service. Users go through the router to the live
// side; /blue/… and /green/… reach a side directly, for smoke tests. It is
// also the release's monitor: the error rate and p95 latency of its users'
// requests, v2 against v1.
type service struct {
	mu       sync.Mutex
	versions map[string]string // side → version; no entry: nothing deployed
	live     string

	regress, broken bool
	metrics         demo.Metrics
}

func (s *service) idle() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.live == "blue" {
		return "green"
	}
	return "blue"
}

func (s *service) deploy(side, version string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.versions[side] = version
}

func (s *service) switchTo(side string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.live = side
}

// String says which side serves users and what each side runs.
func (s *service) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	runs := func(side string) string {
		if v := s.versions[side]; v != "" {
			return v
		}
		return "nothing"
	}
	return fmt.Sprintf("%s serves everyone; blue runs %s, green runs %s", s.live, runs("blue"), runs("green"))
}

func (s *service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	s.mu.Lock()
	side, path, direct := s.live, r.URL.Path, false
	for _, x := range []string{"blue", "green"} {
		if rest, ok := strings.CutPrefix(r.URL.Path, "/"+x+"/"); ok {
			side, path, direct = x, "/"+rest, true
		}
	}
	version := s.versions[side]
	s.mu.Unlock()
	if version == "" {
		http.Error(w, side+" is not running", http.StatusServiceUnavailable)
		return
	}
	user := r.URL.Query().Get("user")
	failRate := 0.0
	switch {
	case path == "/healthz":
		fmt.Fprintf(w, "%s ok\n", version)
		return
	case version == "v2" && s.broken:
		failRate = 1 // v2 cannot reach the payment service: every checkout fails
	case version == "v2" && s.regress && legacy(user):
		failRate = 1 // v2 cannot read the carts v1 saved for some users; the smoke test's account has none
	}
	failed := demo.Work(failRate)
	if failed {
		http.Error(w, "internal error", http.StatusInternalServerError)
	} else {
		fmt.Fprintf(w, "checkout ok for %s, from %s on %s\n", user, version, side)
	}
	if !direct { // only the router's requests are users'
		s.metrics.Record(version, start, failed)
	}
}

// legacy reports whether user is one of the 30 % of users whose saved cart
// v2 cannot read.
func legacy(user string) bool {
	n, err := strconv.Atoi(strings.TrimPrefix(user, "user-"))
	return err == nil && n%10 < 3
}

// Observe implements deploy.Monitor: v2's error rate and p95 latency since
// t.Since, with v1 over the same window as the control while both serve users;
// after the switch v2 serves everyone and is judged against the baseline.
func (s *service) Observe(ctx context.Context, t monitor.Target) (monitor.Observation, error) {
	return s.metrics.Observe(t, "v2", "v1"), nil
}

func (s *service) Name() string { return "demo-metrics" }
