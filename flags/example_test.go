package flags_test

import (
	"context"
	"fmt"

	"github.com/open-feature/go-sdk/openfeature"
	"github.com/open-feature/go-sdk/openfeature/isolated"

	"github.com/deploykit/deploy/flags"
)

// Ramp a flag from 5 % to 25 % and evaluate it through an isolated OpenFeature
// API: every user exposed at 5 % stays exposed at 25 %.
func Example() {
	ctx := context.Background()
	p, err := flags.NewProvider(flags.BoolFlag("new-checkout", 0.05))
	if err != nil {
		panic(err)
	}
	api := isolated.NewAPI()
	defer api.Shutdown(ctx)
	if err := api.SetProviderAndWait(ctx, p); err != nil {
		panic(err)
	}
	client := api.NewClient()

	exposed := func() map[string]bool {
		users := map[string]bool{}
		for i := range 10000 {
			user := fmt.Sprintf("user-%d", i)
			on, _ := client.BooleanValue(ctx, "new-checkout", false, openfeature.NewEvaluationContext(user, nil))
			if on {
				users[user] = true
			}
		}
		return users
	}
	at5 := exposed()
	fmt.Printf("5%%: %d of 10000 users\n", len(at5))

	var c flags.Controller = p // or flags.NewFlagdFile(path) for services using flagd
	if err := c.SetShare(ctx, "new-checkout", 0.25); err != nil {
		panic(err)
	}
	at25 := exposed()
	kept := true
	for user := range at5 {
		kept = kept && at25[user]
	}
	fmt.Printf("25%%: %d of 10000 users; all users exposed at 5%% still exposed: %v\n", len(at25), kept)

	_, err = client.BooleanValue(ctx, "new-checkout", false, openfeature.NewTargetlessEvaluationContext(nil))
	fmt.Println(err)
	// Output:
	// 5%: 527 of 10000 users
	// 25%: 2522 of 10000 users; all users exposed at 5% still exposed: true
	// error code: TARGETING_KEY_MISSING: flag new-checkout is a percentage rollout: the evaluation context needs a targeting key to bucket by; serving the off variant
}
