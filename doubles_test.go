package deploy_test

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/deploykit/deploy"
	"github.com/deploykit/deploy/deploytest"
	"github.com/deploykit/deploy/state"
)

// slowFirstApply: the first step's Apply takes a minute.
type slowFirstApply struct {
	*deploytest.Strategy
	entered chan struct{}
	once    sync.Once
	applied atomic.Bool
	// applying is set while the first Apply runs; overlap records a
	// strategy rollback that ran meanwhile.
	applying, overlap atomic.Bool
}

func (s *slowFirstApply) Plan(ctx context.Context, d *deploy.Deployment) ([]deploy.Step, error) {
	steps, err := s.Strategy.Plan(ctx, d)
	if err != nil {
		return nil, err
	}
	inner := steps[0].Apply
	steps[0].Apply = func(ctx context.Context, d *deploy.Deployment) error {
		s.applying.Store(true)
		defer s.applying.Store(false)
		s.once.Do(func() { close(s.entered) })
		time.Sleep(time.Minute)
		err := inner(ctx, d)
		s.applied.Store(err == nil)
		return err
	}
	return steps, nil
}

func (s *slowFirstApply) Rollback(ctx context.Context, d *deploy.Deployment) error {
	if s.applying.Load() {
		s.overlap.Store(true)
	}
	return s.Strategy.Rollback(ctx, d)
}

type crashSecond struct{ *deploytest.Strategy }

func (s *crashSecond) Plan(ctx context.Context, d *deploy.Deployment) ([]deploy.Step, error) {
	steps, err := s.Strategy.Plan(ctx, d)
	if err != nil {
		return nil, err
	}
	inner := steps[1].Apply
	first := true
	steps[1].Apply = func(ctx context.Context, d *deploy.Deployment) error {
		if first {
			first = false
			runtime.Goexit()
		}
		return inner(ctx, d)
	}
	return steps, nil
}

type slowSteps struct {
	*deploytest.Strategy
	entered chan struct{}
	started atomic.Int32
	maxExp  atomic.Value
}

func (s *slowSteps) Plan(ctx context.Context, d *deploy.Deployment) ([]deploy.Step, error) {
	steps, err := s.Strategy.Plan(ctx, d)
	if err != nil {
		return nil, err
	}
	for i := range steps {
		inner := steps[i].Apply
		exp := steps[i].Exposure
		steps[i].Apply = func(ctx context.Context, d *deploy.Deployment) error {
			if s.started.Add(1) == 1 {
				close(s.entered)
			}
			time.Sleep(10*time.Second + 300*time.Millisecond) // deploy the idle side, say
			if m, _ := s.maxExp.Load().(float64); exp > m {
				s.maxExp.Store(exp)
			}
			return inner(ctx, d)
		}
	}
	return steps, nil
}

// flaky fails the next Update once when failNext is set: a transient store
// error (a full disk, a PostgreSQL failover), not a lost lease.
type flaky struct {
	state.Store
	failNext chan struct{}
}

func (f *flaky) Update(ctx context.Context, r *state.Record) error {
	select {
	case <-f.failNext:
		return errors.New("flaky: i/o error")
	default:
	}
	return f.Store.Update(ctx, r)
}

// slowFirst is a strategy whose step "50%" takes 5 minutes the first time
// it is applied and does not notice that its context ended (the issue's
// "an Apply ignores its context"); it then changes the target under the
// token it was given.
type slowFirst struct {
	*deploytest.Strategy
	store *flaky
	calls int
}

func (s *slowFirst) Plan(ctx context.Context, d *deploy.Deployment) ([]deploy.Step, error) {
	steps, err := s.Strategy.Plan(ctx, d)
	for i := range steps {
		sp := s.Strategy.Steps[i]
		if sp.Name != "50%" {
			continue
		}
		steps[i].Apply = func(ctx context.Context, d *deploy.Deployment) error {
			s.calls++
			if s.calls == 1 {
				s.store.failNext <- struct{}{} // the next write (the lease renewal) fails
				time.Sleep(5 * time.Minute)
			}
			return s.Strategy.ApplyStep(ctx, d, sp)
		}
	}
	return steps, err
}

// memoPlanner sets Memo["a"] when first planned; a Plan that finds a key
// missing (here: every Plan after the first, as BlueGreen does for a stage
// added to WithStages) looks it up slowly, past Timeouts.Plan, then sets it.
type memoPlanner struct {
	*deploytest.Strategy
	calls int
}

func (s *memoPlanner) Plan(ctx context.Context, d *deploy.Deployment) ([]deploy.Step, error) {
	s.calls++
	if s.calls == 1 {
		d.Memo["a"] = "1"
	} else if _, ok := d.Memo["b"]; !ok {
		time.Sleep(40 * time.Second) // Idle() against a slow API
		d.Memo["b"] = "2"            // "Later changes are not saved", but allowed
	}
	return s.Strategy.Plan(ctx, d)
}
