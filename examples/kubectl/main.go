// Command kubectl releases v2 of a service with kubectl, through
// strategy.Kubectl: "kubectl set image", then "kubectl rollout status" until
// the rollout is complete, and on a regression the same back to v1.
//
// With no cluster it drives a stand-in kubectl script (kubectl.sh, written to
// a temporary directory) whose one-Deployment "cluster" decides which version
// an in-process demo service serves, so the monitors see the release happen:
//
//	go run ./examples/kubectl            # v2 is healthy: the release succeeds
//	go run ./examples/kubectl -regress   # v2 fails a share of requests: it rolls back to v1
//
// When KUBECONFIG is set it uses the real kubectl against that cluster, and
// watches the URL given with -url:
//
//	go run ./examples/kubectl -deployment checkout -container app \
//		-image registry.example.com/checkout -namespace shop \
//		-version v2 -previous v1 -url https://checkout.example.com/healthz
//
// It exits 0 when the release succeeds, 1 when it rolls back, 2 on any other error.
package main

import (
	"context"
	_ "embed"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"time"

	"github.com/deploykit/deploy"
	"github.com/deploykit/deploy/examples/internal/demo"
	"github.com/deploykit/deploy/monitor"
	"github.com/deploykit/deploy/notify"
	"github.com/deploykit/deploy/rollback"
	"github.com/deploykit/deploy/state"
	"github.com/deploykit/deploy/strategy"
)

//go:embed kubectl.sh
var standIn []byte

type config struct {
	regress                                bool
	deployment, container, image, ns       string
	version, previous, url, kubeconfigPath string
}

func main() {
	var c config
	flag.BoolVar(&c.regress, "regress", false, "stand-in only: make v2 fail a share of its requests, so the runner rolls back")
	flag.StringVar(&c.deployment, "deployment", "checkout", "the Deployment to release")
	flag.StringVar(&c.container, "container", "app", "the container whose image changes")
	flag.StringVar(&c.image, "image", "registry.example.com/checkout", "the image repository; the tag is the version")
	flag.StringVar(&c.ns, "namespace", "", "the namespace")
	flag.StringVar(&c.version, "version", "v2", "the version to release")
	flag.StringVar(&c.previous, "previous", "v1", "the version running now, the rollback target")
	flag.StringVar(&c.url, "url", "", "with a real cluster: a URL that answers 2xx when the service is healthy")
	flag.Parse()
	c.kubeconfigPath = os.Getenv("KUBECONFIG")
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	rep, err := run(ctx, os.Stdout, c)
	switch {
	case err == nil:
	case (errors.Is(err, deploy.ErrUnhealthy) || errors.Is(err, deploy.ErrAborted)) && rep != nil:
		fmt.Fprintf(os.Stderr, "\nrelease rolled back: %v\n", err)
		os.Exit(1)
	default:
		fmt.Fprintf(os.Stderr, "kubectl example: %v\n", err)
		os.Exit(2)
	}
}

func run(ctx context.Context, out io.Writer, c config) (*deploy.Report, error) {
	dir, err := os.MkdirTemp("", "deploykit-kubectl-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	k := strategy.Kubectl{Deployment: c.deployment, Container: c.container, Image: c.image, Namespace: c.ns, Bake: 4 * time.Second}
	var monitors []deploy.Monitor
	if c.kubeconfigPath != "" {
		if c.url == "" {
			return nil, errors.New("KUBECONFIG is set: give -url, a health URL of the service, for the runner to watch")
		}
		fmt.Fprintf(out, "releasing %s %s with the real kubectl (KUBECONFIG=%s)\n\n", c.deployment, c.version, c.kubeconfigPath)
		monitors = append(monitors, &monitor.Probe{Name: "health", URL: c.url, Attempts: 3, Backoff: time.Second, Critical: true})
	} else {
		cluster := filepath.Join(dir, "cluster")
		if err := os.Mkdir(cluster, 0o700); err != nil {
			return nil, err
		}
		// The cluster runs the previous version before the release.
		if err := os.WriteFile(filepath.Join(cluster, "image"), []byte(c.image+":"+c.previous+"\n"), 0o600); err != nil {
			return nil, err
		}
		k.Kubectl = filepath.Join(dir, "kubectl")
		if err := os.WriteFile(k.Kubectl, standIn, 0o700); err != nil {
			return nil, err
		}
		k.Env = []string{"FAKE_CLUSTER=" + cluster}
		svc := &service{cluster: cluster, version: c.version, previous: c.previous, regress: c.regress}
		url, stop, err := demo.Start(ctx, svc, 200, nil)
		if err != nil {
			return nil, err
		}
		defer stop()
		defer func() {
			calls, _ := os.ReadFile(filepath.Join(cluster, "calls"))
			fmt.Fprintf(out, "\nThe stand-in kubectl was called as:\n%s", calls)
		}()
		fmt.Fprintf(out, "demo service on %s serves what the stand-in cluster runs (%s:%s); releasing %s (regress=%v)\n\n", url, c.image, c.previous, c.version, c.regress)
		monitors = append(monitors, svc)
	}
	s, err := k.Command()
	if err != nil {
		return nil, err
	}
	if c.kubeconfigPath == "" {
		s.ReadyInterval = 500 * time.Millisecond // the stand-in rolls out at once
	}
	d := &deploy.Deployment{Release: deploy.Release{Service: c.deployment, Version: c.version, PreviousVersion: c.previous, Environment: "production"}}
	cmds, err := s.Describe(d)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "The commands:\n%s\n", cmds)

	store, err := state.NewFile(filepath.Join(dir, "state"))
	if err != nil {
		return nil, err
	}
	policy := deploy.DefaultPolicy()
	policy.Triggers = []rollback.Trigger{
		rollback.RelativeIncrease{Metric: monitor.ErrorRate, MaxIncrease: 0.5, Floor: 0.02, Confidence: 0.95},
		rollback.CriticalChecks{},
	}
	policy.MinSamples = 5
	runner, err := deploy.NewRunner(s,
		deploy.WithMonitors(monitors...),
		deploy.WithNotifiers(&notify.Console{W: out, Report: true}),
		deploy.WithRollbackPolicy(policy),
		deploy.WithInterval(time.Second),
		deploy.WithBaselineWindow(2*time.Second),
		deploy.WithSchedule(monitor.Schedule{Windows: []monitor.Window{{Name: "intensive", Duration: 3 * time.Second, Interval: time.Second}}}),
		deploy.WithStore(store),
		deploy.WithWaiver(deploy.FridayDeploy, "example: a stand-in cluster, or one you chose to release to now"),
	)
	if err != nil {
		return nil, err
	}
	return runner.Run(ctx, d.Release)
}

// service is the demo service of the stand-in cluster: it serves the version
// whose image the cluster runs, and measures itself.
type service struct {
	cluster, version, previous string
	regress                    bool
	metrics                    demo.Metrics
}

// running returns the version the stand-in cluster runs: the image's tag.
func (s *service) running() string {
	b, _ := os.ReadFile(filepath.Join(s.cluster, "image"))
	img := strings.TrimSpace(string(b))
	return img[strings.LastIndexByte(img, ':')+1:]
}

func (s *service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	version := s.running()
	failRate := 0.0
	if version == s.version && s.regress {
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

// Observe implements deploy.Monitor: the new version's error rate and p95
// latency since t.Since, with the previous version's over the same window as
// the control while requests from before the rollout are in it.
func (s *service) Observe(ctx context.Context, t monitor.Target) (monitor.Observation, error) {
	return s.metrics.Observe(t, s.version, s.previous), nil
}

func (s *service) Name() string { return "demo-metrics" }
