// Regression tests from the fifth code review of 2026-11-26.

package deploy_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/deploykit/deploy"
	"github.com/deploykit/deploy/deploytest"
	"github.com/deploykit/deploy/state"
)

// A Rollback whose ctx ends while the holder is applying reports ErrLocked
// ("in the middle of an action"), yet the request it left is carried out.
func TestReview5RollbackTimeoutStillRollsBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := state.NewMemory()
		s := &slowSteps{Strategy: &deploytest.Strategy{Steps: []deploytest.StepSpec{
			{Name: "a", Exposure: 0.1, Bake: time.Minute},
			{Name: "b", Exposure: 1, Bake: 10 * time.Minute},
		}}, entered: make(chan struct{})}
		r := openRunner(t, s, store, deploy.WithMonitors(deploytest.Healthy()))
		id, err := r.Start(t.Context(), rel)
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan *deploy.Report)
		go func() { rep, _ := r.Resume(t.Context(), id); done <- rep }()
		<-s.entered
		rb := openRunner(t, s, store, deploy.WithMonitors(deploytest.Healthy()))
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		defer cancel()
		_, err = rb.Rollback(ctx, id, "stop it")
		t.Logf("Rollback returned: %v", err)
		rep := <-done
		t.Logf("final: %s", rep.Status)
		// Rollback stopped waiting before the holder acted: it must say the
		// rollback was requested and will happen, not that it was refused.
		if rep.Status != deploy.RolledBack || err == nil || errors.Is(err, deploy.ErrLocked) || !strings.Contains(err.Error(), "requested") {
			t.Errorf("Rollback returned %v and the release ended %s; want it rolled back and an error saying the rollback was requested", err, rep.Status)
		}
	})
}

// Two people ask for a rollback during the same Apply: the second one
// gets an error although the release ends rolled back as both asked.
func TestReview5SecondRollback(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := state.NewMemory()
		s := &slowSteps{Strategy: &deploytest.Strategy{Steps: []deploytest.StepSpec{
			{Name: "a", Exposure: 0.1, Bake: 0},
			{Name: "b", Exposure: 1, Bake: 10 * time.Minute},
		}}, entered: make(chan struct{})}
		r := openRunner(t, s, store, deploy.WithMonitors(deploytest.Healthy()))
		id, err := r.Start(t.Context(), rel)
		if err != nil {
			t.Fatal(err)
		}
		go r.Resume(t.Context(), id)
		<-s.entered
		errs := make(chan error, 2)
		for range 2 {
			rb := openRunner(t, s, store, deploy.WithMonitors(deploytest.Healthy()))
			go func() { _, err := rb.Rollback(t.Context(), id, "stop it"); errs <- err }()
			time.Sleep(100 * time.Millisecond)
		}
		for range 2 {
			if err := <-errs; err != nil {
				t.Errorf("Rollback: %v", err)
			}
		}
		rec, _ := store.Load(t.Context(), id)
		t.Logf("status %s", rec.Status)
	})
}
