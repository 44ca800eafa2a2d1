package hook_test

import (
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/deploykit/deploy"
	"github.com/deploykit/deploy/gate"
	"github.com/deploykit/deploy/hook"
	"github.com/deploykit/deploy/monitor"
	"github.com/deploykit/deploy/state"
)

func confirm(typ hook.Type, lt *loadtester, path string) *hook.Confirm {
	return &hook.Confirm{Type: typ, Webhook: hook.Webhook{Name: string(typ) + "-gate", URL: "http://flagger-loadtester.test" + path, Client: lt.Client()}}
}

// appliedAt returns when each step was applied, from start.
func appliedAt(start time.Time, rep *deploy.Report) map[string]time.Duration {
	out := map[string]time.Duration{}
	for _, e := range rep.Timeline {
		if e.Kind == state.EntryStep && e.Outcome == state.OutcomeApplied {
			out[e.Name] = e.At.Sub(start)
		}
	}
	return out
}

// TestConfirmRolloutWaitsWithNoDeadline reproduces Flagger's confirm-rollout
// hook ("executed before scaling up the canary deployment… The rollout is
// paused until the hook returns a successful HTTP status code",
// https://docs.flagger.app/usage/webhooks#manual-gating, with the tester's
// /gate/check closed by default): the release waits three days of virtual
// time, asking every minute, deploys nothing meanwhile, and goes on as soon as
// the gate is opened.
func TestConfirmRolloutWaitsWithNoDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lt := &loadtester{}
		c := &hook.Confirmations{Strategy: canary(), Hooks: []*hook.Confirm{confirm(hook.TypeConfirmRollout, lt, "/gate/check")}}
		r := runner(t, c, 1, deploy.WithApproval(c))
		start := time.Now()
		go func() {
			time.Sleep(72*time.Hour - 30*time.Second)
			lt.Open("podinfo.test") // curl -d '{"name":"podinfo","namespace":"test"}' /gate/open
		}()
		rep, err := r.Run(t.Context(), rel)
		if err != nil || rep.Status != deploy.Succeeded {
			t.Fatalf("status %s, err %v", rep.Status, err)
		}
		at := appliedAt(start, rep)
		if at["canary"] != 72*time.Hour {
			t.Errorf("canary applied at %v, want at 72h, when the gate opened", at["canary"])
		}
		checks := lt.Calls("/gate/check")
		if n := len(checks); n != 72*60+1 {
			t.Errorf("gate checked %d times, want every minute for 72 hours, both ends included", n)
		}
		if p := checks[0].Payload; p.Phase != "Waiting" || p.Name != "podinfo" || p.Namespace != "test" {
			t.Errorf("payload %+v", p)
		}
	})
}

// TestConfirmationsComeWhereFlaggerPutsThem: confirm-rollout before the
// first step, confirm-traffic-increase before every step that raises the
// traffic, confirm-promotion before the last, which waits while the hooks
// of the analysis keep running ("While the promotion is paused, Flagger will
// continue to run the metrics checks and rollout hooks").
func TestConfirmationsComeWhereFlaggerPutsThem(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lt, promo := &loadtester{}, &loadtester{}
		lt.Open("podinfo.test")
		c := &hook.Confirmations{Strategy: canary(), Hooks: []*hook.Confirm{
			confirm(hook.TypeConfirmRollout, lt, "/gate/check"),
			confirm(hook.TypeConfirmTrafficIncrease, lt, "/gate/approve"),
			confirm(hook.TypeConfirmPromotion, promo, "/gate/check"),
		}}
		r := runner(t, c, 1, deploy.WithApproval(c), deploy.WithMonitors(loadTest(lt)))
		start := time.Now()
		go func() {
			time.Sleep(30*time.Minute - 30*time.Second)
			promo.Open("podinfo.test")
		}()
		rep, err := r.Run(t.Context(), rel)
		if err != nil || rep.Status != deploy.Succeeded {
			t.Fatalf("status %s, err %v", rep.Status, err)
		}
		if n := len(lt.Calls("/gate/check")); n != 1 {
			t.Errorf("confirm-rollout asked %d times, want once (before the canary)", n)
		}
		// 20%, 60%, 100% raise the traffic; the canary (0%) does not. As in
		// Flagger, the traffic increase is asked again with the promotion,
		// every interval while the promotion waits.
		want := []time.Duration{time.Minute, 2 * time.Minute}
		for m := 3; m <= 30; m++ {
			want = append(want, time.Duration(m)*time.Minute)
		}
		if d := cmp.Diff(want, since(start, lt.Calls("/gate/approve"))); d != "" {
			t.Errorf("confirm-traffic-increase calls (-want +got):\n%s", d)
		}
		if at := appliedAt(start, rep); at["100%"] != 30*time.Minute || at["60%"] != 2*time.Minute {
			t.Errorf("applied at %v; want 100%% at 30m, when the promotion was confirmed", at)
		}
		if n := len(promo.Calls("/gate/check")); n != 28 {
			t.Errorf("confirm-promotion asked %d times, want every minute from 3m to 30m (28)", n)
		}
		// The load test ran every minute of the analysis, the wait included.
		if n := len(lt.Calls("/")); n < 30 {
			t.Errorf("load test called %d times, want it to go on while the promotion waited", n)
		}
	})
}

// TestConfirmDeadlineRefuses: with a Deadline, a confirmation that keeps
// saying no refuses after it, and the release ends without deploying.
func TestConfirmDeadlineRefuses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lt := &loadtester{}
		h := confirm(hook.TypeConfirmRollout, lt, "/gate/halt")
		h.Deadline = time.Hour
		s := canary()
		c := &hook.Confirmations{Strategy: s, Hooks: []*hook.Confirm{h}}
		r := runner(t, c, 1, deploy.WithApproval(c))
		start := time.Now()
		rep, err := r.Run(t.Context(), rel)
		if !errors.Is(err, deploy.ErrAborted) {
			t.Fatalf("status %s, err %v; want ErrAborted", rep.Status, err)
		}
		if d := rep.Trigger.At.Sub(start); d != time.Hour {
			t.Errorf("refused after %v, want 1h", d)
		}
		if len(s.Applied()) != 0 {
			t.Errorf("applied %v", s.Applied())
		}
		if !strings.Contains(rep.Trigger.Reason, "did not confirm within 1h0m0s") || !strings.Contains(rep.Trigger.Reason, "403") {
			t.Errorf("trigger %q", rep.Trigger.Reason)
		}
	})
}

// TestRollbackWhileWaitingForConfirmation reproduces "The rollback hook will
// be called during the analysis and confirmation states": a rollback asked
// while the promotion waits rolls the release back, as a person's decision.
func TestRollbackWhileWaitingForConfirmation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lt := &loadtester{}
		c := &hook.Confirmations{Strategy: canary(),
			Hooks:     []*hook.Confirm{confirm(hook.TypeConfirmPromotion, lt, "/gate/check")},
			Rollbacks: []*hook.Rollback{rollbackGate(lt)}}
		r := runner(t, c, 1, deploy.WithApproval(c))
		start := time.Now()
		go func() {
			time.Sleep(10*time.Minute - 30*time.Second)
			lt.AskRollback("podinfo.test")
		}()
		rep, err := r.Run(t.Context(), rel)
		if !errors.Is(err, deploy.ErrAborted) || rep.Status != deploy.RolledBack {
			t.Fatalf("status %s, err %v; want rolled back, ErrAborted", rep.Status, err)
		}
		if rep.Trigger.At.Sub(start) != 10*time.Minute || !strings.Contains(rep.Trigger.Reason, "asked to roll back while a confirmation waited") {
			t.Errorf("trigger at %v: %q", rep.Trigger.At.Sub(start), rep.Trigger.Reason)
		}
	})
}

func TestConfirmValidate(t *testing.T) {
	for _, c := range []*hook.Confirm{
		{Type: "pre-rollout", Webhook: hook.Webhook{URL: "http://x/"}},
		{Type: hook.TypeConfirmPromotion, Webhook: hook.Webhook{URL: "ftp://x/"}},
		{Type: hook.TypeConfirmPromotion, Webhook: hook.Webhook{URL: "http://x/"}, Poll: -1},
	} {
		if err := c.Validate(); !errors.Is(err, deploy.ErrInvalid) {
			t.Errorf("%+v: err = %v, want ErrInvalid", c, err)
		}
	}
	if err := (&hook.Confirmations{}).Validate(); !errors.Is(err, deploy.ErrInvalid) {
		t.Errorf("no strategy: err = %v", err)
	}
}

// TestConfirmationsKeepTheStrategysOwnApprovals: a step the wrapped
// strategy marks Approval asks Confirmations.Approval (a person) first, then
// the confirmations that come before it.
func TestConfirmationsKeepTheStrategysOwnApprovals(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lt := &loadtester{}
		s := canary()
		s.Steps[2].Approval = true // a person approves 60 %
		manual := &gate.Manual{}
		c := &hook.Confirmations{Strategy: s, Approval: &gate.Approval{Approver: manual, Poll: time.Minute},
			Hooks: []*hook.Confirm{confirm(hook.TypeConfirmTrafficIncrease, lt, "/gate/approve")}}
		r := runner(t, c, 1, deploy.WithApproval(c))
		start := time.Now()
		go func() {
			time.Sleep(20*time.Minute - 30*time.Second)
			manual.Approve(gate.For{Service: "podinfo", Version: "v2"}, "alice")
		}()
		rep, err := r.Run(t.Context(), rel)
		if err != nil || rep.Status != deploy.Succeeded {
			t.Fatalf("status %s, err %v", rep.Status, err)
		}
		if at := appliedAt(start, rep); at["60%"] != 20*time.Minute {
			t.Errorf("60%% applied at %v, want at 20m, when alice approved", at["60%"])
		}
		// Traffic increase asked before 20 %, once; before 60 % only once the
		// person approved; before 100 %, once.
		if d := cmp.Diff([]time.Duration{time.Minute, 20 * time.Minute, 21 * time.Minute}, since(start, lt.Calls("/gate/approve"))); d != "" {
			t.Errorf("confirm-traffic-increase calls (-want +got):\n%s", d)
		}
	})
}

// TestConfirmationsAsAPreDeploymentGate: given to deploy.WithGates, it asks
// the confirm-rollout hooks only, within the runner's gate deadline.
func TestConfirmationsAsAPreDeploymentGate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lt := &loadtester{}
		c := &hook.Confirmations{Strategy: canary(), Hooks: []*hook.Confirm{
			confirm(hook.TypeConfirmRollout, lt, "/gate/check"), confirm(hook.TypeConfirmPromotion, lt, "/gate/halt")}}
		r := runner(t, canary(), 1, deploy.WithGates(c), deploy.WithGateDeadline(2*time.Hour))
		rep, err := r.Run(t.Context(), rel)
		if !errors.Is(err, deploy.ErrBlocked) {
			t.Fatalf("status %s, err %v; want blocked past the gate deadline", rep.Status, err)
		}
		if n := len(lt.Calls("/gate/check")); n < 120 || len(lt.Calls("/gate/halt")) != 0 {
			t.Errorf("confirm-rollout asked %d times, confirm-promotion %d times", n, len(lt.Calls("/gate/halt")))
		}
	})
}

// TestPreRolloutStepNamesItsStep: with Step set, the hook runs during that
// step's bake only, also in a process that did not see the earlier steps.
func TestPreRolloutStepNamesItsStep(t *testing.T) {
	lt := &loadtester{}
	h := preRollout(lt)
	h.Step = "canary"
	tg := monitor.Target{DeploymentID: "podinfo-v2-1", Service: "podinfo", Version: "v2", Environment: "test", Stage: "test", Phase: "bake", Step: "20%"}
	if obs, _ := h.Observe(t.Context(), tg); len(obs.Checks) != 0 {
		t.Errorf("ran during 20%%: %+v", obs)
	}
	tg.Step = "canary"
	if obs, _ := h.Observe(t.Context(), tg); len(obs.Checks) != 1 || !obs.Checks[0].OK {
		t.Errorf("did not run during canary: %+v", obs)
	}
	if obs, _ := h.Observe(t.Context(), tg); len(obs.Checks) != 0 {
		t.Errorf("ran again after it passed: %+v", obs)
	}
}
