// Command minimal is the smallest program of a user of deploykit: the
// runner, strategy.Direct and the File store.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/deploykit/deploy"
	"github.com/deploykit/deploy/state"
	"github.com/deploykit/deploy/strategy"
)

func main() {
	store, err := state.NewFile(os.TempDir())
	if err != nil {
		panic(err)
	}
	s := &strategy.Direct{Deploy: func(context.Context, *deploy.Deployment) error { return nil }}
	r, err := deploy.NewRunner(s, deploy.WithStore(store))
	fmt.Println(r != nil, err)
}
