// Package postgres is a [state.Store] on PostgreSQL, for fleets of runners
// on many machines that drive releases from one database.
//
// # Schema
//
// Records live in one table, deploy_releases by default ([WithTable] names
// another), created by [Store.Migrate]:
//
//	CREATE TABLE IF NOT EXISTS deploy_releases (
//		id          text PRIMARY KEY,
//		service     text NOT NULL,
//		environment text NOT NULL,
//		status      text NOT NULL,
//		rev         bigint NOT NULL,
//		token       bigint NOT NULL,
//		record      jsonb NOT NULL,
//		updated_at  timestamptz NOT NULL DEFAULT now()
//	);
//	CREATE UNIQUE INDEX IF NOT EXISTS deploy_releases_active
//		ON deploy_releases (service, environment) WHERE status IN ('running', '');
//
// The whole [state.Record] is the jsonb column; the other columns copy the
// fields the database must see. Migrate is idempotent and serialised by an
// advisory lock, so every runner may call it at start-up.
//
// # Concurrency
//
// Every guarantee is the database's, not a read followed by a write:
//
//   - Update is one UPDATE … WHERE id = $1 AND rev = $2 AND token <= $3, a
//     row-level compare-and-swap on rev with the fencing token checked in
//     the same statement. When no row changed, a second query tells
//     [state.ErrNotFound], [state.ErrFenced] (the stored token is higher) and
//     [state.ErrConflict] (the stored rev moved on) apart.
//   - The partial unique index keeps one non-final release per service and
//     environment: a Create (or an Update back to running) that would make a
//     second one fails with [state.ErrActive], however many runners race.
//     The statuses in the index are those for which [state.Status.Final] is
//     false.
//   - A Create with a taken id fails with [state.ErrExists].
//
// A [Store] is safe for concurrent use; it holds no state besides the pool.
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
package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
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
}

var _ state.Store = (*Store)(nil)

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

// queries are the statements for one table.
type queries struct {
	migrate                               []string
	insert, active, load, update, current string
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
	t := c.table
	return &Store{pool: pool, table: t, q: queries{
		migrate: []string{fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %[1]s (
	id          text PRIMARY KEY,
	service     text NOT NULL,
	environment text NOT NULL,
	status      text NOT NULL,
	rev         bigint NOT NULL,
	token       bigint NOT NULL,
	record      jsonb NOT NULL,
	updated_at  timestamptz NOT NULL DEFAULT now()
)`, t),
			fmt.Sprintf(`CREATE UNIQUE INDEX IF NOT EXISTS %[1]s_active ON %[1]s (service, environment) WHERE status IN ('running', '')`, t),
		},
		insert:  fmt.Sprintf(`INSERT INTO %s (id, service, environment, status, rev, token, record, updated_at) VALUES ($1, $2, $3, $4, 1, $5, $6, now())`, t),
		active:  fmt.Sprintf(`SELECT id, status FROM %s WHERE service = $1 AND environment = $2 AND status IN ('running', '') AND id <> $3 LIMIT 1`, t),
		load:    fmt.Sprintf(`SELECT rev, record FROM %s WHERE id = $1`, t),
		update:  fmt.Sprintf(`UPDATE %s SET service = $4, environment = $5, status = $6, rev = rev + 1, token = $3, record = $7, updated_at = now() WHERE id = $1 AND rev = $2 AND token <= $3`, t),
		current: fmt.Sprintf(`SELECT rev, token FROM %s WHERE id = $1`, t),
	}}, nil
}

// Table returns the name of the store's table.
func (s *Store) Table() string { return s.table }

// Migrate creates the table and its index if they do not exist. It is
// idempotent and safe to call from many runners at once: a transaction-level
// advisory lock on the table's name serialises the calls.
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

// encode returns r as JSON with Rev set to rev, leaving r unchanged.
func encode(r *state.Record, rev int64) ([]byte, error) {
	c := *r
	c.Rev = rev
	b, err := json.Marshal(&c)
	if err != nil {
		return nil, fmt.Errorf("postgres: encoding record %s: %w", r.ID, err)
	}
	return b, nil
}

func check(call string, r *state.Record) error {
	if r == nil {
		return fmt.Errorf("postgres: %s record is nil", call)
	}
	if r.ID == "" {
		return fmt.Errorf("postgres: %s record ID is empty", call)
	}
	return nil
}

// Create implements [state.Store]. It inserts the record with Rev 1 and
// sets r.Rev to 1.
func (s *Store) Create(ctx context.Context, r *state.Record) error {
	if err := check("Create", r); err != nil {
		return err
	}
	b, err := encode(r, 1)
	if err != nil {
		return err
	}
	_, err = s.pool.Exec(ctx, s.q.insert, r.ID, r.Release.Service, r.Release.Environment, string(r.Status), r.Token, b)
	if err != nil {
		return s.writeError(ctx, "creating", r, err)
	}
	r.Rev = 1
	return nil
}

// writeError maps a failed INSERT or UPDATE to the state errors.
func (s *Store) writeError(ctx context.Context, doing string, r *state.Record, err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "23505" { // unique_violation
		switch pe.ConstraintName {
		case s.table + "_pkey":
			return fmt.Errorf("%w: %s", state.ErrExists, r.ID)
		case s.table + "_active":
			// Name the release in the way, for the message only: it may have
			// finished since.
			var id, status string
			if s.pool.QueryRow(ctx, s.q.active, r.Release.Service, r.Release.Environment, r.ID).Scan(&id, &status) == nil {
				return fmt.Errorf("%w: %s (%s)", state.ErrActive, id, status)
			}
			return fmt.Errorf("%w: %s in %s", state.ErrActive, r.Release.Service, r.Release.Environment)
		}
	}
	return fmt.Errorf("postgres: %s record %s in %s: %w", doing, r.ID, s.table, err)
}

// Load implements [state.Store]. A record that does not decode gives
// [state.ErrCorrupt].
func (s *Store) Load(ctx context.Context, id string) (*state.Record, error) {
	var rev int64
	var b []byte
	err := s.pool.QueryRow(ctx, s.q.load, id).Scan(&rev, &b)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("%w: %s", state.ErrNotFound, id)
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: loading record %s from %s: %w", id, s.table, err)
	}
	var r state.Record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%w: %s in %s: %v", state.ErrCorrupt, id, s.table, err)
	}
	if r.ID != id {
		return nil, fmt.Errorf("%w: row %s in %s holds id %q", state.ErrCorrupt, id, s.table, r.ID)
	}
	r.Rev = rev
	return &r, nil
}

// Update implements [state.Store] with one conditional UPDATE; see the
// package documentation.
func (s *Store) Update(ctx context.Context, r *state.Record) error {
	if err := check("Update", r); err != nil {
		return err
	}
	b, err := encode(r, r.Rev+1)
	if err != nil {
		return err
	}
	tag, err := s.pool.Exec(ctx, s.q.update, r.ID, r.Rev, r.Token, r.Release.Service, r.Release.Environment, string(r.Status), b)
	if err != nil {
		return s.writeError(ctx, "updating", r, err)
	}
	if tag.RowsAffected() == 1 {
		r.Rev++
		return nil
	}
	// Nothing changed: say why. The row may have moved on again since the
	// UPDATE; any answer below was true at some point after it.
	var rev, token int64
	err = s.pool.QueryRow(ctx, s.q.current, r.ID).Scan(&rev, &token)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return fmt.Errorf("%w: %s", state.ErrNotFound, r.ID)
	case err != nil:
		return fmt.Errorf("postgres: updating record %s in %s: %w", r.ID, s.table, err)
	case token > r.Token:
		return fmt.Errorf("%w: %s has token %d, update carries %d", state.ErrFenced, r.ID, token, r.Token)
	default:
		return fmt.Errorf("%w: %s is at rev %d, update was based on %d", state.ErrConflict, r.ID, rev, r.Rev)
	}
}
