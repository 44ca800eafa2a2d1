package deploy_test

import (
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/deploykit/deploy"
	"github.com/deploykit/deploy/deploytest"
	"github.com/deploykit/deploy/monitor"
)

// TestRollbackCitesFailingTraces: when the metric that breached carries
// trace IDs of failing requests (a Prometheus source with Exemplars), the
// trigger, the report and the rollback span name them.
func TestRollbackCitesFailingTraces(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ids := []string{"4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7a3ce929d0e0e4736"}
		m := &deploytest.Monitor{Script: func(tg monitor.Target) (monitor.Observation, error) {
			if tg.Phase != "bake" {
				return deploytest.Health{ErrorRate: 0.001, P95: 100 * time.Millisecond}.Observation(), nil
			}
			o := deploytest.Health{ErrorRate: 0.2, P95: 100 * time.Millisecond}.Observation()
			er := o.Metrics[monitor.ErrorRate]
			er.Traces = ids
			o.Set(monitor.ErrorRate, er)
			return o, nil
		}}
		sr := tracetest.NewSpanRecorder()
		tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
		h := newHarness(t, ramp(), m, deploy.WithTracerProvider(tp))
		rep, _ := h.runner.Run(t.Context(), rel)
		if rep.Status != deploy.RolledBack || rep.Trigger == nil {
			t.Fatalf("status %s", rep.Status)
		}
		if !slices.Equal(rep.Trigger.Traces, ids) || !strings.Contains(rep.Trigger.Reason, "failing traces: "+ids[0]+", "+ids[1]) {
			t.Errorf("trigger %+v", rep.Trigger)
		}
		if md := rep.Markdown(); !strings.Contains(md, ids[0]) {
			t.Errorf("the report does not cite %s", ids[0])
		}
		found := false
		for _, sp := range sr.Ended() {
			if sp.Name() == "deploy.rollback" {
				found = true
				if got := attrs(sp)["deploy.rollback.traces"].AsStringSlice(); !slices.Equal(got, ids) {
					t.Errorf("deploy.rollback.traces = %v", got)
				}
			}
		}
		if !found {
			t.Error("no deploy.rollback span")
		}
	})
}
