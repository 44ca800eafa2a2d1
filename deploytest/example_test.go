package deploytest_test

import (
	"errors"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/deploykit/deploy"
	"github.com/deploykit/deploy/deploytest"
	"github.com/deploykit/deploy/monitor"
	"github.com/deploykit/deploy/state"
)

// A runner crashes right after it recorded the second step applied; a new
// runner — another process, in real life — resumes the release from the
// same store once the crashed runner's lease has run out. Inside
// synctest.Test the waits take no time.
func ExampleFaultStore() {
	t := &testing.T{} // in a test: synctest.Test(t, …) with the test's own t
	synctest.Test(t, func(t *testing.T) {
		store := state.NewMemory()
		target := &deploytest.Strategy{Steps: deploytest.Ramp(10*time.Minute, 0.1, 0.5, 1), Fenced: true}
		crashing := deploytest.NewFaultStore(store)
		crashing.OnWrite = deploytest.CrashAfterStep("50%")
		open := func(s state.Store) *deploy.Runner {
			r, err := deploy.NewRunner(target, deploy.WithStore(s), deploy.WithMonitors(deploytest.Healthy()),
				deploy.WithNotifiers(&deploytest.Recorder{}), deploy.WithSchedule(monitor.Schedule{}),
				deploy.WithWaiver(deploy.FridayDeploy, "synctest's clock starts on a Saturday"))
			if err != nil {
				panic(err)
			}
			return r
		}
		rel := deploy.Release{Service: "checkout", Version: "v2", PreviousVersion: "v1"}
		rep, err := open(crashing).Run(t.Context(), rel)
		fmt.Println("crashed:", errors.Is(err, deploytest.ErrCrashed), "users at", target.Exposure())

		// The crashed runner's lease runs out: Resume before then returns
		// a *deploy.LockedError whose Until says when.
		_, err = open(store).Resume(t.Context(), rep.ID)
		var locked *deploy.LockedError
		if errors.As(err, &locked) {
			time.Sleep(time.Until(locked.Until))
		}
		rep, err = open(store).Resume(t.Context(), rep.ID)
		fmt.Println("resumed:", rep.Status, err, "users at", target.Exposure())
		fmt.Println("applied:", target.Applied())
	})
	// Output:
	// crashed: true users at 0.5
	// resumed: succeeded <nil> users at 1
	// applied: [production/10% production/50% production/100%]
}
