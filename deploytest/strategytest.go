package deploytest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/deploykit/deploy"
)

// TestStrategy checks that s keeps the contracts of deploy.Strategy for d,
// like testing/fstest.TestFS: it returns an error describing every broken
// contract, or nil. It calls Plan twice and applies every step twice (steps
// must be idempotent), then calls Rollback twice; run it against a fake or
// a test instance of whatever the strategy drives.
//
// The contracts: Plan is deterministic (same names, exposures, bakes and
// approvals on every call, also when made again after every step was
// applied, as for a Resume or a rollback); it returns at least one step;
// step names are unique and non-empty; exposures are in [0, 1], never
// decrease and end at 1 (everyone); bakes are not negative; Apply is set;
// applying a step again succeeds; Rollback succeeds and may be called again.
func TestStrategy(ctx context.Context, s deploy.Strategy, d *deploy.Deployment) error {
	if s == nil {
		return errors.New("deploytest: TestStrategy: strategy is nil")
	}
	if d == nil {
		d = &deploy.Deployment{ID: "conformance", Release: deploy.Release{Service: "conformance", Version: "v2", PreviousVersion: "v1", Environment: "staging"},
			Stage: deploy.Stage{Name: "staging", Environment: "staging"}, Started: time.Now(), Token: time.Now().UnixMicro(), Memo: map[string]string{}}
	}
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	steps, err := s.Plan(ctx, d)
	if err != nil {
		return fmt.Errorf("deploytest: Plan: %w", err)
	}
	again, err := s.Plan(ctx, d)
	if err != nil {
		return fmt.Errorf("deploytest: second Plan: %w", err)
	}
	if len(steps) == 0 {
		fail("Plan returned no steps")
	}
	if len(again) != len(steps) {
		fail("Plan is not deterministic: %d steps, then %d", len(steps), len(again))
	} else {
		for i := range steps {
			a, b := steps[i], again[i]
			if a.Name != b.Name || a.Exposure != b.Exposure || a.Bake != b.Bake || a.Approval != b.Approval {
				fail("Plan is not deterministic at step %d: %q/%v/%v/%v, then %q/%v/%v/%v", i, a.Name, a.Exposure, a.Bake, a.Approval, b.Name, b.Exposure, b.Bake, b.Approval)
			}
		}
	}
	names := map[string]bool{}
	prev := 0.0
	for i, st := range steps {
		switch {
		case st.Name == "":
			fail("step %d: Name is empty", i)
		case names[st.Name]:
			fail("step %d: Name %q is repeated", i, st.Name)
		}
		names[st.Name] = true
		if math.IsNaN(st.Exposure) || st.Exposure < 0 || st.Exposure > 1 {
			fail("step %d (%q): Exposure %v is outside [0, 1]", i, st.Name, st.Exposure)
		} else if st.Exposure < prev {
			fail("step %d (%q): Exposure %v is lower than the step before (%v)", i, st.Name, st.Exposure, prev)
		} else {
			prev = st.Exposure
		}
		if st.Bake < 0 {
			fail("step %d (%q): Bake %v is negative", i, st.Name, st.Bake)
		}
		if st.Apply == nil {
			fail("step %d (%q): Apply is nil", i, st.Name)
		}
	}
	if n := len(steps); n > 0 && steps[n-1].Exposure != 1 {
		fail("the last step (%q) has Exposure %v: a plan must end with everyone on the new version (1)", steps[n-1].Name, steps[n-1].Exposure)
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	for i, st := range steps {
		d.Step = i
		if err := st.Apply(ctx, d); err != nil {
			fail("step %d (%q): Apply: %v", i, st.Name, err)
			break
		}
		if err := st.Apply(ctx, d); err != nil {
			fail("step %d (%q): Apply is not idempotent: the second call failed: %v", i, st.Name, err)
			break
		}
		d.Exposure = st.Exposure
	}
	// Made again once the steps are applied, the plan is the same: Resume and
	// the rollback's trigger find the steps by index.
	if after, err := s.Plan(ctx, d); err != nil {
		fail("Plan after the steps were applied: %v", err)
	} else if len(after) != len(steps) {
		fail("Plan after the steps were applied has %d steps, not %d", len(after), len(steps))
	} else {
		for i := range steps {
			if after[i].Name != steps[i].Name || after[i].Exposure != steps[i].Exposure {
				fail("Plan after the steps were applied differs at step %d: %q/%v, was %q/%v", i, after[i].Name, after[i].Exposure, steps[i].Name, steps[i].Exposure)
			}
		}
	}
	if err := s.Rollback(ctx, d); err != nil {
		fail("Rollback: %v", err)
	} else if err := s.Rollback(ctx, d); err != nil {
		fail("Rollback is not idempotent: the second call failed: %v", err)
	}
	return errors.Join(errs...)
}
