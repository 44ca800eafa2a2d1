package hook_test

import (
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/deploykit/deploy"
	"github.com/deploykit/deploy/deploytest"
	"github.com/deploykit/deploy/hook"
)

func rollbackGate(lt *loadtester) *hook.Rollback {
	return &hook.Rollback{Webhook: hook.Webhook{Name: "rollback-gate", URL: "http://flagger-loadtester.test/rollback/check", Client: lt.Client()}}
}

// TestRollbackHookRollsBackOnYes reproduces Flagger's rollback hook ("If a
// rollback hook returns a successful HTTP status code, Flagger will stop the
// analysis and mark the canary release as failed",
// https://docs.flagger.app/usage/webhooks#manual-gating): polled every
// interval while steps bake; asked at 2½ minutes, it rolls back at the next
// look, at 3 minutes, with a threshold that tolerates failures. The hook still
// says yes afterwards, and the rollback's own verification is not failed by
// it.
func TestRollbackHookRollsBackOnYes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lt := &loadtester{}
		s := &deploytest.Strategy{Steps: deploytest.Ramp(2*time.Minute, 0.2, 0.6, 1)}
		r := runner(t, s, 10, deploy.WithMonitors(rollbackGate(lt)))
		start := time.Now()
		go func() {
			time.Sleep(150 * time.Second)
			lt.AskRollback("podinfo.test") // curl -d '{"name":"podinfo","namespace":"test"}' /rollback/open
		}()
		rep, err := r.Run(t.Context(), rel)
		if !errors.Is(err, deploy.ErrUnhealthy) || rep.Status != deploy.RolledBack {
			t.Fatalf("status %s, err %v; want rolled back (verified), ErrUnhealthy", rep.Status, err)
		}
		if d := cmp.Diff([]time.Duration{time.Minute, 2 * time.Minute, 3 * time.Minute}, since(start, lt.Calls("/rollback/check"))); d != "" {
			t.Errorf("rollback checks (-want +got):\n%s", d)
		}
		if !strings.Contains(rep.Trigger.Reason, "rollback rollback-gate") || !strings.Contains(rep.Trigger.Reason, "rollback asked") {
			t.Errorf("trigger %q", rep.Trigger.Reason)
		}
		if p := lt.Calls("/rollback/check")[0].Payload; p.Phase != "Progressing" || p.Name != "podinfo" || p.Namespace != "test" {
			t.Errorf("payload %+v", p)
		}
	})
}

// TestRollbackHookNeedsCriticalChecks: a runner refuses a policy that would
// not judge the hook's check.
func TestRollbackHookNeedsCriticalChecks(t *testing.T) {
	p := deploy.DefaultPolicy()
	p.Triggers = p.Triggers[1:] // without CriticalChecks
	_, err := deploy.NewRunner(canary(), deploy.WithMonitors(rollbackGate(&loadtester{})), deploy.WithRollbackPolicy(p))
	if !errors.Is(err, deploy.ErrInvalid) || !strings.Contains(err.Error(), "CriticalChecks") {
		t.Errorf("err = %v, want ErrInvalid naming rollback.CriticalChecks", err)
	}
}
