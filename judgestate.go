package deploy

import "github.com/deploykit/deploy/state"

// quietCounters returns c without the state of the policy's stateful
// triggers (the sequential test's running sums), which changes at every
// look: a look that changes only that need not be saved at once. A
// process that resumes from an older state goes on soundly, since the
// monitors' counts are cumulative since the window began and the test adds
// only what it has not yet counted.
func quietCounters(c state.Counters) state.Counters {
	c.Judge = ""
	return c
}
