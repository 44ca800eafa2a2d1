package river

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	rq "github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/deploykit/deploy"
	"github.com/deploykit/deploy/state/postgres"
)

// Fleet drives releases from River jobs: one process of a fleet of
// workers sharing one PostgreSQL database.
type Fleet struct {
	s      settings
	pool   *pgxpool.Pool
	client *rq.Client[pgx.Tx]
	log    *slog.Logger
}

// New returns a fleet worker on pool, whose database holds the store's
// tables and River's (see [Migrate]). It validates cfg before anything
// else: an error matching [ErrInvalid] names every field that is wrong.
// Start it to work jobs; a Fleet that is never started still starts
// releases (Release) and sweeps.
func New(pool *pgxpool.Pool, cfg Config) (*Fleet, error) {
	if pool == nil {
		return nil, fmt.Errorf("%w: New pool is nil", ErrInvalid)
	}
	s, err := cfg.check()
	if err != nil {
		return nil, err
	}
	f := &Fleet{s: s, pool: pool, log: s.Logger}
	if f.log == nil {
		f.log = slog.New(slog.DiscardHandler)
	}
	workers := rq.NewWorkers()
	rq.AddWorker(workers, &worker{f: f})
	rq.AddWorker(workers, rq.WorkFunc(func(ctx context.Context, _ *rq.Job[sweepArgs]) error {
		_, err := f.Sweep(ctx)
		return err
	}))
	rc := &rq.Config{}
	if cfg.River != nil {
		c := *cfg.River
		rc = &c
	}
	rc.Workers = workers
	rc.Queues = map[string]rq.QueueConfig{s.Queue: {MaxWorkers: s.MaxWorkers}}
	rc.JobTimeout = s.JobTimeout
	rc.RescueStuckJobsAfter = s.RescueStuckJobsAfter
	rc.MaxAttempts = s.MaxAttempts
	if rc.Logger == nil && s.Logger != nil {
		rc.Logger = s.Logger
	}
	if s.SweepInterval > 0 && !rc.LeaderElectionDisabled {
		rc.PeriodicJobs = []*rq.PeriodicJob{rq.NewPeriodicJob(rq.PeriodicInterval(s.SweepInterval),
			func() (rq.JobArgs, *rq.InsertOpts) {
				return sweepArgs{}, &rq.InsertOpts{Queue: s.Queue, UniqueOpts: rq.UniqueOpts{ByState: liveStates}}
			}, &rq.PeriodicJobOpts{ID: "deploykit_sweep"})}
	}
	client, err := rq.NewClient(riverpgxv5.New(pool), rc)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	f.client = client
	return f, nil
}

// Client returns the River client, for what the fleet does not wrap
// (subscribing to events, listing jobs).
func (f *Fleet) Client() *rq.Client[pgx.Tx] { return f.client }

// Timeouts returns River's JobTimeout and RescueStuckJobsAfter in force,
// derived from the runner's bounds unless Config set them.
func (f *Fleet) Timeouts() (job, rescueAfter time.Duration) {
	return f.s.JobTimeout, f.s.RescueStuckJobsAfter
}

// Start starts working jobs; it returns at once. Stop ends the work:
// rounds under way finish first (River's soft stop).
func (f *Fleet) Start(ctx context.Context) error { return f.client.Start(ctx) }

// Stop stops working jobs, waiting for the rounds under way.
func (f *Fleet) Stop(ctx context.Context) error { return f.client.Stop(ctx) }

// Release starts rel: it creates the release's record (Runner.Start:
// validation, the plan, the pitfall guards) and enqueues its job in one
// PostgreSQL transaction, so there is never a record without a job nor a
// job without a record. It returns the release's id. A release of a
// service and environment that already has one active is refused with
// deploy.ErrLocked (matching state.ErrActive), and nothing is enqueued.
// The transaction stays open while the strategy plans (bounded by the
// runner's Plan timeout).
func (f *Fleet) Release(ctx context.Context, rel deploy.Release) (string, error) {
	tx, err := f.pool.Begin(ctx)
	if err != nil {
		return "", fmt.Errorf("river: starting a release of %s: %w", rel.Service, err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	id, err := f.s.Runner.Start(postgres.WithTx(ctx, tx), rel)
	if err != nil {
		return "", err
	}
	var n int
	if err := tx.QueryRow(ctx, fmt.Sprintf(`SELECT count(*) FROM %s WHERE id = $1`, f.s.Store.Table()), id).Scan(&n); err != nil {
		return "", fmt.Errorf("river: starting %s: %w", id, err)
	}
	if n != 1 {
		return "", fmt.Errorf("%w: the runner's store is not Config.Store (table %s): release %s was created elsewhere, outside the transaction of its job", ErrInvalid, f.s.Store.Table(), id)
	}
	res, err := f.client.InsertTx(ctx, tx, Args{ID: id}, insertOpts(f.s.Queue, f.s.MaxAttempts))
	if err != nil {
		return "", fmt.Errorf("river: enqueuing %s: %w", id, err)
	}
	if res.UniqueSkippedAsDuplicate {
		return "", fmt.Errorf("river: release %s already has a job %d (%s)", id, res.Job.ID, res.Job.State)
	}
	if err := tx.Commit(ctx); err != nil {
		return "", fmt.Errorf("river: committing the release %s and its job: %w", id, err)
	}
	return id, nil
}

// Enqueue gives the existing release id a job, unless it has one that is
// live (available, scheduled, running, retryable, pending): it reports
// whether it enqueued one. A job that completed, was discarded or was
// cancelled does not count, so a release can be enqueued again after its
// job ended; a job for a release that is over completes at its first round.
func (f *Fleet) Enqueue(ctx context.Context, id string) (bool, error) {
	if id == "" {
		return false, errors.New("river: Enqueue id is empty")
	}
	res, err := f.client.Insert(ctx, Args{ID: id}, insertOpts(f.s.Queue, f.s.MaxAttempts))
	if err != nil {
		return false, fmt.Errorf("river: enqueuing %s: %w", id, err)
	}
	return !res.UniqueSkippedAsDuplicate, nil
}
