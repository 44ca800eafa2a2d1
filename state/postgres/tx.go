package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"
)

type txKey struct{}

// WithTx returns a context that makes [Store.Create] insert the record in
// tx, the caller's transaction, instead of a statement of its own: the
// record then exists when, and only if, the caller commits. It is how a
// release is started together with something else in one transaction — the
// river module enqueues the release's job with it:
//
//	tx, _ := pool.Begin(ctx)
//	defer tx.Rollback(ctx)
//	id, err := runner.Start(postgres.WithTx(ctx, tx), rel) // the record, in tx
//	_, err = riverClient.InsertTx(ctx, tx, job{ID: id}, nil) // its job, in tx
//	err = tx.Commit(ctx)
//
// Only Create uses the transaction; Load, Update, List and Quarantine run
// on the pool as always (a Load in tx's own session would see the record
// before the commit, no other session would). A Create that fails in tx
// (state.ErrExists, state.ErrActive) leaves tx aborted, as every failed
// statement does in PostgreSQL: roll it back.
func WithTx(ctx context.Context, tx pgx.Tx) context.Context {
	return context.WithValue(ctx, txKey{}, tx)
}

// rowQuerier is what Create needs of a pool or a transaction.
type rowQuerier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// creator returns the transaction ctx carries (WithTx), or the pool.
func (s *Store) creator(ctx context.Context) rowQuerier {
	if tx, ok := ctx.Value(txKey{}).(pgx.Tx); ok && tx != nil {
		return tx
	}
	return s.pool
}
