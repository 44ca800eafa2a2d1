package state_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/deploykit/deploy/deploytest"
	"github.com/deploykit/deploy/state"
)

// TestFileConcurrentCreatesShareTheIndexAndKeepOneActive: Creates at the
// same time are batched under one index write; of those for one service
// and environment exactly one succeeds, whatever batch they fall in.
func TestFileConcurrentCreatesShareTheIndexAndKeepOneActive(t *testing.T) {
	f, _ := newFile(t)
	var wg sync.WaitGroup
	var mu sync.Mutex
	created, active := map[string]int{}, 0
	for i := range 64 {
		wg.Go(func() {
			r := deploytest.FullRecord(fmt.Sprint("rel-", i))
			r.Status, r.Outcome, r.Finished = state.Running, "", r.Finished.Truncate(0)
			r.Release.Service = fmt.Sprint("svc-", i%8)
			err := f.Create(t.Context(), r)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				created[r.Release.Service]++
			case errors.Is(err, state.ErrActive):
				active++
			default:
				t.Errorf("Create %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	for svc, n := range created {
		if n != 1 {
			t.Errorf("%d active releases of %s, want 1", n, svc)
		}
	}
	if len(created) != 8 || active != 56 {
		t.Errorf("%d services created, %d refused; want 8 and 56", len(created), active)
	}
}
