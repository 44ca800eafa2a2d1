package deploy_test

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	gocmp "github.com/google/go-cmp/cmp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/deploykit/deploy"
	"github.com/deploykit/deploy/deploytest"
	"github.com/deploykit/deploy/monitor"
	"github.com/deploykit/deploy/state"
)

// doraPoint is one data point of a DORA instrument, for comparison.
type doraPoint struct {
	Metric, Unit, Attrs string
	Count               int64    // counter value, or histogram count
	Sum                 float64  // histogram sum
	Buckets             []uint64 // histogram bucket counts
}

func collectDORA(t *testing.T, reader *sdkmetric.ManualReader) []doraPoint {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(t.Context(), &rm); err != nil {
		t.Fatal(err)
	}
	enc := attribute.DefaultEncoder()
	var out []doraPoint
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					out = append(out, doraPoint{Metric: m.Name, Unit: m.Unit, Attrs: p.Attributes.Encoded(enc), Count: p.Value})
				}
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					out = append(out, doraPoint{Metric: m.Name, Unit: m.Unit, Attrs: p.Attributes.Encoded(enc), Count: int64(p.Count), Sum: p.Sum, Buckets: p.BucketCounts})
				}
			}
		}
	}
	slices.SortFunc(out, func(a, b doraPoint) int { return cmp.Compare(a.Metric+" "+a.Attrs, b.Metric+" "+b.Attrs) })
	return out
}

// TestDORAMetricsOfTenReleases runs ten releases through a runner — seven
// succeed, two roll back, one fails its rollback — and records the DORA
// metrics of each final record with a second runner whose meter provider is
// a manual reader's (the runner that ran them has a no-op one, so that the
// engine's own call, once wired into finish, is not counted twice).
func TestDORAMetricsOfTenReleases(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := state.NewMemory()
		reader := sdkmetric.NewManualReader()
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
		metrics, err := deploy.NewRunner(&deploytest.Strategy{Steps: deploytest.Ramp(time.Minute, 1)}, deploy.WithStore(store), deploy.WithMeterProvider(mp))
		if err != nil {
			t.Fatal(err)
		}
		bad := deploytest.Health{ErrorRate: 0.001, P95: 900 * time.Millisecond}
		// How long before each release its commit was made; a release
		// reaches everyone 5 minutes after it starts.
		ages := []time.Duration{10 * time.Minute, 30 * time.Minute, time.Hour, 2 * time.Hour, 5 * time.Hour, 24 * time.Hour, 72 * time.Hour}
		for i, kind := range []string{"ok", "ok", "ok", "ok", "ok", "ok", "ok", "regress", "regress", "rollback fails"} {
			s := &deploytest.Strategy{Steps: deploytest.Ramp(5*time.Minute, 0.1, 1)}
			m := deploytest.Healthy()
			switch kind {
			case "regress":
				m = deploytest.Regression(1, bad)
			case "rollback fails":
				m = deploytest.Regression(1, bad)
				s.RollbackErr = errors.New("kubectl: connection refused")
			}
			r := openRunner(t, s, store, deploy.WithMonitors(m), deploy.WithInterval(time.Minute), deploy.WithMeterProvider(noop.NewMeterProvider()))
			rl := rel
			rl.Version = fmt.Sprintf("v%d", i+2)
			if i < len(ages) {
				rl.CommitTime = time.Now().Add(-ages[i])
			} else {
				rl.CommitTime = time.Now().Add(-time.Hour)
			}
			rep, _ := r.Run(t.Context(), rl)
			rec, err := store.Load(t.Context(), rep.ID)
			if err != nil {
				t.Fatal(err)
			}
			if want := map[string]deploy.Status{"ok": deploy.Succeeded, "regress": deploy.RolledBack, "rollback fails": deploy.RollbackFailed}[kind]; rec.Status != want {
				t.Fatalf("release %d: %s, want %s", i, rec.Status, want)
			}
			metrics.RecordDORA(t.Context(), rec)
		}
		where := "deployment.environment.name=production,"
		want := []doraPoint{
			{Metric: "deploy.dora.deployments", Unit: "{deployment}", Attrs: "deploy.status=rollback failed," + where + "deployment.status=failed,service.name=checkout", Count: 1},
			{Metric: "deploy.dora.deployments", Unit: "{deployment}", Attrs: "deploy.status=rolled back," + where + "deployment.status=failed,service.name=checkout", Count: 2},
			{Metric: "deploy.dora.deployments", Unit: "{deployment}", Attrs: "deploy.status=succeeded," + where + "deployment.status=succeeded,service.name=checkout", Count: 7},
			// Commit ages plus the 5 minutes to 100 %: 900 s, 2100 s, 3900 s,
			// 7500 s, 18300 s, 86700 s and 259500 s.
			{Metric: "deploy.dora.lead_time", Unit: "s", Attrs: where + "service.name=checkout", Count: 7, Sum: 900 + 2100 + 3900 + 7500 + 18300 + 86700 + 259500,
				Buckets: []uint64{0, 1, 0, 1, 1, 1, 1, 0, 1, 1, 0, 0, 0}},
			// Each regression breaches at +6m (a minute after 100 %) and its
			// rollback is verified a minute later; the failed rollback
			// restored nothing.
			{Metric: "deploy.dora.time_to_restore", Unit: "s", Attrs: "deploy.trigger=breach," + where + "service.name=checkout", Count: 2, Sum: 120,
				Buckets: []uint64{2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}},
		}
		if diff := gocmp.Diff(want, collectDORA(t, reader)); diff != "" {
			t.Errorf("DORA metrics (-want +got):\n%s", diff)
		}
	})
}

// TestDORAIgnoresReleasesThatDeployedNothing: a blocked release, or one
// still running, is no deployment.
func TestDORAIgnoresReleasesThatDeployedNothing(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	r, err := deploy.NewRunner(&deploytest.Strategy{Steps: deploytest.Ramp(time.Minute, 1)}, deploy.WithStore(state.NewMemory()),
		deploy.WithMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))), deploy.WithSchedule(monitor.Schedule{}))
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range []deploy.Status{deploy.Blocked, deploy.Running} {
		r.RecordDORA(t.Context(), &state.Record{Release: rel, Status: st, Trigger: &state.Trigger{Kind: "blocked", Reason: "window closed"}})
	}
	r.RecordDORA(t.Context(), nil)
	if got := collectDORA(t, reader); len(got) != 0 {
		t.Errorf("recorded %v", got)
	}
}
