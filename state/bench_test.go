package state_test

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/deploykit/deploy/deploytest"
	"github.com/deploykit/deploy/state"
)

// benchEntry is a timeline entry as the runner writes one for a step.
func benchEntry(i int) state.Entry {
	return state.Entry{
		At:    time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Minute),
		Phase: "deploy", Kind: "step", Name: fmt.Sprintf("step-%d", i), Stage: "production",
		Exposure: 0.25, Detail: "applied; baking 5m0s",
	}
}

// benchRecord returns a running record of service svc with n timeline
// entries.
func benchRecord(id, svc string, n int) *state.Record {
	r := deploytest.FullRecord(id)
	r.Release.Service = svc
	r.Timeline = make([]state.Entry, 0, n)
	for i := range n {
		r.Timeline = append(r.Timeline, benchEntry(i))
	}
	return r
}

// BenchmarkFileUpdateReleases: fenced Updates per second on the File store
// with 1 and 8 releases written at once, each by a holder that keeps its
// record and appends one timeline entry per Update.
func BenchmarkFileUpdateReleases(b *testing.B) {
	for _, k := range []int{1, 8} {
		b.Run(fmt.Sprintf("releases=%d", k), func(b *testing.B) {
			f, err := state.NewFile(b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			recs := make([]*state.Record, k)
			for i := range recs {
				recs[i] = benchRecord(fmt.Sprint("rel-", i), fmt.Sprint("svc-", i), 10)
				if err := f.Create(b.Context(), recs[i]); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			var next atomic.Int64
			var wg sync.WaitGroup
			for _, r := range recs {
				wg.Go(func() {
					for next.Add(1) <= int64(b.N) {
						r.Timeline = append(r.Timeline, benchEntry(len(r.Timeline)))
						if err := f.Update(b.Context(), r); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "writes/s")
		})
	}
}

// BenchmarkFileUpdateHistory: one Update appending one entry to a record
// whose timeline starts at 10, 100 and 1,000 entries; the allocations and
// the bytes written do not depend on it. B/entry is how much the stored
// record (head file and history) grows per appended entry while it runs:
// the history's lines, plus the heads the log holds until it is compacted
// (at most 8 heads' worth, spread over the entries); B/entry-final is the
// same once an Update has finished the release, which compacts its log of
// heads to one head.
func BenchmarkFileUpdateHistory(b *testing.B) {
	for _, n := range []int{10, 100, 1000} {
		b.Run(fmt.Sprintf("entries=%d", n), func(b *testing.B) {
			dir := b.TempDir()
			f, err := state.NewFile(dir)
			if err != nil {
				b.Fatal(err)
			}
			r := benchRecord("rel-1", "checkout", n)
			if err := f.Create(b.Context(), r); err != nil {
				b.Fatal(err)
			}
			before := storedSize(b, dir, "rel-1")
			b.ReportAllocs()
			for b.Loop() {
				r.Timeline = append(r.Timeline, benchEntry(len(r.Timeline)))
				if err := f.Update(b.Context(), r); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(storedSize(b, dir, "rel-1")-before)/float64(len(r.Timeline)-n), "B/entry")
			b.StopTimer()
			r.Status, r.Outcome = state.Succeeded, state.Succeeded
			if err := f.Update(b.Context(), r); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(storedSize(b, dir, "rel-1")-before)/float64(len(r.Timeline)-n), "B/entry-final")
		})
	}
}

// storedSize is the size of a release's head and history files (a release
// whose history fits in its head has no history file).
func storedSize(b *testing.B, dir, id string) int64 {
	var n int64
	for _, name := range []string{id + ".json", id + ".jsonl"} {
		st, err := os.Stat(filepath.Join(dir, name))
		if errors.Is(err, fs.ErrNotExist) && name == id+".jsonl" {
			continue
		}
		if err != nil {
			b.Fatal(err)
		}
		n += st.Size()
	}
	return n
}

// BenchmarkMemoryLoadUpdate: the Memory store's Load, a change of the head
// and Update, at timeline lengths of 10, 100 and 1,000 entries.
//
//   - load: Load, change a field, Update (no new entry);
//   - load-append: Load, append one entry, Update: the append copies the
//     history once, since Load hands it out clipped;
//   - keep-append: a holder that keeps its record appends one entry and
//     Updates, as the engine should.
//
// The cases start a new record every 100 operations, so the
// timeline stays near its nominal length.
func BenchmarkMemoryLoadUpdate(b *testing.B) {
	for _, mode := range []string{"load", "load-append", "keep-append"} {
		for _, n := range []int{10, 100, 1000} {
			b.Run(fmt.Sprintf("%s/entries=%d", mode, n), func(b *testing.B) {
				m := state.NewMemory()
				ctx := b.Context()
				base := benchRecord("x", "x", n).Timeline
				round, i := 0, 0
				var r *state.Record
				b.ReportAllocs()
				for b.Loop() {
					if i%100 == 0 {
						r = benchRecord(fmt.Sprint("rel-", round), fmt.Sprint("svc-", round), 0)
						r.Timeline = base[:n:n]
						if err := m.Create(ctx, r); err != nil {
							b.Fatal(err)
						}
						round++
					}
					i++
					if mode != "keep-append" {
						got, err := m.Load(ctx, r.ID)
						if err != nil {
							b.Fatal(err)
						}
						r = got
					}
					if mode == "load" {
						r.Observed++
					} else {
						r.Timeline = append(r.Timeline, benchEntry(i))
					}
					if err := m.Update(ctx, r); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
