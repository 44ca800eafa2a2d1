package deploy_test

import (
	"context"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/deploykit/deploy"
	"github.com/deploykit/deploy/deploytest"
)

func attrs(s sdktrace.ReadOnlySpan) map[attribute.Key]attribute.Value {
	m := map[attribute.Key]attribute.Value{}
	for _, kv := range s.Attributes() {
		m[kv.Key] = kv.Value
	}
	return m
}

func TestSpans(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sr := tracetest.NewSpanRecorder()
		tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
		s := &deploytest.Strategy{Steps: deploytest.Ramp(2*time.Minute, 0.25, 1)}
		h := newHarness(t, s, deploytest.Regression(1, deploytest.Health{ErrorRate: 0.3, P95: time.Second}),
			deploy.WithTracerProvider(tp), deploy.WithGates(deploy.GateFunc(func(ctx context.Context, _ *deploy.Deployment) error {
				deploy.Evidence(ctx, "pipeline 812 green")
				return nil
			})))
		rep, _ := h.runner.Run(t.Context(), rel)
		if rep.Status != deploy.RolledBack {
			t.Fatalf("status %s", rep.Status)
		}
		spans := sr.Ended()
		byID := map[string]sdktrace.ReadOnlySpan{}
		count := map[string]int{}
		var run sdktrace.ReadOnlySpan
		for _, sp := range spans {
			byID[sp.SpanContext().SpanID().String()] = sp
			count[sp.Name()]++
			if sp.Name() == "deploy.run" {
				run = sp
			}
		}
		if run == nil {
			t.Fatal("no deploy.run span")
		}
		want := map[attribute.Key]attribute.Value{
			"service.name":                attribute.StringValue("checkout"),
			"service.version":             attribute.StringValue("v2"),
			"deployment.environment.name": attribute.StringValue("production"),
			"deploy.status":               attribute.StringValue("rolled back"),
		}
		got := attrs(run)
		for k, v := range want {
			if got[k] != v {
				t.Errorf("run span %s = %v, want %v", k, got[k].Emit(), v.Emit())
			}
		}
		if run.Status().Code != codes.Error {
			t.Errorf("run span status %v, want Error", run.Status())
		}
		parent := func(sp sdktrace.ReadOnlySpan) string {
			if p, ok := byID[sp.Parent().SpanID().String()]; ok {
				return p.Name()
			}
			return ""
		}
		phases := []string{}
		for _, sp := range spans {
			switch sp.Name() {
			case "deploy.phase":
				ph := attrs(sp)["deploy.phase"].AsString()
				phases = append(phases, ph)
				if parent(sp) != "deploy.run" {
					t.Errorf("phase span parent %q", parent(sp))
				}
				// The deploy phase led to the rollback: it failed.
				wantCode := codes.Unset
				if ph == "deploy" {
					wantCode = codes.Error
				}
				if sp.Status().Code != wantCode || (ph == "deploy" && !strings.HasPrefix(sp.Status().Description, "rolled back: error rate")) {
					t.Errorf("phase %s span status %+v, want %v", ph, sp.Status(), wantCode)
				}
			case "deploy.step":
				if parent(sp) != "deploy.phase" {
					t.Errorf("step span parent %q", parent(sp))
				}
			case "deploy.gate":
				if parent(sp) != "deploy.phase" {
					t.Errorf("gate span parent %q", parent(sp))
				}
				if ev := attrs(sp)["deploy.gate.evidence"].AsString(); ev != "pipeline 812 green" {
					t.Errorf("gate span deploy.gate.evidence = %q, want the gate's evidence", ev)
				}
			case "deploy.observe", "deploy.verdict":
				if p := parent(sp); p != "deploy.step" && p != "deploy.phase" {
					t.Errorf("%s span parent %q", sp.Name(), p)
				}
			case "deploy.notify":
				if parent(sp) != "deploy.run" {
					t.Errorf("notify span parent %q", parent(sp))
				}
			case "deploy.rollback":
				if parent(sp) != "deploy.phase" {
					t.Errorf("rollback span parent %q", parent(sp))
				}
			}
		}
		if diff := cmp.Diff([]string{"preflight", "deploy", "rollback", "communicate"}, phases); diff != "" {
			t.Errorf("phases (-want +got):\n%s", diff)
		}
		for _, name := range []string{"deploy.gate", "deploy.step", "deploy.observe", "deploy.verdict", "deploy.rollback", "deploy.notify"} {
			if count[name] == 0 {
				t.Errorf("no %s span", name)
			}
		}
		// The failing step and verdict carry error status and the verdict.
		var failedStep, rollbackVerdict bool
		for _, sp := range spans {
			a := attrs(sp)
			if sp.Name() == "deploy.step" && a["deploy.step"].AsString() == "100%" {
				failedStep = sp.Status().Code == codes.Error && a["deploy.exposure"].AsFloat64() == 1
			}
			if sp.Name() == "deploy.verdict" && a["deploy.verdict"].AsString() == "rollback" {
				rollbackVerdict = sp.Status().Code == codes.Error
			}
		}
		if !failedStep || !rollbackVerdict {
			t.Errorf("failed step span with error status: %v; rollback verdict span with error status: %v", failedStep, rollbackVerdict)
		}
		if count["deploy.step"] != 2 {
			t.Errorf("%d step spans, want 2", count["deploy.step"])
		}
	})
}
