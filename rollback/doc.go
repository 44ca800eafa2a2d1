// Package rollback decides, from observations, whether a release may go on,
// and documents and runs the way back when it may not.
//
// A [Policy] holds [Trigger]s and limits. The runner calls [Policy.Judge]
// once per observation with the release's [Counters]; the [Decision] it gets
// back is [Continue], [Wait] or [Rollback], with the reason and every
// trigger's [Result].
//
// # Triggers
//
// Every result carries a reason naming the metric, the observed value, what
// it was compared with, the threshold and the sample count, e.g.
// "error rate 2.4 % vs baseline 0.3 % (+700 %) > +50 % (1200 samples)".
//
//   - [Sequential]: a counted rate (by default the error rate over
//     requests) risen significantly over the control or baseline, by a
//     sequential test whose p-value stays valid however often it looks;
//     the default policy's error-rate trigger (see "Sequential judge").
//   - [RelativeIncrease]: a metric (by default the error rate) up by more than
//     X % relative to the reference, above a floor, and — with Confidence —
//     significantly so by an exact binomial test, so that one failed request
//     of a small canary's twenty is not a breach.
//   - [LatencyIncrease]: a latency (by default p95) up by more than Y ms,
//     judged once it rests on MinSamples samples.
//   - [RelativeDecrease]: a business metric (orders, sign-ups, revenue) down
//     by more than Z %.
//   - [Threshold], [Above], [Below]: absolute bounds on any named metric (CPU,
//     memory…).
//   - [CriticalChecks]: a failed critical check rolls back at once.
//   - [MannWhitney]: the canary-versus-control judge: a two-sided
//     Mann-Whitney U test on raw samples, with a confidence level and an
//     allowed effect size, in the manner of Kayenta's classifier.
//
// The reference a metric is compared with is its control value (the stable
// version over the same window) when the source measured one, else the
// preflight baseline. A metric with no data, or no reference, is
// inconclusive, never a pass.
//
// # Limits
//
// The limits follow Argo Rollouts' analysis:
//
//   - FailureLimit (default 0): failed observations tolerated; the next one
//     rolls back. A tolerated failure waits (keeps watching, never promotes).
//   - InconclusiveLimit (default 0): inconclusive observations (no data, too
//     few samples) tolerated; each one waits, the next one past the limit
//     rolls back. Inconclusive never promotes.
//   - ConsecutiveErrorLimit (default 4): observations in a row that could not
//     be measured at all. The source fails closed: the 4th error in a row
//     rolls back, a successful measurement resets the count. (Argo counts the
//     limit as tolerated errors and fails on the 5th; here the limit is the
//     number of errors that rolls back.)
//   - ProgressDeadline (default 10 minutes): how long one step may take; the
//     runner enforces it with [Policy.Deadline].
//   - MinSamples (default 1): a metric result backed by fewer samples is
//     inconclusive, whether it passed or failed.
//
// A failed critical result ([CriticalChecks], a critical [Threshold] or
// [MannWhitney]) rolls back at once, whatever the failure limit.
//
// # Statistical judge
//
// [MannWhitneyU] runs the test on two samples: the U statistic, a two-sided
// p-value — exact (from the null distribution of U) when both samples have at
// most [ExactLimit] values and no ties, else the normal approximation with
// tie and continuity corrections — and the Hodges-Lehmann estimate of the
// location shift with its confidence interval. The [MannWhitney] trigger
// fails when the difference is significant at its confidence level, goes in
// a direction it watches, and the canary's mean differs from the control's by
// more than the allowed effect.
//
// # Sequential judge
//
// A test that compares the canary with a threshold at every look of a
// release — about 450 looks over a ramp and a 24 h watch — raises false
// alarms at every one of them (the peeking problem), and a threshold that
// is at once the rise tolerated and the rise to catch sits exactly where
// detection is a coin toss. [Sequential] is a mixture sequential
// probability ratio test (mSPRT; Johari, Koomen, Pekelis, Walsh, "Always
// valid inference", Operations Research 2022): for each rise r of a grid,
// the likelihood ratio of "the canary's rate is r times the tolerated
// one" against "it is the tolerated one" is multiplied up over the
// increments of data (requests and errors since the last look), and the
// mixture Λ of these ratios over a half-normal prior on log r, of scale
// log((1+Catch)/(1+Tolerate)), is a nonnegative supermartingale under the
// null: the chance that it ever reaches 1/α is at most α (Ville's
// inequality), so the always-valid p-value min 1/Λ may be looked at every
// interval. With a control over the same window, each error is the
// canary's with probability π(r) = r·c·n₁/(r·c·n₁ + n₀) (c = 1 +
// Tolerate): exact for Poisson errors, no normal approximation, sound for a
// control with no errors or a canary with one. Without a control (at full
// exposure), the canary's errors are compared with an upper confidence
// bound of the baseline's rate, which takes a fifth of α. In the limit of
// many errors Λ approaches the closed form of the normal mSPRT; the tests
// check both against values computed independently
// (testdata/msprt_reference.py).
//
// Its evidence accumulates over the whole release — every step, the
// post-deployment checks and the watch — in [Counters].Judge, which the
// runner saves with the record, so that a resumed release goes on with the
// same test. It wants counts cumulative since each window began (the
// Prometheus source's {{.Window}} since Target.Since); per-look counts are
// recognised and taken as new data each look. [SampleSize] and
// [Detectable] give the closed-form fixed-horizon figures (≈9,600 canary
// requests for +50 % on 0.3 % at 1 % exposure) that the power check of a
// plan reports.
//
// # Rollback plan
//
// [NewPlan] writes the documented rollback procedure of the deployment
// checklist: trigger conditions from [Policy.Conditions], the strategy's
// rollback steps and extra steps, and the post-rollback follow-ups.
// [Plan.Markdown] renders it; [Plan.Execute] runs the executable steps in
// order, recording when each ran and how it ended.
//
// This package imports nothing else of the project but monitor.
package rollback
