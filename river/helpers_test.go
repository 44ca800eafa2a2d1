package river_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/deploykit/deploy"
	"github.com/deploykit/deploy/deploytest"
	"github.com/deploykit/deploy/monitor"
	deployriver "github.com/deploykit/deploy/river"
	"github.com/deploykit/deploy/state/postgres"
)

// The release services of the tests say what their strategy and monitor
// do: a service whose name starts with "slow-apply" takes slowApply inside
// the Apply of its second step, "slow-rollback" inside its rollback, and
// "bad" turns unhealthy from 50 % exposure, so it rolls back.
const (
	slowApply    = 4 * time.Second
	stepBake     = 700 * time.Millisecond
	progressLine = 6 * time.Second // the progress deadline: bounds an Apply
)

// effects is an append-only file of what the strategies did, shared by the
// processes of a test: one line per write, "kind id step token pid".
type effects struct{ path string }

func (e effects) add(kind, id, step string, token int64) {
	f, err := os.OpenFile(e.path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		panic(err)
	}
	defer f.Close()
	// One write of one short line: appends of several processes do not
	// interleave.
	if _, err := fmt.Fprintf(f, "%s %s %s %d %d\n", kind, id, step, token, os.Getpid()); err != nil {
		panic(err)
	}
	if err := f.Sync(); err != nil {
		panic(err)
	}
}

// effect is one line of the effects file.
type effect struct {
	kind, id, step string
	token          int64
	pid            int
}

func (e effects) read(t testing.TB) []effect {
	f, err := os.Open(e.path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []effect
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var x effect
		if _, err := fmt.Sscanf(sc.Text(), "%s %s %s %d %d", &x.kind, &x.id, &x.step, &x.token, &x.pid); err != nil {
			t.Fatalf("effects line %q: %v", sc.Text(), err)
		}
		out = append(out, x)
	}
	return out
}

// strategy is a three-step ramp that records its effects.
type strategy struct{ fx effects }

func (s *strategy) Name() string { return "fleet-test" }

func (s *strategy) Plan(_ context.Context, d *deploy.Deployment) ([]deploy.Step, error) {
	var steps []deploy.Step
	for i, exp := range []float64{0.1, 0.5, 1} {
		name := fmt.Sprintf("step-%d", i+1)
		steps = append(steps, deploy.Step{Name: name, Exposure: exp, Bake: stepBake,
			Apply: func(ctx context.Context, d *deploy.Deployment) error {
				s.fx.add("apply-start", d.ID, name, d.Token)
				if strings.HasPrefix(d.Release.Service, "slow-apply") && name == "step-2" {
					select {
					case <-time.After(slowApply):
					case <-ctx.Done():
						return ctx.Err()
					}
				}
				s.fx.add("apply-done", d.ID, name, d.Token)
				return nil
			}})
	}
	return steps, nil
}

func (s *strategy) Rollback(ctx context.Context, d *deploy.Deployment) error {
	s.fx.add("rollback-start", d.ID, "-", d.Token)
	if strings.Contains(d.Release.Service, "slow-rollback") {
		select {
		case <-time.After(slowApply):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	s.fx.add("rollback-done", d.ID, "-", d.Token)
	return nil
}

// health is healthy, but for "bad" services from 50 % exposure on.
var health = deploy.MonitorFunc(func(_ context.Context, tg monitor.Target) (monitor.Observation, error) {
	if strings.HasPrefix(tg.Service, "bad") && tg.Phase != "baseline" && tg.Phase != "rollback" && tg.Exposure >= 0.5 {
		return deploytest.Health{ErrorRate: 0.3, P95: 120 * time.Millisecond}.Observation(), nil
	}
	return deploytest.Health{ErrorRate: 0.001, P95: 120 * time.Millisecond}.Observation(), nil
})

// newRunner returns the runner every process of a test uses, named name,
// on store.
func newRunner(t testing.TB, fx effects, store *postgres.Store, name string) *deploy.Runner {
	t.Helper()
	p := deploy.DefaultPolicy()
	p.ProgressDeadline = progressLine
	r, err := deploy.NewRunner(&strategy{fx: fx},
		deploy.WithStore(store), deploy.WithHolder(name),
		deploy.WithMonitors(health), deploy.WithNotifiers(deploy.NotifierFunc(func(context.Context, deploy.Event) error { return nil })),
		deploy.WithRollbackPolicy(p), deploy.WithRollbackTimeout(progressLine), deploy.WithRollbackSettle(500*time.Millisecond),
		deploy.WithLeaseGrace(2*time.Second), deploy.WithInterval(250*time.Millisecond),
		deploy.WithTimeouts(deploy.Timeouts{Plan: time.Second, Check: time.Second, Observe: time.Second, Notify: 250 * time.Millisecond}),
		deploy.WithSchedule(monitor.Schedule{}), deploy.WithWaiver(deploy.FridayDeploy, "tests run any day"),
		deploy.WithBaselineWindow(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// jobTimeout is the tests' JobTimeout: the runner's Reconcile bound (6 s
// progress deadline, 1 s observation, 4 × 250 ms notification) and a
// second for the store.
const jobTimeout = 9 * time.Second

// newFleet returns a fleet on pool for the test's runner.
func newFleet(t testing.TB, pool *pgxpool.Pool, fx effects, name string, cfg deployriver.Config) *deployriver.Fleet {
	t.Helper()
	store, err := postgres.New(pool)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Runner, cfg.Store, cfg.Name = newRunner(t, fx, store, name), store, name
	if cfg.JobTimeout == 0 {
		cfg.JobTimeout = jobTimeout
	}
	f, err := deployriver.New(pool, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func newPool(t testing.TB, dsn string) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// recorder keeps the fleet's urgent events.
type recorder struct {
	mu     sync.Mutex
	events []deploy.Event
}

func (r *recorder) Notify(_ context.Context, e deploy.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
	return nil
}

func (r *recorder) kinds() []deploy.EventKind {
	r.mu.Lock()
	defer r.mu.Unlock()
	var k []deploy.EventKind
	for _, e := range r.events {
		k = append(k, e.Kind)
	}
	return k
}

func tempFile(t testing.TB, name string) string { return filepath.Join(t.TempDir(), name) }

// rounds collects the rounds of a fleet, safe for concurrent use.
type rounds struct {
	mu  sync.Mutex
	all []deployriver.Round
}

func (r *rounds) add(x deployriver.Round) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.all = append(r.all, x)
}

func (r *rounds) list() []deployriver.Round {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]deployriver.Round(nil), r.all...)
}
