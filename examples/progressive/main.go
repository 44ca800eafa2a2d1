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
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/open-feature/go-sdk/openfeature"
	"github.com/open-feature/go-sdk/openfeature/isolated"

	"github.com/deploykit/deploy"
	"github.com/deploykit/deploy/flags"
	"github.com/deploykit/deploy/gate"
	"github.com/deploykit/deploy/monitor"
	"github.com/deploykit/deploy/notify"
	"github.com/deploykit/deploy/rollback"
	"github.com/deploykit/deploy/state"
	"github.com/deploykit/deploy/strategy"
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
	srv := &http.Server{Handler: svc}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	go srv.Serve(ln)
	defer srv.Close()
	url := "http://" + ln.Addr().String()
	fmt.Fprintf(out, "demo service on %s: flag %q is off, everyone gets the old code path; releasing the new one (regress=%v)\n\n", url, flagKey, regress)

	loadCtx, stopLoad := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { stopLoad(); wg.Wait() }()
	wg.Go(func() { generateLoad(loadCtx, url) })
	time.Sleep(2 * time.Second) // let the baseline fill

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
		rollback.RelativeIncrease{Metric: monitor.ErrorRate, MaxIncrease: 0.5, Floor: 0.02},
		rollback.LatencyIncrease{Metric: monitor.LatencyP95, MaxIncrease: 50 * time.Millisecond},
	}
	policy.MinSamples = 5
	policy.InconclusiveLimit = 3 // 1 % of the load is a few requests a second: wait for enough
	runner, err := deploy.NewRunner(&strategy.Progressive{
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
// request's user and takes the new code path when it is on, recording every
// request's outcome and latency per path.
type service struct {
	flags    *openfeature.Client
	regress  bool
	deployed atomic.Bool

	mu   sync.Mutex
	reqs []request
}

type request struct {
	at      time.Time
	path    string // "new" or "old"
	failed  bool
	latency time.Duration
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
	time.Sleep(time.Duration(3+rand.IntN(8)) * time.Millisecond) // the work
	failed := rand.Float64() < 0.002
	if path == "new" && s.regress && rand.Float64() < 0.3 {
		failed = true
	}
	if failed {
		http.Error(w, "internal error", http.StatusInternalServerError)
	} else {
		fmt.Fprintf(w, "hello %s from the %s code path\n", user, path)
	}
	s.mu.Lock()
	s.reqs = append(s.reqs, request{at: start, path: path, failed: failed, latency: time.Since(start)})
	s.mu.Unlock()
}

// Observe implements deploy.Monitor: error rate and p95 latency of the new
// code path since t.Since, with the old path over the same window as the
// control.
func (s *service) Observe(ctx context.Context, t monitor.Target) (monitor.Observation, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var obs monitor.Observation
	newP, oldP := "new", "old"
	// Before any user gets the new path (the baseline, the dark binary),
	// judge everyone's requests against the baseline, without a control.
	dark := t.Phase == "baseline" || t.Exposure == 0
	if dark {
		newP = "old"
	}
	since := t.Since
	if recent := time.Now().Add(-5 * time.Second); since.Before(recent) {
		since = recent // judge the last five seconds
	}
	errRate := func(path string) (float64, int, []float64) {
		n, bad := 0, 0
		var lat []float64
		for _, r := range s.reqs {
			if r.path != path || r.at.Before(since) {
				continue
			}
			n++
			if r.failed {
				bad++
			}
			lat = append(lat, r.latency.Seconds())
		}
		if n == 0 {
			return 0, 0, nil
		}
		return float64(bad) / float64(n), n, lat
	}
	er, n, lat := errRate(newP)
	cer, cn, clat := errRate(oldP)
	m := monitor.Value(er, n)
	if cn > 0 && !dark && t.Phase != "rollback" {
		m.Control, m.ControlSamples = cer, cn
	}
	obs.Set(monitor.ErrorRate, m)
	p := monitor.Value(p95(lat), len(lat))
	if len(clat) > 0 && !dark && t.Phase != "rollback" {
		p.Control, p.ControlSamples = p95(clat), len(clat)
	}
	obs.Set(monitor.LatencyP95, p)
	if t.Phase == "rollback" { // after a rollback everyone is on the old path again
		obs.Set(monitor.ErrorRate, monitor.Value(cer, cn))
		obs.Set(monitor.LatencyP95, monitor.Value(p95(clat), len(clat)))
	}
	return obs, nil
}

func (s *service) Name() string { return "demo-metrics" }

func p95(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[int(0.95*float64(len(s)-1))]
}

// generateLoad sends about 400 requests a second, each from one of 10000
// users, until ctx is done.
func generateLoad(ctx context.Context, url string) {
	client := &http.Client{Timeout: 2 * time.Second}
	tick := time.NewTicker(2500 * time.Microsecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			go func() {
				resp, err := client.Get(url + "/checkout?user=user-" + strconv.Itoa(rand.IntN(10000)))
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			}()
		}
	}
}
