package deploy_test

import (
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/deploykit/deploy"
	"github.com/deploykit/deploy/deploytest"
	"github.com/deploykit/deploy/monitor"
	"github.com/deploykit/deploy/state"
)

func TestDamagedRecordIsRefusedNamingTheField(t *testing.T) {
	cases := []struct {
		field  string
		damage func(r *state.Record)
	}{
		{"Step", func(r *state.Record) { r.Phase, r.Step = deploy.PhaseDeploy, -1 }},
		{"Step", func(r *state.Record) { r.Step = -7 }},
		{"Stage", func(r *state.Record) { r.Stage = -1 }},
		{"Trigger", func(r *state.Record) { r.Phase, r.Trigger = deploy.PhaseRollback, nil }},
		{"Outcome", func(r *state.Record) { r.Phase, r.Outcome = deploy.PhaseCommunicate, "" }},
		{"Phase", func(r *state.Record) { r.Phase = "bogus" }},
		{"Exposure", func(r *state.Record) { r.Exposure = 2 }},
		{"Status", func(r *state.Record) { r.Status = "half done" }},
	}
	for _, c := range cases {
		t.Run(c.field, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				store := state.NewMemory()
				r := openRunner(t, ramp(), store, deploy.WithMonitors(deploytest.Healthy()))
				id, err := r.Start(t.Context(), rel)
				if err != nil {
					t.Fatal(err)
				}
				rec, _ := store.Load(t.Context(), id)
				c.damage(rec)
				rec.LeaseUntil = time.Time{}
				if err := store.Update(t.Context(), rec); err != nil {
					t.Fatal(err)
				}
				_, err = r.Resume(t.Context(), id)
				var ce *deploy.CorruptError
				if !errors.Is(err, deploy.ErrCorrupt) || !errors.Is(err, state.ErrCorrupt) || !errors.As(err, &ce) || ce.Field != c.field {
					t.Fatalf("Resume: %v, want a *CorruptError naming %s", err, c.field)
				}
				if _, err := r.Rollback(t.Context(), id, "by hand"); !errors.Is(err, deploy.ErrCorrupt) {
					t.Errorf("Rollback of a damaged record: %v, want ErrCorrupt", err)
				}
			})
		})
	}
}

func TestResumeWithAShorterScheduleFinishesTheWatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := state.NewMemory()
		long := monitor.Schedule{Windows: []monitor.Window{
			{Name: "intensive", Duration: time.Hour, Interval: time.Minute},
			{Name: "regular", Duration: 3 * time.Hour, Interval: 5 * time.Minute},
		}}
		fs := deploytest.NewFaultStore(store)
		fs.OnWrite = func(r *state.Record, _ int) deploytest.Fault {
			return deploytest.Fault{Crash: len(r.Windows) == 2 && r.Windows[1].Observations == 3}
		}
		s := &deploytest.Strategy{Steps: deploytest.Ramp(time.Minute, 1)}
		rep, err := openRunner(t, s, fs, deploy.WithMonitors(deploytest.Healthy()), deploy.WithSchedule(long)).Run(t.Context(), rel)
		if !errors.Is(err, deploytest.ErrCrashed) || rep == nil {
			t.Fatalf("first run: %v, want it crashed in the regular watch", err)
		}
		short := monitor.Schedule{Windows: long.Windows[:1]}
		time.Sleep(time.Hour) // the crashed runner's lease runs out
		rep, err = openRunner(t, s, store, deploy.WithMonitors(deploytest.Healthy()), deploy.WithSchedule(short)).Resume(t.Context(), rep.ID)
		if err != nil || rep.Status != deploy.Succeeded {
			t.Fatalf("resume under a shorter schedule: status %s, err %v", rep.Status, err)
		}
	})
}

func TestResumeWithAChangedPlanStopsAndSaysWhy(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := state.NewMemory()
		fs := deploytest.NewFaultStore(store)
		fs.OnWrite = func(r *state.Record, _ int) deploytest.Fault {
			return deploytest.Fault{Crash: r.Step == 1 && r.Applied}
		}
		first := &deploytest.Strategy{Steps: deploytest.Ramp(10*time.Minute, 0.1, 0.5, 1)}
		rep, err := openRunner(t, first, fs, deploy.WithMonitors(deploytest.Healthy())).Run(t.Context(), rel)
		if !errors.Is(err, deploytest.ErrCrashed) || rep == nil {
			t.Fatalf("first run: %v", err)
		}
		time.Sleep(time.Hour)
		changed := &deploytest.Strategy{Steps: deploytest.Ramp(10*time.Minute, 0.2, 0.5, 1)}
		rep, err = openRunner(t, changed, store, deploy.WithMonitors(deploytest.Healthy())).Resume(t.Context(), rep.ID)
		if !errors.Is(err, deploy.ErrStepFailed) || rep.Status != deploy.RolledBack {
			t.Fatalf("status %s, err %v; want the changed plan to stop the release and roll back", rep.Status, err)
		}
		if !strings.Contains(rep.Trigger.Reason, `step 0 was "10%", now "20%"`) {
			t.Errorf("reason %q does not name the change", rep.Trigger.Reason)
		}
		if len(changed.Applied()) != 0 || changed.Rollbacks() != 1 {
			t.Errorf("applied %v, rollbacks %d: want nothing applied under the changed plan, one rollback", changed.Applied(), changed.Rollbacks())
		}
	})
}
