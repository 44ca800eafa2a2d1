package progressive

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"time"

	ofotel "github.com/open-feature/go-sdk-contrib/hooks/open-telemetry/pkg"
	"github.com/open-feature/go-sdk/openfeature"
	"go.opentelemetry.io/otel/attribute"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/deploykit/deploy"
	"github.com/deploykit/deploy/flags"
	"github.com/deploykit/deploy/internal/retry"
)

// FlagClient is flags.Client: the read side of a feature flag, which
// *openfeature.Client satisfies.
type FlagClient = flags.Client

// DefaultShares returns the shares of the strategy's steps when Steps is
// empty: 1 %, 5 %, 25 %, 50 %, then everyone.
func DefaultShares() []float64 { return []float64{0.01, 0.05, 0.25, 0.5, 1} }

// Defaults of the strategy's verification.
const (
	// DefaultSamples is how many synthetic targeting keys are evaluated to
	// check a share.
	DefaultSamples = 2000
	// DefaultSettle is how long a step keeps re-checking a share that does not
	// match yet, for providers that pick up changes asynchronously.
	DefaultSettle = 5 * time.Second
	// DefaultTraced is how many evaluations of each check carry the
	// OpenTelemetry hook.
	DefaultTraced = 10
)

// Step is one share of a progressive rollout.
type Step struct {
	// Share is the share of targeting keys that get the flag's on variant,
	// in (0, 1]. Shares are served in whole buckets of 0.01 % (flags.Buckets).
	Share float64
	// Bake is how long monitors watch at this share before the next step.
	Bake time.Duration
	// Approval waits for the runner's approval gate before the share is set.
	Approval bool
}

// Strategy releases a change behind a boolean feature flag: the checklist's
// "Feature Flag" rollout for higher-risk changes. It deploys the new binary
// dark, with the flag off for everyone, then raises the flag's share step by
// step (by default 1 %, 5 %, 25 %, 50 %, 100 %), baking at each share while
// monitors watch.
//
// The plan is a step "dark" at exposure 0, which sets the share to 0, checks
// it, then calls Deploy; then one step per share, named after it ("1%",
// "5%", "0.5%"), whose exposure is the share. Each share is set with
// Controller.SetShare and then checked on the read side: Client evaluates the
// flag for Samples synthetic targeting keys, and the step fails (and the runner
// rolls back) if any evaluation errors or if the share of keys that get true
// is further than Tolerance from the step's share. A provider that never picked
// up the change — a flagd file watcher that missed a rename, a process reading
// another file — is caught here. A share that does not match is checked again
// at once with new keys (by chance alone, a sample misses by more than three
// standard errors about once in 370 checks), then with new keys after growing
// waits, until Settle has passed since it was set.
//
// Rollback sets the share to 0 and checks it the same way: this is the fast
// path, no redeploy. The binary deployed dark stays deployed, serving the old
// code path to everyone; taking it out is a separate release.
//
// The synthetic keys are "deploykit-verify-" followed by the deployment id,
// the step, the attempt and a number, so they are the same for the same
// deployment and step and recognisable in a provider's analytics. Each check
// costs Samples evaluations; a provider that bills per evaluated context
// (a hosted flag service) will count them.
//
// The first Traced evaluations of each check carry the OpenTelemetry traces
// hook of go-sdk-contrib, which adds a feature_flag.evaluation event with
// feature_flag.* attributes to the span in the step's context, the runner's
// deploy.step span (deploy.rollback when rolling back). Each check also adds a
// deploy.flag.check event with the target and observed shares.
//
// Wired to a runner, with gate.FlagOff to check that the flag is off first:
//
//	p, _ := flags.NewProvider(flags.BoolFlag("new-checkout", 0)) // or flags.NewFlagdFile(path)
//	api := isolated.NewAPI() // github.com/open-feature/go-sdk/openfeature/isolated
//	_ = api.SetProviderAndWait(ctx, p)
//	client := api.NewClient()
//	r, err := deploy.NewRunner(&progressive.Strategy{
//		Flag: "new-checkout", Controller: p, Client: client,
//		Deploy: deployBinary, Bake: 30 * time.Minute,
//	}, deploy.WithGates(gate.FlagOff{Flag: "new-checkout", Client: client, Controller: p}), ...)
//
// With several stages (deploy.WithStages), each stage usually has its own
// flag backend — staging's flagd file and production's — given in Stages:
// each stage then ramps its own flag from 0, and a rollback turns off only
// the flag of the stage that failed. A stage missing from Stages uses
// Controller and Client.
type Strategy struct {
	// Flag is the key of a boolean flag whose on variant (true) takes users to
	// the new code path. Required.
	Flag string
	// Controller sets the flag's share (the write side). Required unless
	// Stages covers every stage.
	Controller flags.Controller
	// Client evaluates the flag as users do (the read side), to check each
	// share. Required with Controller; *openfeature.Client implements it.
	Client FlagClient
	// Stages gives stages, by deploy.Stage.Name, their own flag backend.
	Stages map[string]Target
	// Deploy puts the new binary in place, with the flag off. Nil when the
	// code is already deployed. It must be idempotent.
	Deploy func(ctx context.Context, d *deploy.Deployment) error
	// Steps are the shares to go through, strictly increasing. Empty means
	// DefaultShares, each baking for Bake.
	Steps []Step
	// Bake is how long monitors watch the dark binary before the first share,
	// and each default step before the next.
	Bake time.Duration
	// Samples is how many synthetic targeting keys each check evaluates.
	// 0 means DefaultSamples (2000).
	Samples int
	// Tolerance is how far, as an absolute share in [0, 1), the observed share
	// may be from the step's share. 0 means three standard errors of a
	// sample of Samples keys at the step's share, plus one bucket for
	// rounding; with 2000 samples: ±0.68 % at 1 %, ±1.5 % at 5 %, ±2.9 % at
	// 25 %, ±3.4 % at 50 %, and exactly 0 % or 100 % at the ends. A share
	// closer to the previous one than the tolerance cannot be told from it.
	Tolerance float64
	// Settle is how long a step keeps re-checking a share that does not match
	// before it fails. 0 means DefaultSettle (5 s).
	Settle time.Duration
	// Traced is how many evaluations of each check carry the OpenTelemetry
	// hook and appear as events on the step's span. 0 means DefaultTraced
	// (10); negative means none. At most Samples.
	Traced int
}

var _ deploy.Strategy = (*Strategy)(nil)

// Name returns "progressive".
func (s *Strategy) Name() string { return "progressive" }

// RollbackPath reports true: Rollback sets the share to 0.
func (s *Strategy) RollbackPath() bool { return true }

// Validate reports a missing Flag, Controller or Client (or one of a Stages
// entry); a negative Bake, Samples or Settle; a step whose share is outside
// (0, 1] or not above the previous step's (in whole buckets), or whose Bake
// is negative; a Tolerance outside [0, 1); or more Traced evaluations than
// Samples. The error names the field and its value.
func (s *Strategy) Validate() error {
	for _, name := range slices.Sorted(maps.Keys(s.Stages)) {
		switch t := s.Stages[name]; {
		case t.Controller == nil:
			return fmt.Errorf("progressive: Strategy.Stages[%q].Controller is nil", name)
		case t.Client == nil:
			return fmt.Errorf("progressive: Strategy.Stages[%q].Client is nil", name)
		}
	}
	switch {
	case s.Flag == "":
		return errors.New("progressive: Strategy.Flag is empty")
	case s.Controller == nil && (s.Client != nil || len(s.Stages) == 0):
		return errors.New("progressive: Strategy.Controller is nil")
	case s.Client == nil && (s.Controller != nil || len(s.Stages) == 0):
		return errors.New("progressive: Strategy.Client is nil")
	case s.Bake < 0:
		return fmt.Errorf("progressive: Strategy.Bake %v is negative", s.Bake)
	case s.Samples < 0:
		return fmt.Errorf("progressive: Strategy.Samples %d is negative", s.Samples)
	case math.IsNaN(s.Tolerance) || s.Tolerance < 0 || s.Tolerance >= 1:
		return fmt.Errorf("progressive: Strategy.Tolerance %v is outside [0, 1)", s.Tolerance)
	case s.Settle < 0:
		return fmt.Errorf("progressive: Strategy.Settle %v is negative", s.Settle)
	case s.Traced > s.samples():
		return fmt.Errorf("progressive: Strategy.Traced %d is more than the %d samples", s.Traced, s.samples())
	}
	prev := -1
	for i, st := range s.Steps {
		switch {
		case math.IsNaN(st.Share) || st.Share <= 0 || st.Share > 1:
			return fmt.Errorf("progressive: Strategy.Steps[%d].Share %v is outside (0, 1]", i, st.Share)
		case buckets(st.Share) == 0:
			return fmt.Errorf("progressive: Strategy.Steps[%d].Share %v rounds to 0 buckets (the resolution is %v)", i, st.Share, 1.0/flags.Buckets)
		case buckets(st.Share) <= prev:
			return fmt.Errorf("progressive: Strategy.Steps[%d].Share %v is not above the previous step's %v", i, st.Share, s.Steps[i-1].Share)
		case st.Bake < 0:
			return fmt.Errorf("progressive: Strategy.Steps[%d].Bake %v is negative", i, st.Bake)
		}
		prev = buckets(st.Share)
	}
	return nil
}

// buckets is share in whole buckets, as flags.Provider and flags.FlagdFile
// round it.
func buckets(share float64) int { return int(math.Round(share * flags.Buckets)) }

// shareName names a step after its share in percent, to the bucket: "1%",
// "0.05%", "33.33%".
func shareName(share float64) string {
	return strconv.FormatFloat(float64(buckets(share))/100, 'f', -1, 64) + "%"
}

func (s *Strategy) samples() int {
	if s.Samples == 0 {
		return DefaultSamples
	}
	return s.Samples
}

func (s *Strategy) steps() []Step {
	if len(s.Steps) > 0 {
		return s.Steps
	}
	shares := DefaultShares()
	steps := make([]Step, len(shares))
	for i, sh := range shares {
		steps[i] = Step{Share: sh, Bake: s.Bake}
	}
	return steps
}

// Plan returns "dark" at exposure 0, baking for Bake, then one step per
// share, named after it ("1%", "5%"…), at exposure equal to the share. It
// returns Validate's error for bad settings. Plan calls nothing: the flag is
// first touched when "dark" is applied.
func (s *Strategy) Plan(ctx context.Context, d *deploy.Deployment) ([]deploy.Step, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	if _, err := s.target(d); err != nil {
		return nil, err
	}
	steps := []deploy.Step{{Name: "dark", Exposure: 0, Bake: s.Bake, Apply: s.dark}}
	for _, st := range s.steps() {
		name := shareName(st.Share)
		steps = append(steps, deploy.Step{Name: name, Exposure: st.Share, Bake: st.Bake, Approval: st.Approval,
			Apply: func(ctx context.Context, d *deploy.Deployment) error {
				return s.set(ctx, d, name, st.Share)
			}})
	}
	return steps, nil
}

// dark turns the flag off, checks that nobody gets it, then deploys.
func (s *Strategy) dark(ctx context.Context, d *deploy.Deployment) error {
	if err := s.set(ctx, d, "dark", 0); err != nil {
		return err
	}
	if s.Deploy == nil {
		return nil
	}
	return s.Deploy(ctx, d)
}

// Rollback sets the flag's share to 0 and checks on the read side that
// nobody gets the on variant any more. The binary deployed dark stays.
// It is idempotent.
func (s *Strategy) Rollback(ctx context.Context, d *deploy.Deployment) error {
	if err := s.Validate(); err != nil {
		return err
	}
	return s.set(ctx, d, "rollback", 0)
}

// Target is one flag backend: where a stage's flag is set and read.
type Target struct {
	Controller flags.Controller
	Client     FlagClient
}

// target returns the flag backend of d's stage.
func (s *Strategy) target(d *deploy.Deployment) (Target, error) {
	if t, ok := s.Stages[d.Stage.Name]; ok {
		return t, nil
	}
	if s.Controller == nil || s.Client == nil {
		return Target{}, fmt.Errorf("progressive: Strategy has no flag backend for stage %q: set Controller and Client, or Stages[%q]", d.Stage.Name, d.Stage.Name)
	}
	return Target{Controller: s.Controller, Client: s.Client}, nil
}

// set sets the share and checks it through the read side.
func (s *Strategy) set(ctx context.Context, d *deploy.Deployment, step string, share float64) error {
	t, err := s.target(d)
	if err != nil {
		return err
	}
	if err := t.Controller.SetShare(ctx, s.Flag, share); err != nil {
		return fmt.Errorf("progressive: set flag %q to %s: %w", s.Flag, pct(share), err)
	}
	return s.check(ctx, t.Client, d.ID, step, share)
}

// tolerance returns how far the observed share of n samples may be from share.
func (s *Strategy) tolerance(share float64, n int) float64 {
	if s.Tolerance > 0 {
		return s.Tolerance
	}
	return 3*math.Sqrt(share*(1-share)/float64(n)) + 1.0/flags.Buckets
}

// check evaluates the flag for synthetic keys until the observed share is
// within tolerance of share, or Settle has passed.
func (s *Strategy) check(ctx context.Context, client FlagClient, id, step string, share float64) error {
	settle := s.Settle
	if settle == 0 {
		settle = DefaultSettle
	}
	n := s.samples()
	tol := s.tolerance(share, n)
	deadline := time.Now().Add(settle)
	waits := 0
	for attempt := 1; ; attempt++ {
		on, err := s.sample(ctx, client, id, step, attempt, n)
		observed := float64(on) / float64(n)
		ok := err == nil && math.Abs(observed-share) <= tol
		span := trace.SpanFromContext(ctx)
		if span.IsRecording() {
			span.AddEvent("deploy.flag.check", trace.WithAttributes(
				semconv.FeatureFlagKey(s.Flag),
				attribute.Float64("deploy.flag.share", share),
				attribute.Float64("deploy.flag.observed", observed),
				attribute.Float64("deploy.flag.tolerance", tol),
				attribute.Int("deploy.flag.samples", n),
				attribute.Int("deploy.flag.attempt", attempt),
				attribute.Bool("deploy.flag.ok", ok),
			))
		}
		if ok {
			return nil
		}
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		if attempt == 1 && err == nil {
			// A sample misses by more than three standard errors about once
			// in 370 checks by chance alone: draw new keys at once before
			// suspecting the provider.
			continue
		}
		waits++
		wait := flagPoll.Delay(waits)
		if !time.Now().Add(wait).Before(deadline) {
			if err != nil {
				return fmt.Errorf("progressive: flag %q at %s could not be checked within %v: %w", s.Flag, pct(share), settle, err)
			}
			return fmt.Errorf("progressive: flag %q was set to %s but serves %s of %d sampled keys (tolerance ±%s) after %v: the provider has not picked up the change",
				s.Flag, pct(share), pct(observed), n, pct(tol), settle)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return context.Cause(ctx)
		case <-t.C:
		}
	}
}

// flagPoll is the wait between two checks of a flag's share: 10 ms,
// doubling to 1 s, without jitter (the provider is the process's own).
var flagPoll = retry.Backoff{Initial: 10 * time.Millisecond, Max: time.Second}

// sample evaluates the flag for n synthetic keys and counts the keys that
// get true. The first error ends the sample.
func (s *Strategy) sample(ctx context.Context, client FlagClient, id, step string, attempt, n int) (int, error) {
	traced := s.Traced
	if traced == 0 {
		traced = DefaultTraced
	}
	hook := []openfeature.Option{openfeature.WithHooks(ofotel.NewTracesHook())}
	key := make([]byte, 0, 64)
	key = append(key, "deploykit-verify-"...)
	key = append(key, id...)
	key = append(key, '-')
	key = append(key, step...)
	key = append(key, '-')
	key = strconv.AppendInt(key, int64(attempt), 10)
	key = append(key, '-')
	prefix := len(key)
	on := 0
	for i := range n {
		if err := ctx.Err(); err != nil {
			return on, context.Cause(ctx)
		}
		key = strconv.AppendInt(key[:prefix], int64(i), 10)
		var opts []openfeature.Option
		if i < traced {
			opts = hook
		}
		det, err := client.BooleanValueDetails(ctx, s.Flag, false, openfeature.NewEvaluationContext(string(key), nil), opts...)
		if err != nil {
			return on, fmt.Errorf("evaluating for targeting key %q: %w", key, err)
		}
		if det.Value {
			on++
		}
	}
	return on, nil
}

// pct formats a share as a percentage for messages: "1 %", "0.67 %".
func pct(share float64) string {
	return strconv.FormatFloat(math.Round(share*1e4)/100, 'f', -1, 64) + " %"
}

// DescribeRollback says what Rollback does, for the rollback procedure.
func (s *Strategy) DescribeRollback() string {
	return fmt.Sprintf("set flag %q to 0 %% and check that nobody gets it (the binary deployed dark stays)", s.Flag)
}
