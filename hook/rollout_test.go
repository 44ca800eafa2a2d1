package hook_test

import (
	"errors"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/deploykit/deploy"
	"github.com/deploykit/deploy/deploytest"
	"github.com/deploykit/deploy/hook"
	"github.com/deploykit/deploy/monitor"
)

func loadTest(lt *loadtester) *hook.Rollout {
	return &hook.Rollout{Webhook: hook.Webhook{Name: "load-test", URL: "http://flagger-loadtester.test/", Timeout: 5 * time.Second,
		Metadata: map[string]string{"type": "cmd", "cmd": "hey -z 1m -q 10 -c 2 http://podinfo-canary.test:9898/"}, Client: lt.Client()}}
}

// TestRolloutIsCalledEveryIntervalOfTheAnalysis reproduces Flagger's rollout
// hooks ("executed during the analysis on each iteration before the metric
// checks", https://docs.flagger.app/usage/webhooks): with an interval of one
// minute and steps baking three minutes, the hook is called three times per
// step, every minute, and never for the baseline, the post-deployment watch
// or anything after the analysis.
func TestRolloutIsCalledEveryIntervalOfTheAnalysis(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lt := &loadtester{}
		s := &deploytest.Strategy{Steps: deploytest.Ramp(3*time.Minute, 0.2, 0.6, 1)}
		r := runner(t, s, 5, deploy.WithMonitors(loadTest(lt)),
			deploy.WithSchedule(monitor.Schedule{Windows: []monitor.Window{{Name: "watch", Duration: 5 * time.Minute, Interval: time.Minute}}}))
		start := time.Now()
		rep, err := r.Run(t.Context(), rel)
		if err != nil || rep.Status != deploy.Succeeded {
			t.Fatalf("status %s, err %v", rep.Status, err)
		}
		var want []time.Duration
		for i := 1; i <= 9; i++ {
			want = append(want, time.Duration(i)*time.Minute)
		}
		if d := cmp.Diff(want, since(start, lt.Calls("/"))); d != "" {
			t.Errorf("rollout calls (-want +got):\n%s", d)
		}
	})
}

// TestRolloutFailuresCountTowardTheThreshold: a load test that fails twice
// with threshold 2 rolls the release back at the second failure, and the
// step does not advance after the first.
func TestRolloutFailuresCountTowardTheThreshold(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lt := &loadtester{Status: func(n int) int {
			if n >= 2 {
				return http.StatusInternalServerError
			}
			return http.StatusOK
		}}
		s := &deploytest.Strategy{Steps: deploytest.Ramp(2*time.Minute, 0.2, 0.6, 1)}
		r := runner(t, s, 2, deploy.WithMonitors(loadTest(lt)))
		start := time.Now()
		rep, err := r.Run(t.Context(), rel)
		if !errors.Is(err, deploy.ErrUnhealthy) || rep.Status != deploy.RolledBack {
			t.Fatalf("status %s, err %v", rep.Status, err)
		}
		// 1 min pass, 2 min fail (the step waits), 3 min fail: rolled back.
		if d := cmp.Diff([]time.Duration{time.Minute, 2 * time.Minute, 3 * time.Minute}, since(start, lt.Calls("/"))); d != "" {
			t.Errorf("rollout calls (-want +got):\n%s", d)
		}
		if d := cmp.Diff([]string{"test/20%"}, s.Applied()); d != "" {
			t.Errorf("applied (-want +got):\n%s", d)
		}
	})
}
