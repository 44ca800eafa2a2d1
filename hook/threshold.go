package hook

import (
	"time"

	"github.com/deploykit/deploy/rollback"
)

// Threshold returns p set up for Flagger's analysis threshold, the number of
// failed checks that rolls a canary back (Flagger's default, for a threshold
// of 0 or less, is 1):
//
//   - FailureLimit is threshold-1: the threshold-th failed observation rolls
//     back. Flagger counts the threshold-th failed check at one interval and
//     rolls back when it looks again, one interval later; here the
//     threshold-th failure rolls back at once.
//   - ProgressDeadline is at least threshold+1 intervals, so that a step
//     that keeps failing reaches the threshold before the runner's progress
//     deadline cuts it (Flagger's progressDeadlineSeconds bounds a canary that
//     does not become ready, not its analysis).
//   - A rollback.CriticalChecks trigger is added when p has none: it judges
//     the checks of the webhooks (a failed rollout or pre-rollout check counts
//     as a failure, a rollback webhook's yes rolls back at once).
//
// As in Flagger, one count serves every check of an observation: a failed
// webhook and a failed metric in the same interval are one failure.
func Threshold(p rollback.Policy, threshold int, interval time.Duration) rollback.Policy {
	threshold = max(threshold, 1)
	p.FailureLimit = threshold - 1
	if need := time.Duration(threshold+1) * interval; p.Deadline() < need {
		p.ProgressDeadline = need
	}
	has := false
	for _, t := range p.Triggers {
		switch t.(type) {
		case rollback.CriticalChecks, *rollback.CriticalChecks:
			has = true
		}
	}
	if !has {
		p.Triggers = append(append([]rollback.Trigger(nil), p.Triggers...), rollback.CriticalChecks{})
	}
	return p
}
