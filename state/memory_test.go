package state_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/deploykit/deploy/deploytest"
	"github.com/deploykit/deploy/state"
)

// TestMemorySharesHistoryWithoutRaces: one holder keeps its record,
// appends and saves, while others load it and append to their copies. The
// history is shared, not copied, yet no one writes memory another reads
// (run with -race), and every holder reads back its own entries.
func TestMemorySharesHistoryWithoutRaces(t *testing.T) {
	m := state.NewMemory()
	ctx := t.Context()
	r := deploytest.FullRecord("rel-1")
	if err := m.Create(ctx, r); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for g := range 3 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				got, err := m.Load(ctx, "rel-1")
				if err != nil {
					t.Error(err)
					return
				}
				n := len(got.Timeline)
				mine := state.Entry{Detail: fmt.Sprint("reader ", g, " ", i)}
				got.Timeline = append(got.Timeline, mine)
				for _, e := range got.Timeline[:n] {
					_ = e.Detail // read every shared entry
				}
				if got.Timeline[n].Detail != mine.Detail {
					t.Errorf("reader %d appended %q and reads %q", g, mine.Detail, got.Timeline[n].Detail)
					return
				}
			}
		})
	}
	for i := range 2000 {
		r.Timeline = append(r.Timeline, state.Entry{At: time.Unix(int64(i), 0), Detail: fmt.Sprint("writer ", i)})
		if err := m.Update(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	got, err := m.Load(ctx, "rel-1")
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Timeline) != 2001 || got.Timeline[2000].Detail != "writer 1999" {
		t.Errorf("stored %d entries ending with %q, want 2001 ending with the writer's last", len(got.Timeline), got.Timeline[len(got.Timeline)-1].Detail)
	}
}

// TestMemoryDoesNotCopyHistory: Load and Update share the history's
// entries instead of copying them, so they allocate as much at 1,000
// entries as at 10.
func TestMemoryDoesNotCopyHistory(t *testing.T) {
	allocs := map[int]float64{}
	for _, n := range []int{10, 1000} {
		m := state.NewMemory()
		ctx := t.Context()
		r := deploytest.FullRecord(fmt.Sprint("rel-", n))
		for i := range n {
			r.Timeline = append(r.Timeline, state.Entry{Detail: fmt.Sprint(i)})
		}
		if err := m.Create(ctx, r); err != nil {
			t.Fatal(err)
		}
		got, err := m.Load(ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if &got.Timeline[0] != &r.Timeline[0] || &got.RollbackSteps[0] != &r.RollbackSteps[0] {
			t.Error("Load copied the history the caller saved")
		}
		if cap(got.Timeline) != len(got.Timeline) {
			t.Errorf("Load handed out a Timeline with room to grow (len %d, cap %d): appends would write into shared memory", len(got.Timeline), cap(got.Timeline))
		}
		allocs[n] = testing.AllocsPerRun(100, func() {
			got, _ := m.Load(ctx, r.ID)
			got.Observed++
			m.Update(ctx, got)
		})
	}
	if allocs[1000] != allocs[10] {
		t.Errorf("Load and Update allocate %v times at 1,000 entries and %v at 10, want the same (no copy of the history)", allocs[1000], allocs[10])
	}
}
