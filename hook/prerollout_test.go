package hook_test

import (
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/deploykit/deploy"
	"github.com/deploykit/deploy/hook"
)

func preRollout(lt *loadtester) *hook.PreRollout {
	return &hook.PreRollout{Webhook: hook.Webhook{Name: "acceptance-test", URL: "http://flagger-loadtester.test/", Timeout: 30 * time.Second,
		Metadata: map[string]string{"type": "bash", "cmd": "curl -sd 'test' http://podinfo-canary:9898/token | grep token"}, Client: lt.Client()}}
}

// TestPreRolloutThresholdTenRollsBackAtTheTenthFailedCheck reproduces
// Flagger's documented pre-rollout semantics
// (https://docs.flagger.app/usage/webhooks: "The canary advancement is paused
// if a pre-rollout hook fails and if the number of failures reach the
// threshold the canary will be rollback"; "Flagger will retry until the
// analysis threshold is reached"): with analysis.threshold 10 and an interval
// of 1 minute, a pre-rollout hook that always fails is called against the
// deployed canary once a minute, the canary gets no traffic meanwhile, and
// the 10th failed check rolls back, 10 minutes after the canary was deployed.
func TestPreRolloutThresholdTenRollsBackAtTheTenthFailedCheck(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lt := &loadtester{Status: func(int) int { return http.StatusInternalServerError }}
		s := canary()
		r := runner(t, s, 10, deploy.WithMonitors(preRollout(lt)))
		start := time.Now()
		rep, err := r.Run(t.Context(), rel)
		if !errors.Is(err, deploy.ErrUnhealthy) || rep.Status != deploy.RolledBack {
			t.Fatalf("status %s, err %v; want rolled back, ErrUnhealthy", rep.Status, err)
		}
		calls := lt.Calls("/")
		var want []time.Duration
		for i := 1; i <= 10; i++ {
			want = append(want, time.Duration(i)*time.Minute)
		}
		if d := cmp.Diff(want, since(start, calls)); d != "" {
			t.Errorf("pre-rollout calls after the canary was deployed (-want +got):\n%s", d)
		}
		if d := cmp.Diff([]string{"test/canary"}, s.Applied()); d != "" {
			t.Errorf("applied (-want +got):\n%s", d)
		}
		if !strings.Contains(rep.Trigger.Reason, "pre-rollout acceptance-test") || !strings.Contains(rep.Trigger.Reason, "500") {
			t.Errorf("trigger %q does not name the hook and its answer", rep.Trigger.Reason)
		}
		p := calls[0].Payload
		if p.Name != "podinfo" || p.Namespace != "test" || p.Phase != "Progressing" || p.Metadata["type"] != "bash" || p.Checksum == "" {
			t.Errorf("payload %+v", p)
		}
	})
}

// TestPreRolloutNinthFailureStillWaits: with threshold 10, nine failures
// hold the canary back, and a pass then lets it advance; the hook is not
// called again once it passed.
func TestPreRolloutNinthFailureStillWaits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lt := &loadtester{Status: func(n int) int {
			if n <= 9 {
				return http.StatusServiceUnavailable
			}
			return http.StatusOK
		}}
		s := canary()
		r := runner(t, s, 10, deploy.WithMonitors(preRollout(lt)))
		start := time.Now()
		rep, err := r.Run(t.Context(), rel)
		if err != nil || rep.Status != deploy.Succeeded {
			t.Fatalf("status %s, err %v; want succeeded", rep.Status, err)
		}
		if n := len(lt.Calls("/")); n != 10 {
			t.Errorf("pre-rollout called %d times, want 10 (9 failures, then the pass)", n)
		}
		// The 20% step came after the pass at 10 minutes, not before.
		for _, e := range rep.Timeline {
			if e.Name == "20%" && e.Outcome == "applied" && e.At.Sub(start) < 10*time.Minute {
				t.Errorf("20%% applied at %v, before the pre-rollout passed", e.At.Sub(start))
			}
		}
		if !slices.Equal(s.Applied(), []string{"test/canary", "test/20%", "test/60%", "test/100%"}) {
			t.Errorf("applied %v", s.Applied())
		}
	})
}
