// Package deploytest has test doubles and conformance suites for code that
// uses or extends package deploy: a recording [Strategy], scripted
// [Monitor]s, a [Recorder] notifier, and [TestStrategy] and [TestStore]
// suites for your own strategies and stores.
//
// All doubles are safe for concurrent use and expose what they saw as plain
// data, like httptest.ResponseRecorder. Run release logic inside
// testing/synctest.Test so that bakes and watch windows pass in virtual time:
//
//	synctest.Test(t, func(t *testing.T) {
//		s := &deploytest.Strategy{Steps: deploytest.Ramp(time.Hour, 0.01, 0.05, 0.25, 0.5, 1)}
//		r, _ := deploy.NewRunner(s, deploy.WithStore(state.NewMemory()), ...)
//		rep, err := r.Run(t.Context(), deploy.Release{Service: "checkout", Version: "v2"})
//		...
//	})
//
// # Crashes, pauses and what users saw
//
// Cancelling Run rolls the release back, as it should; to test Resume, stop
// a runner as a crash would instead: give it a [FaultStore] over the shared
// store and crash it (Crash, or OnWrite at a chosen write). It then writes
// nothing more and makes no further effect; a new runner on the shared
// store resumes the release once the lease has run out. A [Fault] with
// Pause holds a runner past its lease, as SIGSTOP or a long GC would.
// A Strategy with Fenced set refuses changes that carry a stale fencing
// token, like a target that keeps Deployment.Token, and its Effects list
// every change it saw: compare them with the record to check that the
// record says what users actually get.
package deploytest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/deploykit/deploy"
	"github.com/deploykit/deploy/monitor"
)

// StepSpec describes one step of a test [Strategy].
type StepSpec struct {
	Name     string
	Exposure float64
	Bake     time.Duration
	Approval bool
	// Err is returned by the step's Apply.
	Err error
	// Block makes Apply wait until its context is done.
	Block bool
}

// Ramp returns steps named after their exposure ("1%", "5%", …), each baking
// for bake.
func Ramp(bake time.Duration, exposures ...float64) []StepSpec {
	out := make([]StepSpec, len(exposures))
	for i, e := range exposures {
		out[i] = StepSpec{Name: fmt.Sprintf("%g%%", e*100), Exposure: e, Bake: bake}
	}
	return out
}

// Strategy is a deploy.Strategy that records what the runner asked of it.
type Strategy struct {
	Steps []StepSpec
	// RollbackErr is returned by Rollback.
	RollbackErr error
	// NoRollback makes RollbackPath report false.
	NoRollback bool
	// Fenced makes the strategy's target refuse a change that carries a
	// lower Deployment.Token than one it already took, with ErrStaleToken,
	// as a target that stores the token with each change does: a runner
	// paused past its lease cannot change it behind the runner that took
	// the release over.
	Fenced bool

	mu        sync.Mutex
	applied   []string
	rollbacks int
	exposure  float64
	token     int64
	effects   []Effect
}

// ErrStaleToken is what a Fenced Strategy returns for a stale token.
var ErrStaleToken = errors.New("deploytest: change refused: a newer lease holder already changed the target")

// Effect is one change a Strategy's target saw, in order: what users were
// exposed to, as opposed to what a record says.
type Effect struct {
	// Step is the step applied ("stage/step"), or "rollback".
	Step string
	// Exposure is the share of users on the new version after it.
	Exposure float64
	// Token is the lease's fencing token the change carried.
	Token int64
	// Refused is set when a Fenced target refused the change.
	Refused bool
	At      time.Time
}

// admit records an effect and reports whether the target takes it.
func (s *Strategy) admit(step string, exposure float64, token int64) bool {
	e := Effect{Step: step, Exposure: exposure, Token: token, At: time.Now()}
	if s.Fenced && token < s.token {
		e.Refused = true
		s.effects = append(s.effects, e)
		return false
	}
	s.token = max(s.token, token)
	s.effects = append(s.effects, e)
	return true
}

// Effects returns every change the target saw, in order.
func (s *Strategy) Effects() []Effect {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.effects)
}

var _ deploy.Strategy = (*Strategy)(nil)

// Name returns "test".
func (s *Strategy) Name() string { return "test" }

// Plan implements deploy.Strategy.
func (s *Strategy) Plan(ctx context.Context, d *deploy.Deployment) ([]deploy.Step, error) {
	steps := make([]deploy.Step, len(s.Steps))
	for i, sp := range s.Steps {
		steps[i] = deploy.Step{Name: sp.Name, Exposure: sp.Exposure, Bake: sp.Bake, Approval: sp.Approval,
			Apply: func(ctx context.Context, d *deploy.Deployment) error { return s.ApplyStep(ctx, d, sp) }}
	}
	return steps, nil
}

// ApplyStep applies sp as the Apply of its step in Plan does: it records
// the step and its exposure, or, for a Fenced strategy, refuses a stale
// token with ErrStaleToken. Strategies that wrap a Strategy to inject
// faults call it from their own Apply.
func (s *Strategy) ApplyStep(ctx context.Context, d *deploy.Deployment, sp StepSpec) error {
	if sp.Block {
		<-ctx.Done()
		return ctx.Err()
	}
	if sp.Err != nil {
		return sp.Err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.admit(d.Stage.Name+"/"+sp.Name, sp.Exposure, d.Token) {
		return ErrStaleToken
	}
	s.applied = append(s.applied, d.Stage.Name+"/"+sp.Name)
	s.exposure = sp.Exposure
	return nil
}

// Rollback implements deploy.Strategy.
func (s *Strategy) Rollback(ctx context.Context, d *deploy.Deployment) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rollbacks++
	if s.RollbackErr != nil {
		return s.RollbackErr
	}
	if !s.admit("rollback", 0, d.Token) {
		return ErrStaleToken
	}
	s.exposure = 0
	return nil
}

// RollbackPath reports !NoRollback.
func (s *Strategy) RollbackPath() bool { return !s.NoRollback }

// Applied returns the applied steps as "stage/step", in order.
func (s *Strategy) Applied() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.applied)
}

// Rollbacks returns how many times Rollback was called.
func (s *Strategy) Rollbacks() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rollbacks
}

// Exposure returns the exposure of the last applied step, or 0 after a rollback.
func (s *Strategy) Exposure() float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.exposure
}

// Monitor is a scripted deploy.Monitor: Script computes each observation
// from the target (exposure, phase, time). It records every target observed.
type Monitor struct {
	Script func(t monitor.Target) (monitor.Observation, error)

	mu      sync.Mutex
	targets []monitor.Target
}

var _ deploy.Monitor = (*Monitor)(nil)

// Observe implements deploy.Monitor.
func (m *Monitor) Observe(ctx context.Context, t monitor.Target) (monitor.Observation, error) {
	m.mu.Lock()
	m.targets = append(m.targets, t)
	m.mu.Unlock()
	obs, err := m.Script(t)
	if obs.At.IsZero() {
		obs.At = time.Now()
	}
	return obs, err
}

// Targets returns the targets observed, in order.
func (m *Monitor) Targets() []monitor.Target {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.targets)
}

// Calls returns how many observations were made.
func (m *Monitor) Calls() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.targets)
}

// Health is an error rate and p95 latency, with a sample count. A Samples
// of 0 means 1000, so that Health{ErrorRate: 0.08} is a clear verdict; to
// test too few samples or no data, set Samples or use monitor.NoData.
type Health struct {
	ErrorRate float64
	P95       time.Duration
	Samples   int
}

// Observation returns h as an observation with the well-known metric names.
func (h Health) Observation() monitor.Observation {
	n := h.Samples
	if n == 0 {
		n = 1000
	}
	var o monitor.Observation
	o.Set(monitor.ErrorRate, monitor.Rate(h.ErrorRate, n))
	o.Set(monitor.LatencyP95, monitor.Value(h.P95.Seconds(), n))
	return o
}

// Healthy returns a monitor that always reports good health: 0.1 % errors and
// a p95 of 120 ms, over 1000 samples, for the new version and as baseline.
func Healthy() *Monitor {
	obs := Health{ErrorRate: 0.001, P95: 120 * time.Millisecond}.Observation()
	return &Monitor{Script: func(monitor.Target) (monitor.Observation, error) {
		o := obs // the metrics are read, never written, by the runner
		o.At = time.Time{}
		return o, nil
	}}
}

// Regression returns a monitor that reports good health until the exposure
// reaches at (while deploying or verifying), then bad: the error rate of bad.
// After a rollback (phase "rollback") it is healthy again.
func Regression(at float64, bad Health) *Monitor {
	good := Health{ErrorRate: 0.001, P95: 120 * time.Millisecond}
	return &Monitor{Script: func(t monitor.Target) (monitor.Observation, error) {
		if t.Phase != "baseline" && t.Phase != "rollback" && t.Exposure >= at {
			return bad.Observation(), nil
		}
		return good.Observation(), nil
	}}
}

// Recorder is a deploy.Notifier that records the events it is given, in
// order. FailNext makes the next deliveries fail (the events are then not
// recorded), to test the runner's retries.
type Recorder struct {
	mu     sync.Mutex
	events []deploy.Event
	fail   int
}

var _ deploy.Notifier = (*Recorder)(nil)

// Name returns "recorder".
func (r *Recorder) Name() string { return "recorder" }

// FailNext makes the next n deliveries fail.
func (r *Recorder) FailNext(n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fail = n
}

// Notify implements deploy.Notifier.
func (r *Recorder) Notify(ctx context.Context, e deploy.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail > 0 {
		r.fail--
		return fmt.Errorf("deploytest: notifier down")
	}
	r.events = append(r.events, e)
	return nil
}

// Events returns the events delivered, in order.
func (r *Recorder) Events() []deploy.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

// Kinds returns the kinds of the events delivered, in order.
func (r *Recorder) Kinds() []deploy.EventKind {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]deploy.EventKind, len(r.events))
	for i, e := range r.events {
		out[i] = e.Kind
	}
	return out
}
