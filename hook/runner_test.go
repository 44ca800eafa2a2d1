package hook_test

import (
	"testing"
	"time"

	"github.com/deploykit/deploy"
	"github.com/deploykit/deploy/deploytest"
	"github.com/deploykit/deploy/monitor"
	"github.com/deploykit/deploy/state"
)

// rel is the release of the tests: Flagger's podinfo in namespace test.
var rel = deploy.Release{Service: "podinfo", Version: "v2", PreviousVersion: "v1", Environment: "test"}

// canary is a Flagger-like plan: the canary scaled up without traffic,
// then traffic steps, each baking one analysis interval.
func canary() *deploytest.Strategy {
	return &deploytest.Strategy{Steps: []deploytest.StepSpec{
		{Name: "canary", Exposure: 0, Bake: time.Minute},
		{Name: "20%", Exposure: 0.2, Bake: time.Minute},
		{Name: "60%", Exposure: 0.6, Bake: time.Minute},
		{Name: "100%", Exposure: 1, Bake: time.Minute},
	}}
}

// runner returns a runner with Flagger's interval of one minute, the
// threshold given, no watch after the release, a recording notifier and a
// healthy metrics monitor (which verifies a rollback: the hooks report
// nothing then).
func runner(t *testing.T, s deploy.Strategy, threshold int, opts ...deploy.Option) *deploy.Runner {
	t.Helper()
	base := []deploy.Option{
		deploy.WithStore(state.NewMemory()), deploy.WithNotifiers(&deploytest.Recorder{}),
		deploy.WithWaiver(deploy.FridayDeploy, "test"), deploy.WithInterval(time.Minute),
		deploy.WithSchedule(monitor.Schedule{}),
		deploy.WithRollbackPolicy(hookPolicy(threshold)), deploy.WithMonitors(deploytest.Healthy()),
	}
	r, err := deploy.NewRunner(s, append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
