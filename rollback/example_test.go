package rollback_test

import (
	"fmt"
	"time"

	"github.com/deploykit/deploy/monitor"
	"github.com/deploykit/deploy/rollback"
)

// A policy judges each observation of a release against the preflight
// baseline; a tolerated failure waits, the next one rolls back.
func Example() {
	p := rollback.Policy{
		Triggers: []rollback.Trigger{
			rollback.CriticalChecks{},
			rollback.RelativeIncrease{Metric: monitor.ErrorRate, MaxIncrease: 0.5},
			rollback.LatencyIncrease{MaxIncrease: 200 * time.Millisecond},
			rollback.RelativeDecrease{Metric: "orders_per_minute", MaxDecrease: 0.1},
		},
		FailureLimit: 1,
	}
	if err := p.Validate(); err != nil {
		panic(err)
	}
	var baseline monitor.Observation
	baseline.Set(monitor.ErrorRate, monitor.Value(0.003, 12000))
	baseline.Set(monitor.LatencyP95, monitor.Value(0.120, 12000))
	baseline.Set("orders_per_minute", monitor.Value(50, 60))

	var c rollback.Counters
	for _, errRate := range []float64{0.003, 0.024, 0.024} {
		var obs monitor.Observation
		obs.Set(monitor.ErrorRate, monitor.Value(errRate, 1200))
		obs.Set(monitor.LatencyP95, monitor.Value(0.130, 1200))
		obs.Set("orders_per_minute", monitor.Value(49, 6))
		d := p.Judge(&c, obs, baseline, nil)
		fmt.Printf("%s: %s\n", d.Verdict, d.Results[1].Reason)
	}

	plan := rollback.NewPlan(&p, "Disable flag new-checkout", "Verify rollback")
	fmt.Print("\n", plan.Markdown())
	// Output:
	// continue: error rate 0.3 % vs baseline 0.3 % (+0 %) within +50 % (1200 samples)
	// wait: error rate 2.4 % vs baseline 0.3 % (+700 %) > +50 % (1200 samples)
	// rollback: error rate 2.4 % vs baseline 0.3 % (+700 %) > +50 % (1200 samples)
	//
	// ## Rollback Procedure
	//
	// ### Trigger Conditions
	// - Critical functionality broken (a critical check fails)
	// - error rate increases by >50% relative to the control or baseline
	// - p95 latency increases by >200ms
	// - orders_per_minute decreases by >10% relative to the control or baseline
	// - More than 1 failed observation(s)
	// - More than 0 inconclusive observation(s) (no data or too few samples)
	// - 4 metric-source errors in a row
	// - A step not completing within 10m0s
	//
	// ### Rollback Steps
	// 1. Disable flag new-checkout
	// 2. Verify rollback
	//
	// ### Post-Rollback
	// - Document what went wrong
	// - Investigate root cause
	// - Plan fix before re-attempting
}

// MannWhitneyU compares raw samples: here the scipy.stats.mannwhitneyu
// documentation's example, whose exact two-sided p-value is 1/9.
func ExampleMannWhitneyU() {
	males := []float64{19, 22, 16, 29, 24}
	females := []float64{20, 11, 17, 12}
	r, err := rollback.MannWhitneyU(males, females, 0.95)
	if err != nil {
		panic(err)
	}
	fmt.Printf("U=%g p=%.4f exact=%v shift=%g [%g, %g]\n", r.U, r.P, r.Exact, r.Shift, r.ShiftLow, r.ShiftHigh)
	// Output:
	// U=17 p=0.1111 exact=true shift=7 [-1, 17]
}
