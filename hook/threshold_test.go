package hook_test

import (
	"testing"
	"time"

	"github.com/deploykit/deploy"
	"github.com/deploykit/deploy/hook"
	"github.com/deploykit/deploy/rollback"
)

// hookPolicy is the default policy (which judges the metrics of the
// healthy monitor, and so verifies a rollback) with Flagger's threshold.
func hookPolicy(threshold int) rollback.Policy {
	return hook.Threshold(deploy.DefaultPolicy(), threshold, time.Minute)
}

func TestThresholdSetsTheLimits(t *testing.T) {
	p := hook.Threshold(rollback.Policy{Triggers: []rollback.Trigger{rollback.Above("cpu", 0.8)}}, 10, time.Minute)
	if p.FailureLimit != 9 {
		t.Errorf("FailureLimit = %d, want 9: the 10th failed check rolls back", p.FailureLimit)
	}
	if p.Deadline() < 11*time.Minute {
		t.Errorf("ProgressDeadline = %v, want at least 11 intervals", p.Deadline())
	}
	if len(p.Triggers) != 2 {
		t.Fatalf("triggers = %v, want cpu and critical checks", p.Triggers)
	}
	if _, ok := p.Triggers[1].(rollback.CriticalChecks); !ok {
		t.Errorf("trigger 1 = %T, want rollback.CriticalChecks", p.Triggers[1])
	}
	// Flagger's default threshold is 1: the first failure rolls back.
	if p := hook.Threshold(rollback.Policy{}, 0, time.Minute); p.FailureLimit != 0 || len(p.Triggers) != 1 {
		t.Errorf("threshold 0: FailureLimit %d, triggers %v", p.FailureLimit, p.Triggers)
	}
	// A policy that has the trigger keeps it once.
	if p := hook.Threshold(rollback.Policy{Triggers: []rollback.Trigger{rollback.CriticalChecks{}}}, 3, time.Minute); len(p.Triggers) != 1 {
		t.Errorf("triggers = %v, want the one CriticalChecks", p.Triggers)
	}
}
