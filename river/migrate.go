package river

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"

	"github.com/deploykit/deploy/state/postgres"
)

// migrateLock names the session advisory lock Migrate holds.
const migrateLock = "deploykit/river:migrate"

// Migrate brings the store's tables and River's up to date. It is safe for
// every worker to call at start-up: River's migrator takes no lock (of
// four processes migrating a fresh database at once, three fail), so
// Migrate holds a session advisory lock for the whole migration, on a
// connection of its own from pool; a process that dies holding it releases
// it with its session. store may be nil to migrate River's tables only.
func Migrate(ctx context.Context, pool *pgxpool.Pool, store *postgres.Store) (err error) {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("river: migrating: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock(hashtext($1))`, migrateLock); err != nil {
		return fmt.Errorf("river: migrating: taking the lock: %w", err)
	}
	defer func() {
		if _, uerr := conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock(hashtext($1))`, migrateLock); uerr != nil {
			// Close the session: that releases the lock.
			_ = conn.Conn().Close(context.WithoutCancel(ctx))
		}
	}()
	if store != nil {
		if err := store.Migrate(ctx); err != nil {
			return err
		}
	}
	m, err := rivermigrate.New(riverpgxv5.New(pool), nil)
	if err != nil {
		return fmt.Errorf("river: migrating: %w", err)
	}
	if _, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return fmt.Errorf("river: migrating River's tables: %w", err)
	}
	return nil
}
