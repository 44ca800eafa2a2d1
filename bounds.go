package deploy

import "time"

// Bounds are how long the calls a runner makes may take and how long it
// keeps a lease: what a scheduler that drives releases with Reconcile (the
// river module, a cron job) sizes its own timeouts on. Runner.Bounds
// returns them with every default applied.
type Bounds struct {
	// Holder is the name the runner takes leases with (WithHolder).
	Holder string
	// Apply bounds one step's Apply: the rollback policy's progress
	// deadline.
	Apply time.Duration
	// Rollback bounds Strategy.Rollback and each of the RollbackSteps
	// (WithRollbackTimeout, WithRollbackSteps).
	Rollback      time.Duration
	RollbackSteps int
	// LeaseGrace is how long past its next due action a runner keeps its
	// lease (WithLeaseGrace); a runner that dies holds its releases that
	// long.
	LeaseGrace time.Duration
	// Timeouts bound Plan, each gate's Check, each Observe and each
	// notification attempt (WithTimeouts, defaults applied).
	Timeouts Timeouts
	// Gates and Notifiers count the runner's gates (the approval gate
	// included) and notifiers.
	Gates, Notifiers int
}

// Bounds returns the runner's bounds.
func (r *Runner) Bounds() Bounds {
	gates := len(r.cfg.gates)
	if r.cfg.approval != nil {
		gates++
	}
	return Bounds{
		Holder: r.holder, Apply: r.cfg.policy.Deadline(), Rollback: r.cfg.rollbackTimeout,
		RollbackSteps: len(r.cfg.rollbackSteps), LeaseGrace: r.cfg.leaseGrace, Timeouts: r.cfg.timeouts,
		Gates: gates, Notifiers: len(r.cfg.notifiers),
	}
}

// Action is the longest one action of a Reconcile may take: a step's
// Apply, the whole rollback (Strategy.Rollback and every rollback step),
// or the preflight (Plan and every gate's Check), whichever bound is
// largest.
func (b Bounds) Action() time.Duration {
	return max(b.Apply, b.Rollback*time.Duration(1+b.RollbackSteps), b.Timeouts.Plan+b.Timeouts.Check*time.Duration(b.Gates))
}

// Reconcile bounds one call of Runner.Reconcile, the store's own latency
// aside: the longest action, an observation of the monitors, and one
// delivery attempt of a few events to every notifier (a round emits at
// most a handful). A Reconcile that runs longer than this is stuck.
func (b Bounds) Reconcile() time.Duration {
	const events = 4 // a round's events: a step, a phase, a rollback, the end
	return b.Action() + b.Timeouts.Observe + b.Timeouts.Notify*time.Duration(events*b.Notifiers)
}
