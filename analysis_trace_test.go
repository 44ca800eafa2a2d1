package deploy_test

import (
	"testing"
	"testing/synctest"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/deploykit/deploy"
	"github.com/deploykit/deploy/deploytest"
	"github.com/deploykit/deploy/state"
)

// Each round of an analysis that measures is a deploy.analysis span under
// the step's span, with one deploy.measurement span per measurement: the
// metric, the value, the result; a failed measurement and the failed run
// have an Error status.
func TestAnalysisSpans(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sr := tracetest.NewSpanRecorder()
		tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
		s := &deploytest.Strategy{Steps: deploytest.Ramp(5*time.Minute, 0.2, 1)}
		a := &deploy.Analysis{Name: "success-rate", Metrics: []deploy.AnalysisMetric{{
			Name: "success-rate", Measure: newSeries(0.99, 0.5).measure, Interval: time.Minute, Count: 3, Success: deploy.AtLeast(0.95),
		}}}
		r := decisionRunner(t, s, state.NewMemory(), deploy.WithTracerProvider(tp), deploy.WithStepRules(deploy.StepRule{Step: "20%", Analysis: a}))
		if _, err := r.Run(t.Context(), rel); err == nil {
			t.Fatal("want a rollback")
		}
		byID := map[string]sdktrace.ReadOnlySpan{}
		for _, sp := range sr.Ended() {
			byID[sp.SpanContext().SpanID().String()] = sp
		}
		var analyses, measurements []sdktrace.ReadOnlySpan
		for _, sp := range sr.Ended() {
			switch sp.Name() {
			case "deploy.analysis":
				analyses = append(analyses, sp)
				if p := byID[sp.Parent().SpanID().String()]; p == nil || p.Name() != "deploy.step" {
					t.Errorf("deploy.analysis is not under a deploy.step span")
				}
			case "deploy.measurement":
				measurements = append(measurements, sp)
				if p := byID[sp.Parent().SpanID().String()]; p == nil || p.Name() != "deploy.analysis" {
					t.Errorf("deploy.measurement is not under a deploy.analysis span")
				}
			}
		}
		if len(analyses) != 2 || len(measurements) != 2 {
			t.Fatalf("%d analysis spans, %d measurement spans; want 2 and 2", len(analyses), len(measurements))
		}
		last := attrs(measurements[1])
		if last["deploy.metric"] != attribute.StringValue("success-rate") || last["deploy.measurement.value"] != attribute.Float64Value(0.5) ||
			last["deploy.measurement.phase"] != attribute.StringValue("failed") || measurements[1].Status().Code != codes.Error {
			t.Errorf("measurement span = %v, %v", last, measurements[1].Status())
		}
		if at := attrs(analyses[1]); at["deploy.analysis"] != attribute.StringValue("success-rate") || at["deploy.analysis.phase"] != attribute.StringValue("failed") || analyses[1].Status().Code != codes.Error {
			t.Errorf("analysis span = %v", at)
		}
	})
}
