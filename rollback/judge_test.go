package rollback

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/deploykit/deploy/monitor"
	"github.com/google/go-cmp/cmp"
)

// samples returns n deterministic draws from a normal distribution.
func samples(seed uint64, n int, mean, sd float64) []float64 {
	rng := rand.New(rand.NewPCG(seed, 42))
	s := make([]float64, n)
	for i := range s {
		s[i] = mean + sd*rng.NormFloat64()
	}
	return s
}

func raw(canary, control []float64) monitor.Observation {
	var o monitor.Observation
	o.Set("latency_ms", monitor.Metric{Value: mean(canary), Samples: len(canary), Control: mean(control), ControlSamples: len(control), Raw: canary, ControlRaw: control})
	return o
}

func TestMannWhitneyTrigger(t *testing.T) {
	control := samples(1, 200, 100, 10)
	same := samples(2, 200, 100, 10)
	up20 := samples(3, 200, 120, 10)
	down20 := samples(4, 200, 80, 10)
	up2 := samples(5, 2000, 101, 10)
	control2k := samples(6, 2000, 100, 10)
	tests := []struct {
		name string
		tr   MannWhitney
		obs  monitor.Observation
		want Outcome
		say  string
	}{
		{"same distribution passes", MannWhitney{Metric: "latency_ms"}, raw(same, control), Pass, "no significant difference"},
		{"20 % up fails", MannWhitney{Metric: "latency_ms", AllowedEffect: 0.1}, raw(up20, control), Fail, "significantly higher, beyond +10%"},
		{"20 % up within a 30 % allowed effect", MannWhitney{Metric: "latency_ms", AllowedEffect: 0.3}, raw(up20, control), Pass, "within the 30% allowed effect"},
		{"20 % down ignored when judging increases", MannWhitney{Metric: "latency_ms", Direction: Increase}, raw(down20, control), Pass, "direction not judged (increase)"},
		{"20 % down fails when judging decreases", MannWhitney{Metric: "latency_ms", Direction: Decrease, AllowedEffect: 0.1}, raw(down20, control), Fail, "significantly lower, beyond -10%"},
		{"small but significant shift within effect", MannWhitney{Metric: "latency_ms", AllowedEffect: 0.05}, raw(up2, control2k), Pass, "within the 5% allowed effect"},
		{"small significant shift fails with no allowed effect", MannWhitney{Metric: "latency_ms"}, raw(up2, control2k), Fail, "significantly higher"},
		{"too few samples", MannWhitney{Metric: "latency_ms"}, raw(up20[:9], control), Inconclusive, "too few samples for Mann-Whitney U, 10 needed on each side (9 vs 200 samples)"},
		{"no data", MannWhitney{Metric: "latency_ms"}, monitor.Observation{}, Inconclusive, "(0 vs 0 samples)"},
		{"identical", MannWhitney{Metric: "latency_ms"}, raw(control, control), Pass, "identical"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.tr.Evaluate(tt.obs, monitor.Observation{})
			if r.Outcome != tt.want || !strings.Contains(r.Reason, tt.say) {
				t.Errorf("got %s: %s\nwant %s containing %q", r.Outcome, r.Reason, tt.want, tt.say)
			}
		})
	}
}

// The exact reason for a reference case: the depression data of R's
// ?wilcox.test (U = 35, exact p = 0.2544) does not differ significantly.
func TestMannWhitneyReason(t *testing.T) {
	x := []float64{0.80, 0.83, 1.89, 1.04, 1.45, 1.38, 1.91, 1.64, 0.73, 1.46}
	y := []float64{1.15, 0.88, 0.90, 0.74, 1.21}
	r := MannWhitney{Metric: "latency_ms", MinSamples: 5}.Evaluate(raw(x, y), monitor.Observation{})
	want := "latency_ms: canary mean 1.313 vs control mean 0.976 (+34.5 %), shift +0.305 [95% CI -0.15, +0.76], U=35, p=0.254 >= 0.05: no significant difference (10 vs 5 samples)"
	if diff := cmp.Diff(want, r.Reason); diff != "" {
		t.Errorf("(-want +got)\n%s", diff)
	}
}

func TestMannWhitneyNaN(t *testing.T) {
	canary := append(samples(7, 50, 100, 10), math.NaN(), math.Inf(1))
	control := samples(8, 50, 100, 10)
	r := MannWhitney{Metric: "latency_ms"}.Evaluate(raw(canary, control), monitor.Observation{})
	if r.Samples != 50 || r.Outcome != Pass {
		t.Errorf("remove: %d samples, %s: %s", r.Samples, r.Outcome, r.Reason)
	}
	// Replacing 30 NaNs by 0 drags the canary down.
	canary = append(samples(7, 50, 100, 10), make([]float64, 30)...)
	for i := 50; i < 80; i++ {
		canary[i] = math.NaN()
	}
	r = MannWhitney{Metric: "latency_ms", NaN: ReplaceNaN}.Evaluate(raw(canary, control), monitor.Observation{})
	if r.Samples != 50 || r.Outcome != Fail || !strings.Contains(r.Reason, "(80 vs 50 samples)") {
		t.Errorf("replace: %d samples, %s: %s", r.Samples, r.Outcome, r.Reason)
	}
}

// A critical Mann-Whitney failure rolls back at once through the policy.
func TestMannWhitneyCritical(t *testing.T) {
	p := Policy{Triggers: []Trigger{MannWhitney{Metric: "latency_ms", Critical: true, AllowedEffect: 0.1}}, FailureLimit: 3}
	var c Counters
	d := p.Judge(&c, raw(samples(3, 200, 120, 10), samples(1, 200, 100, 10)), monitor.Observation{}, nil)
	if diff := cmp.Diff([]any{Rollback, Counters{Failures: 1}}, []any{d.Verdict, c}); diff != "" {
		t.Errorf("(-want +got)\n%s\n%s", diff, d.Reason)
	}
}
