// Package deploy carries a release through a disciplined deployment:
// pre-deployment checks, execution, post-deployment verification and
// stakeholder communication, rolling back on its own when the release hurts
// users.
//
// A [Runner] composes four small interfaces:
//
//   - [Strategy]: how the release reaches users — a plan of [Step]s and a
//     way back (strategy.Direct, strategy.BlueGreen, progressive.Strategy, or
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
// A step may hold the release after it is applied: its inline analysis
// ([Step.Analysis]) and, at the promotion, the post-promotion analysis run
// alongside its bake, and its pause ([Step.Pause]) follows them; a step
// with Approval waits before it is applied, as the promotion step waits
// for its pre-promotion analysis. See "Analysis runs" and "Pauses and
// decisions" below.
//
// On a breach, a failed verification, a step that fails or never completes,
// a cancelled Run or a manual [Runner.Rollback], the runner calls
// Strategy.Rollback under a context that outlives the cancellation, runs the
// rollback steps, verifies that health is restored and ends with the
// trigger recorded.
//
// # Outcomes
//
// Every release ends in one final status; Run, Resume and Rollback return
// the error that goes with it. The trigger kind (state.TriggerKind) says
// what made the release stop, and each kind has its own sentinel:
//
//	status                 error (errors.Is)                 when
//	succeeded              nil                               every stage deployed, the watch passed
//	blocked                ErrBlocked                        a gate refused, or waited past the gate deadline
//	rolled back            ErrUnhealthy                      a trigger fired on what was measured (breach, verification)
//	rolled back            ErrInconclusive                   too many observations without enough data
//	rolled back            ErrSourceFailed                   the metric sources failed too often in a row
//	rolled back            ErrProgressDeadline               a step made no progress within the deadline
//	rolled back            ErrStepFailed                     a step's Apply failed, panicked or timed out; the plan failed
//	rolled back, aborted   ErrAborted                        a person asked (Runner.Rollback), or Run was cancelled;
//	                                                         or a person aborted (Runner.Abort) and then ended it
//	rollback not verified  the trigger's error + ErrNotVerified   the rollback ran; nothing showed health came back
//	rollback failed        the trigger's error + ErrRollbackFailed  the rollback failed or did not restore health
//	failed                 the trigger's error                no rollback path (waived): the new version stays
//
// "aborted" means nothing was deployed yet when the release stopped. A
// release that waits for a person is not over: its status is running and
// Record.Waiting says what it waits for — an approval, a pause, an
// inconclusive analysis, or, after [Runner.Abort] rolled it back, a
// [Runner.Retry] (a [Runner.Rollback] ends it instead).
// Errors before a release exists come without a report: [ErrInvalid],
// a pitfall guard's [ErrBlocked], [ErrLocked]. A record that breaks an
// invariant gives [ErrCorrupt] (a [*CorruptError] names the field); a save
// that would break one gives [ErrInvariant], a bug to report.
//
// # Faults
//
// Every call into code the runner does not control — Plan, Apply, Rollback,
// rollback steps, gates, monitors, notifiers — is bounded in time
// ([WithTimeouts], the policy's progress deadline for Apply,
// [WithRollbackTimeout]) and recovers panics into a [*PanicError], kept
// with its stack in the timeline: a panicking or timed-out Apply rolls
// back, a monitor that hangs or panics counts as a metric-source error, a
// notifier that does is a failed delivery, a gate that does blocks.
//
// Before every effect — a step's Apply, Strategy.Rollback, a rollback step —
// the runner proves with a fenced write that it still holds the release
// and that no rollback was recorded or requested, and renews its lease
// while the effect runs. [Deployment.Token] carries the fencing token to
// the strategy, so that a target that keeps it can refuse a runner paused
// past its lease. Rollback steps record their progress; a Resume runs none
// twice. A runner that cannot save stops at once, without acting further,
// as a crashed process would: deploytest.FaultStore makes such crashes and
// pauses in tests.
//
// Notifications are kept in an outbox in the record and retried with
// backoff (at most 5 minutes apart) until a notifier takes them; [ExpireAfter]
// gives a notifier a maximum age, after which an event is shown as NOT
// delivered. Nothing is dropped silently: what did not happen is shown as
// not having happened.
//
// A gate that passes can say what it saw with [Evidence]; the checklist
// items it ticks ([Checklister]) and the report show it.
//
// # Analysis runs
//
// An [Analysis] is a set of metrics, each measured on its own schedule and
// judged with its own conditions and limits, with Argo Rollouts'
// semantics (see [AnalysisMetric]). Each time one is attached to a release
// a run starts, with its own counters, saved in the record
// (Record.Analyses): a Resume goes on with them, the next run starts
// from zero. Attach one inline to a step (Step.Analysis, or
// [WithStepRules] for a strategy's steps), in the background from a
// starting step ([WithBackgroundAnalysis]), or before and after the
// promotion, the last step of the last stage ([WithPrePromotionAnalysis],
// [WithPostPromotionAnalysis]). A Failed run rolls back (ErrUnhealthy), an
// Error run too (ErrSourceFailed); an Inconclusive one waits for a person
// or rolls back (ErrInconclusive), as Analysis.OnInconclusive says. The
// rollback.Policy keeps judging every interval meanwhile — while the
// release waits too: it is the guard rail, analyses add to it. Every
// measurement is bounded by the observe timeout; an error, a timeout, a
// panic or no data is an error measurement.
//
// Where this differs from Argo Rollouts, and why:
//
//   - An inline analysis belongs to a step and starts when the step is
//     applied, alongside its bake; the step goes on once both are done.
//     Argo's "setWeight: 20, analysis" is a step of 20 % with no bake and
//     the analysis; a pause before the analysis is the step's bake.
//   - startingStep counts deploykit's steps — a weight and its bake — not
//     Argo's list, where pauses count: Argo's startingStep 2 after
//     [setWeight, pause] is step 1 here.
//   - No data (NaN, a metric the source did not report) is an error
//     measurement: it counts toward ConsecutiveErrorLimit, not Count, as an
//     Argo query that returns nothing and fails its condition does; the
//     metric is measured again at its interval.
//   - The release-wide rollback.Policy watches the users already exposed
//     every interval, through pauses and waits: Argo has no such guard
//     while paused.
//   - A background run is per stage, and ends at the stage's last step:
//     metrics still running then complete as successful (Argo's
//     termination); an inconclusive result waits for a person there too
//     (as Argo 1.8.2, which no longer promotes on it).
//   - A metric that reaches its Count with a ConsecutiveSuccessLimit it
//     never met is inconclusive.
//   - A run keeps the last 20 measurements of each metric
//     (state.MeasurementsKept; Argo keeps 10); its counters count them all.
//   - Inconclusive may roll back instead of pausing (InconclusiveRollback).
//   - A metric needs a Success or a Failure condition (Argo counts a
//     measurement without either as successful); a pass/fail source, such
//     as monitor.Job, is judged with AtLeast(1).
//
// # Pauses and decisions
//
// A step pauses after its bake and analyses for Pause.Duration, or until a
// person promotes it. A step with Approval waits for [Runner.Approve] by
// one of its approvers (or for the WithApproval gate), once for that step
// of that release. [Runner.Promote] ends a pause or an inconclusive wait;
// with full it skips the remaining steps, pauses and analyses (not
// approvals). [Runner.Abort] rolls back and keeps the release open, waiting
// for [Runner.Retry], which starts the stage again from its first step with
// fresh runs (stages completed before keep the new version), or for
// Runner.Rollback, which ends it. [Runner.Skip] skips a step's inline
// analysis. Each decision says who and why ([Decision]); it is written into
// the record by whoever takes it — any process sharing the store — without
// taking the lease, and carried out once by the runner that holds the
// release at its next round (at once in the same process, within an
// interval from another); it is in the timeline, the report and an event
// (EventDecision). The same decision again is a no-op; one that does not
// apply returns [ErrNotWaiting], or [ErrNotApprover]. Waiting has no
// deadline; for the gates' RetryAt, say so with WithGateDeadline(NoDeadline).
// Argo's abort leaves the rollout degraded until retried or changed; here
// the release waits the same way, and its lease stays with its runner.
//
// # State and resumption
//
// The record is saved at every transition, before acting on it, after the
// engine's invariants were checked on it. Its history (timeline, rollback
// steps) only grows. [Runner.Resume]
// continues a release after a crash from the last completed step (steps are
// idempotent) or finishes a rollback under way. [Runner.Reconcile] does one
// round of due work and says when the next is due, so a cron job can drive a
// day-long release; the record keeps that time (state.Record.Next), which a
// store's listing (state.Lister) shows, and [Runner.Bounds] says how long a
// round may take, for a scheduler that sizes its timeouts on it (the river
// module drives releases from many processes this way). One release per
// service and environment runs at a time, guarded by a lease with a fencing
// token.
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
// notification is an OpenTelemetry span; failures record the error, set the
// span's status and, where an error value is at hand, error.type (the
// error's ErrorType() string, or its Go type). Standard attribute names come
// from OpenTelemetry's semconv package; the rest are deploy.*. The spans and
// their attributes:
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
//	deploy.rollback  deploy.trigger (breach, verification, inconclusive, source,
//	                 deadline, error, manual, cancelled, abort), deploy.rollback.reason
//	deploy.analysis  a round of an analysis run that measures, under the step's span:
//	                 deploy.analysis, deploy.analysis.kind, deploy.step,
//	                 deploy.exposure, deploy.analysis.phase (after the round);
//	                 Error status when the run failed or errored
//	deploy.measurement  one measurement: deploy.analysis, deploy.metric,
//	                 deploy.measurement.value, deploy.measurement.phase
//	deploy.notify    deploy.notifier, deploy.event, deploy.event.seq, deploy.attempt
//
// The resource-like attributes (service.name…) are on deploy.run only; find
// a step's release through its trace. Strategies add their own: progressive.Strategy
// puts feature_flag.evaluation events (OpenFeature's semantic conventions)
// and deploy.flag.check events (with feature_flag.key) on the step's span;
// Command's spans carry process.executable.name, process.command_args and
// process.exit.code. The meter records
// deploy.releases, by service.name and deploy.status, and the DORA metrics
// (see [MetricDeployments], [MetricTimeToRestore], [MetricLeadTime]). The global providers
// are used unless WithTracerProvider or WithMeterProvider is given.
//
// # Testing release logic
//
// The runner uses package time and context directly, so a test run inside
// testing/synctest.Test takes a 24-hour release in milliseconds. Package
// deploytest has scripted monitors, recorders, conformance suites for
// strategies and stores, a Fenced strategy that logs the effects users saw,
// and FaultStore to crash or pause a runner at a chosen write. A call the
// runner abandoned at its timeout keeps running: inside synctest.Test, let
// it end (sleep past it) before the test returns.
package deploy
