package deploy_test

import (
	"context"
	"fmt"
	"time"

	"github.com/deploykit/deploy"
	"github.com/deploykit/deploy/deploytest"
	"github.com/deploykit/deploy/monitor"
	"github.com/deploykit/deploy/state"
)

// An inline analysis, as an Argo Rollouts analysis step: the canary step
// waits for the run, and a success rate below its bound rolls back with a
// reason that names the metric, its value and the bound.
func ExampleAnalysis() {
	s := &deploytest.Strategy{Steps: []deploytest.StepSpec{{Name: "canary", Exposure: 0.1}, {Name: "everyone", Exposure: 1}}}
	successRate := &deploy.Analysis{Name: "success-rate", Metrics: []deploy.AnalysisMetric{{
		Name: "success-rate", Unit: "ratio", Success: deploy.AtLeast(0.95),
		Measure: func(context.Context, monitor.Target) (float64, error) { return 0.91, nil }, // one measurement
	}}}
	r, err := deploy.NewRunner(s,
		deploy.WithStore(state.NewMemory()),
		deploy.WithMonitors(deploytest.Healthy()),
		deploy.WithNotifiers(&deploytest.Recorder{}),
		deploy.WithWaiver(deploy.FridayDeploy, "example runs any day"),
		deploy.WithInterval(time.Millisecond), deploy.WithRollbackSettle(0),
		deploy.WithSchedule(monitor.Schedule{}),
		deploy.WithStepRules(deploy.StepRule{Step: "canary", Analysis: successRate}),
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	rep, err := r.Run(context.Background(), deploy.Release{Service: "checkout", Version: "v2"})
	fmt.Println(rep.Status)
	fmt.Println(err)
	// Output:
	// rolled back
	// deploy step production/canary: deploy: unhealthy: inline analysis success-rate failed at step canary: success-rate failed 1 time (none tolerated): last success-rate = 0.91 ratio, success condition not met: needs at least 0.95 ratio
}
