package hook_test

import (
	"strconv"
	"testing"
	"testing/synctest"
	"time"

	"github.com/deploykit/deploy"
	"github.com/deploykit/deploy/deploytest"
	"github.com/deploykit/deploy/hook"
)

// TestEventPostsEveryEventAsFlagger: every event is posted with Flagger's
// event metadata (eventMessage, eventType, timestamp in Unix milliseconds)
// and the webhook's own metadata for the other keys.
func TestEventPostsEveryEventAsFlagger(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lt := &loadtester{}
		rec := &deploytest.Recorder{}
		h := &hook.Event{Webhook: hook.Webhook{Name: "send to Slack", URL: "http://event-receiver.notifications/event", Client: lt.Client(),
			Metadata: map[string]string{"environment": "test", "cluster": "flagger-test", "eventType": "not this"}}}
		r := runner(t, canary(), 1, deploy.WithMonitors(deploytest.Regression(0.6, deploytest.Health{ErrorRate: 0.2})), deploy.WithNotifiers(rec, h))
		if _, err := r.Run(t.Context(), rel); err == nil {
			t.Fatal("the regression did not roll back")
		}
		events, calls := rec.Events(), lt.Calls("/event")
		if len(calls) != len(events) {
			t.Fatalf("%d calls for %d events", len(calls), len(events))
		}
		phases := map[string]bool{}
		for i, c := range calls {
			e, p := events[i], c.Payload
			phases[p.Phase] = true
			if p.Metadata["eventMessage"] != e.Message || p.Metadata["timestamp"] != strconv.FormatInt(e.At.UnixMilli(), 10) ||
				p.Metadata["cluster"] != "flagger-test" || p.Name != "podinfo" || p.Namespace != "test" || p.Phase != string(hook.PhaseOf(e)) {
				t.Errorf("event %d (%s %q): payload %+v", i, e.Kind, e.Message, p)
			}
			want := "Normal"
			if e.Kind == deploy.EventRollback || e.Kind == deploy.EventFinished || e.Kind == deploy.EventObservation && e.Verdict == "rollback" {
				want = "Warning"
			}
			if p.Metadata["eventType"] != want {
				t.Errorf("event %d (%s, verdict %q): eventType %q, want %q", i, e.Kind, e.Verdict, p.Metadata["eventType"], want)
			}
		}
		for _, ph := range []string{"Initialized", "Progressing", "Failed"} {
			if !phases[ph] {
				t.Errorf("no event in phase %s; saw %v", ph, phases)
			}
		}
	})
}

func TestPhaseOf(t *testing.T) {
	for _, tc := range []struct {
		e    deploy.Event
		want hook.Phase
	}{
		{deploy.Event{Kind: deploy.EventFinished, Status: deploy.Succeeded}, hook.PhaseSucceeded},
		{deploy.Event{Kind: deploy.EventFinished, Status: deploy.RolledBack}, hook.PhaseFailed},
		{deploy.Event{Kind: deploy.EventRollback, Phase: deploy.PhaseDeploy}, hook.PhaseFailed},
		{deploy.Event{Kind: deploy.EventGate, Gate: "waiting", Phase: deploy.PhaseDeploy}, hook.PhaseWaiting},
		{deploy.Event{Kind: deploy.EventStarted, Phase: deploy.PhasePreflight}, hook.PhaseInitialized},
		{deploy.Event{Kind: deploy.EventObservation, Phase: deploy.PhaseVerify}, hook.PhaseFinalising},
		{deploy.Event{Kind: deploy.EventStep, Phase: deploy.PhaseDeploy, At: time.Unix(0, 0)}, hook.PhaseProgressing},
	} {
		if got := hook.PhaseOf(tc.e); got != tc.want {
			t.Errorf("PhaseOf(%s in %s) = %s, want %s", tc.e.Kind, tc.e.Phase, got, tc.want)
		}
	}
}
