package deploy_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"sync"
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

// BenchmarkStepOverhead measures the runner's own cost per step: a no-op
// strategy with no bake, the Memory store, tracing off, no monitors or
// notifiers (a staging release needs none). The record is loaded and saved
// (deep copies) at every step, and its timeline grows with the steps, so the
// cost per step rises slowly with the plan's length: 10 and 100 steps show it.
func BenchmarkStepOverhead(b *testing.B) {
	for _, steps := range []int{10, 100, 1000} {
		b.Run(fmt.Sprintf("steps=%d", steps), func(b *testing.B) {
			specs := make([]deploytest.StepSpec, steps)
			for i := range specs {
				specs[i] = deploytest.StepSpec{Name: fmt.Sprint("s", i), Exposure: float64(i+1) / float64(steps)}
			}
			s := &deploytest.Strategy{Steps: specs}
			r, err := deploy.NewRunner(s, deploy.WithStore(state.NewMemory()), deploy.WithTracerProvider(noop.NewTracerProvider()),
				deploy.WithSchedule(monitor.Schedule{}))
			if err != nil {
				b.Fatal(err)
			}
			rel := deploy.Release{Service: "bench", Version: "v2", Environment: "staging"}
			var ms0, ms1 runtime.MemStats
			runtime.ReadMemStats(&ms0)
			b.ResetTimer()
			for b.Loop() {
				if _, err := r.Run(b.Context(), rel); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			runtime.ReadMemStats(&ms1)
			n := float64(b.N * steps)
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/n, "ns/step")
			b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/n, "allocs/step")
		})
	}
}

// Benchmark24hRelease runs a five-step release whose bakes add up to 24 hours,
// observed every minute (1,440 observations), with a healthy monitor, the
// default policy, a console notifier writing to io.Discard and the Memory
// store, in virtual time. ns/op is the wall time of the whole release.
func Benchmark24hRelease(b *testing.B) {
	for b.Loop() {
		synctest.Test(&testing.T{}, func(t *testing.T) {
			s := &deploytest.Strategy{Steps: deploytest.Ramp(24*time.Hour/5, 0.01, 0.05, 0.25, 0.5, 1)}
			r, err := deploy.NewRunner(s, deploy.WithStore(state.NewMemory()), deploy.WithTracerProvider(noop.NewTracerProvider()),
				deploy.WithMonitors(deploytest.Healthy()), deploy.WithNotifiers(&notify.Console{W: io.Discard}),
				deploy.WithWaiver(deploy.FridayDeploy, "benchmark"), deploy.WithSchedule(monitor.Schedule{}))
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

// Benchmark7DayWatch watches a released service for 7 days, looking every
// minute (10,080 observations), with a healthy monitor that costs nothing
// (so that the figure is the runner's own), the default policy,
// a console notifier writing to io.Discard and the Memory store, in virtual
// time. ns/op is the wall time of the whole release. Run it in a process of
// its own (-bench 7Day): after the other benchmarks it measures slower for
// the heap they leave behind, not for its own work (BENCHMARKS.md).
func Benchmark7DayWatch(b *testing.B) {
	for b.Loop() {
		synctest.Test(&testing.T{}, func(t *testing.T) {
			s := &deploytest.Strategy{Steps: deploytest.Ramp(0, 1)}
			week := monitor.Schedule{Windows: []monitor.Window{{Name: "week", Duration: 7 * 24 * time.Hour, Interval: time.Minute}}}
			healthy := deploytest.Health{ErrorRate: 0.001, P95: 120 * time.Millisecond}.Observation()
			m := deploy.MonitorFunc(func(context.Context, monitor.Target) (monitor.Observation, error) { return healthy, nil })
			r, err := deploy.NewRunner(s, deploy.WithStore(state.NewMemory()), deploy.WithTracerProvider(noop.NewTracerProvider()),
				deploy.WithMonitors(m), deploy.WithNotifiers(&notify.Console{W: io.Discard}),
				deploy.WithWaiver(deploy.FridayDeploy, "benchmark"), deploy.WithSchedule(week))
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

// BenchmarkFileConcurrentReleases runs 1,000 short releases at once (three
// steps with no bake, no monitor, a staging environment) on one File store
// in a temporary directory: every transition is saved with fsync, under a
// lock per release. ns/op is the wall time of all 1,000.
func BenchmarkFileConcurrentReleases(b *testing.B) {
	const n = 1000
	for b.Loop() {
		store, err := state.NewFile(b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		s := &deploytest.Strategy{Steps: deploytest.Ramp(0, 0.1, 0.5, 1)}
		r, err := deploy.NewRunner(s, deploy.WithStore(store), deploy.WithTracerProvider(noop.NewTracerProvider()),
			deploy.WithSchedule(monitor.Schedule{}))
		if err != nil {
			b.Fatal(err)
		}
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for i := range n {
			wg.Go(func() {
				rep, err := r.Run(b.Context(), deploy.Release{Service: fmt.Sprint("svc", i), Version: "v2", Environment: "staging"})
				if err == nil && rep.Status != deploy.Succeeded {
					err = fmt.Errorf("release %d ended %s", i, rep.Status)
				}
				if err != nil {
					errs <- err
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			b.Fatal(err)
		}
	}
}

// BenchmarkRecordGrowth runs a 100-step and a 200-step release (no bake,
// no monitor, staging) on the File store and reports how many bytes the
// persisted record (head and history) grows per step.
func BenchmarkRecordGrowth(b *testing.B) {
	size := func(dir string) int64 {
		var n int64
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if info, err := e.Info(); err == nil && !e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
				n += info.Size()
			}
		}
		return n
	}
	release := func(steps int) int64 {
		dir := b.TempDir()
		store, err := state.NewFile(dir)
		if err != nil {
			b.Fatal(err)
		}
		specs := make([]deploytest.StepSpec, steps)
		for i := range specs {
			specs[i] = deploytest.StepSpec{Name: fmt.Sprint("s", i), Exposure: float64(i+1) / float64(steps)}
		}
		r, err := deploy.NewRunner(&deploytest.Strategy{Steps: specs}, deploy.WithStore(store),
			deploy.WithTracerProvider(noop.NewTracerProvider()), deploy.WithSchedule(monitor.Schedule{}))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := r.Run(b.Context(), deploy.Release{Service: "bench", Version: "v2", Environment: "staging"}); err != nil {
			b.Fatal(err)
		}
		return size(dir)
	}
	var per float64
	for b.Loop() {
		per = float64(release(200)-release(100)) / 100
	}
	b.ReportMetric(per, "bytes/step")
}
