package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/deploykit/deploy/deploytest"
	"github.com/deploykit/deploy/internal/pgtest"
	"github.com/deploykit/deploy/state"
	"github.com/deploykit/deploy/state/postgres"
)

// TestPostgres runs every test against one server, started once.
func TestPostgres(t *testing.T) {
	dsn := pgtest.DSN(t)
	pool := newPool(t, dsn)
	var tables atomic.Int64
	// newStore returns a store on a new, migrated table.
	newStore := func(p *pgxpool.Pool) (*postgres.Store, error) {
		s, err := postgres.New(p, postgres.WithTable(fmt.Sprintf("releases_%d", tables.Add(1))))
		if err != nil {
			return nil, err
		}
		return s, s.Migrate(context.Background())
	}

	t.Run("Conformance", func(t *testing.T) {
		if err := deploytest.TestStore(func() (state.Store, error) { return newStore(pool) }); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("AppendsHistoryRows", func(t *testing.T) {
		s, err := newStore(pool)
		if err != nil {
			t.Fatal(err)
		}
		testAppendsHistoryRows(t, pool, s)
	})

	t.Run("MigratesEarlierTable", func(t *testing.T) { testMigratesEarlierTable(t, pool) })

	t.Run("QuarantineKeepsRow", func(t *testing.T) {
		s, err := newStore(pool)
		if err != nil {
			t.Fatal(err)
		}
		testQuarantineKeepsRow(t, pool, s)
	})

	t.Run("Migrate", func(t *testing.T) {
		s, err := postgres.New(pool)
		if err != nil {
			t.Fatal(err)
		}
		if s.Table() != postgres.DefaultTable {
			t.Errorf("Table() = %q, want %q", s.Table(), postgres.DefaultTable)
		}
		// Runners migrating at once, and again.
		var wg sync.WaitGroup
		errs := make([]error, 8)
		for i := range errs {
			wg.Go(func() { errs[i] = s.Migrate(t.Context()) })
		}
		wg.Wait()
		if err := errors.Join(append(errs, s.Migrate(t.Context()))...); err != nil {
			t.Fatalf("concurrent Migrate: %v", err)
		}
		r := deploytest.FullRecord("rel-1")
		if err := s.Create(t.Context(), r); err != nil {
			t.Fatal(err)
		}
		var service, env, status string
		var rev, token int64
		err = pool.QueryRow(t.Context(), "SELECT service, environment, status, rev, token FROM deploy_releases WHERE id = 'rel-1'").Scan(&service, &env, &status, &rev, &token)
		if err != nil {
			t.Fatal(err)
		}
		if service != "checkout" || env != "production" || status != "running" || rev != 1 || token != 5 {
			t.Errorf("columns = %q %q %q rev %d token %d, want checkout production running rev 1 token 5", service, env, status, rev, token)
		}
	})

	t.Run("RunnersRace", func(t *testing.T) {
		// Two runners on two machines: two pools, two stores, one table.
		a, err := newStore(newPool(t, dsn))
		if err != nil {
			t.Fatal(err)
		}
		b, err := postgres.New(newPool(t, dsn), postgres.WithTable(a.Table()))
		if err != nil {
			t.Fatal(err)
		}
		ctx := t.Context()
		r := deploytest.FullRecord("rel-1")
		r.Token = 1
		if err := a.Create(ctx, r); err != nil {
			t.Fatal(err)
		}
		wins := map[string]int{}
		for round := range 50 {
			ra, err := a.Load(ctx, "rel-1")
			if err != nil {
				t.Fatal(err)
			}
			rb, err := b.Load(ctx, "rel-1")
			if err != nil {
				t.Fatal(err)
			}
			// Runner a saves its step; runner b takes the lease over, as
			// Rollback does, with a higher token.
			ra.Holder, ra.Observed = "a", round
			rb.Holder, rb.Token = "b", rb.Token+1
			var ea, eb error
			var wg sync.WaitGroup
			start := make(chan struct{})
			wg.Go(func() { <-start; ea = a.Update(ctx, ra) })
			wg.Go(func() { <-start; eb = b.Update(ctx, rb) })
			close(start)
			wg.Wait()
			var winner *state.Record
			switch {
			case ea == nil && eb == nil:
				t.Fatalf("round %d: both runners updated rev %d", round, ra.Rev-1)
			case ea == nil:
				winner = ra
				wins["a"]++
				if !errors.Is(eb, state.ErrConflict) && !errors.Is(eb, state.ErrFenced) {
					t.Fatalf("round %d: loser b: %v, want ErrConflict or ErrFenced", round, eb)
				}
			case eb == nil:
				winner = rb
				wins["b"]++
				if !errors.Is(ea, state.ErrConflict) && !errors.Is(ea, state.ErrFenced) {
					t.Fatalf("round %d: loser a: %v, want ErrConflict or ErrFenced", round, ea)
				}
			default:
				t.Fatalf("round %d: neither runner updated: a: %v; b: %v", round, ea, eb)
			}
			got, err := a.Load(ctx, "rel-1")
			if err != nil {
				t.Fatal(err)
			}
			if got.Rev != winner.Rev || got.Holder != winner.Holder || got.Token != winner.Token {
				t.Fatalf("round %d: stored rev %d holder %s token %d, want the winner's rev %d holder %s token %d",
					round, got.Rev, got.Holder, got.Token, winner.Rev, winner.Holder, winner.Token)
			}
			if winner == rb {
				// The runner that lost its lease keeps its old token: fenced
				// even after reloading the revision.
				ra.Rev = got.Rev
				if err := a.Update(ctx, ra); !errors.Is(err, state.ErrFenced) {
					t.Fatalf("round %d: update by the runner that lost the lease = %v, want ErrFenced", round, err)
				}
			}
		}
		t.Logf("wins: %v", wins)
	})

	t.Run("OneActivePerService", func(t *testing.T) {
		s, err := newStore(pool)
		if err != nil {
			t.Fatal(err)
		}
		ctx := t.Context()
		const racers = 20
		var finished string
		for round := range 5 {
			errs := make([]error, racers)
			recs := make([]*state.Record, racers)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range racers {
				recs[i] = deploytest.FullRecord(fmt.Sprintf("rel-%d-%d", round, i))
				wg.Go(func() { <-start; errs[i] = s.Create(ctx, recs[i]) })
			}
			close(start)
			wg.Wait()
			winner := -1
			for i, err := range errs {
				switch {
				case err == nil && winner >= 0:
					t.Fatalf("round %d: %s and %s both created as running releases of checkout/production", round, recs[winner].ID, recs[i].ID)
				case err == nil:
					winner = i
				case !errors.Is(err, state.ErrActive):
					t.Fatalf("round %d: Create(%s) = %v, want nil or ErrActive", round, recs[i].ID, err)
				}
			}
			if winner < 0 {
				t.Fatalf("round %d: no Create succeeded", round)
			}
			if !strings.Contains(errs[(winner+1)%racers].Error(), recs[winner].ID) {
				t.Errorf("round %d: ErrActive does not name the active release %s: %v", round, recs[winner].ID, errs[(winner+1)%racers])
			}
			// Finish the winner so that the next round may start one.
			w := recs[winner]
			w.Status = state.RolledBack
			if err := s.Update(ctx, w); err != nil {
				t.Fatal(err)
			}
			finished = w.ID
		}
		// An Update may not bring a finished release back while another runs.
		var n int
		if err := pool.QueryRow(ctx, fmt.Sprintf("SELECT count(*) FROM %s WHERE status = 'running'", s.Table())).Scan(&n); err != nil || n != 0 {
			t.Fatalf("running releases: %d, %v; want 0", n, err)
		}
		run := deploytest.FullRecord("rel-new")
		if err := s.Create(ctx, run); err != nil {
			t.Fatal(err)
		}
		old, err := s.Load(ctx, finished)
		if err != nil {
			t.Fatal(err)
		}
		old.Status = state.Running
		if err := s.Update(ctx, old); !errors.Is(err, state.ErrActive) {
			t.Errorf("Update of a finished release back to running while rel-new runs = %v, want ErrActive", err)
		}
	})

	t.Run("Corrupt", func(t *testing.T) {
		s, err := newStore(pool)
		if err != nil {
			t.Fatal(err)
		}
		ctx := t.Context()
		for id, rec := range map[string]string{"wrong-shape": `{"id": "wrong-shape", "rev": "one"}`, "other-id": `{"id": "x"}`} {
			if _, err := pool.Exec(ctx, fmt.Sprintf(`INSERT INTO %s (id, service, environment, status, rev, token, record) VALUES ($1, 's', 'e', 'failed', 1, 1, $2)`, s.Table()), id, rec); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Load(ctx, id); !errors.Is(err, state.ErrCorrupt) || !strings.Contains(err.Error(), id) {
				t.Errorf("Load(%q) = %v, want ErrCorrupt naming the id", id, err)
			}
		}
	})

	t.Run("BadRecords", func(t *testing.T) {
		s, err := newStore(pool)
		if err != nil {
			t.Fatal(err)
		}
		ctx := t.Context()
		nan := deploytest.FullRecord("rel-nan")
		nan.Exposure = math.NaN()
		if err := s.Create(ctx, nan); err == nil || !strings.Contains(err.Error(), "rel-nan") {
			t.Errorf("Create with a NaN exposure = %v, want an error naming the record", err)
		}
		if nan.Rev != 0 {
			t.Errorf("after a failed Create, Rev = %d, want 0", nan.Rev)
		}
		if err := s.Create(ctx, nil); err == nil || !strings.Contains(err.Error(), "nil") {
			t.Errorf("Create(nil) = %v, want an error saying the record is nil", err)
		}
		if err := s.Update(ctx, &state.Record{}); err == nil || !strings.Contains(err.Error(), "ID is empty") {
			t.Errorf("Update without an ID = %v, want an error naming the ID", err)
		}
		nul := deploytest.FullRecord("rel-nul")
		nul.Error = "a\x00b"
		if err := s.Create(ctx, nul); err == nil || !strings.Contains(err.Error(), "rel-nul") {
			t.Errorf("Create with a NUL in a string = %v, want an error naming the record", err)
		}
		if _, err := s.Load(ctx, "rel-nul"); !errors.Is(err, state.ErrNotFound) {
			t.Errorf("Load after a failed Create = %v, want ErrNotFound", err)
		}
	})

	t.Run("Cancelled", func(t *testing.T) {
		s, err := newStore(pool)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if err := s.Create(ctx, deploytest.FullRecord("rel-1")); !errors.Is(err, context.Canceled) {
			t.Errorf("Create with a cancelled context = %v, want context.Canceled", err)
		}
	})
}

func newPool(t *testing.T, dsn string) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

func TestNewValidates(t *testing.T) {
	if _, err := postgres.New(nil); err == nil || !strings.Contains(err.Error(), "pool") {
		t.Errorf("New(nil) = %v, want an error naming the pool", err)
	}
	// A pool that never connects: New does not touch the database.
	pool, err := pgxpool.New(context.Background(), "host=/nonexistent port=1 user=x dbname=x")
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	for _, name := range []string{"", "Releases", "1abc", "a-b", "a;drop table x", `"quoted"`, "schema.table", strings.Repeat("a", 57)} {
		if _, err := postgres.New(pool, postgres.WithTable(name)); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("%q", name)) || !strings.Contains(err.Error(), "WithTable") {
			t.Errorf("New(WithTable(%q)) = %v, want an error naming WithTable and the name", name, err)
		}
	}
	for _, name := range []string{"deploy_releases", "_x", strings.Repeat("a", 56)} {
		s, err := postgres.New(pool, nil, postgres.WithTable(name))
		if err != nil || s.Table() != name {
			t.Errorf("New(WithTable(%q)) = %v, %v; want a store on %s", name, s, err, name)
		}
	}
}
