// Package gate has pre-deployment checks: each type is a [deploy.Gate] that
// a Runner consults, in order, before anything is deployed (deploy.WithGates),
// or before a step that needs approval (deploy.WithApproval).
//
// A gate's Check passes (nil), blocks with a reason (an error), or asks to
// be checked again at a time with [deploy.RetryAt] ("window closed until
// Monday 09:00", "approval pending"); the runner waits up to its gate
// deadline (deploy.WithGateDeadline), then blocks the release.
//
// # Gates
//
//   - [Window]: the deploy window and freeze calendar — weekdays and hours in
//     a time zone, holidays and the afternoon before them, freezes. It
//     replaces the runner's built-in window ("Friday Deploys").
//   - [Approval]: a person approves the release — from a file ([ApprovalFile]),
//     from a program ([Manual]) or from any [Approver] ("Code reviewed and
//     approved" when CodeReview is set). An approval is bound to the release
//     (and optionally the step) it names: a [Manual] shared by many
//     releases takes decisions [For] one release, and an ApprovalFile's
//     placeholders refuse values that would lead to another release's file.
//   - [CI]: "All tests passing in CI", from GitHub's combined commit status.
//   - [HTTP]: any HTTP endpoint, before anything is deployed: a 2xx answer
//     passes, anything else blocks with the body. (Flagger's webhooks, its
//     pre-rollout against the deployed canary included, are in package hook.)
//   - [FlagOff]: the release's feature flag exists and is off for everyone
//     ("Feature flags configured").
//   - [MonitoringActive]: the service's scrape targets are up and alerting
//     rules about it are loaded ("Confirm monitoring/alerting active"), with
//     the check of package monitor/prometheus.
//   - [Func] and [Named]: your own checks ("Database migrations tested",
//     "On-call/support notified"), with a name and checklist items.
//
// # Checklist
//
// Gates that provide evidence for the deployment checklist implement
// [deploy.Checklister]; the runner ticks their items in the report when they
// pass. [CI] ticks deploy.ItemTestsPassing, [MonitoringActive]
// deploy.ItemMonitoringActive, [FlagOff] deploy.ItemFlagsConfigured,
// [Approval] deploy.ItemCodeReviewed when CodeReview is set, and [HTTP] and
// [Named] the items they are given.
//
// Each gate also says what it saw with [deploy.Evidence], and the item is
// ticked with it: "gate ci: CI success for acme/shop@3f2a1c9e0b7d: 3 of 3
// contexts green: build, test, lint", "gate approval: approved by alice",
// "gate deploy-window: deploy window open at Tuesday 10:02 Europe/Berlin,
// until 17:00", "gate monitoring-active: 2 scrape targets up
// (job="shop"); 1 alerting rule mentioning shop: ShopErrors" (with
// prometheus.Monitoring, which implements [MonitoringConfirmer]). Your own
// gates can do the same.
//
// # Configuration
//
// Gates are plain structs. Each has Validate, which names every bad field and
// its value; Check calls it first and blocks an invalid gate with its error.
// The errors of Window, Approval, HTTP, CI and MonitoringActive wrap
// deploy.ErrInvalid, and so do those of a gate made by Named with an empty
// name or a nil gate. A gate's fields must not change while a runner uses it.
// The runner calls gates one at a time.
//
// # Time
//
// Gates read the time with [time.Now] and wait with timers, so tests run them
// inside testing/synctest. [Window.Next] is the window's calendar as a pure
// function of an instant, for tests and for tools that show when the next
// deploy slot opens.
//
// # Secrets
//
// Gates hold secrets: CI's Token, the credentials and query of a URL, the
// Authorization header of HTTP. What a gate returns — its reason, its
// evidence, its name — never shows them: URLs lose their user information
// and query values, known secrets are masked, and upstream bodies are cut,
// put on one line and redacted. The runner stores that text in the record,
// the report, spans and logs as it is.
package gate
