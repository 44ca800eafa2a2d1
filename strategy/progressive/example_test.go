package progressive_test

import (
	"context"
	"fmt"
	"time"

	"github.com/open-feature/go-sdk/openfeature/isolated"

	"github.com/deploykit/deploy"
	"github.com/deploykit/deploy/flags"
	"github.com/deploykit/deploy/strategy/progressive"
)

// Apply the first steps of a progressive rollout by hand, as the runner does,
// then roll back. Each step sets the flag's share and checks through the
// OpenFeature client that users get it.
func ExampleStrategy() {
	ctx := context.Background()
	p, err := flags.NewProvider(flags.BoolFlag("new-checkout", 0))
	if err != nil {
		panic(err)
	}
	api := isolated.NewAPI()
	defer api.Shutdown(ctx)
	if err := api.SetProviderAndWait(ctx, p); err != nil {
		panic(err)
	}
	s := &progressive.Strategy{
		Flag:       "new-checkout",
		Controller: p,               // the write side; or flags.NewFlagdFile(path)
		Client:     api.NewClient(), // the read side
		Deploy: func(ctx context.Context, d *deploy.Deployment) error {
			fmt.Println("deploying the new binary, flag off")
			return nil
		},
		Bake: 30 * time.Minute,
	}
	d := &deploy.Deployment{ID: "checkout-v2"}
	steps, err := s.Plan(context.Background(), d)
	if err != nil {
		panic(err)
	}
	for _, st := range steps {
		fmt.Printf("plan: %-4s exposure %-4v bake %v\n", st.Name, st.Exposure, st.Bake)
	}
	for _, st := range steps[:3] {
		if err := st.Apply(ctx, d); err != nil {
			panic(err)
		}
		share, _ := p.Share(ctx, "new-checkout")
		fmt.Printf("applied %s: share %v, checked\n", st.Name, share)
	}
	if err := s.Rollback(ctx, d); err != nil {
		panic(err)
	}
	share, _ := p.Share(ctx, "new-checkout")
	fmt.Printf("rolled back: share %v\n", share)
	// Output:
	// plan: dark exposure 0    bake 30m0s
	// plan: 1%   exposure 0.01 bake 30m0s
	// plan: 5%   exposure 0.05 bake 30m0s
	// plan: 25%  exposure 0.25 bake 30m0s
	// plan: 50%  exposure 0.5  bake 30m0s
	// plan: 100% exposure 1    bake 30m0s
	// deploying the new binary, flag off
	// applied dark: share 0, checked
	// applied 1%: share 0.01, checked
	// applied 5%: share 0.05, checked
	// rolled back: share 0
}
