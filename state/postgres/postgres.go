// Package postgres is a [state.Store] on PostgreSQL, for fleets of runners
// on many machines that drive releases from one database.
//
// # Schema
//
// A record's head lives in one table, deploy_releases by default
// ([WithTable] names another), and its append-only history (Timeline and
// RollbackSteps) in a second one named after it with "_hist", one row per
// entry. [Store.Migrate] creates them:
//
//	CREATE TABLE IF NOT EXISTS deploy_releases (
//		id           text PRIMARY KEY,
//		service      text NOT NULL,
//		environment  text NOT NULL,
//		status       text NOT NULL,
//		rev          bigint NOT NULL,
//		token        bigint NOT NULL,
//		record       jsonb NOT NULL,      -- the record without its history
//		updated_at   timestamptz NOT NULL DEFAULT now(),
//		timeline_n   integer,             -- history rows that belong to the head
//		rollback_n   integer,
//		aside_reason text,                -- set by Quarantine
//		aside_at     timestamptz
//	);
//	CREATE UNIQUE INDEX IF NOT EXISTS deploy_releases_active
//		ON deploy_releases (service, environment) WHERE status IN ('running', '');
//	CREATE TABLE IF NOT EXISTS deploy_releases_hist (
//		id       text NOT NULL,
//		rollback boolean NOT NULL,        -- a rollback step, else a timeline entry
//		seq      integer NOT NULL,
//		entry    jsonb NOT NULL,
//		PRIMARY KEY (id, rollback, seq)
//	);
//
// The jsonb column holds the head of the [state.Record]; the other columns
// copy the fields the database must see. Migrate is idempotent and
// serialised by an advisory lock, so every runner may call it at start-up.
// On a table created by an earlier version it adds the new columns and the
// history table, and moves the history of the records already there out of
// their jsonb into rows. Run no earlier version against a migrated table:
// it would write whole records the history rows do not follow.
//
// # Concurrency
//
// Every guarantee is the database's, not a read followed by a write:
//
//   - Update is one statement: an UPDATE … WHERE id = $1 AND rev = $2 AND
//     token <= $3 of the head, a row-level compare-and-swap on rev with the
//     fencing token checked in the same statement, and, only if the head
//     changed, an INSERT of the new history rows. When no row changed, a
//     second query tells [state.ErrNotFound], [state.ErrQuarantined],
//     [state.ErrFenced] (the stored token is higher), [state.ErrConflict]
//     (the stored rev moved on) and [state.ErrHistory] apart.
//   - The partial unique index keeps one non-final release per service and
//     environment: a Create (or an Update back to running) that would make a
//     second one fails with [state.ErrActive], however many runners race.
//     The statuses in the index are those for which [state.Status.Final] is
//     false.
//   - A Create with a taken id fails with [state.ErrExists].
//
// An Update sends the head and the new history entries only, so it costs
// the same at any length of history. To know which entries are new it needs
// the stored history's length at the record's Rev: the store remembers it
// from the Load, Create or Update that produced that Rev, and asks the
// database otherwise (one more query). A [Store] is safe for concurrent
// use.
//
// # Setting records aside
//
// [Store.Quarantine] sets aside_reason and aside_at and turns status to
// "set aside", so the record leaves the unique index; the row and its
// history stay where they are.
//
// # Data
//
// Records are stored as JSON, so they must be encodable: a NaN or infinite
// float fails with an error naming the record, and jsonb refuses the NUL
// character (U+0000) in strings. Times come back as the same instants, not
// necessarily in the same location; outbox events come back as equal JSON,
// not necessarily the same bytes (jsonb sorts keys and drops spaces).
//
// # Testing
//
// The package's tests run [deploytest.TestStore] against a real PostgreSQL
// started by internal/pgtest (apt-get install -y postgresql), or against
// the server named by $DEPLOY_TEST_POSTGRES_DSN.
//
// # Module
//
// This package is a module of its own, github.com/deploykit/deploy/state/postgres,
// so that pgx reaches only the programs that import it (see MODULES.md):
//
//	go get github.com/deploykit/deploy/state/postgres
//
// Its tests run from its directory: cd state/postgres && go test ./...
package postgres

import (
	"context"
	"errors"
	"fmt"
	"regexp"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/deploykit/deploy/state"
)

// DefaultTable is the table used unless [WithTable] names another.
const DefaultTable = "deploy_releases"

// tableName is what WithTable accepts: an unquoted lower-case SQL
// identifier, short enough that the index name derived from it stays within
// PostgreSQL's 63 bytes.
var tableName = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,55}$`)

// Store is a [state.Store] on a PostgreSQL table. Create it with [New] and
// call [Store.Migrate] once before use.
type Store struct {
	pool  *pgxpool.Pool
	table string
	q     queries
	known lengths
}

var (
	_ state.Store       = (*Store)(nil)
	_ state.Quarantiner = (*Store)(nil)
)

// Option configures a [Store].
type Option func(*config)

type config struct {
	table string
}

// WithTable sets the table name, [DefaultTable] by default. The name must be
// a lower-case SQL identifier of at most 56 characters (letters, digits and
// underscores, not starting with a digit); [New] refuses any other.
func WithTable(name string) Option {
	return func(c *config) { c.table = name }
}

// New returns a store that keeps records in pool's database. The pool stays
// the caller's: the store never closes it. Nil options are ignored.
func New(pool *pgxpool.Pool, opts ...Option) (*Store, error) {
	if pool == nil {
		return nil, errors.New("postgres: New pool is nil")
	}
	c := config{table: DefaultTable}
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	if !tableName.MatchString(c.table) {
		return nil, fmt.Errorf("postgres: WithTable name %q is not a lower-case SQL identifier of at most 56 characters ([a-z_][a-z0-9_]*)", c.table)
	}
	return &Store{pool: pool, table: c.table, q: newQueries(c.table, c.table+"_hist")}, nil
}

// Table returns the name of the store's table.
func (s *Store) Table() string { return s.table }

// Migrate creates the tables and the index if they do not exist, and
// brings tables of earlier versions up to date (see the package
// documentation). It is idempotent and safe to call from many runners at
// once: a transaction-level advisory lock on the table's name serialises the
// calls.
func (s *Store) Migrate(ctx context.Context) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("postgres: migrating %s: %w", s.table, err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('deploy/state/postgres:' || $1))`, s.table); err != nil {
		return fmt.Errorf("postgres: migrating %s: %w", s.table, err)
	}
	for _, q := range s.q.migrate {
		if _, err := tx.Exec(ctx, q); err != nil {
			return fmt.Errorf("postgres: migrating %s: %w", s.table, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("postgres: migrating %s: %w", s.table, err)
	}
	return nil
}
