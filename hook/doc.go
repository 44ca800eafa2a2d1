// Package hook runs Flagger's webhooks in a deploykit release, with Flagger's
// payload and, as far as the runner's model allows, Flagger's semantics, so
// that receivers written for Flagger — flagger-loadtester, Helm and Bats
// testers, in-house gates — work unchanged.
//
// Every call POSTs Flagger's CanaryWebhookPayload as JSON (Payload: name,
// namespace, phase, checksum, metadata — Flagger's payload has no type
// field), bounded by the webhook's Timeout (Flagger's default, 10 s), and
// reads the answer: 200 to 202 is a yes, anything else — a timeout, an
// unreachable receiver, a 204 — is a no, as in Flagger's controller. A call
// never panics (a panicking client is an answer with an error), and no
// answer, check, reason or name shows the URL's credentials and query values
// or the headers' credentials. Metadata is passed through unchanged.
//
// # Flagger's webhooks and what they become
//
//	Flagger                   deploykit                       when
//	confirm-rollout           Confirm, through Confirmations  before the first step of each stage
//	pre-rollout               PreRollout, a deploy.Monitor    every interval of the first step's bake,
//	                                                          until it passes
//	rollout (or no type)      Rollout, a deploy.Monitor       every interval of every step's bake
//	confirm-traffic-increase  Confirm, through Confirmations  before every step that raises the exposure
//	confirm-promotion         Confirm, through Confirmations  before the last step of each stage
//	rollback                  Rollback, a deploy.Monitor      every interval of a bake
//	                          Confirmations.Rollbacks         every check of a waiting confirmation
//	post-rollout              PostRollout, a deploy.Notifier  on the event that ends the release
//	event                     Event, a deploy.Notifier        on every event
//
// Flagger's analysis threshold is the rollback policy's failure limit:
// Threshold sets it (threshold-1 failures tolerated), with a progress deadline
// long enough to reach it and the rollback.CriticalChecks trigger that judges
// the hooks' checks. A failed pre-rollout or rollout call is a failed check
// that is not critical: the observation fails, the step waits (is not
// promoted that interval, as Flagger halts advancement) and the failure
// counts; the threshold-th failed observation rolls back. A rollback hook's
// yes is a failed critical check, which rolls back at once.
//
// The confirmations are the steps' approvals: Confirmations wraps the
// strategy, sets Approval on the steps a confirmation comes before, and is
// the approval gate (deploy.WithApproval) that asks them. A step's approval
// waits with no deadline — unless Confirm.Deadline sets one — and keeps the
// users already on the new version observed meanwhile.
//
// A typical Flagger canary, translated:
//
//	interval := time.Minute
//	c := &hook.Confirmations{Strategy: s,
//		Hooks:     []*hook.Confirm{{Type: hook.TypeConfirmPromotion, Webhook: gateCheck}},
//		Rollbacks: []*hook.Rollback{{Webhook: rollbackCheck}}}
//	r, err := deploy.NewRunner(c, deploy.WithApproval(c), deploy.WithInterval(interval),
//		deploy.WithMonitors(&hook.PreRollout{Webhook: helmTest}, &hook.Rollout{Webhook: loadTest},
//			&hook.Rollback{Webhook: rollbackCheck}, promSource),
//		deploy.WithRollbackPolicy(hook.Threshold(deploy.DefaultPolicy(), 10, interval)),
//		deploy.WithNotifiers(&hook.PostRollout{Webhook: notify}, &hook.Event{Webhook: slack}))
//
// # Where the semantics differ from Flagger's
//
//   - The threshold: Flagger counts the threshold-th failed check at one
//     interval and rolls back when it looks again, one interval later; here the
//     threshold-th failed observation rolls back at once. Both count at most
//     one failure per interval, whatever failed in it.
//   - Pre-rollout: Flagger calls it while the canary has no traffic; here it
//     runs during the bake of the first step of each stage (or of
//     PreRollout.Step). Make that step the canary without traffic (Exposure 0)
//     with a Bake of at least one interval: a step without a bake is never
//     observed. Once it passed, a PreRollout remembers it in memory only: a
//     process that resumes the release calls it again once, unless Step
//     names its step.
//   - Rollback: the release ends rolled back with deploy.ErrUnhealthy (a
//     trigger fired), not marked failed by a person; a yes from
//     Confirmations.Rollbacks, asked while a confirmation waits, refuses the
//     approval and ends with deploy.ErrAborted. A rollback hook is not called
//     for the baseline, the post-deployment watch or the rollback's
//     verification, nor (through the monitors) while a confirmation waits
//     with nobody on the new version: put it in Confirmations.Rollbacks too.
//   - Confirmations: confirm-rollout sends phase Waiting from its first call
//     (Flagger sends the canary's phase, Waiting once halted); the others
//     Progressing, as Flagger. Flagger asks them every analysis interval; here
//     after Confirm.Poll or the runner's interval, whichever is sooner. A
//     Confirm used as a pre-deployment gate (deploy.WithGates) is bounded by
//     the runner's gate deadline; a step's approval is not.
//   - Post-rollout and event: Flagger calls them once and logs a failure;
//     here a call without a yes is a failed delivery that the runner's outbox
//     retries with backoff, and the report shows it NOT delivered until it
//     succeeds (wrap with deploy.ExpireAfter to give up). A delivered event is
//     not sent twice by one process (by release and Event.Seq). Post-rollout
//     is not called for a release that deployed nothing (blocked, aborted
//     before its first step), which Flagger never starts.
//   - The payload: name is the release's service, namespace the environment
//     being deployed, checksum a hash of the release (Checksum) where Flagger
//     hashes the canary's tracked configuration. Flagger's retries and
//     disableTLS fields are the Client's business here.
//   - Flagger's webhook timeout bounds the call; the runner's own timeouts
//     (deploy.Timeouts: Observe and Check 30 s, Notify 10 s) bound the hook
//     as a whole, so keep the sum of a monitor's calls below them, as Flagger
//     asks rollout timeouts to stay below the interval.
//
// # Concurrency
//
// Every type is safe for concurrent use by several releases; PreRollout,
// Confirm and the notifiers keep small per-release memories (what passed,
// since when a confirmation waits, what was delivered).
package hook
