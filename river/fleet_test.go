package river_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river/rivertype"

	"github.com/deploykit/deploy"
	"github.com/deploykit/deploy/internal/pgtest"
	deployriver "github.com/deploykit/deploy/river"
	"github.com/deploykit/deploy/state"
	"github.com/deploykit/deploy/state/postgres"
)

// migrated returns a pool on a new database with the store's and River's
// tables.
func migrated(t *testing.T) *pgxpool.Pool {
	t.Helper()
	pool := newPool(t, pgtest.DSN(t))
	store, err := postgres.New(pool)
	if err != nil {
		t.Fatal(err)
	}
	if err := deployriver.Migrate(t.Context(), pool, store); err != nil {
		t.Fatal(err)
	}
	return pool
}

// waitFinal waits until release id is over and returns its record.
func waitFinal(t *testing.T, pool *pgxpool.Pool, id string, within time.Duration) *state.Record {
	t.Helper()
	store, _ := postgres.New(pool)
	deadline := time.Now().Add(within)
	for {
		rec, err := store.Load(context.Background(), id)
		if err == nil && rec.Status.Final() {
			return rec
		}
		if time.Now().After(deadline) {
			t.Fatalf("release %s not over within %v: %+v, %v", id, within, rec, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestNewRefusesSettingsShorterThanTheRunnersBounds(t *testing.T) {
	pool, err := pgxpool.New(context.Background(), "host=/nonexistent port=1 user=x dbname=x")
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	store, _ := postgres.New(pool)
	r := newRunner(t, effects{tempFile(t, "fx")}, store, "w")
	for _, c := range []struct {
		cfg  deployriver.Config
		want string
	}{
		{deployriver.Config{}, "Config.Runner is nil"},
		{deployriver.Config{Runner: r, Store: store, JobTimeout: 5 * time.Second},
			"Config.JobTimeout 5s is shorter than one Reconcile of the runner may take, 8s"},
		{deployriver.Config{Runner: r, Store: store, JobTimeout: 10 * time.Second, RescueStuckJobsAfter: 11 * time.Second},
			"Config.RescueStuckJobsAfter 11s is shorter than JobTimeout 10s plus the runner's lease grace 2s (12s)"},
		{deployriver.Config{Runner: r, Store: store, MaxAttempts: -1}, "Config.MaxAttempts -1 is negative"},
	} {
		_, err := deployriver.New(pool, c.cfg)
		if !errors.Is(err, deployriver.ErrInvalid) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("New(%+v) = %v, want ErrInvalid saying %q", c.cfg, err, c.want)
		}
	}
	// Derived: the runner's Reconcile bound plus the store margin, and
	// the lease grace on top.
	f, err := deployriver.New(pool, deployriver.Config{Runner: r, Store: store})
	if err != nil {
		t.Fatal(err)
	}
	timeout, rescue := f.Timeouts()
	if want := r.Bounds().Reconcile() + deployriver.StoreMargin; timeout != want || rescue != want+2*time.Second {
		t.Errorf("derived JobTimeout %v, RescueStuckJobsAfter %v; want %v and %v", timeout, rescue, want, want+2*time.Second)
	}
}

// one worker drives a healthy release to success and a bad one to its
// rollback, one round at a time.
func TestFleetDrivesReleasesToTheirEnd(t *testing.T) {
	pool := migrated(t)
	fx := effects{tempFile(t, "fx")}
	var rs rounds
	f := newFleet(t, pool, fx, "w1", deployriver.Config{OnRound: rs.add})
	if err := f.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer f.Stop(context.Background())
	good, err := f.Release(t.Context(), deploy.Release{Service: "checkout", Version: "v2", PreviousVersion: "v1"})
	if err != nil {
		t.Fatal(err)
	}
	bad, err := f.Release(t.Context(), deploy.Release{Service: "bad-search", Version: "v2", PreviousVersion: "v1"})
	if err != nil {
		t.Fatal(err)
	}
	if rec := waitFinal(t, pool, good, time.Minute); rec.Status != state.Succeeded {
		t.Errorf("%s ended %s, want succeeded", good, rec.Status)
	}
	if rec := waitFinal(t, pool, bad, time.Minute); rec.Status != state.RolledBack {
		t.Errorf("%s ended %s, want rolled back", bad, rec.Status)
	}
	// Its job completes with it; then the release can be enqueued again,
	// and the new job completes at its first round.
	waitJobsCompleted(t, pool, 1)
	if ok, err := f.Enqueue(t.Context(), good); err != nil || !ok {
		t.Fatalf("Enqueue after the end = %v, %v; want a new job", ok, err)
	}
	waitJobsCompleted(t, pool, 3)
	if err := f.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	all := rs.list()
	if len(all) < 6 {
		t.Errorf("%d rounds, want one per action", len(all))
	}
	for _, r := range all {
		if r.Worker != "w1" || r.Err != nil && r.Outcome != "done" {
			t.Errorf("round %+v", r)
		}
	}
}

// a second start of a service's release while one is active is refused
// and enqueues nothing; enqueuing a release that has its job does nothing.
func TestDuplicateStartIsRefused(t *testing.T) {
	pool := migrated(t)
	f := newFleet(t, pool, effects{tempFile(t, "fx")}, "w1", deployriver.Config{})
	rel := deploy.Release{Service: "checkout", Version: "v2", PreviousVersion: "v1"}
	id, err := f.Release(t.Context(), rel)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Release(t.Context(), rel); !errors.Is(err, deploy.ErrLocked) || !errors.Is(err, state.ErrActive) {
		t.Fatalf("second Release = %v, want ErrLocked and state.ErrActive", err)
	}
	if ok, err := f.Enqueue(t.Context(), id); err != nil || ok {
		t.Errorf("Enqueue of a release that has its job = %v, %v; want false, nil", ok, err)
	}
	var jobs int
	if err := pool.QueryRow(t.Context(), `SELECT count(*) FROM river_job WHERE kind = $1`, deployriver.Kind).Scan(&jobs); err != nil {
		t.Fatal(err)
	}
	var records int
	if err := pool.QueryRow(t.Context(), `SELECT count(*) FROM `+postgres.DefaultTable).Scan(&records); err != nil {
		t.Fatal(err)
	}
	if jobs != 1 || records != 1 {
		t.Errorf("%d jobs and %d records, want one of each", jobs, records)
	}
}

// a release whose job was deleted by hand is found by the sweep, given a
// job, reported urgently, and driven to its end.
func TestSweepPicksUpAReleaseWhoseJobWasDeleted(t *testing.T) {
	pool := migrated(t)
	rec := &recorder{}
	f := newFleet(t, pool, effects{tempFile(t, "fx")}, "w1", deployriver.Config{Notifiers: []deploy.Notifier{rec}})
	id, err := f.Release(t.Context(), deploy.Release{Service: "checkout", Version: "v2", PreviousVersion: "v1"})
	if err != nil {
		t.Fatal(err)
	}
	other, err := f.Release(t.Context(), deploy.Release{Service: "search", Version: "v2", PreviousVersion: "v1"})
	if err != nil {
		t.Fatal(err)
	}
	given, err := f.Release(t.Context(), deploy.Release{Service: "payments", Version: "v2", PreviousVersion: "v1"})
	if err != nil {
		t.Fatal(err)
	}
	// One job deleted by hand, one River gave up (discarded, as its
	// rescuer does after MaxAttempts rescues).
	if _, err := pool.Exec(t.Context(), `DELETE FROM river_job WHERE args->>'id' = $1`, id); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(t.Context(), `UPDATE river_job SET state = 'discarded', finalized_at = now() WHERE args->>'id' = $1`, given); err != nil {
		t.Fatal(err)
	}
	res, err := f.Sweep(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	want := []string{id, given}
	slices.Sort(want)
	if res.Active != 3 || !slices.Equal(res.Enqueued, want) {
		t.Fatalf("sweep = %+v, want 3 active and %v enqueued (not %s, which has its job)", res, want, other)
	}
	if k := rec.kinds(); len(k) != 2 || k[0] != deployriver.EventOrphaned || k[1] != deployriver.EventOrphaned || !rec.events[0].Urgent {
		t.Errorf("events %+v, want two urgent %s", rec.events, deployriver.EventOrphaned)
	}
	if res, _ := f.Sweep(t.Context()); len(res.Enqueued) != 0 {
		t.Errorf("second sweep enqueued %v", res.Enqueued)
	}
	if err := f.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer f.Stop(context.Background())
	for _, x := range []string{id, other, given} {
		if r := waitFinal(t, pool, x, time.Minute); r.Status != state.Succeeded {
			t.Errorf("%s ended %s", x, r.Status)
		}
	}
}

// a release whose rounds keep failing is flagged, urgently, after
// MaxAttempts rounds, and its job is kept (snoozed), never discarded.
func TestFailingRoundsFlagTheReleaseAndKeepItsJob(t *testing.T) {
	pool := migrated(t)
	rec := &recorder{}
	var rs rounds
	f := newFleet(t, pool, effects{tempFile(t, "fx")}, "w1", deployriver.Config{MaxAttempts: 2, Notifiers: []deploy.Notifier{rec}, OnRound: rs.add})
	id, err := f.Release(t.Context(), deploy.Release{Service: "checkout", Version: "v2", PreviousVersion: "v1"})
	if err != nil {
		t.Fatal(err)
	}
	// A record that breaks an invariant: every Reconcile refuses it.
	if _, err := pool.Exec(t.Context(), `UPDATE `+postgres.DefaultTable+` SET record = jsonb_set(record, '{phase}', '"nowhere"') WHERE id = $1`, id); err != nil {
		t.Fatal(err)
	}
	if err := f.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer f.Stop(context.Background())
	deadline := time.Now().Add(30 * time.Second)
	for !slices.Contains(rec.kinds(), deployriver.EventFlagged) {
		if time.Now().After(deadline) {
			t.Fatalf("no %s event within 30 s; rounds %+v", deployriver.EventFlagged, rs.list())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := f.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	e := rec.events[0]
	if !e.Urgent || e.DeploymentID != id || !strings.Contains(e.Message, "2 rounds in a row failed") {
		t.Errorf("event %+v", e)
	}
	var jobState string
	if err := pool.QueryRow(t.Context(), `SELECT state FROM river_job WHERE args->>'id' = $1`, id).Scan(&jobState); err != nil {
		t.Fatal(err)
	}
	if jobState != string(rivertype.JobStateScheduled) {
		t.Errorf("the flagged release's job is %s, want scheduled (snoozed, not discarded)", jobState)
	}
	if all := rs.list(); len(all) != 2 || all[0].Outcome != "retry" || all[1].Outcome != "flagged" {
		t.Errorf("rounds %+v, want a retry then flagged", all)
	}
}

// a release another runner holds is left alone until its lease ends, then
// taken over: the job snoozes until the lease's end, not River's backoff.
func TestLockedReleaseWaitsForTheLease(t *testing.T) {
	pool := migrated(t)
	var rs rounds
	f := newFleet(t, pool, effects{tempFile(t, "fx")}, "w1", deployriver.Config{OnRound: rs.add})
	id, err := f.Release(t.Context(), deploy.Release{Service: "checkout", Version: "v2", PreviousVersion: "v1"})
	if err != nil {
		t.Fatal(err)
	}
	until := time.Now().Add(3 * time.Second).UTC()
	if _, err := pool.Exec(t.Context(), `UPDATE `+postgres.DefaultTable+` SET record = jsonb_set(jsonb_set(record, '{holder}', '"a-runner-elsewhere"'), '{leaseUntil}', to_jsonb($2::text)) WHERE id = $1`,
		id, until.Format(time.RFC3339Nano)); err != nil {
		t.Fatal(err)
	}
	if err := f.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer f.Stop(context.Background())
	if rec := waitFinal(t, pool, id, time.Minute); rec.Status != state.Succeeded {
		t.Fatalf("ended %s", rec.Status)
	}
	all := rs.list()
	if len(all) < 2 || all[0].Outcome != "locked" || !all[0].Next.Equal(until) {
		t.Fatalf("first rounds %+v, want a locked round snoozing until %v", all, until)
	}
	if all[1].Started.Before(until) {
		t.Errorf("the round after the lock began at %v, before the lease ended at %v", all[1].Started, until)
	}
	if late := all[1].Started.Sub(until); late > 6*time.Second {
		t.Errorf("the round after the lock began %v after the lease ended", late)
	}
}

// waitJobsCompleted waits until every release job is completed and there
// are at least n of them.
func waitJobsCompleted(t *testing.T, pool *pgxpool.Pool, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var live, done int
		if err := pool.QueryRow(t.Context(), `SELECT count(*) FILTER (WHERE state <> 'completed'), count(*) FILTER (WHERE state = 'completed') FROM river_job WHERE kind = $1`,
			deployriver.Kind).Scan(&live, &done); err != nil {
			t.Fatal(err)
		}
		if live == 0 && done >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d jobs not completed, %d completed, 30 s on", live, done)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
