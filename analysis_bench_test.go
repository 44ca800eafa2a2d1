package deploy_test

import (
	"context"
	"io"
	"testing"
	"testing/synctest"
	"time"

	"go.opentelemetry.io/otel/trace/noop"

	"github.com/deploykit/deploy"
	"github.com/deploykit/deploy/deploytest"
	"github.com/deploykit/deploy/monitor"
	"github.com/deploykit/deploy/notify"
	"github.com/deploykit/deploy/state"
)

// Benchmark24hReleaseWithAnalysis is Benchmark24hRelease with a background
// analysis measured every minute from the first step (1,440 measurements
// besides the 1,440 observations): each measurement changes the run's
// counters, so each round saves the record. ns/op is the wall time of the
// whole release; compare with Benchmark24hRelease for the analysis's cost.
func Benchmark24hReleaseWithAnalysis(b *testing.B) {
	measure := func(context.Context, monitor.Target) (float64, error) { return 0.99, nil }
	a := deploy.Analysis{Name: "success-rate", Metrics: []deploy.AnalysisMetric{{Name: "success-rate", Measure: measure, Interval: time.Minute, Success: deploy.AtLeast(0.95)}}}
	for b.Loop() {
		synctest.Test(&testing.T{}, func(t *testing.T) {
			s := &deploytest.Strategy{Steps: deploytest.Ramp(24*time.Hour/5, 0.01, 0.05, 0.25, 0.5, 1)}
			r, err := deploy.NewRunner(s, deploy.WithStore(state.NewMemory()), deploy.WithTracerProvider(noop.NewTracerProvider()),
				deploy.WithMonitors(deploytest.Healthy()), deploy.WithNotifiers(&notify.Console{W: io.Discard}),
				deploy.WithWaiver(deploy.FridayDeploy, "benchmark"), deploy.WithSchedule(monitor.Schedule{}),
				deploy.WithBackgroundAnalysis(a, 0))
			if err != nil {
				b.Fatal(err)
			}
			rep, err := r.Run(t.Context(), deploy.Release{Service: "bench", Version: "v2"})
			if err != nil || rep.Status != deploy.Succeeded {
				b.Fatal(err)
			}
		})
	}
}
