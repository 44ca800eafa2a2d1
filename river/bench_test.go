package river_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/deploykit/deploy"
	"github.com/deploykit/deploy/deploytest"
	"github.com/deploykit/deploy/internal/pgtest"
	"github.com/deploykit/deploy/monitor"
	deployriver "github.com/deploykit/deploy/river"
	"github.com/deploykit/deploy/state/postgres"
)

// Shape of BenchmarkFleet: releases of five steps, each baking benchBake,
// across benchWorkers worker processes. $DEPLOYKIT_FLEET_BENCH_RELEASES
// changes the count (1,000 by default), $DEPLOYKIT_FLEET_BENCH_BAKE the
// bake (1s by default; above River's 5 s scheduler interval a snooze goes
// through the leader's scheduler).
const benchWorkers = 4

var benchBake = func() time.Duration {
	if d, err := time.ParseDuration(os.Getenv("DEPLOYKIT_FLEET_BENCH_BAKE")); err == nil && d > 0 {
		return d
	}
	return time.Second
}()

// benchRunner is the benchmark's runner: five steps of a no-op target,
// one observation at the end of each bake.
func benchRunner(store *postgres.Store, name string) (*deploy.Runner, error) {
	p := deploy.DefaultPolicy()
	p.ProgressDeadline = 5 * time.Second
	return deploy.NewRunner(&deploytest.Strategy{Steps: deploytest.Ramp(benchBake, 0.01, 0.05, 0.25, 0.5, 1)},
		deploy.WithStore(store), deploy.WithHolder(name), deploy.WithMonitors(deploytest.Healthy()),
		deploy.WithNotifiers(deploy.NotifierFunc(func(context.Context, deploy.Event) error { return nil })),
		deploy.WithRollbackPolicy(p), deploy.WithRollbackTimeout(5*time.Second), deploy.WithLeaseGrace(5*time.Second),
		deploy.WithInterval(benchBake), deploy.WithBaselineWindow(time.Second),
		deploy.WithTimeouts(deploy.Timeouts{Plan: time.Second, Check: time.Second, Observe: time.Second, Notify: 250 * time.Millisecond}),
		deploy.WithSchedule(monitor.Schedule{}), deploy.WithWaiver(deploy.FridayDeploy, "benchmarks run any day"))
}

// benchWorker is a worker process of BenchmarkFleet (TestHelperProcess,
// role "bench"): it logs each round's lateness and when it ended.
func benchWorker(pool *pgxpool.Pool, store *postgres.Store, dir, name string) (*deployriver.Fleet, error) {
	r, err := benchRunner(store, name)
	if err != nil {
		return nil, err
	}
	log := effects{filepath.Join(dir, "rounds-"+name)}
	return deployriver.New(pool, deployriver.Config{Runner: r, Store: store, Name: name, JobTimeout: 10 * time.Second,
		OnRound: func(x deployriver.Round) {
			log.add(x.Outcome, x.ID, strconv.FormatInt(x.Started.Add(x.Took).UnixMicro(), 10), x.Started.Sub(x.Due).Microseconds())
		}})
}

// BenchmarkFleet drives 1,000 releases of five steps with 1 s bakes across
// four worker processes on one PostgreSQL, with River's default intervals.
// It reports the whole run (one iteration; use -benchtime=1x), the rounds
// per second and the lateness of a round against its due time (the next
// its previous round returned), median and 99th percentile.
func BenchmarkFleet(b *testing.B) {
	n := 1000
	if v, err := strconv.Atoi(os.Getenv("DEPLOYKIT_FLEET_BENCH_RELEASES")); err == nil && v > 0 {
		n = v
	}
	srv := pgtest.Start(b)
	for b.Loop() {
		dsn := srv.NewDatabase(b) + " pool_max_conns=16"
		dir := b.TempDir()
		pool := newPool(b, dsn)
		store, _ := postgres.New(pool)
		if err := deployriver.Migrate(b.Context(), pool, store); err != nil {
			b.Fatal(err)
		}
		r, err := benchRunner(store, "starter")
		if err != nil {
			b.Fatal(err)
		}
		starter, err := deployriver.New(pool, deployriver.Config{Runner: r, Store: store, JobTimeout: 10 * time.Second, SweepInterval: -1})
		if err != nil {
			b.Fatal(err)
		}
		var kids []*child
		for i := range benchWorkers {
			c := startChild(b, "bench", fmt.Sprintf("b%d", i+1), dsn, dir)
			kids = append(kids, c)
		}
		for _, c := range kids {
			c.waitOutput(b, "ready", time.Minute)
		}
		start := time.Now()
		for i := range n {
			if _, err := starter.Release(b.Context(), deploy.Release{Service: fmt.Sprintf("svc-%04d", i), Version: "v2", PreviousVersion: "v1"}); err != nil {
				b.Fatal(err)
			}
		}
		created := time.Since(start)
		for {
			var active int
			if err := pool.QueryRow(b.Context(), `SELECT count(*) FROM `+postgres.DefaultTable+` WHERE status IN ('running', '')`).Scan(&active); err != nil {
				b.Fatal(err)
			}
			if active == 0 {
				break
			}
			if time.Since(start) > 20*time.Minute {
				b.Fatalf("%d releases still active after 20 minutes", active)
			}
			time.Sleep(200 * time.Millisecond)
		}
		total := time.Since(start)
		for _, c := range kids {
			c.stop(b)
		}
		var late []time.Duration
		outcomes := map[string]int{}
		for i := range benchWorkers {
			for _, e := range (effects{filepath.Join(dir, fmt.Sprintf("rounds-b%d", i+1))}).read(b) {
				late = append(late, time.Duration(e.token)*time.Microsecond)
				outcomes[e.kind]++
			}
		}
		slices.Sort(late)
		q := func(p float64) time.Duration { return late[min(len(late)-1, int(p*float64(len(late))))] }
		b.ReportMetric(total.Seconds(), "s/run")
		b.ReportMetric(float64(len(late))/total.Seconds(), "rounds/s")
		b.ReportMetric(q(0.5).Seconds()*1000, "p50-late-ms")
		b.ReportMetric(q(0.99).Seconds()*1000, "p99-late-ms")
		b.Logf("%d releases, %d rounds (%v), created in %v, all over in %v; lateness p50 %v p90 %v p99 %v max %v",
			n, len(late), outcomes, created.Round(time.Millisecond), total.Round(time.Millisecond), q(0.5), q(0.9), q(0.99), late[len(late)-1])
	}
}
