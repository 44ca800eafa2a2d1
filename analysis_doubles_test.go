package deploy_test

import (
	"context"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/deploykit/deploy"
	"github.com/deploykit/deploy/deploytest"
	"github.com/deploykit/deploy/monitor"
	"github.com/deploykit/deploy/state"
)

// series measures values in turn, then the last one again; it records the
// virtual time of each measurement since start.
type series struct {
	mu     sync.Mutex
	values []float64
	start  time.Time
	at     []time.Duration
}

func newSeries(values ...float64) *series {
	return &series{values: values, start: time.Now()}
}

func (s *series) measure(ctx context.Context, t monitor.Target) (float64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.at = append(s.at, time.Since(s.start))
	if len(s.values) == 0 {
		return math.NaN(), nil
	}
	v := s.values[0]
	if len(s.values) > 1 {
		s.values = s.values[1:]
	}
	return v, nil
}

// times returns when each measurement was taken, since the series was made.
func (s *series) times() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.at...)
}

// decisionRunner opens a runner on store for the analysis and decision
// tests: a 1-minute interval, a healthy monitor under the default policy
// (the guard rail), no watch after the post-deployment checks.
func decisionRunner(t *testing.T, s deploy.Strategy, store state.Store, extra ...deploy.Option) *deploy.Runner {
	t.Helper()
	return openRunner(t, s, store, append([]deploy.Option{deploy.WithInterval(time.Minute), deploy.WithMonitors(deploytest.Healthy())}, extra...)...)
}

// waitFor sleeps in virtual time, a second at a time, until the stored
// record of id satisfies ok, and returns it; it fails the test after limit.
func waitFor(t *testing.T, store state.Store, id string, limit time.Duration, ok func(*state.Record) bool) *state.Record {
	t.Helper()
	end := time.Now().Add(limit)
	for {
		rec, err := store.Load(context.Background(), id)
		if err == nil && ok(rec) {
			return rec
		}
		if time.Now().After(end) {
			if rec != nil {
				t.Fatalf("waited %v for the release; it is %s in %s at step %d, waiting %+v", limit, rec.Status, rec.Phase, rec.Step, rec.Waiting)
			}
			t.Fatalf("waited %v for the release: %v", limit, err)
		}
		time.Sleep(time.Second)
	}
}

// waiting reports whether rec waits for kind.
func waiting(kind state.WaitKind) func(*state.Record) bool {
	return func(rec *state.Record) bool { return rec.Waiting != nil && rec.Waiting.Kind == kind }
}

// runInBackground resumes release id in a goroutine; the result comes on the channel.
type result struct {
	rep *deploy.Report
	err error
}

func runInBackground(r *deploy.Runner, ctx context.Context, id string) chan result {
	ch := make(chan result, 1)
	go func() {
		rep, err := r.Resume(ctx, id)
		ch <- result{rep, err}
	}()
	return ch
}
