package postgres_test

import (
	"context"
	"errors"
	"testing"

	"github.com/deploykit/deploy/deploytest"
	"github.com/deploykit/deploy/internal/pgtest"
	"github.com/deploykit/deploy/state"
	"github.com/deploykit/deploy/state/postgres"
)

// a record created in the caller's transaction exists when, and only if,
// the caller commits: a release and its job start together or not at all.
func TestCreateInTheCallersTransaction(t *testing.T) {
	pool := newPool(t, pgtest.DSN(t))
	s, err := postgres.New(pool)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	for _, commit := range []bool{false, true} {
		tx, err := pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		id := "rel-rolled-back"
		if commit {
			id = "rel-committed"
		}
		if err := s.Create(postgres.WithTx(ctx, tx), deploytest.FullRecord(id)); err != nil {
			t.Fatalf("Create in tx: %v", err)
		}
		if _, err := s.Load(ctx, id); !errors.Is(err, state.ErrNotFound) {
			t.Fatalf("Load of %s before the commit = %v, want ErrNotFound (another session must not see it)", id, err)
		}
		if commit {
			err = tx.Commit(ctx)
		} else {
			err = tx.Rollback(ctx)
		}
		if err != nil {
			t.Fatal(err)
		}
		_, err = s.Load(ctx, id)
		if commit && err != nil {
			t.Errorf("Load after the commit: %v", err)
		}
		if !commit && !errors.Is(err, state.ErrNotFound) {
			t.Errorf("Load after the rollback = %v, want ErrNotFound", err)
		}
	}
	// A second active release of the service is refused inside the
	// transaction as outside it.
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if err := s.Create(postgres.WithTx(ctx, tx), deploytest.FullRecord("rel-second")); !errors.Is(err, state.ErrActive) {
		t.Errorf("second active Create in tx = %v, want ErrActive", err)
	}
}
