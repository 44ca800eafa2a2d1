package hook_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/deploykit/deploy"
	"github.com/deploykit/deploy/deploytest"
	"github.com/deploykit/deploy/hook"
	"github.com/deploykit/deploy/monitor"
)

func postRollout(lt *loadtester) *hook.PostRollout {
	return &hook.PostRollout{Webhook: hook.Webhook{Name: "notify", URL: "http://telegram.bot:8080/post", Timeout: 5 * time.Second,
		Metadata: map[string]string{"some": "message"}, Client: lt.Client()}}
}

// TestPostRolloutRunsOnce reproduces Flagger's post-rollout hook ("executed
// after the canary has been promoted or rolled back",
// https://docs.flagger.app/usage/webhooks): of all the events of a release —
// a dozen here — it is called once, at the end, with phase Succeeded, or
// Failed for a release that rolled back.
func TestPostRolloutRunsOnce(t *testing.T) {
	for _, tc := range []struct {
		name  string
		bad   bool
		phase string
	}{{"promoted", false, "Succeeded"}, {"rolled back", true, "Failed"}} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				lt := &loadtester{}
				rec := &deploytest.Recorder{}
				var m deploy.Monitor = deploytest.Healthy()
				if tc.bad {
					m = deploytest.Regression(0.6, deploytest.Health{ErrorRate: 0.2})
				}
				r := runner(t, canary(), 1, deploy.WithMonitors(m), deploy.WithNotifiers(rec, postRollout(lt)))
				rep, _ := r.Run(t.Context(), rel)
				calls := lt.Calls("/post")
				if len(calls) != 1 {
					t.Fatalf("post-rollout called %d times over %d events, want once", len(calls), len(rec.Events()))
				}
				if p := calls[0].Payload; p.Phase != tc.phase || p.Metadata["some"] != "message" || p.Name != "podinfo" {
					t.Errorf("payload %+v, want phase %s (release %s)", p, tc.phase, rep.Status)
				}
				if len(rec.Events()) < 10 {
					t.Errorf("only %d events", len(rec.Events()))
				}
			})
		})
	}
}

// TestPostRolloutRetriedUntilYes: an answer that is not a yes is an error,
// so the runner's outbox tries again; once the receiver says yes, the event
// is delivered and never sent again.
func TestPostRolloutRetriedUntilYes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := 0
		lt := &loadtester{}
		h := postRollout(lt)
		h.Client = &http.Client{Transport: roundTripper(func(r *http.Request) (*http.Response, error) {
			n++
			if n <= 2 {
				return &http.Response{StatusCode: http.StatusBadGateway, Body: http.NoBody, Request: r}, nil
			}
			return lt.Client().Transport.RoundTrip(r)
		})}
		r := runner(t, canary(), 1, deploy.WithNotifiers(h))
		rep, err := r.Run(t.Context(), rel)
		if err != nil || rep.Pending != 0 {
			t.Fatalf("err %v, %d pending: %v", err, rep.Pending, rep.Notifications)
		}
		if n != 3 || len(lt.Calls("/post")) != 1 {
			t.Errorf("%d attempts, %d delivered; want 3 attempts, 1 delivery", n, len(lt.Calls("/post")))
		}
		// The same event again (a redelivery after a restart) is not sent.
		e := deploy.Event{Kind: deploy.EventFinished, DeploymentID: rep.ID, Seq: 99, Status: deploy.Succeeded, Release: rep.Release}
		for range 2 {
			if err := h.Notify(context.Background(), e); err != nil {
				t.Fatal(err)
			}
		}
		if n != 4 {
			t.Errorf("%d attempts after two deliveries of one event, want 4", n)
		}
	})
}

// TestPostRolloutSkipsReleasesThatDeployedNothing: a blocked release was
// neither promoted nor rolled back.
func TestPostRolloutSkipsReleasesThatDeployedNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lt := &loadtester{}
		r := runner(t, canary(), 1, deploy.WithNotifiers(postRollout(lt)),
			deploy.WithGates(deploy.GateFunc(func(context.Context, *deploy.Deployment) error { return errors.New("change freeze") })),
			deploy.WithSchedule(monitor.Schedule{}))
		rep, err := r.Run(t.Context(), rel)
		if !errors.Is(err, deploy.ErrBlocked) {
			t.Fatalf("status %s, err %v", rep.Status, err)
		}
		if n := len(lt.Calls("/post")); n != 0 {
			t.Errorf("post-rollout called %d times for a blocked release", n)
		}
	})
}
