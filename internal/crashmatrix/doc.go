// Package crashmatrix checks, with real processes, that a release ends in
// the right state whatever happens to the process that drives it. It has
// tests only.
//
// # The matrix
//
// Each cell runs one release in a child process (the test binary run
// again as TestHelperProcess) against a store shared by processes — a
// state.File directory, or a real PostgreSQL started by internal/pgtest —
// and stops that child at one point with one signal:
//
//   - stores: File, PostgreSQL (TestCrashMatrixFile, TestCrashMatrixPostgres);
//   - signals: SIGKILL, and SIGSTOP followed by SIGCONT once another
//     process has taken the release over (a long GC, a frozen VM);
//   - points: step boundaries of a three-step ramp and of a BlueGreen
//     release (right after the save that records a step applied, and the
//     one that records it promoted — a promotion whose next action is due
//     at once is saved with that action's fenced write, the next step's
//     attempt or the release's end); inside each step's Apply; after the
//     save that records a rollback; inside Strategy.Rollback and inside each of two
//     WithRollbackSteps steps; inside strategy.BlueGreen's Switch, both the
//     switch to the new side and the switch back of its rollback. Inside
//     an effect there are two points: "-before" the effect changes the
//     target, and "-after" it did, before the effect returns (the record
//     cannot know the change landed).
//
// A second child then resumes the release (Runner.Resume, retried until
// the first child's lease has run out) and drives it to its end; in the
// scenario ramp-manual-rollback it calls Runner.Rollback instead, as a
// person on call would. A stopped first child is continued only once the
// second one has changed the target under its own fencing token (or has
// finished), so that both are alive at once, as after a real pause.
//
// # The target
//
// The strategies change an append-only effects file outside the store, a
// target that keeps the fencing token (deploy.Deployment.Token) of every
// change and refuses a change whose token is lower than the highest it
// took: each line is "ok|REFUSED token action exposure pid". It is what
// users got, as opposed to what the record says. Rollback steps are given
// no Deployment: they take their token from their context
// (deploy.FencingToken); TestPausedRunnerCannotRepeatARollbackStep shows
// that a paused runner's step is then refused.
//
// # What each cell checks
//
//   - the release is final with the right status: succeeded when healthy,
//     rolled back after a regression or a manual rollback;
//   - no accepted Apply or switch follows the first accepted rollback
//     change in the effects file;
//   - the target ends where the record says: exposure 1 after success,
//     0 after a rollback, BlueGreen's live side the new side or the old one;
//   - every accepted Apply was recorded as attempted first, and
//     Strategy.Rollback and each rollback step took effect at least once
//     when the record says done, and at most once more than the record
//     shows; more strictly, each change lands exactly once, but the one a
//     child was stopped in after it landed, which the next child makes again;
//   - a woken child tries at most the one change it was stopped before, or
//     the one the write it was stopped after was made for (both refused by
//     the target), and no other: it proves its lease before any other
//     effect, and fails to;
//   - a first child that was stopped and continued ends with an error
//     wrapping deploy.ErrLocked (or, stopped after its last write, with the
//     record's final status) and makes no accepted change after its stop.
//
// Cells run eight at a time (they mostly wait: bakes of 250 ms, a lease
// grace of 1 s); every wait of the parent is polled with a deadline, and
// every child is killed and reaped when its cell ends.
//
// A crash point is reached with no store write in flight (a child holds
// its own store lock while it waits at the point), so that a stopped child
// never holds the File store's flock: what is tested is the engine, not a
// lock a frozen process keeps.
package crashmatrix
