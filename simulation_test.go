package deploy_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/deploykit/deploy"
	"github.com/deploykit/deploy/deploytest"
	"github.com/deploykit/deploy/monitor"
	"github.com/deploykit/deploy/rollback"
	"github.com/deploykit/deploy/state"
)

// TestSimulation drives seeded random releases through crashes, pauses
// past the lease, lease expiry, manual rollbacks from other runners,
// pauses, inline analyses that fail, error or are inconclusive, people's
// decisions from other machines (promote, full, abort, retry, skip),
// cancelled runs, monitors that fail, hang or panic, strategies that panic
// or ignore their context, notifier outages and configuration changes
// between resumes — all in virtual time — and checks the engine's promises
// against the effects that really happened, as a fenced target saw them.
//
// DEPLOY_SIM_RELEASES sets how many releases (default 10,000; 1,000 with
// -short or -race), DEPLOY_SIM_SEED the first seed. A failure prints the
// seed; DEPLOY_SIM_SEED=<seed> DEPLOY_SIM_RELEASES=1 replays it.
func TestSimulation(t *testing.T) {
	n := 10_000
	if testing.Short() || raceEnabled {
		n = 1_000
	}
	if v, err := strconv.Atoi(os.Getenv("DEPLOY_SIM_RELEASES")); err == nil {
		n = v
	}
	var first uint64 = 1
	if v, err := strconv.ParseUint(os.Getenv("DEPLOY_SIM_SEED"), 10, 64); err == nil {
		first = v
	}
	failed := 0
	for seed := first; seed < first+uint64(n); seed++ {
		var violations []string
		synctest.Test(t, func(t *testing.T) { violations = simulate(t, seed) })
		if len(violations) > 0 {
			failed++
			t.Errorf("seed %d (replay: DEPLOY_SIM_SEED=%d DEPLOY_SIM_RELEASES=1 go test -run TestSimulation .):", seed, seed)
			for _, v := range violations {
				t.Errorf("  %s", v)
			}
			if failed >= 5 {
				t.Fatalf("stopping after %d failing seeds", failed)
			}
		}
	}
}

// sim is one simulated release's world.
type sim struct {
	mu  sync.Mutex
	rng *rand.Rand

	target *deploytest.Strategy
	store  *state.Memory

	// faults
	applyPanic, applyStuck, applyErr float64
	rollbackPanic                    float64
	monitorMode                      int
	breakAt                          float64
	notifierUp                       time.Time

	rollbacksInFlight int
	violations        []string
	seqs              map[int]int

	// pauses and analyses: rules added to every runner, and the mode of
	// the inline analysis's measurements (0 good, 1 failing, 2 errors and
	// panics, 3 inconclusive).
	rules       []deploy.StepRule
	analysisBad int
}

func (s *sim) chance(p float64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rng.Float64() < p
}

func (s *sim) between(lo, hi time.Duration) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return lo + time.Duration(s.rng.Int64N(int64(hi-lo)+1))
}

func (s *sim) violate(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.violations = append(s.violations, fmt.Sprintf(format, args...))
}

// simStrategy injects the sim's faults around the fenced target.
type simStrategy struct {
	*sim
	plan []deploytest.StepSpec
}

func (s *simStrategy) Name() string { return "sim" }

func (s *simStrategy) Plan(ctx context.Context, d *deploy.Deployment) ([]deploy.Step, error) {
	t := &deploytest.Strategy{Steps: s.plan}
	steps, err := t.Plan(ctx, d)
	if err != nil {
		return nil, err
	}
	for i := range steps {
		inner := s.target // the one target every runner changes
		spec := s.plan[i]
		steps[i].Apply = func(ctx context.Context, d *deploy.Deployment) error {
			switch {
			case s.chance(s.applyPanic):
				panic("sim: Apply panics")
			case s.chance(s.applyErr):
				return errors.New("sim: Apply fails")
			case s.chance(s.applyStuck):
				time.Sleep(s.between(11*time.Minute, 40*time.Minute)) // ignores ctx past the deadline
			}
			return applyTo(ctx, inner, d, spec)
		}
	}
	return steps, nil
}

// applyTo applies spec to the shared target through a one-step strategy.
func applyTo(ctx context.Context, target *deploytest.Strategy, d *deploy.Deployment, spec deploytest.StepSpec) error {
	return target.ApplyStep(ctx, d, spec)
}

func (s *simStrategy) Rollback(ctx context.Context, d *deploy.Deployment) error {
	s.mu.Lock()
	s.rollbacksInFlight++
	if s.rollbacksInFlight > 1 {
		s.violations = append(s.violations, "two strategy rollbacks ran at once")
	}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.rollbacksInFlight--
		s.mu.Unlock()
	}()
	if s.chance(s.rollbackPanic) {
		panic("sim: Rollback panics")
	}
	return s.target.Rollback(ctx, d)
}

func (s *sim) monitor() deploy.Monitor {
	good := deploytest.Health{ErrorRate: 0.001, P95: 100 * time.Millisecond}
	bad := deploytest.Health{ErrorRate: 0.3, P95: 900 * time.Millisecond}
	return deploy.MonitorFunc(func(ctx context.Context, tg monitor.Target) (monitor.Observation, error) {
		switch s.monitorMode {
		case 1: // flaky source
			if s.chance(0.3) {
				return monitor.Observation{}, errors.New("sim: source down")
			}
		case 2: // hangs now and then, honouring ctx
			if s.chance(0.2) {
				<-ctx.Done()
				return monitor.Observation{}, ctx.Err()
			}
		case 3: // panics now and then
			if s.chance(0.2) {
				panic("sim: monitor panics")
			}
		}
		if tg.Phase != "baseline" && tg.Phase != "rollback" && tg.Exposure >= s.breakAt {
			return bad.Observation(), nil
		}
		return good.Observation(), nil
	})
}

func (s *sim) notifier() deploy.Notifier {
	return deploy.NotifierFunc(func(ctx context.Context, e deploy.Event) error {
		s.mu.Lock()
		defer s.mu.Unlock()
		if time.Now().Before(s.notifierUp) {
			return errors.New("sim: 503")
		}
		s.seqs[e.Seq]++
		if os.Getenv("DEPLOY_SIM_VERBOSE") != "" {
			fmt.Printf("delivered %d %s %s: %s\n", e.Seq, e.Kind, e.Phase, e.Message)
		}
		return nil
	})
}

// options are one runner's configuration; they may change between runners.
func (s *sim) options(store state.Store, holder string, plan []deploytest.StepSpec) []deploy.Option {
	s.mu.Lock()
	interval := []time.Duration{30 * time.Second, time.Minute, 2 * time.Minute}[s.rng.IntN(3)]
	windows := s.rng.IntN(3)
	grace := []time.Duration{30 * time.Second, 2 * time.Minute, 5 * time.Minute}[s.rng.IntN(3)]
	steps := s.rng.IntN(3)
	s.mu.Unlock()
	sched := monitor.Schedule{}
	for i := range windows {
		sched.Windows = append(sched.Windows, monitor.Window{Name: fmt.Sprint("w", i), Duration: time.Duration(i+1) * 10 * time.Minute, Interval: time.Duration(i+1) * time.Minute})
	}
	var rsteps []rollback.PlanStep
	for i := range steps {
		rsteps = append(rsteps, rollback.PlanStep{Name: fmt.Sprint("rollback step ", i), Run: func(ctx context.Context) error { return nil }})
	}
	return []deploy.Option{
		deploy.WithStepRules(s.rules...),
		deploy.WithStore(store), deploy.WithHolder(holder),
		deploy.WithMonitors(s.monitor()), deploy.WithNotifiers(s.notifier()),
		deploy.WithWaiver(deploy.FridayDeploy, "virtual clock"),
		deploy.WithInterval(interval), deploy.WithSchedule(sched), deploy.WithLeaseGrace(grace),
		deploy.WithRollbackSteps(rsteps...), deploy.WithTimeouts(deploy.Timeouts{Observe: 20 * time.Second}),
	}
}

func simulate(t *testing.T, seed uint64) []string {
	s := &sim{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), store: state.NewMemory(), seqs: map[int]int{}}
	s.target = &deploytest.Strategy{Fenced: true}
	r := s.rng
	s.applyPanic = []float64{0, 0, 0.05}[r.IntN(3)]
	s.applyErr = []float64{0, 0, 0.05}[r.IntN(3)]
	s.applyStuck = []float64{0, 0, 0.05}[r.IntN(3)]
	s.rollbackPanic = []float64{0, 0, 0, 0.1}[r.IntN(4)]
	s.monitorMode = r.IntN(4)
	s.breakAt = []float64{2, 2, 0.05, 0.5, 1}[r.IntN(5)] // 2: never
	s.notifierUp = time.Now().Add(time.Duration(r.IntN(4)) * 10 * time.Minute)
	var plan []deploytest.StepSpec
	exp := []float64{0.01, 0.05, 0.25, 0.5}
	for i := range r.IntN(4) {
		plan = append(plan, deploytest.StepSpec{Name: fmt.Sprint(exp[i]), Exposure: exp[i], Bake: time.Duration(r.IntN(3)) * 5 * time.Minute})
	}
	plan = append(plan, deploytest.StepSpec{Name: "all", Exposure: 1, Bake: time.Duration(r.IntN(3)) * 5 * time.Minute})
	strategy := &simStrategy{sim: s, plan: plan}
	if r.IntN(3) == 0 {
		// A pause, timed or until promoted, on a random step; an inline
		// analysis on another.
		at := plan[r.IntN(len(plan))].Name
		s.rules = append(s.rules, deploy.StepRule{Step: at, Pause: &deploy.Pause{Duration: []time.Duration{0, 20 * time.Minute}[r.IntN(2)]}})
		s.analysisBad = r.IntN(4)
		s.rules = append(s.rules, deploy.StepRule{Step: plan[r.IntN(len(plan))].Name, Analysis: s.analysis()})
	}

	first, err := deploy.NewRunner(strategy, s.options(s.store, "starter", plan)...)
	if err != nil {
		t.Fatal(err)
	}
	id, err := first.Start(t.Context(), rel)
	if err != nil {
		t.Fatal(err)
	}
	check := func(who string, err error) {
		if errors.Is(err, deploy.ErrInvariant) || errors.Is(err, deploy.ErrCorrupt) {
			s.violate("%s: %v", who, err)
		}
	}
	var wg, fin sync.WaitGroup
	finished := make(chan struct{})
	if len(s.rules) > 0 {
		// A person on call: promotes what waits for a person, retries an
		// aborted release once, then ends it with a rollback.
		person, err := deploy.NewRunner(strategy, s.options(s.store, "on-call", plan)...)
		if err != nil {
			t.Fatal(err)
		}
		fin.Go(func() { s.finish(person, id, finished, check) })
	}
	for attempt := range 8 {
		fs := deploytest.NewFaultStore(s.store)
		crashAt, pauseAt := -1, -1
		if s.chance(0.6) {
			crashAt = s.rng.IntN(25)
		}
		if s.chance(0.3) {
			pauseAt = s.rng.IntN(25)
		}
		after := s.chance(0.5)
		pause := s.between(time.Minute, 20*time.Minute)
		fs.OnWrite = func(_ *state.Record, n int) deploytest.Fault {
			switch n {
			case crashAt:
				return deploytest.Fault{Crash: true, After: after}
			case pauseAt:
				return deploytest.Fault{Pause: pause, After: after}
			}
			return deploytest.Fault{}
		}
		runner, err := deploy.NewRunner(strategy, s.options(fs, fmt.Sprint("runner-", attempt), plan)...)
		if err != nil {
			t.Fatal(err)
		}
		if s.chance(0.1) {
			// A person rolls back from another machine.
			at := s.between(0, 40*time.Minute)
			wg.Go(func() {
				time.Sleep(at)
				other, err := deploy.NewRunner(strategy, s.options(s.store, "person", plan)...)
				if err != nil {
					s.violate("%v", err)
					return
				}
				ctx, cancel := context.WithTimeout(context.Background(), 3*time.Hour)
				defer cancel()
				_, err = other.Rollback(ctx, id, "sim: on-call")
				check("manual rollback", err)
			})
		}
		if len(s.rules) > 0 && s.chance(0.5) {
			// A person decides from another machine: promote, abort,
			// retry or skip, whether it applies or not.
			at := s.between(0, 40*time.Minute)
			wg.Go(func() {
				time.Sleep(at)
				s.decide(strategy, plan, id, check)
			})
		}
		ctx, cancel := context.WithCancel(t.Context())
		if s.chance(0.1) {
			time.AfterFunc(s.between(0, 30*time.Minute), cancel)
		}
		rep, err := runner.Resume(ctx, id)
		cancel()
		check(fmt.Sprint("runner ", attempt), err)
		if rep != nil && rep.Status.Final() && rep.Pending == 0 {
			break
		}
		time.Sleep(s.between(0, 12*time.Minute))
	}
	wg.Wait()
	// The last runner: no faults, the notifier is up; it finishes the
	// release and delivers every event.
	time.Sleep(time.Until(s.notifierUp) + 10*time.Minute)
	last, err := deploy.NewRunner(strategy, s.options(s.store, "last", plan)...)
	if err != nil {
		t.Fatal(err)
	}
	var rep *deploy.Report
	for range 20 {
		rep, err = last.Resume(t.Context(), id)
		check("last runner", err)
		if rep != nil && rep.Status.Final() && rep.Pending == 0 {
			break
		}
		time.Sleep(10 * time.Minute)
	}
	close(finished)
	fin.Wait()
	rec, lerr := s.store.Load(t.Context(), id)
	if lerr != nil {
		return append(s.violations, lerr.Error())
	}
	s.checkOutcome(rec)
	if os.Getenv("DEPLOY_SIM_VERBOSE") != "" {
		for _, e := range s.target.Effects() {
			t.Logf("effect %+v", e)
		}
		for _, e := range rec.Timeline {
			t.Logf("%s %s %s %s %s %v %s", e.At.Format("15:04:05"), e.Phase, e.Kind, e.Outcome, e.Name, e.Exposure, e.Detail)
		}
	}
	// A final record never changes.
	again, _ := last.Resume(t.Context(), id)
	if again == nil || again.Status != rec.Status || len(again.Timeline) != len(rec.Timeline) {
		s.violate("a final record changed on Resume")
	}
	time.Sleep(3 * time.Hour) // let abandoned calls end inside the bubble
	return s.violations
}

// checkOutcome compares the record with what the target saw.
func (s *sim) checkOutcome(rec *state.Record) {
	if !rec.Status.Final() {
		s.violate("release still %s in phase %s after every runner", rec.Status, rec.Phase)
		return
	}
	effects := s.target.Effects()
	exposure := s.target.Exposure()
	rolledBack := false
	applied := map[string]int{}
	retries := 0
	for _, d := range rec.Decisions {
		if d.Kind == state.DecisionRetry && !d.Pending() && d.Outcome != "" && !strings.HasPrefix(d.Outcome, "ignored") {
			retries++
		}
	}
	restarts := 0
	for _, e := range effects {
		if e.Refused {
			continue
		}
		if e.Step == "rollback" {
			rolledBack = true
			continue
		}
		if rolledBack {
			// Only a Retry after an abort deploys again after a rollback.
			restarts++
			rolledBack = false
			if restarts > retries {
				s.violate("Apply of %s took effect after a rollback (token %d), with %d retries", e.Step, e.Token, retries)
			}
		}
		applied[e.Step]++
	}
	if rec.Waiting != nil {
		s.violate("a %s release still waits for %s", rec.Status, rec.Waiting.Kind)
	}
	tried := map[string]int{}
	for _, e := range rec.Timeline {
		if e.Kind == state.EntryStep && e.Outcome == state.OutcomeApplying {
			stage := e.Stage
			if stage == "" {
				stage = rec.Release.Environment // one stage: entries name none
			}
			tried[stage+"/"+e.Name]++
		}
	}
	for step, n := range applied {
		if n > tried[step] {
			s.violate("step %s took effect %d times, the record tried it %d times", step, n, tried[step])
		}
	}
	switch rec.Status {
	case deploy.Succeeded:
		if exposure != 1 || rolledBack {
			s.violate("the record says succeeded, users are at exposure %v (rolled back: %v)", exposure, rolledBack)
		}
	case deploy.RolledBack, deploy.RollbackUnverified, deploy.Aborted:
		if exposure != 0 {
			s.violate("the record says %s, users are at exposure %v", rec.Status, exposure)
		}
	case deploy.Blocked:
		if len(applied) > 0 {
			s.violate("the record says blocked, steps took effect: %v", applied)
		}
	}
	// Every event was delivered (the notifier is up at the end), each Seq
	// at least once, none unknown.
	if len(rec.Outbox) > 0 || len(rec.Undelivered) > 0 {
		s.violate("%d event(s) still pending, %d undelivered, with the notifier up", len(rec.Outbox), len(rec.Undelivered))
	}
	for seq := 1; seq <= rec.Delivered; seq++ {
		if s.seqs[seq] == 0 {
			s.violate("event %d of %d never reached the notifier", seq, rec.Delivered)
		}
	}
	for seq := range s.seqs {
		if seq > rec.Delivered {
			s.violate("the notifier got event %d, the record counts %d", seq, rec.Delivered)
		}
	}
}

// analysis is the sim's inline analysis: three measurements a minute
// apart, good, failing, failing to measure (errors and panics) or
// inconclusive as analysisBad says.
func (s *sim) analysis() *deploy.Analysis {
	measure := func(ctx context.Context, _ monitor.Target) (float64, error) {
		switch s.analysisBad {
		case 1:
			return 0.5, nil
		case 2:
			if s.chance(0.5) {
				panic("sim: measurement panics")
			}
			return 0, errors.New("sim: metric source down")
		case 3:
			return 0.92, nil
		}
		return 0.99, nil
	}
	return &deploy.Analysis{Name: "sim", Metrics: []deploy.AnalysisMetric{{Name: "success-rate", Measure: measure,
		Interval: time.Minute, Count: 3, Success: deploy.AtLeast(0.95), Failure: deploy.Below(0.9)}}}
}

// decide takes one random decision about release id from another
// machine; one that does not apply must say so with ErrNotWaiting.
func (s *sim) decide(strategy deploy.Strategy, plan []deploytest.StepSpec, id string, check func(string, error)) {
	other, err := deploy.NewRunner(strategy, s.options(s.store, "person", plan)...)
	if err != nil {
		s.violate("%v", err)
		return
	}
	d := deploy.Decision{By: "sim", Reason: "sim: on-call"}
	ctx := context.Background()
	s.mu.Lock()
	k := s.rng.IntN(5)
	s.mu.Unlock()
	switch k {
	case 0:
		err = other.Promote(ctx, id, false, d)
	case 1:
		err = other.Promote(ctx, id, true, d)
	case 2:
		err = other.Abort(ctx, id, d)
	case 3:
		err = other.Retry(ctx, id, d)
	case 4:
		err = other.Skip(ctx, id, 0, d)
	}
	if err != nil && !errors.Is(err, deploy.ErrNotWaiting) {
		s.violate("decision %d: %v", k, err)
	}
	check("decision", err)
}

// finish decides until the release is over: it promotes a pause or an
// inconclusive analysis, retries an aborted release once, then ends it.
func (s *sim) finish(r *deploy.Runner, id string, done chan struct{}, check func(string, error)) {
	retried := false
	for {
		select {
		case <-done:
			return
		case <-time.After(7 * time.Minute):
		}
		rec, err := s.store.Load(context.Background(), id)
		if err != nil || rec.Status.Final() || rec.Waiting == nil {
			continue
		}
		d := deploy.Decision{By: "sim-finisher"}
		switch rec.Waiting.Kind {
		case state.WaitPause, state.WaitInconclusive:
			err = r.Promote(context.Background(), id, false, d)
		case state.WaitAborted:
			if !retried {
				retried = true
				err = r.Retry(context.Background(), id, d)
				break
			}
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Hour)
			_, err = r.Rollback(ctx, id, "sim: giving up after the retry")
			cancel()
		}
		if err != nil && !errors.Is(err, deploy.ErrNotWaiting) && !errors.Is(err, deploy.ErrAborted) {
			s.violate("finisher: %v", err)
		}
		check("finisher", err)
	}
}
