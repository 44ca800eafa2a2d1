// Package river drives releases from many processes through River, a job
// queue on PostgreSQL (github.com/riverqueue/river v0.51.2 with
// riverdriver/riverpgxv5): every worker process runs a [Fleet] over one
// database that holds the release records (state/postgres) and River's
// jobs, and whichever process is free drives the next due round of any
// release. It is a module of its own, github.com/deploykit/deploy/river,
// so that River and pgx reach only the programs that import it; when a
// program imports River too, name one of the two packages:
//
//	import deployriver "github.com/deploykit/deploy/river"
//
// # One job per release
//
// A release has one River job ([Args], kind "deploykit_release", unique by
// release id among live jobs) from its start to its end. Each run of the
// job is a round: it calls Runner.Reconcile once and tells River when to
// come back:
//
//   - the release goes on: the job snoozes until the next due action
//     (Reconcile's next), which does not use up an attempt;
//   - another runner holds the release (a *deploy.LockedError: a worker
//     died inside an Apply or a rollback, its lease still runs): the job
//     snoozes until the lease ends, then takes the release over;
//   - the release is over: the job completes (with notifications still
//     pending, it snoozes until the next delivery is due). A completed job
//     does not block a new one for the same id (Fleet.Enqueue);
//   - its record is gone or set aside: the job is cancelled;
//   - an error (the store unreachable, a record that breaks an invariant):
//     the job returns it and River retries with its backoff.
//
// A worker that dies in the middle of a round leaves the job running in
// River's eyes: River's rescuer, which runs every 30 s on the leader, makes
// it retryable once it has run longer than RescueStuckJobsAfter, and the
// next round takes the release over once the dead worker's lease has run
// out. The engine's fencing keeps the dead worker's late writes out, and a
// step interrupted inside its Apply is applied at most once more (steps are
// idempotent).
//
// # Nothing stranded
//
// Errors and rescues use up attempts; River discards a job whose attempts
// are used up, which would leave its release active with nothing to drive
// it. The fleet does not let that happen silently, and flags rather than
// rolls back: once MaxAttempts rounds in a row have failed, the round sends
// an urgent [EventFlagged] event to Config.Notifiers, logs at Error, and
// snoozes for FlaggedRetry instead of failing, so the job is never
// discarded by an error and the release is tried again until it can be
// driven. Rolling back is not the fleet's to decide: the failures that use
// up attempts are the fleet's own (the database, crashing processes),
// which a rollback would need too; the failures of a release — a step
// that fails, a breach, a deadline — are the engine's, which rolls back
// itself. A job River discards anyway (a round rescued MaxAttempts times)
// or that someone deletes is found by the sweep: the leader lists the
// active releases every SweepInterval (state.Lister) and enqueues a job for
// each one that has none, with an urgent [EventOrphaned].
//
// # Starting a release
//
// [Fleet.Release] creates the release's record and enqueues its job in one
// PostgreSQL transaction (postgres.WithTx): there is never a record without
// a job nor a job without a record. A second release of a service and
// environment while one is active is refused (deploy.ErrLocked, matching
// state.ErrActive), and nothing is enqueued.
//
// # Settings derived from the runner
//
// River's JobTimeout must let a round finish whatever the runner allows it
// to do: by default it is Runner.Bounds().Reconcile() — the progress
// deadline of a step's Apply, or the whole rollback, plus an observation
// and notifications — plus StoreMargin. RescueStuckJobsAfter is JobTimeout
// plus the runner's lease grace, so that a rescued round does not find a
// dead worker's lease still running. Values set by hand below those bounds
// are refused by [New] with an error naming the field, the value and the
// bound.
//
// # Migrating
//
// [Migrate] creates River's tables and the store's. River's migrator takes
// no lock; Migrate holds a session advisory lock around it, so every worker
// may migrate at start-up.
//
// # Lateness
//
// A snooze longer than River's scheduler interval (5 s) makes the job
// scheduled, and the leader's scheduler makes it available again every
// 5 s; a producer then fetches it within FetchPollInterval (1 s) or at once
// on LISTEN/NOTIFY. So a round runs up to about 6 s after its next due
// time with River's defaults; shorter snoozes are made available at once
// and fetched when due. BENCHMARKS.md has the figures.
package river
