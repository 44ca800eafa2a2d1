package deploy_test

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/deploykit/deploy"
	"github.com/deploykit/deploy/deploytest"
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
