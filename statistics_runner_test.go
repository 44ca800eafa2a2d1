package deploy_test

import (
	"context"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/deploykit/deploy"
	"github.com/deploykit/deploy/monitor"
	"github.com/deploykit/deploy/state"
)

// promLike is a monitor that reports as the Prometheus source does: an
// error rate counted over the requests since Target.Since, with the stable
// version over the same window as control, and p95 latencies; Poisson
// traffic at rps requests per second split by Target.Exposure, errors at
// 0.3 % for the stable version and 0.3 % × (1 + rise) for the new one.
type promLike struct {
	mu        sync.Mutex
	rng       *rand.Rand
	rps, rise float64
	since     time.Time
	last      time.Time
	n1, x1    float64
	n0, x0    float64
	k1, k0    []float64
	looks     int
}

func newPromLike(seed uint64, rps, rise float64) *promLike {
	return &promLike{rng: rand.New(rand.NewPCG(seed, 11)), rps: rps, rise: rise}
}

func (m *promLike) Observe(ctx context.Context, tg monitor.Target) (monitor.Observation, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now()
	var obs monitor.Observation
	if tg.Phase == "baseline" || tg.Phase == "rollback" {
		// All on the stable version.
		n := poisson(m.rng, m.rps*now.Sub(tg.Since).Seconds())
		obs.Set(monitor.ErrorRate, monitor.Rate(poisson(m.rng, n*simBase)/math.Max(n, 1), int(n)))
		var keep []float64
		obs.Set(monitor.LatencyP95, monitor.Value(sampleP95(m.rng, &keep, n, n), int(n)))
		return obs, nil
	}
	m.looks++
	if !tg.Since.Equal(m.since) {
		m.since, m.last = tg.Since, tg.Since
		m.n1, m.x1, m.n0, m.x0 = 0, 0, 0, 0
		m.k1, m.k0 = m.k1[:0], m.k0[:0]
	}
	dt := now.Sub(m.last).Seconds()
	m.last = now
	e := tg.Exposure
	a1, a0 := poisson(m.rng, m.rps*e*dt), poisson(m.rng, m.rps*(1-e)*dt)
	m.n1, m.n0 = m.n1+a1, m.n0+a0
	m.x1 += poisson(m.rng, a1*simBase*(1+m.rise))
	m.x0 += poisson(m.rng, a0*simBase)
	er, lat := monitor.NoData(), monitor.NoData()
	if m.n1 > 0 {
		er = monitor.Rate(m.x1/m.n1, int(m.n1))
		lat = monitor.Value(sampleP95(m.rng, &m.k1, a1, m.n1), int(m.n1))
		if m.n0 > 0 {
			er.Control, er.ControlSamples = m.x0/m.n0, int(m.n0)
			lat.Control, lat.ControlSamples = sampleP95(m.rng, &m.k0, a0, m.n0), int(m.n0)
		}
	}
	obs.Set(monitor.ErrorRate, er)
	obs.Set(monitor.LatencyP95, lat)
	return obs, nil
}

// statsRun runs one release through the public Runner API with the
// default policy, the 1 → 5 → 25 → 50 → 100 % ramp, 10-minute bakes,
// 1-minute observations and the default 24 h watch.
func statsRun(t *testing.T, m *promLike, store state.Store, reconcile bool) *deploy.Report {
	t.Helper()
	open := func() *deploy.Runner {
		return openRunner(t, ramp(), store, deploy.WithMonitors(m), deploy.WithInterval(time.Minute),
			deploy.WithSchedule(monitor.DefaultSchedule()))
	}
	if !reconcile {
		rep, _ := open().Run(t.Context(), rel)
		return rep
	}
	// A fresh runner — a new process — for every tick: the sequential
	// test's evidence must come back from the store each time.
	id, err := open().Start(t.Context(), rel)
	if err != nil {
		t.Fatal(err)
	}
	for {
		next, rep, err := open().Reconcile(t.Context(), id)
		if rep != nil && rep.Status.Final() {
			return rep // err says why it rolled back
		}
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Until(next))
	}
}

// TestStatisticsRunner is the short version of TestStatisticsSimulation
// through the public Runner API, in virtual time: healthy releases at 200
// requests per second get through the ramp and the 24 h watch, and a
// +200 % error rate is rolled back during the 1 % or 5 % step.
func TestStatisticsRunner(t *testing.T) {
	const n = 6
	healthy, early := 0, 0
	for seed := range uint64(n) {
		synctest.Test(t, func(t *testing.T) {
			rep := statsRun(t, newPromLike(seed, 200, 0), state.NewMemory(), false)
			if rep.Status == deploy.Succeeded {
				healthy++
			} else {
				t.Logf("healthy release %d: %s: %v", seed, rep.Status, rep.Trigger)
			}
		})
		synctest.Test(t, func(t *testing.T) {
			rep := statsRun(t, newPromLike(seed, 200, 2), state.NewMemory(), false)
			if rep.Status == deploy.RolledBack && rep.Trigger != nil && strings.Contains(rep.Trigger.Reason, "sequential") || rep.Status == deploy.RolledBack && rep.Trigger != nil && strings.Contains(rep.Trigger.Reason, "significant rise") {
				if tl := stepOf(rep); tl == "1%" || tl == "5%" {
					early++
					return
				}
			}
			t.Logf("+200 %% release %d: %s at %q: %v", seed, rep.Status, stepOf(rep), rep.Trigger)
		})
	}
	if healthy < n-1 {
		t.Errorf("%d of %d healthy releases got through, want at least %d", healthy, n, n-1)
	}
	if early < n-1 {
		t.Errorf("%d of %d releases at +200 %% were rolled back at 1 %% or 5 %%, want at least %d", early, n, n-1)
	}
}

// stepOf returns the step during which rep's release was rolled back: the
// last step applied before the rollback.
func stepOf(rep *deploy.Report) string {
	step := ""
	for _, e := range rep.Timeline {
		if e.Kind == state.EntryStep && e.Outcome == state.OutcomeApplied {
			step = e.Name
		}
		if e.Kind == state.EntryRollback {
			break
		}
	}
	return step
}

// TestSequentialEvidenceSurvivesResume drives a +50 % regression twice
// with the same traffic: once in one process (Run), once with a new runner
// for every look (Reconcile), so that the test's evidence must come back
// from the record each time. Both roll back at the same step with the same
// reason: the evidence of the earlier steps was neither lost nor counted
// twice.
func TestSequentialEvidenceSurvivesResume(t *testing.T) {
	var runs [2]*deploy.Report
	for i, reconcile := range []bool{false, true} {
		synctest.Test(t, func(t *testing.T) {
			store := state.NewMemory()
			runs[i] = statsRun(t, newPromLike(7, 200, 0.5), store, reconcile)
			rec, err := store.Load(t.Context(), runs[i].ID)
			if err != nil {
				t.Fatal(err)
			}
			if rec.Counters.Judge == "" {
				t.Error("the record keeps no state of the sequential test")
			}
		})
	}
	a, b := runs[0], runs[1]
	if a.Status != deploy.RolledBack || a.Trigger == nil {
		t.Fatalf("+50 %%: %s, trigger %v; want rolled back", a.Status, a.Trigger)
	}
	if b.Status != a.Status || stepOf(a) != stepOf(b) || b.Trigger == nil || a.Trigger.Reason != b.Trigger.Reason {
		t.Errorf("Run: %s at %s: %v\nReconcile: %s at %s: %v", a.Status, stepOf(a), a.Trigger, b.Status, stepOf(b), b.Trigger)
	}
	if stepOf(a) == "1%" {
		t.Errorf("+50 %% caught in the 1 %% step (%v): the evidence of one step, not several", a.Trigger)
	}
	t.Logf("rolled back at %s: %s", stepOf(a), a.Trigger.Reason)
}
