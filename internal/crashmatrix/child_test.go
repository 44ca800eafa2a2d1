package crashmatrix

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/deploykit/deploy"
	"github.com/deploykit/deploy/deploytest"
	"github.com/deploykit/deploy/monitor"
	"github.com/deploykit/deploy/rollback"
	"github.com/deploykit/deploy/state"
	"github.com/deploykit/deploy/state/postgres"
	"github.com/deploykit/deploy/strategy"
)

// The environment of a child process.
const (
	envRole     = "CRASHMATRIX_ROLE"     // roleFirst or roleResume; unset outside a child
	envDir      = "CRASHMATRIX_DIR"      // the cell's directory: effects file, id, markers, results
	envStore    = "CRASHMATRIX_STORE"    // "file:<dir>" or "postgres:<dsn>"
	envScenario = "CRASHMATRIX_SCENARIO" // a scenario's name
	envPoint    = "CRASHMATRIX_POINT"    // where the first child stops
	envService  = "CRASHMATRIX_SERVICE"  // the release's service, unique per cell
)

// Roles of a child, which are also the holder names of their runners.
const (
	roleFirst  = "first"  // starts the release and stops at the crash point
	roleResume = "second" // resumes it once the first child's lease has run out
)

// Files in a cell's directory.
const (
	fileEffects = "effects"  // the fenced target
	fileID      = "id"       // the release id, written by the first child
	fileReached = "reached"  // written by the first child at its crash point
	fileGo      = "continue" // written by the parent before SIGCONT
)

// Durations of every release: short, so that a cell takes a few seconds.
const (
	bake       = 250 * time.Millisecond
	interval   = 100 * time.Millisecond
	leaseGrace = time.Second
	// childDeadline bounds a child's whole life.
	childDeadline = 60 * time.Second
)

// scenario is one kind of release: its strategy, how it ends, and where
// its first child stops.
type scenario struct {
	name      string
	blueGreen bool
	// regress makes the monitor report a regression once the new version
	// serves half the users (all of them for BlueGreen): the release must
	// roll back.
	regress bool
	// manual makes the second child call Runner.Rollback instead of
	// Resume: a person rolls back a release whose holder stopped.
	manual bool
	// unfencedSteps makes the rollback steps change the target with no
	// fencing token, as all a rollback step is given is a context.
	unfencedSteps bool
	// points are the crash points of the scenario.
	points []string
}

var scenarios = []scenario{
	{name: "ramp", points: []string{
		"applied-10%", "promoted-10%", "applied-50%", "promoted-50%", "applied-100%", "promoted-100%",
		"in-apply-10%-before", "in-apply-10%-after", "in-apply-50%-before", "in-apply-50%-after",
		"in-apply-100%-before", "in-apply-100%-after",
	}},
	{name: "ramp-regression", regress: true, points: []string{
		"rollback-recorded", "in-strategy-rollback-before", "in-strategy-rollback-after",
		"in-rollback-step-1-before", "in-rollback-step-1-after", "in-rollback-step-2-before", "in-rollback-step-2-after",
	}},
	{name: "ramp-manual-rollback", manual: true, points: []string{
		"applied-10%", "in-apply-50%-before", "in-apply-50%-after", "applied-100%",
	}},
	{name: "bluegreen", blueGreen: true, points: []string{
		"promoted-deploy-green", "in-switch-green-before", "in-switch-green-after", "applied-switch-green", "promoted-switch-green",
	}},
	{name: "bluegreen-regression", blueGreen: true, regress: true, points: []string{
		"in-switch-green-before", "in-switch-green-after", "rollback-recorded", "in-switch-blue-before", "in-switch-blue-after",
	}},
}

// rampSteps are the ramp's steps: name and exposure.
var rampSteps = []struct {
	name     string
	exposure float64
}{{"10%", 0.1}, {"50%", 0.5}, {"100%", 1}}

// rollbackSteps are the names of the WithRollbackSteps steps; step i
// (from 1) changes the target as "rbstep-<i>".
var rollbackSteps = []string{"drain-canary", "restore-config"}

// rollsBack reports whether a release of sc must end rolled back.
func (sc scenario) rollsBack() bool { return sc.regress || sc.manual }

// applies are the target's names of the changes the steps of sc make
// before it ends or rolls back, when the first child stops at point.
func (sc scenario) applies(point string) []string {
	if sc.blueGreen {
		return []string{"deploy-green", "switch-green"}
	}
	var out []string
	for _, st := range rampSteps {
		if sc.manual && point == "in-apply-"+st.name+"-before" {
			break // rolled back by hand before it landed
		}
		out = append(out, "apply-"+st.name)
		switch {
		case sc.regress && st.exposure >= 0.5:
			return out // the regression shows in the bake of 50 %
		case sc.manual && strings.HasSuffix(point, "-"+st.name) || sc.manual && point == "in-apply-"+st.name+"-after":
			return out // rolled back by hand from there
		}
	}
	return out
}

func scenarioNamed(name string) (scenario, bool) {
	for _, sc := range slices.Concat(scenarios, []scenario{unfencedRollbackSteps}) {
		if sc.name == name {
			return sc, true
		}
	}
	return scenario{}, false
}

// result is what a child that was not killed reports.
type result struct {
	Status string `json:"status"`
	Err    string `json:"err,omitempty"`
	// Locked is errors.Is(err, deploy.ErrLocked).
	Locked bool `json:"locked"`
}

// TestHelperProcess is the child process of the crash matrix; it does
// nothing unless run by it (with CRASHMATRIX_ROLE set).
func TestHelperProcess(t *testing.T) {
	role := os.Getenv(envRole)
	if role == "" {
		t.Skip("a child process of the crash matrix")
	}
	if err := child(role); err != nil {
		fmt.Fprintf(os.Stderr, "crashmatrix child %s: %v\n", role, err)
		os.Exit(2)
	}
	os.Exit(0)
}

// child runs one role: it starts or resumes the release and writes its
// result to result-<role>.json.
func child(role string) error {
	ctx, cancel := context.WithTimeout(context.Background(), childDeadline)
	defer cancel()
	dir := os.Getenv(envDir)
	sc, ok := scenarioNamed(os.Getenv(envScenario))
	if !ok {
		return fmt.Errorf("unknown scenario %q", os.Getenv(envScenario))
	}
	inner, closeStore, err := openStore(ctx, os.Getenv(envStore))
	if err != nil {
		return err
	}
	defer closeStore()
	cp := &crashPoint{dir: dir}
	if role == roleFirst {
		cp.name = os.Getenv(envPoint)
	}
	store := &pausingStore{Store: inner, cp: cp}
	var id string // set before the release runs; read by the rollback steps
	r, err := newRunner(sc, store, inner, target{filepath.Join(dir, fileEffects)}, cp, role, &id)
	if err != nil {
		return err
	}
	var rep *deploy.Report
	switch role {
	case roleFirst:
		rel := deploy.Release{Service: os.Getenv(envService), Version: "v2", PreviousVersion: "v1", Environment: "production"}
		if id, err = r.Start(ctx, rel); err != nil {
			return err
		}
		if err := writeFile(filepath.Join(dir, fileID), id); err != nil {
			return err
		}
		rep, err = r.Resume(ctx, id)
	case roleResume:
		b, rerr := os.ReadFile(filepath.Join(dir, fileID))
		if rerr != nil {
			return rerr
		}
		id = string(b)
		if sc.manual {
			rep, err = r.Rollback(ctx, id, "on-call: roll it back")
		} else {
			rep, err = resumeWhenFree(ctx, r, id)
		}
	default:
		return fmt.Errorf("unknown role %q", role)
	}
	res := result{Locked: errors.Is(err, deploy.ErrLocked)}
	if rep != nil {
		res.Status = string(rep.Status)
	}
	if err != nil {
		res.Err = err.Error()
	}
	b, _ := json.Marshal(res)
	return writeFile(filepath.Join(dir, "result-"+role+".json"), string(b))
}

// resumeWhenFree resumes release id, waiting out the lease of a holder
// that stopped (Resume returns a *deploy.LockedError until it has run out).
func resumeWhenFree(ctx context.Context, r *deploy.Runner, id string) (*deploy.Report, error) {
	for {
		rep, err := r.Resume(ctx, id)
		var le *deploy.LockedError
		if !errors.As(err, &le) {
			return rep, err
		}
		t := time.NewTimer(time.Until(le.Until) + 20*time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return rep, fmt.Errorf("still locked at the deadline: %w", err)
		case <-t.C:
		}
	}
}

// openStore opens the store that spec names.
func openStore(ctx context.Context, spec string) (state.Store, func(), error) {
	kind, arg, _ := strings.Cut(spec, ":")
	switch kind {
	case "file":
		s, err := state.NewFile(arg)
		return s, func() {}, err
	case "postgres":
		pool, err := pgxpool.New(ctx, arg+" pool_max_conns=2")
		if err != nil {
			return nil, nil, err
		}
		s, err := postgres.New(pool)
		if err != nil {
			pool.Close()
			return nil, nil, err
		}
		return s, pool.Close, nil
	}
	return nil, nil, fmt.Errorf("unknown store %q", spec)
}

// newRunner builds the runner of scenario sc for a child in role: the
// same in both children but for the holder and the crash point. inner is
// the store without the crash point, for the rollback steps' reads.
func newRunner(sc scenario, store, inner state.Store, tgt target, cp *crashPoint, role string, id *string) (*deploy.Runner, error) {
	var s deploy.Strategy = &rampStrategy{tgt: tgt, cp: cp}
	regressAt := 0.5
	if sc.blueGreen {
		regressAt = 1
		s = &strategy.BlueGreen{
			Idle: func(ctx context.Context, d *deploy.Deployment) (string, error) {
				e, err := tgt.exposure()
				if err != nil {
					return "", err
				}
				if e == 1 {
					return "blue", nil // green serves
				}
				return "green", nil
			},
			Deploy: func(ctx context.Context, d *deploy.Deployment, side string) error {
				return tgt.change(d.Token, "deploy-"+side, keep)
			},
			Switch: func(ctx context.Context, d *deploy.Deployment, side string) error {
				exposure := 0.0
				if side == "green" {
					exposure = 1
				}
				return cp.around("in-switch-"+side, func() error { return tgt.change(d.Token, "switch-"+side, exposure) })
			},
			Bake: bake,
		}
	}
	var mon deploy.Monitor = deploytest.Healthy()
	if sc.regress {
		mon = deploytest.Regression(regressAt, deploytest.Health{ErrorRate: 0.2, P95: 120 * time.Millisecond})
	}
	var steps []rollback.PlanStep
	for i, name := range rollbackSteps {
		n := i + 1
		steps = append(steps, rollback.PlanStep{Name: name, Run: func(ctx context.Context) error {
			// A rollback step gets no Deployment: its fencing token comes
			// in the context. The fenced scenarios also check it against
			// the record the runner saved right before the call.
			token, ok := deploy.FencingToken(ctx)
			if !ok {
				return fmt.Errorf("rollback step %s: no fencing token in its context", name)
			}
			if !sc.unfencedSteps {
				rec, err := inner.Load(ctx, *id)
				if err != nil {
					return err
				}
				if rec.Holder != role || rec.Token != token {
					return fmt.Errorf("rollback step %s: release held by %s under token %d, the step runs under %d", name, rec.Holder, rec.Token, token)
				}
			}
			return cp.around(fmt.Sprintf("in-rollback-step-%d", n), func() error {
				if err := ctx.Err(); err != nil {
					return err // it honours ctx, as rollback.PlanStep asks
				}
				return tgt.change(token, fmt.Sprintf("rbstep-%d", n), keep)
			})
		}})
	}
	return deploy.NewRunner(s,
		deploy.WithStore(store),
		deploy.WithHolder(role),
		deploy.WithMonitors(mon),
		deploy.WithNotifiers(&deploytest.Recorder{}),
		deploy.WithWaiver(deploy.FridayDeploy, "the crash matrix runs on any day"),
		deploy.WithSchedule(monitor.Schedule{}),
		deploy.WithInterval(interval),
		deploy.WithLeaseGrace(leaseGrace),
		deploy.WithNotifyTimeout(time.Second),
		deploy.WithRollbackSteps(steps...),
		deploy.WithLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))),
	)
}

// rampStrategy is a three-step ramp over the fenced target.
type rampStrategy struct {
	tgt target
	cp  *crashPoint
}

func (s *rampStrategy) Name() string { return "fenced-ramp" }

func (s *rampStrategy) Plan(ctx context.Context, d *deploy.Deployment) ([]deploy.Step, error) {
	var steps []deploy.Step
	for _, st := range rampSteps {
		steps = append(steps, deploy.Step{Name: st.name, Exposure: st.exposure, Bake: bake,
			Apply: func(ctx context.Context, d *deploy.Deployment) error {
				// The change ignores ctx, as a call already on its way to
				// the target would: only the token can stop it.
				return s.cp.around("in-apply-"+st.name, func() error { return s.tgt.change(d.Token, "apply-"+st.name, st.exposure) })
			}})
	}
	return steps, nil
}

func (s *rampStrategy) Rollback(ctx context.Context, d *deploy.Deployment) error {
	return s.cp.around("in-strategy-rollback", func() error { return s.tgt.change(d.Token, "rollback", 0) })
}

// crashPoint is where the first child stops: it writes fileReached and
// waits for fileGo, which the parent writes only before continuing a
// stopped child (a killed one never gets there). mu is held by every store
// write and by a child waiting at its point, so that the point is reached
// with no store write in flight, and a woken child changes the target (in
// an Apply, a switch or a rollback) before its lease renewal can tell it
// that it lost the release: the worst order.
type crashPoint struct {
	name string // empty: no crash point
	dir  string

	mu   sync.Mutex
	done bool // the point was reached
}

// around makes change, a change of the target inside the effect named p,
// with two points: p+"-before" stops before the change and holds mu until
// it is made, so that a woken child makes it before its lease renewal can
// tell it that it lost the release; p+"-after" stops once it is made, as
// a crash or a pause before the effect returns.
func (c *crashPoint) around(p string, change func() error) error {
	if !strings.HasPrefix(c.name, p+"-") {
		return change()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.done && c.name == p+"-before" {
		c.stop(c.name)
	}
	err := change()
	if !c.done && c.name == p+"-after" {
		c.stop(c.name)
	}
	return err
}

// stop, with mu held, says the point is reached and waits to be continued.
func (c *crashPoint) stop(p string) {
	c.done = true
	if err := writeFile(filepath.Join(c.dir, fileReached), p); err != nil {
		fmt.Fprintf(os.Stderr, "crashmatrix: %v\n", err)
		os.Exit(3)
	}
	deadline := time.Now().Add(childDeadline)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(filepath.Join(c.dir, fileGo)); err == nil {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	fmt.Fprintf(os.Stderr, "crashmatrix: never continued after %s\n", p)
	os.Exit(3)
}

// pausingStore is the child's store: it serialises writes with the crash
// point and stops, right after the write that records it, at a boundary
// point ("applied-<step>", "promoted-<step>", "rollback-recorded").
type pausingStore struct {
	state.Store
	cp      *crashPoint
	seen    int    // timeline entries already looked at
	applied string // the step applied last, not yet promoted
}

func (s *pausingStore) Update(ctx context.Context, r *state.Record) error {
	s.cp.mu.Lock()
	defer s.cp.mu.Unlock()
	if err := s.Store.Update(ctx, r); err != nil {
		return err
	}
	for _, e := range r.Timeline[min(s.seen, len(r.Timeline)):] {
		if p := s.boundary(e); p != "" && p == s.cp.name && !s.cp.done {
			s.cp.stop(p)
		}
	}
	s.seen = len(r.Timeline)
	return nil
}

// boundary names the boundary point a timeline entry records, if any. A
// promotion has no entry of its own: a step baked is promoted by its
// healthy verdict, a step without a bake by the next step's attempt.
func (s *pausingStore) boundary(e state.Entry) string {
	switch {
	case e.Kind == state.EntryStep && e.Outcome == state.OutcomeApplied:
		s.applied = e.Name
		return "applied-" + e.Name
	case e.Kind == state.EntryVerdict && e.Outcome == state.OutcomeHealthy:
		s.applied = ""
		return "promoted-" + e.Name
	case e.Kind == state.EntryStep && e.Outcome == state.OutcomeApplying && s.applied != "" && s.applied != e.Name:
		prev := s.applied
		s.applied = ""
		return "promoted-" + prev
	case e.Kind == state.EntryRollback && e.Outcome == state.OutcomeStarted:
		return "rollback-recorded"
	}
	return ""
}

// writeFile writes name atomically, so that a reader polling for it never
// sees half of it.
func writeFile(name, content string) error {
	tmp := name + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, name)
}
