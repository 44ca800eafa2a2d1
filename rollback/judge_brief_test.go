package rollback

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/deploykit/deploy/monitor"
)

// A brief look decides as a full one: the same verdict, outcomes, figures
// and counters (the sequential test's state included), look after look,
// for a healthy and a regressed canary against a control and against a
// baseline. A look that passes keeps no reason and no results; in one that
// does not, only a passing result's reason may be shorter.
func TestJudgeBriefDecidesAsJudge(t *testing.T) {
	p := Policy{Triggers: []Trigger{CriticalChecks{}, Sequential{Catch: 0.5}, LatencyIncrease{MaxIncrease: 200 * time.Millisecond}}, InconclusiveLimit: 3}
	for _, tc := range []struct {
		name    string
		rise    float64
		control bool
	}{{"healthy vs control", 0, true}, {"regressed vs control", 1, true}, {"healthy vs baseline", 0, false}, {"regressed vs baseline", 1, false}} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, 2))
			baseline := monitor.Observation{Metrics: map[string]monitor.Metric{}}
			baseline.Metrics[monitor.ErrorRate] = monitor.Rate(0.003, 10000)
			baseline.Metrics[monitor.LatencyP95] = monitor.Value(0.12, 10000)
			var full, brief Counters
			since := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
			var n1, x1, n0, x0 int
			for look := range 300 {
				n1 += 100
				x1 += binomial(rng, 100, 0.003*(1+tc.rise))
				n0 += 900
				x0 += binomial(rng, 900, 0.003)
				m := monitor.Rate(float64(x1)/float64(n1), n1)
				if tc.control {
					m.Control, m.ControlSamples = float64(x0)/float64(n0), n0
				}
				obs := monitor.Observation{Since: since, Metrics: map[string]monitor.Metric{monitor.ErrorRate: m,
					monitor.LatencyP95: monitor.Value(0.12+0.01*rng.Float64(), n1)}}
				a := p.Judge(&full, obs, baseline, nil)
				b := p.JudgeBrief(&brief, obs, baseline, nil)
				if a.Verdict != b.Verdict || full != brief {
					t.Fatalf("look %d: Judge %s %+v, JudgeBrief %s %+v", look, a.Verdict, full, b.Verdict, brief)
				}
				if b.Verdict == Continue && (b.Reason != "" || b.Results != nil) {
					t.Fatalf("look %d: a brief Continue kept %q and %d results", look, b.Reason, len(b.Results))
				}
				if b.Verdict == Continue {
					continue
				}
				if len(a.Results) != len(b.Results) {
					t.Fatalf("look %d: %d results, JudgeBrief %d", look, len(a.Results), len(b.Results))
				}
				for i := range a.Results {
					ra, rb := a.Results[i], b.Results[i]
					if ra.Outcome != rb.Outcome || !same(ra.Observed, rb.Observed) || !same(ra.Threshold, rb.Threshold) || ra.Samples != rb.Samples {
						t.Fatalf("look %d, %s: Judge %+v, JudgeBrief %+v", look, ra.Trigger, ra, rb)
					}
					if ra.Outcome != Pass && ra.Reason != rb.Reason {
						t.Fatalf("look %d, %s: a %v result's reason differs:\n%s\n%s", look, ra.Trigger, ra.Outcome, ra.Reason, rb.Reason)
					}
				}
				if a.Verdict == Rollback {
					if tc.rise == 0 {
						t.Logf("a healthy canary rolled back at look %d (chance, at most alpha): %s", look, a.Reason)
					}
					return
				}
			}
			if tc.rise > 0 {
				t.Errorf("a tripled error rate was not caught in 300 looks")
			}
		})
	}
}

// A state read back from its text (another process, or a cache miss) judges
// as the state the same process kept.
func TestSequentialStateReadFromTextJudgesAsKept(t *testing.T) {
	p := Policy{Triggers: []Trigger{Sequential{Catch: 0.5}}}
	rng := rand.New(rand.NewPCG(3, 4))
	baseline := monitor.Observation{Metrics: map[string]monitor.Metric{monitor.ErrorRate: monitor.Rate(0.003, 10000)}}
	var kept, reread Counters
	var n, x int
	for look := range 100 {
		n += 200
		x += binomial(rng, 200, 0.004)
		obs := monitor.Observation{Metrics: map[string]monitor.Metric{monitor.ErrorRate: monitor.Rate(float64(x)/float64(n), n)}}
		a := p.Judge(&kept, obs, baseline, nil)
		parsed.mu.Lock()
		clear(parsed.m) // as a new process would find it
		parsed.mu.Unlock()
		b := p.Judge(&reread, obs, baseline, nil)
		if a.Verdict != b.Verdict || kept != reread || a.Reason != b.Reason {
			t.Fatalf("look %d: kept %s %q, read back %s %q", look, a.Verdict, a.Reason, b.Verdict, b.Reason)
		}
	}
}

func same(a, b float64) bool { return a == b || math.IsNaN(a) && math.IsNaN(b) }

func binomial(rng *rand.Rand, n int, p float64) int {
	k := 0
	for range n {
		if rng.Float64() < p {
			k++
		}
	}
	return k
}

// A brief look writes no reason when every result passes, and every reason
// Judge would when one does not: the package's triggers, each breached now
// and then, with missing data and too few samples, look after look. The
// limits are high so that the looks go on.
func TestJudgeBriefWritesReasonsWhenALookDoesNotPass(t *testing.T) {
	p := Policy{Triggers: []Trigger{CriticalChecks{}, Sequential{Catch: 0.5}, LatencyIncrease{MaxIncrease: 200 * time.Millisecond},
		RelativeIncrease{Metric: "latency_p99_seconds", MaxIncrease: 0.5}, Above(monitor.CPU, 0.8), Threshold{Metric: "queue", Min: 0, Max: 100},
		RelativeDecrease{Metric: "orders", MaxDecrease: 0.2}}, FailureLimit: 1 << 20, InconclusiveLimit: 1 << 20, MinSamples: 50}
	rng := rand.New(rand.NewPCG(5, 6))
	rare := func() float64 {
		if rng.IntN(30) == 0 {
			return 1
		}
		return 0
	}
	baseline := monitor.Observation{Metrics: map[string]monitor.Metric{
		monitor.ErrorRate: monitor.Rate(0.003, 10000), monitor.LatencyP95: monitor.Value(0.12, 10000),
		"latency_p99_seconds": monitor.Value(0.3, 10000), "orders": monitor.Value(50, 60)}}
	var full, brief Counters
	since := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	var n1, x1 int
	quiet := 0
	for look := range 600 {
		n1 += 100
		x1 += binomial(rng, 100, 0.003)
		obs := monitor.Observation{Since: since, Metrics: map[string]monitor.Metric{
			monitor.ErrorRate:     monitor.Rate(float64(x1)/float64(n1), n1),
			monitor.LatencyP95:    monitor.Value(0.12+0.01*rng.Float64(), n1),
			"latency_p99_seconds": monitor.Value(0.3*(1+0.6*rare()), n1),
			monitor.CPU:           monitor.Value(0.5+0.4*rare(), 60),
			"queue":               monitor.Value(10+100*rare(), 60),
			"orders":              monitor.Value(50*(1-0.3*rare()), 60+int(-30*rare()))}}
		if rare() == 1 {
			delete(obs.Metrics, "orders") // no data
		}
		if rare() == 1 {
			obs.Checks = []monitor.Check{{Name: "smoke", OK: false}}
		}
		a := p.Judge(&full, obs, baseline, nil)
		b := p.JudgeBrief(&brief, obs, baseline, nil)
		if a.Verdict != b.Verdict || full != brief {
			t.Fatalf("look %d: Judge %s %+v, JudgeBrief %s %+v", look, a.Verdict, full, b.Verdict, brief)
		}
		if b.Verdict == Continue {
			quiet++
			if b.Reason != "" || b.Results != nil {
				t.Fatalf("look %d: a brief Continue kept %q and %d results", look, b.Reason, len(b.Results))
			}
			continue
		}
		if len(a.Results) != len(b.Results) {
			t.Fatalf("look %d: %d results, JudgeBrief %d", look, len(a.Results), len(b.Results))
		}
		for i := range a.Results {
			ra, rb := a.Results[i], b.Results[i]
			if ra.Trigger != rb.Trigger || ra.Outcome != rb.Outcome || ra.Critical != rb.Critical || ra.Metric != rb.Metric || ra.Reference != rb.Reference ||
				!same(ra.Observed, rb.Observed) || !same(ra.Baseline, rb.Baseline) || !same(ra.Threshold, rb.Threshold) || ra.Samples != rb.Samples {
				t.Fatalf("look %d, %s: Judge %+v, JudgeBrief %+v", look, ra.Trigger, ra, rb)
			}
			switch {
			case b.Verdict != Continue && rb.Trigger != "sequential:error_rate" && ra.Reason != rb.Reason:
				t.Fatalf("look %d, %s (%v): the reasons differ:\n%s\n%s", look, ra.Trigger, b.Verdict, ra.Reason, rb.Reason)
			case b.Verdict != Continue && rb.Reason == "":
				t.Fatalf("look %d, %s (%v): no reason", look, rb.Trigger, b.Verdict)
			}
		}
	}
	if quiet < 100 || quiet > 550 {
		t.Errorf("%d of 600 looks passed: the test should mix passing looks and others", quiet)
	}
}

// foreignTrigger is a trigger of another package: it always passes.
type foreignTrigger struct{}

func (foreignTrigger) Name() string      { return "custom" }
func (foreignTrigger) Condition() string { return "never" }
func (foreignTrigger) Evaluate(obs, baseline monitor.Observation) Result {
	return Result{Outcome: Pass, Reason: "fine", Samples: 1000}
}

// A policy with a trigger of another package is judged briefly as Judge
// judges it: its passing look keeps its reason and results.
func TestJudgeBriefWithAForeignTriggerIsJudge(t *testing.T) {
	p := Policy{Triggers: []Trigger{CriticalChecks{}, foreignTrigger{}}}
	var c Counters
	d := p.JudgeBrief(&c, monitor.Observation{}, monitor.Observation{}, nil)
	if d.Verdict != Continue || len(d.Results) != 2 || d.Results[1].Reason != "fine" {
		t.Fatalf("JudgeBrief = %+v", d)
	}
}
