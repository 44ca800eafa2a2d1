package river

import (
	rq "github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
)

// Kind is the River job kind of a release's job.
const Kind = "deploykit_release"

// Args is the job of one release: its record's id. A release has one job
// from its start to its end (see [Args.InsertOpts]).
type Args struct {
	ID string `json:"id" river:"unique"`
}

// Kind implements rq.JobArgs.
func (Args) Kind() string { return Kind }

// liveStates are the states in which a release's job blocks another for the
// same release: every state but completed, discarded and cancelled, so that
// a job that ended (the release is over, or the job was given up) does not
// keep the release from being enqueued again until River's cleaner deletes
// it. River requires available, pending, running and scheduled.
var liveStates = []rivertype.JobState{
	rivertype.JobStateAvailable, rivertype.JobStatePending, rivertype.JobStateRunning,
	rivertype.JobStateRetryable, rivertype.JobStateScheduled,
}

// insertOpts are the options of a release's job in queue: unique by id
// among live jobs.
func insertOpts(queue string, maxAttempts int) *rq.InsertOpts {
	return &rq.InsertOpts{
		Queue:       queue,
		MaxAttempts: maxAttempts,
		UniqueOpts:  rq.UniqueOpts{ByArgs: true, ByState: liveStates},
	}
}

// sweepKind is the River job kind of the periodic sweep.
const sweepKind = "deploykit_sweep"

type sweepArgs struct{}

func (sweepArgs) Kind() string { return sweepKind }
