package state_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/deploykit/deploy/state"
)

// A release whose runner is gone for good keeps its service from
// releasing again until it is set aside.
func ExampleQuarantiner() {
	ctx := context.Background()
	var store state.Store = state.NewMemory()
	stuck := &state.Record{ID: "checkout-v2", Release: state.Release{Service: "checkout", Version: "v2", Environment: "production"}, Status: state.Running}
	store.Create(ctx, stuck)

	next := &state.Record{ID: "checkout-v3", Release: state.Release{Service: "checkout", Version: "v3", Environment: "production"}, Status: state.Running}
	fmt.Println("blocked:", errors.Is(store.Create(ctx, next), state.ErrActive))

	if q, ok := store.(state.Quarantiner); ok {
		if err := q.Quarantine(ctx, "checkout-v2", "runner host decommissioned; INC-1234"); err != nil {
			fmt.Println(err)
		}
	}
	fmt.Println("created:", store.Create(ctx, next) == nil)

	_, err := store.Load(ctx, "checkout-v2")
	var qe *state.QuarantineError
	if errors.As(err, &qe) {
		fmt.Println("set aside:", qe.Reason)
	}
	// Output:
	// blocked: true
	// created: true
	// set aside: runner host decommissioned; INC-1234
}

// A holder that keeps its record between saves appends to its history and
// pays nothing for the entries already stored.
func ExampleStore_appendOnlyHistory() {
	ctx := context.Background()
	store := state.NewMemory()
	r := &state.Record{ID: "search-v7", Release: state.Release{Service: "search", Version: "v7"}, Status: state.Running}
	store.Create(ctx, r)
	for i := range 3 {
		r.Timeline = append(r.Timeline, state.Entry{Phase: "deploy", Kind: "step", Name: fmt.Sprint("step ", i)})
		if err := store.Update(ctx, r); err != nil {
			fmt.Println(err)
		}
	}
	// Dropping an entry is refused.
	r.Timeline = r.Timeline[:2]
	fmt.Println(errors.Is(store.Update(ctx, r), state.ErrHistory))
	got, _ := store.Load(ctx, "search-v7")
	fmt.Println(len(got.Timeline), got.Timeline[2].Name)
	// Output:
	// true
	// 3 step 2
}
