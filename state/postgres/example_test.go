package postgres_test

import (
	"context"
	"log"
	"os"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/deploykit/deploy/state"
	"github.com/deploykit/deploy/state/postgres"
)

// Every runner of a fleet opens the same database, migrates (a no-op once
// done) and passes the store to deploy.WithStore.
func Example() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, os.Getenv("DATABASE_URL"))
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	store, err := postgres.New(pool, postgres.WithTable("deploy_releases"))
	if err != nil {
		log.Fatal(err)
	}
	if err := store.Migrate(ctx); err != nil {
		log.Fatal(err)
	}
	var _ state.Store = store // deploy.NewRunner(strategy, deploy.WithStore(store), …)
}
