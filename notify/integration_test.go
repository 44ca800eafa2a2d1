package notify_test

import (
	"encoding/json"
	"io"
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/deploykit/deploy"
	"github.com/deploykit/deploy/deploytest"
	"github.com/deploykit/deploy/monitor"
	"github.com/deploykit/deploy/notify"
	"github.com/deploykit/deploy/state"
)

// TestWebhookThroughRunner runs a release whose webhook receiver fails the
// first 3 requests: every event still arrives, once, in order, and the
// release takes no longer than its bakes and watch.
func TestWebhookThroughRunner(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		calls := 0
		var got []deploy.Event
		transport := roundTripper(func(r *http.Request) (*http.Response, error) {
			b, _ := io.ReadAll(r.Body)
			mu.Lock()
			defer mu.Unlock()
			calls++
			if calls <= 3 {
				return respond(http.StatusServiceUnavailable), nil
			}
			if err := notify.VerifySignature("s3cret", b, r.Header); err != nil {
				t.Errorf("delivery %d: %v", calls, err)
				return respond(http.StatusUnauthorized), nil
			}
			var e deploy.Event
			if err := json.Unmarshal(b, &e); err != nil {
				t.Errorf("delivery %d: %v", calls, err)
			}
			got = append(got, e)
			return respond(http.StatusOK), nil
		})
		wh := &notify.Webhook{URL: "https://hooks.example.com/deploy", Secret: "s3cret", Client: &http.Client{Transport: transport}}
		rec := &deploytest.Recorder{}
		r, err := deploy.NewRunner(&deploytest.Strategy{Steps: deploytest.Ramp(10*time.Minute, 0.05, 0.5, 1)},
			deploy.WithStore(state.NewMemory()),
			deploy.WithMonitors(deploytest.Healthy()),
			deploy.WithNotifiers(wh, rec),
			deploy.WithWaiver(deploy.FridayDeploy, "synctest's clock starts on a Saturday"),
			deploy.WithSchedule(monitor.Schedule{Windows: []monitor.Window{{Name: "intensive", Duration: time.Hour, Interval: 5 * time.Minute}}}),
		)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		rep, err := r.Run(t.Context(), release)
		if err != nil {
			t.Fatalf("Run: %v\n%s", err, rep.Markdown())
		}
		if d, want := time.Since(start), 30*time.Minute+time.Hour; d != want {
			t.Errorf("release took %v, want %v: a failing notifier delayed it", d, want)
		}
		if rep.Pending != 0 {
			t.Errorf("%d notifications pending", rep.Pending)
		}
		mu.Lock()
		defer mu.Unlock()
		want := rec.Events()
		if len(want) == 0 || want[len(want)-1].Kind != deploy.EventFinished {
			t.Fatalf("the recorder saw %v", rec.Kinds())
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("webhook events (-recorder +webhook):\n%s", diff)
		}
		if calls != len(want)+3 {
			t.Errorf("%d requests for %d events and 3 failures", calls, len(want))
		}
	})
}
