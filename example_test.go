package deploy_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/deploykit/deploy"
	"github.com/deploykit/deploy/deploytest"
	"github.com/deploykit/deploy/monitor"
	"github.com/deploykit/deploy/state"
)

// A release whose new version doubles the error rate once fully exposed rolls
// back on its own and says why.
func Example() {
	s := &deploytest.Strategy{Steps: []deploytest.StepSpec{
		{Name: "canary", Exposure: 0.1},
		{Name: "everyone", Exposure: 1},
	}}
	r, err := deploy.NewRunner(s,
		deploy.WithStore(state.NewMemory()),
		deploy.WithMonitors(deploytest.Regression(1, deploytest.Health{ErrorRate: 0.04, P95: 120 * time.Millisecond})),
		deploy.WithNotifiers(&deploytest.Recorder{}),
		deploy.WithWaiver(deploy.FridayDeploy, "example runs any day"),
		deploy.WithInterval(time.Millisecond),
		deploy.WithSchedule(monitor.Schedule{}),
	)
	if err != nil {
		panic(err)
	}
	rep, err := r.Run(context.Background(), deploy.Release{Service: "checkout", Version: "v2"})
	fmt.Println(rep.Status)
	fmt.Println(rep.Trigger.Reason)
	fmt.Println(errors.Is(err, deploy.ErrUnhealthy), s.Exposure())
	// Output:
	// rolled back
	// error rate 4.0 % vs baseline 0.1 % (+3900 %): a significant rise over +0 % (always-valid p 6.1e-14 <= 0.04; 40 errors in 1000 canary requests judged)
	// true 0
}

// Plan is a dry run: the steps, gates, monitors and the rollback procedure,
// with nothing applied.
func ExampleRunner_Plan() {
	s := &deploytest.Strategy{Steps: deploytest.Ramp(time.Hour, 0.05, 0.5, 1)}
	r, _ := deploy.NewRunner(s, deploy.WithMonitors(deploytest.Healthy()))
	doc, err := r.Plan(context.Background(), deploy.Release{Service: "checkout", Version: "v2", Environment: "staging"})
	if err != nil {
		panic(err)
	}
	md := doc.Markdown()
	fmt.Println(md[:strings.Index(md, "\n### Post-deployment")])
	// Output:
	// ## Deployment plan: checkout v2 to staging
	//
	// - Strategy: test
	// - Gates: none
	// - Monitors: deploytest.Monitor (every 1m0s while a step bakes)
	// - Notifiers: none
	//
	// ### Stage staging (staging)
	// | # | Step | Exposure | Bake | Approval |
	// |---|---|---|---|---|
	// | 1 | 5% | 5 % | 1h0m0s |  |
	// | 2 | 50% | 50 % | 1h0m0s |  |
	// | 3 | 100% | 100 % | 1h0m0s |  |
}
