package deploy_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/deploykit/deploy"
	"github.com/deploykit/deploy/deploytest"
	"github.com/deploykit/deploy/state"
)

// WithGateDeadline(NoDeadline) lets a gate that asks to be retried wait as
// long as it asks: a change freeze that lifts in 3 days, where the default
// one-hour deadline would block the release.
func TestNoDeadlineWaitsForTheGate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lifts := time.Now().Add(72 * time.Hour)
		freeze := deploy.GateFunc(func(ctx context.Context, d *deploy.Deployment) error {
			if time.Now().Before(lifts) {
				return deploy.RetryAt(lifts, "change freeze until Tuesday")
			}
			return nil
		})
		s := &deploytest.Strategy{Steps: deploytest.Ramp(time.Minute, 1)}
		r := decisionRunner(t, s, state.NewMemory(), deploy.WithGates(freeze), deploy.WithGateDeadline(deploy.NoDeadline))
		start := time.Now()
		rep, err := r.Run(t.Context(), rel)
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
		if got := rep.Timeline[len(rep.Timeline)-1].At.Sub(start); got < 72*time.Hour {
			t.Errorf("release ended +%v, want after the freeze (+72h)", got)
		}
	})
}
