package crashmatrix

import (
	"syscall"
	"testing"
)

// unfencedRollbackSteps is the ramp regression with rollback steps that
// know of their lease only what the runner gives them: the fencing token in
// their context (deploy.FencingToken), not the record.
var unfencedRollbackSteps = scenario{name: "ramp-regression-context-token-steps", regress: true, unfencedSteps: true,
	points: []string{"in-rollback-step-1-before"}}

// A runner stopped inside a rollback step, past its lease, wakes after
// another process has run that step again and finished the rollback. The
// woken runner's step must not change the target: the new holder did the
// step, the record says so, and the release is over. The step carries the
// token of the lease it was called under (deploy.FencingToken), and the
// target refuses it.
func TestPausedRunnerCannotRepeatARollbackStep(t *testing.T) {
	runMatrix(t, fileStore(), []scenario{unfencedRollbackSteps}, []signal{{"SIGSTOP", syscall.SIGSTOP}})
}
