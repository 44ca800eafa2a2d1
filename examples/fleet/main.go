// Command fleet drives twenty releases from three worker processes that
// share one PostgreSQL database through River (package river of
// github.com/deploykit/deploy/river), kills one worker with SIGKILL midway,
// and prints how each release ended and which worker drove each of its
// rounds.
//
//	cd examples/fleet && go run .                   # a throwaway PostgreSQL (apt-get install -y postgresql)
//	cd examples/fleet && go run . -dsn 'postgres://…' # an existing database
//
// Every third service's v2 is a regression: it turns unhealthy at 50 %
// exposure and is rolled back; the others succeed. The program is its own
// worker: it starts itself again with -worker for each of the three. It
// exits 0 when every release ended as expected, 1 otherwise.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/deploykit/deploy"
	"github.com/deploykit/deploy/deploytest"
	"github.com/deploykit/deploy/internal/pgtest"
	"github.com/deploykit/deploy/monitor"
	deployriver "github.com/deploykit/deploy/river"
	"github.com/deploykit/deploy/state"
	"github.com/deploykit/deploy/state/postgres"
)

func main() {
	dsn := flag.String("dsn", os.Getenv("DEPLOYKIT_FLEET_DSN"), "PostgreSQL connection string; empty starts a throwaway server")
	workers := flag.Int("workers", 3, "worker processes")
	releases := flag.Int("releases", 20, "services to release")
	bake := flag.Duration("bake", time.Second, "bake of each step")
	worker := flag.String("worker", "", "run as the worker of this name (internal)")
	rounds := flag.String("rounds", "", "file the workers log their rounds to (internal)")
	flag.Parse()
	var err error
	if *worker != "" {
		err = runWorker(*dsn, *worker, *rounds, *bake)
	} else {
		err = run(os.Stdout, *dsn, *workers, *releases, *bake)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "fleet:", err)
		os.Exit(1)
	}
}

// Bounds of the example's runner: small, so that a worker killed inside a
// round is taken over within a minute (River's rescuer runs every 30 s).
const (
	progressDeadline = 3 * time.Second
	leaseGrace       = 2 * time.Second
)

// newFleet returns a fleet worker named name: three steps that take a
// moment to apply, a monitor that finds every third service unhealthy from
// 50 % exposure on.
func newFleet(pool *pgxpool.Pool, name string, bake time.Duration, onRound func(deployriver.Round)) (*deployriver.Fleet, error) {
	store, err := postgres.New(pool)
	if err != nil {
		return nil, err
	}
	s := &ramp{bake: bake}
	health := deploy.MonitorFunc(func(_ context.Context, tg monitor.Target) (monitor.Observation, error) {
		if tg.Labels["regression"] == "yes" && tg.Phase != "baseline" && tg.Phase != "rollback" && tg.Exposure >= 0.5 {
			return deploytest.Health{ErrorRate: 0.2, P95: 150 * time.Millisecond}.Observation(), nil
		}
		return deploytest.Health{ErrorRate: 0.001, P95: 120 * time.Millisecond}.Observation(), nil
	})
	p := deploy.DefaultPolicy()
	p.ProgressDeadline = progressDeadline
	r, err := deploy.NewRunner(s, deploy.WithStore(store), deploy.WithHolder(name), deploy.WithMonitors(health),
		deploy.WithNotifiers(deploy.NotifierFunc(func(context.Context, deploy.Event) error { return nil })),
		deploy.WithRollbackPolicy(p), deploy.WithRollbackTimeout(progressDeadline), deploy.WithRollbackSettle(500*time.Millisecond),
		deploy.WithLeaseGrace(leaseGrace), deploy.WithInterval(250*time.Millisecond), deploy.WithBaselineWindow(time.Second),
		deploy.WithTimeouts(deploy.Timeouts{Plan: time.Second, Check: time.Second, Observe: time.Second, Notify: 250 * time.Millisecond}),
		deploy.WithSchedule(monitor.Schedule{}), deploy.WithWaiver(deploy.FridayDeploy, "an example runs any day"))
	if err != nil {
		return nil, err
	}
	return deployriver.New(pool, deployriver.Config{Runner: r, Store: store, Name: name, OnRound: onRound, SweepInterval: 10 * time.Second})
}

// runWorker is one worker process: it migrates, as every worker may at
// start-up, then drives rounds until SIGTERM, logging each to the rounds
// file.
func runWorker(dsn, name, roundsPath string, bake time.Duration) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	pool, err := pgxpool.New(context.Background(), dsn)
	if err != nil {
		return err
	}
	defer pool.Close()
	store, err := postgres.New(pool)
	if err != nil {
		return err
	}
	if err := deployriver.Migrate(ctx, pool, store); err != nil {
		return err
	}
	f, err := newFleet(pool, name, bake, func(r deployriver.Round) {
		// One short write per line: the workers' appends do not interleave.
		if fh, err := os.OpenFile(roundsPath, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600); err == nil {
			fmt.Fprintf(fh, "%s %s %s %s\n", r.ID, r.Worker, r.Outcome, r.Phase)
			fh.Close()
		}
	})
	if err != nil {
		return err
	}
	if err := f.Start(context.Background()); err != nil {
		return err
	}
	fmt.Println("ready")
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return f.Stop(sctx)
}

// run is the parent: the database, the workers, the releases, the kill.
func run(out io.Writer, dsn string, workers, releases int, bake time.Duration) error {
	ctx := context.Background()
	if dsn == "" {
		srv, err := pgtest.Launch()
		if err != nil {
			return fmt.Errorf("no -dsn given and no throwaway PostgreSQL: %w", err)
		}
		defer srv.Close()
		if dsn, err = srv.CreateDatabase(ctx, "fleet"); err != nil {
			return err
		}
		fmt.Fprintln(out, "started a throwaway PostgreSQL in", srv.Dir)
	}
	dir, err := os.MkdirTemp("", "deploykit-fleet-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	roundsPath := filepath.Join(dir, "rounds")
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		return err
	}
	defer pool.Close()
	store, err := postgres.New(pool)
	if err != nil {
		return err
	}
	if err := deployriver.Migrate(ctx, pool, store); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	procs := map[string]*exec.Cmd{}
	defer func() {
		for _, c := range procs {
			_ = c.Process.Signal(syscall.SIGTERM)
		}
		for _, c := range procs {
			_ = c.Wait()
		}
	}()
	for i := range workers {
		name := fmt.Sprintf("w%d", i+1)
		c := exec.Command(self, "-worker", name, "-dsn", dsn, "-rounds", roundsPath, "-bake", bake.String())
		c.Stderr = os.Stderr
		c.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		stdout, err := c.StdoutPipe()
		if err != nil {
			return err
		}
		if err := c.Start(); err != nil {
			return err
		}
		procs[name] = c
		if line, err := bufio.NewReader(stdout).ReadString('\n'); err != nil || strings.TrimSpace(line) != "ready" {
			return fmt.Errorf("worker %s did not start: %q %v", name, line, err)
		}
		go io.Copy(io.Discard, stdout)
	}
	fmt.Fprintf(out, "%d workers: %s\n", workers, strings.Join(sortedKeys(procs), " "))

	// The parent starts the releases; it works no job itself.
	starter, err := newFleet(pool, "starter", bake, nil)
	if err != nil {
		return err
	}
	start := time.Now()
	want := map[string]state.Status{}
	ids := map[string]string{}
	for i := range releases {
		svc := fmt.Sprintf("svc-%02d", i+1)
		rel := deploy.Release{Service: svc, Version: "v2", PreviousVersion: "v1", Labels: map[string]string{"regression": "no"}}
		want[svc] = state.Succeeded
		if (i+1)%3 == 0 {
			rel.Labels["regression"] = "yes"
			want[svc] = state.RolledBack
		}
		id, err := starter.Release(ctx, rel)
		if err != nil {
			return err
		}
		ids[svc] = id
	}
	fmt.Fprintf(out, "released %d services\n", releases)

	killed := ""
	deadline := time.Now().Add(3 * time.Minute)
	for {
		p, err := store.List(ctx, state.Query{ActiveOnly: true})
		if err != nil {
			return err
		}
		if len(p.Releases) == 0 {
			break
		}
		if killed == "" && len(p.Releases) <= releases*3/4 {
			// Midway: a quarter of the releases are over. Kill the worker
			// that drove the latest round, most likely in the middle of
			// another.
			killed = lastWorker(roundsPath)
			if c := procs[killed]; c != nil {
				_ = c.Process.Signal(syscall.SIGKILL)
				_ = c.Wait()
				delete(procs, killed)
				fmt.Fprintf(out, "%5.1fs SIGKILL %s (pid %d) with %d releases still active\n", time.Since(start).Seconds(), killed, c.Process.Pid, len(p.Releases))
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d releases still active after 3 minutes", len(p.Releases))
		}
		time.Sleep(200 * time.Millisecond)
	}
	fmt.Fprintf(out, "%5.1fs every release is over\n\n", time.Since(start).Seconds())

	drove := map[string][]string{}
	for _, l := range readLines(roundsPath) {
		if f := strings.Fields(l); len(f) >= 2 {
			drove[f[0]] = append(drove[f[0]], f[1])
		}
	}
	fmt.Fprintln(out, "| service | outcome | rounds, by worker |")
	fmt.Fprintln(out, "|---|---|---|")
	var wrong []string
	for _, svc := range sortedKeys(want) {
		rec, err := store.Load(ctx, ids[svc])
		if err != nil {
			return err
		}
		mark := ""
		if rec.Status != want[svc] {
			mark = fmt.Sprintf(" (want %s)", want[svc])
			wrong = append(wrong, svc)
		}
		fmt.Fprintf(out, "| %s | %s%s | %s |\n", svc, rec.Status, mark, strings.Join(drove[ids[svc]], " "))
	}
	if len(wrong) > 0 {
		return fmt.Errorf("%d releases did not end as expected: %s", len(wrong), strings.Join(wrong, ", "))
	}
	fmt.Fprintf(out, "\nall %d releases ended as expected; %s was killed midway\n", releases, killed)
	return nil
}

// lastWorker names the worker of the last round logged.
func lastWorker(path string) string {
	lines := readLines(path)
	for i := len(lines) - 1; i >= 0; i-- {
		if f := strings.Fields(lines[i]); len(f) >= 2 {
			return f[1]
		}
	}
	return "w1"
}

func readLines(path string) []string {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

func sortedKeys[V any](m map[string]V) []string {
	k := make([]string, 0, len(m))
	for x := range m {
		k = append(k, x)
	}
	sort.Strings(k)
	return k
}

// ramp releases in three steps, 10 %, 50 % and everyone; each change takes
// a moment, like a real rollout.
type ramp struct{ bake time.Duration }

func (s *ramp) Name() string { return "ramp" }

func (s *ramp) Plan(context.Context, *deploy.Deployment) ([]deploy.Step, error) {
	var steps []deploy.Step
	for _, e := range []float64{0.1, 0.5, 1} {
		steps = append(steps, deploy.Step{Name: fmt.Sprintf("%g%%", e*100), Exposure: e, Bake: s.bake,
			Apply: func(ctx context.Context, d *deploy.Deployment) error { return pause(ctx) }})
	}
	return steps, nil
}

func (s *ramp) Rollback(ctx context.Context, d *deploy.Deployment) error { return pause(ctx) }

// pause is the time a change takes.
func pause(ctx context.Context) error {
	select {
	case <-time.After(300 * time.Millisecond):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
