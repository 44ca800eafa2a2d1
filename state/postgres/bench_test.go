package postgres_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/deploykit/deploy/deploytest"
	"github.com/deploykit/deploy/internal/pgtest"
	"github.com/deploykit/deploy/state"
	"github.com/deploykit/deploy/state/postgres"
)

// benchStore starts a server (pgtest runs it with fsync off) and returns a
// store on a new table of its own database.
func benchStore(b *testing.B, srv *pgtest.Server, table string) (*postgres.Store, *pgxpool.Pool) {
	pool, err := pgxpool.New(context.Background(), srv.NewDatabase(b))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	s, err := postgres.New(pool, postgres.WithTable(table))
	if err != nil {
		b.Fatal(err)
	}
	if err := s.Migrate(b.Context()); err != nil {
		b.Fatal(err)
	}
	return s, pool
}

func benchRecord(id, svc string, n int) *state.Record {
	r := deploytest.FullRecord(id)
	r.Release.Service = svc
	r.Timeline = nil
	for i := range n {
		r.Timeline = append(r.Timeline, step(i))
	}
	return r
}

// BenchmarkPostgresUpdate: one Update appending one entry to a record whose
// timeline starts at 10, 100 and 1,000 entries (allocations per Update do
// not depend on it), and fenced Updates per second with 1 and 8 releases
// written at once.
func BenchmarkPostgresUpdate(b *testing.B) {
	srv := pgtest.Start(b)
	for _, n := range []int{10, 100, 1000} {
		b.Run(fmt.Sprintf("entries=%d", n), func(b *testing.B) {
			s, _ := benchStore(b, srv, "releases")
			r := benchRecord("rel-1", "checkout", n)
			if err := s.Create(b.Context(), r); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				r.Timeline = append(r.Timeline, step(len(r.Timeline)))
				if err := s.Update(b.Context(), r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	for _, k := range []int{1, 8} {
		b.Run(fmt.Sprintf("releases=%d", k), func(b *testing.B) {
			s, _ := benchStore(b, srv, "releases")
			recs := make([]*state.Record, k)
			for i := range recs {
				recs[i] = benchRecord(fmt.Sprint("rel-", i), fmt.Sprint("svc-", i), 10)
				if err := s.Create(b.Context(), recs[i]); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			var next atomic.Int64
			var wg sync.WaitGroup
			for _, r := range recs {
				wg.Go(func() {
					for next.Add(1) <= int64(b.N) {
						r.Timeline = append(r.Timeline, step(len(r.Timeline)))
						if err := s.Update(b.Context(), r); err != nil {
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
