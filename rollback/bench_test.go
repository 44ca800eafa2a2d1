package rollback

import (
	"testing"
	"time"

	"github.com/deploykit/deploy/monitor"
)

// BenchmarkJudge10Triggers judges one healthy observation (the common case:
// every reason is written, and joined into the decision) with ten triggers.
func BenchmarkJudge10Triggers(b *testing.B) {
	p := Policy{Triggers: []Trigger{
		CriticalChecks{},
		RelativeIncrease{MaxIncrease: 0.5, Floor: 0.01},
		LatencyIncrease{MaxIncrease: 200 * time.Millisecond},
		LatencyIncrease{Metric: "latency_p99_seconds", MaxIncrease: 500 * time.Millisecond},
		Above(monitor.CPU, 0.8),
		Above(monitor.Memory, 2<<30),
		Below(monitor.RequestRate, 10),
		RelativeDecrease{Metric: "orders_per_minute", MaxDecrease: 0.1},
		RelativeDecrease{Metric: "signups_per_minute", MaxDecrease: 0.2},
		Threshold{Metric: "queue_depth", Min: 0, Max: 1000},
	}}
	var base, obs monitor.Observation
	for _, o := range []*monitor.Observation{&base, &obs} {
		o.Set(monitor.ErrorRate, monitor.Value(0.003, 12000))
		o.Set(monitor.LatencyP95, monitor.Value(0.120, 12000))
		o.Set("latency_p99_seconds", monitor.Value(0.480, 12000))
		o.Set(monitor.CPU, monitor.Value(0.42, 60))
		o.Set(monitor.Memory, monitor.Value(1.2e9, 60))
		o.Set(monitor.RequestRate, monitor.Value(950, 60))
		o.Set("orders_per_minute", monitor.Value(50, 60))
		o.Set("signups_per_minute", monitor.Value(7, 60))
		o.Set("queue_depth", monitor.Value(12, 60))
	}
	obs.Checks = []monitor.Check{{Name: "smoke", OK: true, Critical: true}}
	b.ReportAllocs()
	for b.Loop() {
		var c Counters
		if d := p.Judge(&c, obs, base, nil); d.Verdict != Continue {
			b.Fatal(d.Reason)
		}
	}
}

// BenchmarkMannWhitneyU10k tests 10,000 canary samples against 10,000
// control samples: sorting, ranks, p-value, Hodges-Lehmann shift and its
// confidence interval.
func BenchmarkMannWhitneyU10k(b *testing.B) {
	x, y := samples(1, 10000, 101, 10), samples(2, 10000, 100, 10)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := MannWhitneyU(x, y, 0.95); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMannWhitneyTrigger10k is the same through the trigger, which also
// drops non-finite values and computes the means.
func BenchmarkMannWhitneyTrigger10k(b *testing.B) {
	obs := raw(samples(1, 10000, 101, 10), samples(2, 10000, 100, 10))
	tr := MannWhitney{Metric: "latency_ms", AllowedEffect: 0.05}
	b.ReportAllocs()
	for b.Loop() {
		tr.Evaluate(obs, monitor.Observation{})
	}
}

// BenchmarkJudgeSequential judges one healthy look of a release with the
// default policy's triggers (checks, the sequential error-rate test, p95)
// from the counters of the previous look: the state is read, the evidence
// updated and written back.
func BenchmarkJudgeSequential(b *testing.B) {
	p := Policy{Triggers: []Trigger{CriticalChecks{}, Sequential{Catch: 0.5}, LatencyIncrease{MaxIncrease: 200 * time.Millisecond, MinSamples: 200}}}
	since := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	obs := func(k int) monitor.Observation {
		o := monitor.Observation{Since: since}
		m := monitor.Rate(0.003, 1200*k)
		m.Control, m.ControlSamples = 0.003, 118800*k
		o.Set(monitor.ErrorRate, m)
		l := monitor.Value(0.120, 1200*k)
		l.Control, l.ControlSamples = 0.118, 118800*k
		o.Set(monitor.LatencyP95, l)
		return o
	}
	var c Counters
	p.Judge(&c, obs(1), monitor.Observation{}, nil)
	next := obs(2)
	b.ReportAllocs()
	for b.Loop() {
		c2 := c
		if d := p.Judge(&c2, next, monitor.Observation{}, nil); d.Verdict != Continue {
			b.Fatal(d.Reason)
		}
	}
}

// BenchmarkJudgeBriefWatchLook is one look of a long healthy watch under
// the runner's default policy (critical checks, the sequential error-rate
// test, p95 latency), judged briefly as the runner judges the looks between
// a window's first and last. still: the source's counts did not move since
// the last look; growing: 1,000 more requests arrived, as they do in a
// window whose counts accumulate.
func BenchmarkJudgeBriefWatchLook(b *testing.B) {
	p := Policy{Triggers: []Trigger{
		CriticalChecks{},
		Sequential{Metric: monitor.ErrorRate, Catch: 0.5},
		LatencyIncrease{Metric: monitor.LatencyP95, MaxIncrease: 200 * time.Millisecond, MinSamples: 200},
	}, InconclusiveLimit: 3}
	since := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	look := func(n int) monitor.Observation {
		o := monitor.Observation{Since: since}
		o.Set(monitor.ErrorRate, monitor.Rate(0.001, n))
		o.Set(monitor.LatencyP95, monitor.Value(0.120, n))
		return o
	}
	base := look(1000)
	base.Since = time.Time{}
	for _, tc := range []struct {
		name string
		step int
	}{{"still", 0}, {"growing", 1000}} {
		b.Run(tc.name, func(b *testing.B) {
			var c Counters
			n := 1000
			p.JudgeBrief(&c, look(n), base, nil)
			looks := make([]monitor.Observation, 64)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if i%len(looks) == 0 {
					// A new window every 64 looks, so that the counts
					// stay in range; the looks are made outside the timing.
					b.StopTimer()
					for k := range looks {
						looks[k] = look(n + (k+1)*tc.step)
						looks[k].Since = since.Add(time.Duration(i) * time.Hour)
					}
					b.StartTimer()
				}
				if d := p.JudgeBrief(&c, looks[i%len(looks)], base, nil); d.Verdict != Continue {
					b.Fatal(d.Reason)
				}
				i++
			}
		})
	}
}
