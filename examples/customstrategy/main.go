// Command customstrategy shows how to write your own deploy.Strategy and how
// to test it, for strategy authors and for teams unit-testing release logic.
//
// weights.go is the strategy: a canary on an nginx load balancer, which
// rewrites an upstream block (stable and canary weights) atomically at
// 5 % → 25 % → 50 % → 100 % and back to 0 % on a rollback, with a Name and a
// Validate that names the bad field and value. It needs no outside service.
//
// This program runs a short real release with it, in a temporary directory:
// a scripted healthy monitor stands in for the service's metrics, and a second
// monitor reads the upstream file back and fails a critical check when it does
// not say what the step says. Progress and the report go to stdout.
//
//	go run ./examples/customstrategy            # healthy: the release succeeds in a few seconds
//	go run ./examples/customstrategy -regress   # errors from 25 % on: it rolls back to 0 %
//
// It exits 0 when the release succeeds, 1 when it rolls back, 2 on any other error.
//
// weights_test.go is the point of the example: it runs the conformance suite
// (deploytest.TestStrategy) on the strategy, then two releases planned for
// 28 hours (four one-hour steps, then the checklist's 24-hour watch) in virtual
// time with testing/synctest — one with a regression at 25 %, which rolls back,
// and a clean one, which runs the whole 28 hours — asserting on the file, the
// report, the recorded notifications and the recorded spans. Each takes
// milliseconds:
//
//	go test -v ./examples/customstrategy
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"time"

	"github.com/deploykit/deploy"
	"github.com/deploykit/deploy/deploytest"
	"github.com/deploykit/deploy/monitor"
	"github.com/deploykit/deploy/notify"
	"github.com/deploykit/deploy/state"
)

func main() {
	regress := flag.Bool("regress", false, "report a 8 % error rate from 25 % exposure on, so the runner rolls back")
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
		fmt.Fprintf(os.Stderr, "customstrategy: %v\n", err)
		os.Exit(2)
	}
}

func run(ctx context.Context, out io.Writer, regress bool) (*deploy.Report, error) {
	dir, err := os.MkdirTemp("", "deploykit-customstrategy-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	upstreams := filepath.Join(dir, "upstreams")
	if err := os.Mkdir(upstreams, 0o755); err != nil {
		return nil, err
	}
	store, err := state.NewFile(filepath.Join(dir, "state"))
	if err != nil {
		return nil, err
	}

	lb := &Weights{Dir: upstreams, Upstream: "checkout", Stable: "10.0.0.1:8080", Canary: "10.0.0.2:8080", Bake: time.Second}
	health := deploytest.Healthy()
	if regress {
		health = deploytest.Regression(0.25, deploytest.Health{ErrorRate: 0.08, P95: 130 * time.Millisecond})
	}
	runner, err := deploy.NewRunner(lb,
		deploy.WithMonitors(health, upstreamCheck{lb}),
		deploy.WithNotifiers(&notify.Console{W: out, Report: true}),
		deploy.WithInterval(250*time.Millisecond),
		deploy.WithBaselineWindow(time.Second),
		deploy.WithSchedule(monitor.Schedule{Windows: []monitor.Window{
			{Name: "intensive", Duration: 2 * time.Second, Interval: 500 * time.Millisecond},
		}}),
		deploy.WithStore(store),
		deploy.WithWaiver(deploy.FridayDeploy, "example: a load balancer file in a temporary directory, no users to hurt"),
	)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "releasing checkout v2 through %s\n\n", lb.Path())
	rep, err := runner.Run(ctx, deploy.Release{
		Service: "checkout", Version: "v2", PreviousVersion: "v1", Environment: "production",
		Description: "Checkout v2 on the canary pool, behind nginx weights",
	})
	if conf, rerr := os.ReadFile(lb.Path()); rerr == nil {
		fmt.Fprintf(out, "\n%s now reads:\n%s", lb.Path(), conf)
	}
	return rep, err
}

// upstreamCheck is a monitor that reads the upstream file back and checks it
// sends the canary the share the runner believes it has: at every bake, in
// verification and after a rollback. A failed critical check rolls back.
type upstreamCheck struct{ lb *Weights }

func (upstreamCheck) Name() string { return "upstream file" }

func (c upstreamCheck) Observe(ctx context.Context, t monitor.Target) (monitor.Observation, error) {
	got, err := c.lb.Current()
	if err != nil {
		return monitor.Observation{}, err // could not measure
	}
	return monitor.Observation{Checks: []monitor.Check{{
		Name: "upstream sends the canary its share", OK: got == t.Exposure, Critical: true,
		Detail: fmt.Sprintf("%s: canary weight %g %%, want %g %%", c.lb.Path(), got*100, t.Exposure*100),
	}}}, nil
}
