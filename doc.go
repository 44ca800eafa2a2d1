// Package deploy carries a release through a disciplined deployment:
// pre-deployment checks, execution, post-deployment verification and
// stakeholder communication, rolling back on its own when the release hurts
// users.
//
// A [Runner] composes four small interfaces:
//
//   - [Strategy]: how the release reaches users — a plan of [Step]s and a
//     way back (strategy.Direct, strategy.BlueGreen, strategy.Progressive, or
//     your own).
//   - [Gate]: what must be true first (CI green, approval, deploy window,
//     flag off…); see package gate.
//   - [Monitor]: how health is measured; see package monitor. A
//     rollback.Policy judges the observations.
//   - [Notifier]: who must hear about it; see package notify.
//
// # The flow
//
// Run creates a state record and reconciles it until the release is over:
//
//	preflight    gates (pass, block, or RetryAt a time), pitfall guards, baseline
//	deploy       for each stage, for each step: apply, then bake — observe every
//	             interval and ask the policy for a verdict: next step or rollback
//	verify       post-deployment checks, then the watch schedule (intensive,
//	             regular), then stable
//	communicate  final events, the Markdown report, the workflow state
//
// On a breach, a failed verification, a step that fails or never completes,
// a cancelled Run or a manual [Runner.Rollback], the runner calls
// Strategy.Rollback under a context that outlives the cancellation, verifies
// that health is restored and ends "rolled back" with the trigger. A rollback
// that fails ends with [ErrRollbackFailed] and an urgent event.
//
// A gate that passes can say what it saw with [Evidence]; the checklist
// items it ticks ([Checklister]) and the report show it.
//
// # State and resumption
//
// The record is saved at every transition, before acting on it. [Runner.Resume]
// continues a release after a crash from the last completed step (steps are
// idempotent) or finishes a rollback under way. [Runner.Reconcile] does one
// round of due work and says when the next is due, so a cron job can drive a
// day-long release. One release per service and environment runs at a time,
// guarded by a lease with a fencing token.
//
// # Pitfalls
//
// A production release with no rollback path, no monitor or no notifier is
// refused, and the built-in window refuses Friday-afternoon and weekend
// deploys, unless waived with [WithWaiver] and a written reason that appears
// in the report.
//
// # Tracing
//
// Every run, phase, gate, step, observation, verdict, rollback and
// notification is an OpenTelemetry span; failures record the error and set
// the span's status. The spans and their attributes:
//
//	deploy.run       service.name, service.version, deployment.environment.name,
//	                 deployment.id, deploy.strategy, deploy.status (at the end)
//	deploy.phase     deploy.phase (preflight, deploy, verify, rollback, communicate);
//	                 Error status when the phase led to a rollback or a block
//	deploy.gate      deploy.gate, and deploy.gate.evidence, deploy.gate.reason or
//	                 deploy.gate.retry_at
//	deploy.step      deploy.step, deploy.step.index, deploy.stage, deploy.exposure,
//	                 deploy.bake_ms; under it the observations of its bake
//	deploy.observe   deploy.observation.phase (baseline, bake, verify, rollback),
//	                 deploy.exposure
//	deploy.verdict   deploy.verdict (continue, wait, rollback), deploy.verdict.reason
//	deploy.rollback  deploy.trigger (breach, verification, deadline, manual,
//	                 error, cancelled), deploy.rollback.reason
//	deploy.notify    deploy.notifier, deploy.event, deploy.attempt
//
// The resource-like attributes (service.name…) are on deploy.run only; find
// a step's release through its trace. Strategies add their own: Progressive
// puts feature_flag.evaluation events (OpenFeature's semantic conventions)
// and deploy.flag.check events on the step's span. The meter records
// deploy.releases, by service.name and deploy.status, and the DORA metrics
// (see [MetricDeployments], [MetricTimeToRestore], [MetricLeadTime]). The global providers
// are used unless WithTracerProvider or WithMeterProvider is given.
//
// # Testing release logic
//
// The runner uses package time and context directly, so a test run inside
// testing/synctest.Test takes a 24-hour release in milliseconds. Package
// deploytest has scripted monitors, recorders and a conformance suite for
// strategies.
package deploy
