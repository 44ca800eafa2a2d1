// FlagOff: the feature flag of a progressive release exists and is off for
// everyone before anything is deployed.

package gate

import (
	"context"
	"fmt"
	"math"
	"strconv"

	ofotel "github.com/open-feature/go-sdk-contrib/hooks/open-telemetry/pkg"
	"github.com/open-feature/go-sdk/openfeature"

	"github.com/deploykit/deploy"
	"github.com/deploykit/deploy/flags"
	"github.com/deploykit/deploy/internal/redact"
)

// FlagClient is flags.Client: the read side of a feature flag, which
// *openfeature.Client satisfies.
type FlagClient = flags.Client

// DefaultFlagOffSamples is how many synthetic targeting keys FlagOff evaluates
// when Samples is 0.
const DefaultFlagOffSamples = 2000

// DefaultFlagOffTraced is how many of FlagOff's evaluations are traced.
const DefaultFlagOffTraced = 10

// FlagOff passes when a boolean feature flag exists and is off for everyone,
// so that a binary deployed dark serves nobody the new code path: the
// checklist's "Feature flags configured (if applicable)".
//
// It checks through Client, Controller or both, whichever are set:
//
//   - Client evaluates the flag, as users do, for Samples synthetic targeting
//     keys ("deploykit-flagoff-" followed by the deployment id and a number).
//     Any key that gets true, any error (FLAG_NOT_FOUND for an unknown flag,
//     PROVIDER_NOT_READY…) blocks. A sample finds a share of s with
//     probability 1-(1-s)^Samples: with 2000 keys, certainly at 1 %, about
//     18 % of the time at a single bucket (0.01 %). It does not see targeting
//     rules that turn the flag on for particular users only.
//   - Controller reads the share directly: anything but 0, or an error such
//     as flags.ErrFlagNotFound, blocks. This is exact.
//
// Give both when you have both: the Controller says what was written, the
// Client what is served. The reason of a block names the flag and what was
// found.
//
// The first DefaultFlagOffTraced evaluations carry the OpenTelemetry traces
// hook of go-sdk-contrib: each adds a feature_flag.evaluation event, with
// the feature_flag.* attributes, to the runner's deploy.gate span.
type FlagOff struct {
	// Flag is the key of the flag. Required.
	Flag string
	// Client evaluates the flag. At least one of Client and Controller is
	// required.
	Client FlagClient
	// Controller reads the flag's share.
	Controller flags.Controller
	// Samples is how many targeting keys Client evaluates. 0 means
	// DefaultFlagOffSamples (2000).
	Samples int
}

var (
	_ deploy.Gate        = FlagOff{}
	_ deploy.Checklister = FlagOff{}
)

// Name returns "flag-off:" followed by the flag key.
func (g FlagOff) Name() string { return "flag-off:" + g.Flag }

// ChecklistItems returns deploy.ItemFlagsConfigured, ticked when the gate passes.
func (g FlagOff) ChecklistItems() []deploy.Item {
	return []deploy.Item{deploy.ItemFlagsConfigured}
}

// Validate reports an empty Flag, neither Client nor Controller set, or a
// negative Samples, naming each bad field and its value. The error wraps
// deploy.ErrInvalid.
func (g FlagOff) Validate() error {
	var p problems
	if g.Flag == "" {
		p.add("Flag is empty")
	}
	if g.Client == nil && g.Controller == nil {
		p.add("neither Client nor Controller is set: nothing to read the flag %q with", g.Flag)
	}
	if g.Samples < 0 {
		p.add("Samples %d is negative", g.Samples)
	}
	return p.err("FlagOff")
}

// Check passes when the flag exists and is off for everyone; otherwise it
// blocks with the reason.
func (g FlagOff) Check(ctx context.Context, d *deploy.Deployment) error {
	// A provider's errors may name its address (a remote flagd).
	return redact.Error(g.check(ctx, d))
}

func (g FlagOff) check(ctx context.Context, d *deploy.Deployment) error {
	if err := g.Validate(); err != nil {
		return err
	}
	if g.Controller != nil {
		share, err := g.Controller.Share(ctx, g.Flag)
		if err != nil {
			return fmt.Errorf("flag %q: cannot read its share: %w", g.Flag, err)
		}
		if share != 0 {
			return fmt.Errorf("flag %q is on for %s of users; set it to 0 before deploying dark", g.Flag, flagSharePercent(share))
		}
		deploy.Evidence(ctx, "flag %q share is 0 %%", g.Flag)
	}
	if g.Client == nil {
		return nil
	}
	n := g.Samples
	if n == 0 {
		n = DefaultFlagOffSamples
	}
	key := []byte("deploykit-flagoff-" + d.ID + "-")
	prefix := len(key)
	on, first := 0, ""
	hook := []openfeature.Option{openfeature.WithHooks(ofotel.NewTracesHook())}
	for i := range n {
		if err := ctx.Err(); err != nil {
			return context.Cause(ctx)
		}
		key = strconv.AppendInt(key[:prefix], int64(i), 10)
		var opts []openfeature.Option
		if i < DefaultFlagOffTraced {
			opts = hook
		}
		det, err := g.Client.BooleanValueDetails(ctx, g.Flag, false, openfeature.NewEvaluationContext(string(key), nil), opts...)
		if err != nil {
			if det.ErrorCode == openfeature.FlagNotFoundCode {
				return fmt.Errorf("flag %q does not exist: %w", g.Flag, err)
			}
			return fmt.Errorf("flag %q cannot be evaluated: %w", g.Flag, err)
		}
		if det.Value {
			if on == 0 {
				first = string(key)
			}
			on++
		}
	}
	if on > 0 {
		return fmt.Errorf("flag %q is on for %d of %d sampled targeting keys (%s, first %q); turn it off before deploying dark",
			g.Flag, on, n, flagSharePercent(float64(on)/float64(n)), first)
	}
	deploy.Evidence(ctx, "flag %q off for all %d sampled targeting keys", g.Flag, n)
	return nil
}

// flagSharePercent formats a share for reasons: "5 %", "0.05 %".
func flagSharePercent(share float64) string {
	return strconv.FormatFloat(math.Round(share*1e4)/100, 'f', -1, 64) + " %"
}
