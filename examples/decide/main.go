// Command decide shows the decision page (package decide): a release of an
// in-process demo service pauses at 50 % until a person promotes it from the
// page, as a paused Argo Rollout waits for "kubectl argo rollouts promote".
//
//	go run ./examples/decide            # open the URL it prints, log in with the token, click Promote
//	go run ./examples/decide -promote   # it promotes itself through the page's JSON API, as a chat-ops bot would
//
// The page lists the release, shows its steps, exposure, measurements and
// timeline, and offers the decisions that apply: Promote, Promote fully,
// Abort and Roll back while it pauses. The runner carries the promotion out
// at once, and the release goes on to 100 % and its watch. It exits 0 when
// the release succeeds, 1 when it does not, 2 on any other error.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync/atomic"
	"time"

	"github.com/deploykit/deploy"
	"github.com/deploykit/deploy/decide"
	"github.com/deploykit/deploy/examples/internal/demo"
	"github.com/deploykit/deploy/monitor"
	"github.com/deploykit/deploy/notify"
	"github.com/deploykit/deploy/state"
)

func main() {
	promote := flag.Bool("promote", false, "promote the paused release through the page's JSON API instead of waiting for a person")
	addr := flag.String("addr", "127.0.0.1:0", "where to serve the page")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	rep, err := run(ctx, os.Stdout, *addr, *promote)
	switch {
	case err == nil:
	case rep != nil:
		fmt.Fprintf(os.Stderr, "\nrelease ended %s: %v\n", rep.Status, err)
		os.Exit(1)
	default:
		fmt.Fprintf(os.Stderr, "decide: %v\n", err)
		os.Exit(2)
	}
}

func run(ctx context.Context, out io.Writer, addr string, promote bool) (*deploy.Report, error) {
	dir, err := os.MkdirTemp("", "deploykit-decide-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)

	svc := &service{}
	url, stopLoad, err := demo.Start(ctx, svc, 200, nil)
	if err != nil {
		return nil, err
	}
	defer stopLoad()

	store, err := state.NewFile(dir)
	if err != nil {
		return nil, err
	}
	runner, err := deploy.NewRunner(&canary{router: svc},
		deploy.WithStore(store),
		deploy.WithMonitors(svc),
		deploy.WithNotifiers(&notify.Console{W: out, Report: true}),
		deploy.WithInterval(time.Second),
		deploy.WithBaselineWindow(2*time.Second),
		deploy.WithSchedule(monitor.Schedule{Windows: []monitor.Window{{Name: "watch", Duration: 4 * time.Second, Interval: time.Second}}}),
		deploy.WithWaiver(deploy.FridayDeploy, "demo service on localhost: no users to hurt on a Friday"),
	)
	if err != nil {
		return nil, err
	}

	// The page, for whoever holds the token; served with time limits.
	token := rand.Text()
	auth, err := decide.Tokens(map[string]string{token: "you"})
	if err != nil {
		return nil, err
	}
	page, err := decide.New(runner, store, auth)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/deploys/", http.StripPrefix("/deploys", page))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, WriteTimeout: 30 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()
	base := "http://" + ln.Addr().String() + "/deploys"
	fmt.Fprintf(out, "demo service on %s; the decision page on %s/ (token %s)\n\n", url, base, token)

	id, err := runner.Start(ctx, deploy.Release{Service: "demo", Version: "v2", PreviousVersion: "v1", Environment: "production",
		Description: "Demo service v2, paused at 50 % for a person to promote"})
	if err != nil {
		return nil, err
	}
	if promote {
		go func() {
			if err := promoteWhenPaused(ctx, out, store, base, token, id); err != nil {
				fmt.Fprintf(out, "promote: %v\n", err)
			}
		}()
	}
	return runner.Resume(ctx, id)
}

// promoteWhenPaused waits until release id pauses, then promotes it as a
// chat-ops bot would: a JSON POST with the bearer token.
func promoteWhenPaused(ctx context.Context, out io.Writer, store state.Store, base, token, id string) error {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		rec, err := store.Load(ctx, id)
		if err != nil {
			return err
		}
		if rec.Status.Final() {
			return errors.New("the release ended before it paused")
		}
		if rec.Waiting != nil && rec.Waiting.Kind == state.WaitPause {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
	body, _ := json.Marshal(decide.DecisionRequest{Reason: "v2's error rate and latency match v1's at 50 %"})
	req, err := http.NewRequestWithContext(ctx, "POST", base+"/api/releases/"+id+"/promote", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	var o decide.Outcome
	if err := json.NewDecoder(res.Body).Decode(&o); err != nil {
		return fmt.Errorf("answer %s: %w", res.Status, err)
	}
	fmt.Fprintf(out, "\n>>> the page answered %d: %s\n\n", o.Code, o.Message)
	return nil
}

// canary shifts the router's weight to v2: 10 %, 50 % (then pauses until
// promoted), 100 %.
type canary struct{ router *service }

func (c *canary) Name() string { return "canary (router weight)" }

func (c *canary) Plan(ctx context.Context, d *deploy.Deployment) ([]deploy.Step, error) {
	step := func(name string, w float64, pause *deploy.Pause) deploy.Step {
		return deploy.Step{Name: name, Exposure: w, Bake: 2 * time.Second, Pause: pause,
			Apply: func(ctx context.Context, d *deploy.Deployment) error { c.router.setWeight(w); return nil }}
	}
	return []deploy.Step{
		step("10%", 0.1, nil),
		step("50%", 0.5, &deploy.Pause{}), // no duration: until a person promotes
		step("100%", 1, nil),
	}, nil
}

func (c *canary) Rollback(ctx context.Context, d *deploy.Deployment) error {
	c.router.setWeight(0)
	return nil
}

// service is the demo: a router in front of two versions, and the release's
// monitor (v2's error rate and p95 latency against v1's).
type service struct {
	weight  atomic.Uint64 // share of requests to v2, in 1/10000
	metrics demo.Metrics
}

func (s *service) setWeight(w float64) { s.weight.Store(uint64(w * 10000)) }

func (s *service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	version := "v1"
	if mrand.Uint64N(10000) < s.weight.Load() {
		version = "v2"
	}
	failed := demo.Work(0)
	if failed {
		http.Error(w, "internal error", http.StatusInternalServerError)
	} else {
		fmt.Fprintf(w, "hello from %s\n", version)
	}
	s.metrics.Record(version, start, failed)
}

// Observe implements deploy.Monitor.
func (s *service) Observe(ctx context.Context, t monitor.Target) (monitor.Observation, error) {
	return s.metrics.Observe(t, "v2", "v1"), nil
}

func (s *service) Name() string { return "demo-metrics" }
