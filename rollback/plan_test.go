package rollback

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/deploykit/deploy/monitor"
	"github.com/google/go-cmp/cmp"
)

func TestPlanMarkdown(t *testing.T) {
	p := Policy{Triggers: []Trigger{
		RelativeIncrease{MaxIncrease: 0.5},
		LatencyIncrease{MaxIncrease: 200 * time.Millisecond},
		CriticalChecks{},
	}, InconclusiveLimit: 3}
	pl := NewPlan(&p, "Revert PR", "Deploy previous version")
	pl.Add("Verify rollback", nil)
	want := `## Rollback Procedure

### Trigger Conditions
- error rate increases by >50% relative to the control or baseline
- p95 latency increases by >200ms
- Critical functionality broken (a critical check fails)
- More than 0 failed observation(s)
- More than 3 inconclusive observation(s) (no data or too few samples)
- 4 metric-source errors in a row
- A step not completing within 10m0s

### Rollback Steps
1. Revert PR
2. Deploy previous version
3. Verify rollback

### Post-Rollback
- Document what went wrong
- Investigate root cause
- Plan fix before re-attempting
`
	if diff := cmp.Diff(want, pl.Markdown()); diff != "" {
		t.Errorf("(-want +got)\n%s", diff)
	}
}

func TestPlanExecute(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var ran []string
		step := func(name string, d time.Duration, err error) func(context.Context) error {
			return func(ctx context.Context) error {
				ran = append(ran, name)
				time.Sleep(d) // virtual time
				return err
			}
		}
		pl := NewPlan(nil, "Switch traffic back to blue")
		pl.Steps[0].Run = step("switch", time.Minute, nil)
		flaky := errors.New("purge API: 503")
		pl.Add("Purge CDN cache", step("purge", 30*time.Second, flaky))
		pl.Add("Tell #payments", nil)
		pl.Add("Verify rollback", step("verify", time.Second, nil))

		err := pl.Execute(t.Context())
		if !errors.Is(err, flaky) || err.Error() != "rollback: step 2 (Purge CDN cache): purge API: 503" {
			t.Fatalf("Execute = %v", err)
		}
		want := `## Rollback Procedure

### Trigger Conditions

### Rollback Steps
1. Switch traffic back to blue — done 2000-01-01T00:01:00Z
2. Purge CDN cache — failed 2000-01-01T00:01:30Z: purge API: 503
3. Tell #payments
4. Verify rollback

### Post-Rollback
- Document what went wrong
- Investigate root cause
- Plan fix before re-attempting
`
		if diff := cmp.Diff(want, pl.Markdown()); diff != "" {
			t.Errorf("after a failure (-want +got)\n%s", diff)
		}
		// Run again after fixing the step: done steps are not repeated.
		pl.Steps[1].Run = step("purge", time.Second, nil)
		if err := pl.Execute(t.Context()); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"switch", "purge", "purge", "verify"}, ran); diff != "" {
			t.Errorf("steps run (-want +got)\n%s", diff)
		}
		if diff := cmp.Diff([]string{"Tell #payments"}, pl.Pending()); diff != "" {
			t.Errorf("pending (-want +got)\n%s", diff)
		}
		if s := pl.Steps[1]; !s.Done || s.Err != "" || !s.At.Equal(time.Date(2000, 1, 1, 0, 1, 31, 0, time.UTC)) {
			t.Errorf("retried step %+v", s)
		}
	})
}

func TestPlanExecuteCancelled(t *testing.T) {
	pl := NewPlan(nil)
	called := false
	pl.Add("Deploy previous version", func(context.Context) error { called = true; return nil })
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := pl.Execute(ctx); !errors.Is(err, context.Canceled) || called {
		t.Errorf("Execute on a cancelled context = %v, step called %v", err, called)
	}
	// Conditions come from the policy.
	if got := NewPlan(&Policy{Triggers: []Trigger{Above(monitor.CPU, 0.9)}}).Conditions[0]; got != "CPU above 0.9" {
		t.Errorf("condition %q", got)
	}
}
