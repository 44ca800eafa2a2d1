package deploy_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/deploykit/deploy"
	"github.com/deploykit/deploy/deploytest"
	"github.com/deploykit/deploy/state"
)

// Cancelling a Run that waits for a person ends the wait: before anything
// was deployed (the first step's approval) the release is aborted; while
// paused after a step, it rolls back (status aborted, as for any
// cancelled Run); aborted and waiting for a Retry, it
// ends rolled back.
func TestCancelWhileWaiting(t *testing.T) {
	for _, tc := range []struct {
		name   string
		rule   deploy.StepRule
		abort  bool
		status deploy.Status
	}{
		{"approval of the first step", deploy.StepRule{Step: "20%", Approval: true}, false, deploy.Aborted},
		{"pause", deploy.StepRule{Step: "20%", Pause: &deploy.Pause{}}, false, deploy.Aborted}, // rolled back, as any cancelled Run
		{"aborted", deploy.StepRule{Step: "20%", Pause: &deploy.Pause{}}, true, deploy.RolledBack},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := &deploytest.Strategy{Steps: deploytest.Ramp(10*time.Minute, 0.2, 1)}
				store := state.NewMemory()
				r := decisionRunner(t, s, store, deploy.WithStepRules(tc.rule))
				id, err := r.Start(t.Context(), rel)
				if err != nil {
					t.Fatal(err)
				}
				ctx, cancel := context.WithCancel(t.Context())
				done := runInBackground(r, ctx, id)
				waitFor(t, store, id, time.Hour, func(rec *state.Record) bool { return rec.Waiting != nil })
				if tc.abort {
					if err := r.Abort(t.Context(), id, deploy.Decision{By: "hal"}); err != nil {
						t.Fatal(err)
					}
					waitFor(t, store, id, time.Hour, waiting(state.WaitAborted))
				}
				cancel()
				res := <-done
				if !errors.Is(res.err, deploy.ErrAborted) || res.rep.Status != tc.status || res.rep.Waiting != nil {
					t.Errorf("ended %s with %v, waiting %+v; want %s, ErrAborted, no wait", res.rep.Status, res.err, res.rep.Waiting, tc.status)
				}
				if s.Exposure() != 0 {
					t.Errorf("exposure %v after the cancel, want 0", s.Exposure())
				}
			})
		})
	}
}
