package rollback

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/deploykit/deploy/monitor"
	"github.com/google/go-cmp/cmp"
)

func obsOf(name string, m monitor.Metric) monitor.Observation {
	var o monitor.Observation
	o.Set(name, m)
	return o
}

func withControl(v float64, n int, c float64, cn int) monitor.Metric {
	return monitor.Metric{Value: v, Samples: n, Control: c, ControlSamples: cn}
}

// The values are exact in binary so that "at the threshold" is exact.
func TestTriggersAtThresholds(t *testing.T) {
	errBase := obsOf(monitor.ErrorRate, monitor.Value(0.25, 1000))
	latBase := obsOf(monitor.LatencyP95, monitor.Value(0.125, 1000))
	bizBase := obsOf("orders_per_minute", monitor.Value(100, 60))
	ri := RelativeIncrease{MaxIncrease: 0.5}
	li := LatencyIncrease{MaxIncrease: 250 * time.Millisecond}
	rd := RelativeDecrease{Metric: "orders_per_minute", MaxDecrease: 0.25}
	above := Above(monitor.CPU, 0.75)
	below := Below(monitor.RequestRate, 10)
	type want struct {
		Outcome Outcome
		Reason  string
	}
	tests := []struct {
		name string
		tr   Trigger
		obs  monitor.Observation
		base monitor.Observation
		want want
	}{
		{"error rate below", ri, obsOf(monitor.ErrorRate, monitor.Value(0.25, 1000)), errBase, want{Pass, "error rate 25.0 % vs baseline 25.0 % (+0 %) within +50 % (1000 samples)"}},
		{"error rate at", ri, obsOf(monitor.ErrorRate, monitor.Value(0.375, 1000)), errBase, want{Pass, "error rate 37.5 % vs baseline 25.0 % (+50 %) within +50 % (1000 samples)"}},
		{"error rate above", ri, obsOf(monitor.ErrorRate, monitor.Value(0.376, 1000)), errBase, want{Fail, "error rate 37.6 % vs baseline 25.0 % (+50 %) > +50 % (1000 samples)"}},
		{"error rate above floor", RelativeIncrease{MaxIncrease: 0.5, Floor: 0.5}, obsOf(monitor.ErrorRate, monitor.Value(0.5, 1000)), errBase, want{Pass, "error rate 50.0 % vs baseline 25.0 % (+100 %) at or below the 50.0 % floor (1000 samples)"}},
		{"error rate above the binding floor", RelativeIncrease{MaxIncrease: 0.5, Floor: 0.5}, obsOf(monitor.ErrorRate, monitor.Value(0.51, 1000)), errBase, want{Fail, "error rate 51.0 % vs baseline 25.0 % (+104 %) > +50 % and the 50.0 % floor (1000 samples)"}},
		{"error rate no data", ri, monitor.Observation{}, errBase, want{Inconclusive, "error rate: no data (0 samples)"}},
		{"error rate no baseline", ri, obsOf(monitor.ErrorRate, monitor.Value(0.25, 10)), monitor.Observation{}, want{Inconclusive, "error rate 25.0 %: no baseline or control to compare with (10 samples)"}},
		{"error rate from zero", ri, obsOf(monitor.ErrorRate, monitor.Value(0.01, 10)), obsOf(monitor.ErrorRate, monitor.Value(0, 10)), want{Fail, "error rate 1.0 % vs baseline 0.0 % (n/a) > 0 (any rise from zero) (10 samples)"}},
		{"latency below", li, obsOf(monitor.LatencyP95, monitor.Value(0.25, 500)), latBase, want{Pass, "p95 latency 250 ms vs baseline 125 ms (+125 ms) within +250 ms (500 samples)"}},
		{"latency at", li, obsOf(monitor.LatencyP95, monitor.Value(0.375, 500)), latBase, want{Pass, "p95 latency 375 ms vs baseline 125 ms (+250 ms) within +250 ms (500 samples)"}},
		{"latency above", li, obsOf(monitor.LatencyP95, monitor.Value(0.3755, 500)), latBase, want{Fail, "p95 latency 376 ms vs baseline 125 ms (+251 ms) > +250 ms (500 samples)"}},
		{"business below limit", rd, obsOf("orders_per_minute", monitor.Value(74.5, 60)), bizBase, want{Fail, "orders_per_minute 74.5 vs baseline 100 (-26 %) < -25 % (60 samples)"}},
		{"business at limit", rd, obsOf("orders_per_minute", monitor.Value(75, 60)), bizBase, want{Pass, "orders_per_minute 75 vs baseline 100 (-25 %) within -25 % (60 samples)"}},
		{"business above limit", rd, obsOf("orders_per_minute", monitor.Value(90, 60)), bizBase, want{Pass, "orders_per_minute 90 vs baseline 100 (-10 %) within -25 % (60 samples)"}},
		{"cpu below", above, obsOf(monitor.CPU, monitor.Value(0.5, 60)), monitor.Observation{}, want{Pass, "CPU 0.5 <= 0.75 (60 samples)"}},
		{"cpu at", above, obsOf(monitor.CPU, monitor.Value(0.75, 60)), monitor.Observation{}, want{Pass, "CPU 0.75 <= 0.75 (60 samples)"}},
		{"cpu above", above, obsOf(monitor.CPU, monitor.Value(0.7501, 60)), monitor.Observation{}, want{Fail, "CPU 0.7501 > 0.75 (60 samples)"}},
		{"rps under floor", below, obsOf(monitor.RequestRate, monitor.Value(9.5, 60)), monitor.Observation{}, want{Fail, "request_rate 9.5 < 10 (60 samples)"}},
		{"rps at floor", below, obsOf(monitor.RequestRate, monitor.Value(10, 60)), monitor.Observation{}, want{Pass, "request_rate 10 >= 10 (60 samples)"}},
		{"range", Threshold{Metric: "queue", Min: 1, Max: 8}, obsOf("queue", monitor.Value(4, 3)), monitor.Observation{}, want{Pass, "queue 4 within [1, 8] (3 samples)"}},
		{"checks pass", CriticalChecks{}, monitor.Observation{Checks: []monitor.Check{{Name: "smoke", OK: true}}}, monitor.Observation{}, want{Pass, "1 check passed: smoke"}},
		{"checks fail", CriticalChecks{}, monitor.Observation{Checks: []monitor.Check{{Name: "login", Critical: true, Detail: "HTTP 500"}}}, monitor.Observation{}, want{Fail, "critical check failed: login: HTTP 500"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.tr.Evaluate(tt.obs, tt.base)
			if diff := cmp.Diff(tt.want, want{r.Outcome, r.Reason}); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
		})
	}
}

// The control (stable version, same window) wins over the preflight
// baseline when present; the sample count is then the smaller of the two.
func TestControlOverBaseline(t *testing.T) {
	base := obsOf(monitor.ErrorRate, monitor.Value(0.5, 1000)) // would pass 0.5
	tr := RelativeIncrease{MaxIncrease: 0.5}
	got := tr.Evaluate(obsOf(monitor.ErrorRate, withControl(0.5, 1000, 0.25, 900)), base)
	want := Result{Trigger: "relative-increase:error_rate", Metric: monitor.ErrorRate, Outcome: Fail, Observed: 0.5, Baseline: 0.25, Reference: "control", Threshold: 0.375, Samples: 900,
		Reason: "error rate 50.0 % vs control 25.0 % (+100 %) > +50 % (1000 vs 900 samples)"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("with control (-want +got)\n%s", diff)
	}
	// A control without samples is no control: the baseline is used.
	got = tr.Evaluate(obsOf(monitor.ErrorRate, withControl(0.5, 1000, 0.25, 0)), base)
	if got.Outcome != Pass || got.Baseline != 0.5 || !strings.Contains(got.Reason, "vs baseline") {
		t.Errorf("control with 0 samples: %+v", got)
	}
	lat := LatencyIncrease{MaxIncrease: 100 * time.Millisecond}
	got = lat.Evaluate(obsOf(monitor.LatencyP95, withControl(0.25, 10, 0.125, 20)), obsOf(monitor.LatencyP95, monitor.Value(0.25, 5)))
	if diff := cmp.Diff("p95 latency 250 ms vs control 125 ms (+125 ms) > +100 ms (10 vs 20 samples)", got.Reason); diff != "" || got.Samples != 10 {
		t.Errorf("latency vs control (-want +got)\n%s", diff)
	}
}

type step struct {
	obs monitor.Observation
	err error
}

func run(p *Policy, steps []step, base monitor.Observation) ([]Verdict, Counters, Decision) {
	var c Counters
	var vs []Verdict
	var last Decision
	for _, s := range steps {
		last = p.Judge(&c, s.obs, base, s.err)
		vs = append(vs, last.Verdict)
	}
	return vs, c, last
}

func TestJudgeLimits(t *testing.T) {
	base := obsOf(monitor.ErrorRate, monitor.Value(0.01, 1000))
	healthy := step{obs: obsOf(monitor.ErrorRate, monitor.Value(0.01, 1000))}
	bad := step{obs: obsOf(monitor.ErrorRate, monitor.Value(0.05, 1000))}
	empty := step{obs: monitor.Observation{}}
	broken := step{err: errors.New("prometheus: connection refused")}
	few := step{obs: obsOf(monitor.ErrorRate, monitor.Value(0.05, 5))}
	critical := step{obs: monitor.Observation{Checks: []monitor.Check{{Name: "checkout", Critical: true}}}}
	errTrig := []Trigger{CriticalChecks{}, RelativeIncrease{MaxIncrease: 0.5}}

	tests := []struct {
		name   string
		p      Policy
		steps  []step
		want   []Verdict
		counts Counters
		reason string
	}{
		{"healthy continues", Policy{Triggers: errTrig}, []step{healthy, healthy}, []Verdict{Continue, Continue}, Counters{}, "no checks reported; error rate 1.0 % vs baseline 1.0 % (+0 %) within +50 % (1000 samples)"},
		{"first failure rolls back by default", Policy{Triggers: errTrig}, []step{bad}, []Verdict{Rollback}, Counters{Failures: 1}, "error rate 5.0 % vs baseline 1.0 % (+400 %) > +50 % (1000 samples)"},
		{"failure limit 2", Policy{Triggers: errTrig, FailureLimit: 2}, []step{bad, healthy, bad, bad}, []Verdict{Wait, Continue, Wait, Rollback}, Counters{Failures: 3}, "error rate 5.0 % vs baseline 1.0 % (+400 %) > +50 % (1000 samples)"},
		{"no data waits, then rolls back past the limit", Policy{Triggers: errTrig, InconclusiveLimit: 2}, []step{empty, empty, empty}, []Verdict{Wait, Wait, Rollback}, Counters{Inconclusive: 3}, "inconclusive 3 times (limit 2): error rate: no data (0 samples)"},
		{"inconclusive never continues", Policy{Triggers: errTrig, InconclusiveLimit: 5}, []step{healthy, empty, healthy}, []Verdict{Continue, Wait, Continue}, Counters{Inconclusive: 1}, ""},
		{"no data rolls back at once with limit 0", Policy{Triggers: errTrig}, []step{empty}, []Verdict{Rollback}, Counters{Inconclusive: 1}, "inconclusive 1 times (limit 0): error rate: no data (0 samples)"},
		{"4 source errors in a row roll back", Policy{Triggers: errTrig}, []step{broken, broken, broken, broken}, []Verdict{Wait, Wait, Wait, Rollback}, Counters{ConsecutiveErrors: 4}, "metric source failed 4 times in a row (limit 4): prometheus: connection refused"},
		{"3 errors and a success reset the count", Policy{Triggers: errTrig}, []step{broken, broken, broken, healthy, broken, broken, broken}, []Verdict{Wait, Wait, Wait, Continue, Wait, Wait, Wait}, Counters{ConsecutiveErrors: 3}, "could not measure (3 of 4 errors in a row): prometheus: connection refused"},
		{"error limit 1", Policy{Triggers: errTrig, ConsecutiveErrorLimit: 1}, []step{broken}, []Verdict{Rollback}, Counters{ConsecutiveErrors: 1}, ""},
		{"critical check rolls back at once", Policy{Triggers: errTrig, FailureLimit: 10, InconclusiveLimit: 10}, []step{critical}, []Verdict{Rollback}, Counters{Failures: 1}, "critical check failed: checkout"},
		{"critical threshold rolls back at once", Policy{Triggers: []Trigger{Threshold{Metric: monitor.Memory, Min: math.NaN(), Max: 1 << 30, Critical: true}}, FailureLimit: 10},
			[]step{{obs: obsOf(monitor.Memory, monitor.Value(2<<30, 3))}}, []Verdict{Rollback}, Counters{Failures: 1}, "memory 2.147e+09 > 1.074e+09 (3 samples)"},
		{"too few samples is inconclusive, even failing", Policy{Triggers: errTrig, MinSamples: 10, InconclusiveLimit: 1}, []step{few, few}, []Verdict{Wait, Rollback}, Counters{Inconclusive: 2},
			"inconclusive 2 times (limit 1): error_rate: 5 samples, fewer than the 10 needed (error rate 5.0 % vs baseline 1.0 % (+400 %) > +50 % (5 samples))"},
		{"min samples met", Policy{Triggers: errTrig, MinSamples: 1000}, []step{healthy}, []Verdict{Continue}, Counters{}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.p.Validate(); err != nil {
				t.Fatal(err)
			}
			got, c, last := run(&tt.p, tt.steps, base)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("verdicts (-want +got)\n%s", diff)
			}
			if diff := cmp.Diff(tt.counts, c); diff != "" {
				t.Errorf("counters (-want +got)\n%s", diff)
			}
			if tt.reason != "" && last.Reason != tt.reason {
				t.Errorf("reason\n got %q\nwant %q", last.Reason, tt.reason)
			}
			if last.Verdict != Continue && len(last.Results) > 0 && last.Cause == nil {
				t.Errorf("verdict %s without a cause", last.Verdict)
			}
		})
	}
}

func TestDecisionCause(t *testing.T) {
	p := Policy{Triggers: []Trigger{RelativeIncrease{MaxIncrease: 0.5}}}
	var c Counters
	d := p.Judge(&c, obsOf(monitor.ErrorRate, monitor.Value(0.5, 100)), obsOf(monitor.ErrorRate, monitor.Value(0.25, 100)), nil)
	res := Result{Trigger: "relative-increase:error_rate", Metric: monitor.ErrorRate, Outcome: Fail, Observed: 0.5, Baseline: 0.25, Reference: "baseline", Threshold: 0.375, Samples: 100,
		Reason: "error rate 50.0 % vs baseline 25.0 % (+100 %) > +50 % (100 samples)"}
	want := Decision{Verdict: Rollback, Reason: res.Reason, Results: []Result{res}, Cause: &res}
	if diff := cmp.Diff(want, d); diff != "" {
		t.Errorf("(-want +got)\n%s", diff)
	}
}

func TestValidate(t *testing.T) {
	nan := math.NaN()
	tests := []struct {
		p    Policy
		want string
	}{
		{Policy{FailureLimit: -1}, "rollback: Policy.FailureLimit -1 is negative: invalid"},
		{Policy{InconclusiveLimit: -2}, "rollback: Policy.InconclusiveLimit -2 is negative: invalid"},
		{Policy{ConsecutiveErrorLimit: -1}, "rollback: Policy.ConsecutiveErrorLimit -1 is negative: invalid"},
		{Policy{ProgressDeadline: -time.Second}, "rollback: Policy.ProgressDeadline -1s is negative: invalid"},
		{Policy{MinSamples: -5}, "rollback: Policy.MinSamples -5 is negative: invalid"},
		{Policy{Triggers: []Trigger{nil}}, "rollback: Policy.Triggers[0] is nil: invalid"},
		{Policy{Triggers: []Trigger{RelativeIncrease{MaxIncrease: nan}}}, "rollback: Policy.Triggers[0] (relative-increase:error_rate): RelativeIncrease.MaxIncrease NaN must be a finite number >= 0: invalid"},
		{Policy{Triggers: []Trigger{RelativeIncrease{MaxIncrease: 0.5, Floor: -1}}}, "rollback: Policy.Triggers[0] (relative-increase:error_rate): RelativeIncrease.Floor -1 must be a finite number >= 0: invalid"},
		{Policy{Triggers: []Trigger{LatencyIncrease{MaxIncrease: -time.Millisecond}}}, "rollback: Policy.Triggers[0] (latency-increase:latency_p95_seconds): LatencyIncrease.MaxIncrease -1ms is negative: invalid"},
		{Policy{Triggers: []Trigger{RelativeDecrease{Metric: "orders", MaxDecrease: 1.5}}}, "rollback: Policy.Triggers[0] (relative-decrease:orders): RelativeDecrease.MaxDecrease 1.5 must be in [0, 1]: invalid"},
		{Policy{Triggers: []Trigger{RelativeDecrease{Metric: "orders", MaxDecrease: nan}}}, "rollback: Policy.Triggers[0] (relative-decrease:orders): RelativeDecrease.MaxDecrease NaN must be in [0, 1]: invalid"},
		{Policy{Triggers: []Trigger{Threshold{Metric: "cpu", Min: nan, Max: nan}}}, `rollback: Policy.Triggers[0] (threshold:cpu): Threshold for "cpu": Min and Max are both NaN, so nothing is checked: invalid`},
		{Policy{Triggers: []Trigger{Threshold{Metric: "cpu", Min: 2, Max: 1}}}, `rollback: Policy.Triggers[0] (threshold:cpu): Threshold for "cpu": Min 2 > Max 1: invalid`},
		{Policy{Triggers: []Trigger{MannWhitney{Metric: "lat", Confidence: 1}}}, "rollback: Policy.Triggers[0] (mann-whitney:lat): MannWhitney.Confidence 1 must be in (0, 1): invalid"},
		{Policy{Triggers: []Trigger{MannWhitney{Metric: "lat", Confidence: -0.5}}}, "rollback: Policy.Triggers[0] (mann-whitney:lat): MannWhitney.Confidence -0.5 must be in (0, 1): invalid"},
		{Policy{Triggers: []Trigger{MannWhitney{Metric: "lat", Confidence: nan}}}, "rollback: Policy.Triggers[0] (mann-whitney:lat): MannWhitney.Confidence NaN must be in (0, 1): invalid"},
		{Policy{Triggers: []Trigger{MannWhitney{Metric: "lat", AllowedEffect: math.Inf(1)}}}, "rollback: Policy.Triggers[0] (mann-whitney:lat): MannWhitney.AllowedEffect +Inf must be a finite number >= 0: invalid"},
		{Policy{Triggers: []Trigger{MannWhitney{}}}, "rollback: Policy.Triggers[0] (mann-whitney:): MannWhitney.Metric is empty: invalid"},
		{Policy{Triggers: []Trigger{MannWhitney{Metric: "lat", Direction: 7}}}, "rollback: Policy.Triggers[0] (mann-whitney:lat): MannWhitney.Direction 7 is unknown: invalid"},
	}
	for _, tt := range tests {
		err := tt.p.Validate()
		if err == nil || err.Error() != tt.want || !errors.Is(err, ErrInvalid) {
			t.Errorf("Validate() = %v\n                 want %s", err, tt.want)
		}
	}
	ok := Policy{Triggers: []Trigger{CriticalChecks{}, RelativeIncrease{MaxIncrease: 0.5}, LatencyIncrease{MaxIncrease: time.Second}, Above("cpu", 0.9),
		RelativeDecrease{Metric: "orders", MaxDecrease: 0.1}, MannWhitney{Metric: "lat"}}}
	if err := ok.Validate(); err != nil {
		t.Errorf("valid policy: %v", err)
	}
}

func TestConditions(t *testing.T) {
	p := Policy{Triggers: []Trigger{
		CriticalChecks{},
		RelativeIncrease{MaxIncrease: 0.07},
		LatencyIncrease{MaxIncrease: 200 * time.Millisecond},
		Above(monitor.CPU, 0.9),
		RelativeDecrease{Metric: "orders_per_minute", MaxDecrease: 0.1},
		MannWhitney{Metric: "latency_seconds", Direction: Increase, AllowedEffect: 0.1},
	}, InconclusiveLimit: 3}
	want := []string{
		"Critical functionality broken (a critical check fails)",
		"error rate increases by >7% relative to the control or baseline",
		"p95 latency increases by >200ms",
		"CPU above 0.9",
		"orders_per_minute decreases by >10% relative to the control or baseline",
		"latency_seconds of the canary is higher than the control (Mann-Whitney U, 95% confidence) by >10% in mean",
		"More than 0 failed observation(s)",
		"More than 3 inconclusive observation(s) (no data or too few samples)",
		"4 metric-source errors in a row",
		"A step not completing within 10m0s",
	}
	if diff := cmp.Diff(want, p.Conditions()); diff != "" {
		t.Errorf("(-want +got)\n%s", diff)
	}
	if p.Deadline() != 10*time.Minute || p.ErrorLimit() != 4 {
		t.Errorf("defaults: deadline %v, error limit %d", p.Deadline(), p.ErrorLimit())
	}
}

func TestRelativeIncreaseFromZeroNamesTheFloor(t *testing.T) {
	tr := RelativeIncrease{MaxIncrease: 0.5, Floor: 0.02}
	r := tr.Evaluate(obsOf(monitor.ErrorRate, monitor.Value(0.3, 23)), obsOf(monitor.ErrorRate, monitor.Value(0, 100)))
	if r.Outcome != Fail || r.Threshold != 0.02 || r.Reason != "error rate 30.0 % vs baseline 0.0 % (n/a) > the 2.0 % floor (23 samples)" {
		t.Errorf("got %v, threshold %v, %q", r.Outcome, r.Threshold, r.Reason)
	}
}

// TestRelativeIncreaseConfidence: with Confidence, a rise above the threshold
// fails only when the exact binomial test says it is no accident. One failed
// request of 20 against a 2 % floor (p = 0.33) passes; 6 of 20 (p = 2e-6)
// fails; without Confidence, one of 20 fails.
func TestRelativeIncreaseConfidence(t *testing.T) {
	base := obsOf(monitor.ErrorRate, monitor.Value(0.002, 10000))
	tr := RelativeIncrease{MaxIncrease: 0.5, Floor: 0.02, Confidence: 0.95}
	for _, tc := range []struct {
		name    string
		tr      RelativeIncrease
		obs     monitor.Metric
		outcome Outcome
		reason  string
	}{
		{"1 of 20", tr, monitor.Rate(0.05, 20), Pass,
			"error rate 5.0 % vs baseline 0.2 % (+2400 %) above the threshold 2.0 %, but not significantly at 95 % confidence (1 of 20, p = 0.33)"},
		{"6 of 20", tr, monitor.Rate(0.3, 20), Fail,
			"error rate 30.0 % vs baseline 0.2 % (+14900 %) > +50 % and the 2.0 % floor (20 samples)"},
		{"3 of 40: p = 0.046 < 0.05", tr, monitor.Rate(0.075, 40), Fail,
			"error rate 7.5 % vs baseline 0.2 % (+3650 %) > +50 % and the 2.0 % floor (40 samples)"},
		{"1 of 20 without Confidence", RelativeIncrease{MaxIncrease: 0.5, Floor: 0.02}, monitor.Rate(0.05, 20), Fail,
			"error rate 5.0 % vs baseline 0.2 % (+2400 %) > +50 % and the 2.0 % floor (20 samples)"},
		{"not a rate: no test", RelativeIncrease{Metric: "queue_depth", MaxIncrease: 0.5, Confidence: 0.95}, monitor.Value(30, 20), Fail,
			"queue_depth 30 vs baseline 10 (+200 %) > +50 % (20 samples)"},
		// Samples that do not count events (the points of a range query, the
		// 1 of an instant PromQL ratio without Query.Count) are not tested:
		// 20 % over 4 points fails as it would without Confidence.
		{"20 % over 4 points", tr, monitor.Value(0.2, 4), Fail,
			"error rate 20.0 % vs baseline 0.2 % (+9900 %) > +50 % and the 2.0 % floor (4 samples)"},
		// Where no outcome of so few events could be significant, the rise
		// is inconclusive (pause, then roll back at the limit), not a pass.
		{"90 % of 1 request, threshold 12 %", RelativeIncrease{MaxIncrease: 0.5, Floor: 0.02, Confidence: 0.95}, monitor.Rate(0.9, 1), Inconclusive,
			"error rate 90.0 % vs baseline 8.0 % (+1025 %) above the threshold 12.0 %, but 1 samples are too few to tell at 95 % confidence"},
	} {
		b := base
		if strings.Contains(tc.name, "threshold 12 %") {
			b = obsOf(monitor.ErrorRate, monitor.Value(0.08, 10000))
		}
		if tc.tr.Metric != "" {
			b = obsOf(tc.tr.Metric, monitor.Value(10, 100))
		}
		got := tc.tr.Evaluate(obsOf(tc.tr.metric(), tc.obs), b)
		if got.Outcome != tc.outcome || got.Reason != tc.reason {
			t.Errorf("%s: %s %q\nwant %s %q", tc.name, got.Outcome, got.Reason, tc.outcome, tc.reason)
		}
	}
	if err := (RelativeIncrease{MaxIncrease: 0.5, Confidence: 1}).Validate(); err == nil || !strings.Contains(err.Error(), "RelativeIncrease.Confidence 1 must be in [0, 1)") {
		t.Errorf("Validate(Confidence 1) = %v", err)
	}
	if got := tr.Condition(); got != "error rate increases by >50% relative to the control or baseline (significant at 95% confidence)" {
		t.Errorf("Condition = %q", got)
	}
}
