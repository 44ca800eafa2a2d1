package monitor_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/deploykit/deploy"
	"github.com/deploykit/deploy/deploytest"
	"github.com/deploykit/deploy/monitor"
	"github.com/deploykit/deploy/rollback"
	"github.com/deploykit/deploy/state"
)

// TestWebRollsAReleaseBack runs a release judged by a Web metric, as an
// Argo AnalysisTemplate with a web provider and successCondition
// "result >= 0.99" would: a health endpoint whose success ratio drops to 0.9
// for v2 once it has 50 % of the traffic rolls the release back there.
func TestWebRollsAReleaseBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		health := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ratio := 0.999
			if r.URL.Query().Get("version") == "v2" && r.URL.Query().Get("exposure") == "0.5" {
				ratio = 0.9
			}
			fmt.Fprintf(w, `{"data":{"service":%q,"successRatio":%v}}`, r.URL.Query().Get("service"), ratio)
		})
		client := &http.Client{Transport: roundTrip(func(r *http.Request) (*http.Response, error) {
			rec := httptest.NewRecorder()
			health.ServeHTTP(rec, r)
			return rec.Result(), nil
		})}
		web := &monitor.Web{Metric: "success_ratio", Client: client, JSONPath: "{$.data.successRatio}",
			URL: "http://health.internal/api?service={{.Service}}&version={{.Version}}&exposure={{.Exposure}}"}
		p := deploy.DefaultPolicy()
		p.Triggers = []rollback.Trigger{rollback.Below("success_ratio", 0.99)}
		s := &deploytest.Strategy{Steps: deploytest.Ramp(5*time.Minute, 0.1, 0.5, 1)}
		r, err := deploy.NewRunner(s, deploy.WithStore(state.NewMemory()), deploy.WithMonitors(web), deploy.WithRollbackPolicy(p),
			deploy.WithNotifiers(&deploytest.Recorder{}), deploy.WithWaiver(deploy.FridayDeploy, "test"))
		if err != nil {
			t.Fatal(err)
		}
		rep, err := r.Run(t.Context(), deploy.Release{Service: "checkout", Version: "v2", PreviousVersion: "v1", Environment: "staging"})
		if !errors.Is(err, deploy.ErrUnhealthy) || rep.Status != deploy.RolledBack {
			t.Fatalf("status %s, err %v", rep.Status, err)
		}
		if rep.Trigger.Step != "50%" || !strings.Contains(rep.Trigger.Reason, "success_ratio") {
			t.Errorf("trigger at %q: %q", rep.Trigger.Step, rep.Trigger.Reason)
		}
	})
}

type roundTrip func(*http.Request) (*http.Response, error)

func (f roundTrip) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
