package deploy_test

import (
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/deploykit/deploy"
	"github.com/deploykit/deploy/rollback"
	"github.com/deploykit/deploy/state"
)

// TestPlanShowsPower: with declared traffic, Plan says per step how many
// canary requests it sees and what the default policy's sequential test
// can catch with them, in the closed form's numbers.
func TestPlanShowsPower(t *testing.T) {
	r := openRunner(t, ramp(), state.NewMemory(), deploy.WithMonitors(newPromLike(1, 200, 0)),
		deploy.WithTraffic(rollback.Traffic{RequestsPerSecond: 200, ErrorRate: 0.003}))
	doc, err := r.Plan(t.Context(), rel)
	if err != nil {
		t.Fatal(err)
	}
	if len(doc.Power) != 1 || !doc.Power[0].OK {
		t.Fatalf("power %+v", doc.Power)
	}
	md := doc.Markdown()
	for _, want := range []string{
		"### Power check",
		"- sequential:error_rate can catch +50 % before full exposure at 200 req/s and 0.3 % errors (declared)",
		"  - [ ] step 1 % × 10m0s sees ≈1,200 requests: it can catch +158 % on 0.3 %, not +50 %; +50 % needs ≈9,600: 1h20m0s at 1 % or 17m0s at 5 %",
		"  - [x] step 25 % × 10m0s sees ≈30,000 requests (≈37,000 with the steps before): it can catch +",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("plan lacks %q:\n%s", want, md)
		}
	}
	if len(doc.Problems) != 0 {
		t.Errorf("problems %v", doc.Problems)
	}
}

// TestPlanRefusesWithoutPowerWhenThePolicyAsks: at 5 req/s no step of the
// ramp can catch +50 % before full exposure; a policy with RequirePower
// makes that a problem of the plan, and preflight blocks the release
// with the traffic its baseline measured.
func TestPlanRefusesWithoutPowerWhenThePolicyAsks(t *testing.T) {
	p := deploy.DefaultPolicy()
	p.RequirePower = true
	r := openRunner(t, ramp(), state.NewMemory(), deploy.WithRollbackPolicy(p), deploy.WithMonitors(newPromLike(1, 5, 0)),
		deploy.WithTraffic(rollback.Traffic{RequestsPerSecond: 5, ErrorRate: 0.003}))
	doc, err := r.Plan(t.Context(), rel)
	if err != nil {
		t.Fatal(err)
	}
	if len(doc.Problems) != 1 || !strings.Contains(doc.Problems[0], "no step before full exposure can catch +50 %") {
		t.Errorf("problems %v", doc.Problems)
	}
	synctest.Test(t, func(t *testing.T) {
		r := openRunner(t, ramp(), state.NewMemory(), deploy.WithRollbackPolicy(p), deploy.WithMonitors(newPromLike(1, 5, 0)))
		rep, err := r.Run(t.Context(), rel)
		if !errors.Is(err, deploy.ErrBlocked) || rep.Status != deploy.Blocked {
			t.Fatalf("status %s, err %v; want blocked", rep.Status, err)
		}
		if !strings.Contains(rep.Trigger.Reason, "measured by the baseline") {
			t.Errorf("reason %q", rep.Trigger.Reason)
		}
	})
}

// TestPreflightNotesPower: without RequirePower the check only warns: the
// timeline notes what each step can detect, and the release goes on.
func TestPreflightNotesPower(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := openRunner(t, ramp(), state.NewMemory(), deploy.WithMonitors(newPromLike(1, 5, 0)), deploy.WithInterval(time.Minute))
		rep, err := r.Run(t.Context(), rel)
		if err != nil {
			t.Fatalf("status %s, err %v", rep.Status, err)
		}
		found := false
		for _, e := range rep.Timeline {
			if e.Kind == state.EntryNote && e.Name == "power" && strings.Contains(e.Detail, "no step before full exposure can catch +50 %") {
				found = true
			}
		}
		if !found {
			t.Errorf("no power note in the timeline")
		}
	})
}

func TestWithTrafficIsValidated(t *testing.T) {
	_, err := deploy.NewRunner(ramp(), deploy.WithStore(state.NewMemory()), deploy.WithMonitors(newPromLike(1, 5, 0)),
		deploy.WithTraffic(rollback.Traffic{RequestsPerSecond: 0, ErrorRate: 0.003}))
	if !errors.Is(err, deploy.ErrInvalid) || !strings.Contains(err.Error(), "RequestsPerSecond 0") {
		t.Errorf("err %v", err)
	}
}
