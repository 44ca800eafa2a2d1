// Package strategy holds the strategies that carry a release to users; each
// implements deploy.Strategy.
//
//   - [Direct]: one step to full exposure, then a bake — for low-risk changes.
//   - [BlueGreen]: deploy to the idle side, test it, switch traffic, keep the
//     old side for rollback — for critical changes.
//   - progressive.Strategy, in package strategy/progressive: deploy dark
//     behind an OpenFeature flag, then 1 % → 5 % → 25 % → 50 % → 100 % — for
//     higher-risk changes. It lives apart so that a program using Direct,
//     BlueGreen or Command compiles no OpenFeature SDK.
//   - [Command]: steps and rollback as commands (kubectl, helm, ssh, any
//     program), never through a shell; [Kubectl], [Helm] and [SSH] build one.
//
// This package imports nothing but package deploy and the standard library
// (and OpenTelemetry, which deploy imports).
//
// Each strategy's settings are a value struct with a Validate method; the
// runner validates the plan before anything is applied.
//
// # Writing your own
//
// A strategy is Plan, which returns the steps, and Rollback. Plan must be
// deterministic for the same deployment (Resume continues by step index);
// each Step.Apply must be idempotent; Rollback must be idempotent and is
// called under a context that outlives the cancellation of Run. Run
// deploytest.TestStrategy against it. examples/customstrategy is one, an
// nginx-weights canary, with its tests.
package strategy
