package crashmatrix

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/deploykit/deploy"
	"github.com/deploykit/deploy/internal/pgtest"
	"github.com/deploykit/deploy/state"
	"github.com/deploykit/deploy/state/postgres"
)

// concurrency is how many cells run at once: a cell mostly waits (bakes,
// leases), so more cells than cores keep the matrix short.
const concurrency = 8

// Bounds on each wait of a cell; a cell takes a few seconds.
const (
	reachTimeout  = 30 * time.Second // the first child reaches its point
	signalTimeout = 10 * time.Second // a signal takes effect
	finishTimeout = 45 * time.Second // the second child finishes the release
)

// storeEnv is one store of the matrix, shared by the processes of a cell.
type storeEnv struct {
	// spec is what the children of the cell in dir open (see openStore).
	spec func(dir string) string
	// load reads a record as the parent.
	load func(ctx context.Context, dir, id string) (*state.Record, error)
}

func fileStore() storeEnv {
	return storeEnv{
		spec: func(dir string) string { return "file:" + filepath.Join(dir, "store") },
		load: func(ctx context.Context, dir, id string) (*state.Record, error) {
			s, err := state.NewFile(filepath.Join(dir, "store"))
			if err != nil {
				return nil, err
			}
			return s.Load(ctx, id)
		},
	}
}

// postgresStore starts a PostgreSQL server (failing the test, with install
// instructions, when PostgreSQL is not installed) and migrates a database.
func postgresStore(t *testing.T) storeEnv {
	dsn := pgtest.DSN(t)
	pool, err := pgxpool.New(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	s, err := postgres.New(pool)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	return storeEnv{
		spec: func(string) string { return "postgres:" + dsn },
		load: func(ctx context.Context, _, id string) (*state.Record, error) { return s.Load(ctx, id) },
	}
}

// TestCrashMatrixFile runs the crash matrix (see the package doc) on a
// state.File directory shared by the processes of each cell.
func TestCrashMatrixFile(t *testing.T) {
	runMatrix(t, fileStore(), scenarios, signals)
}

// TestCrashMatrixPostgres runs the crash matrix on one PostgreSQL database
// shared by every cell, each releasing its own service.
func TestCrashMatrixPostgres(t *testing.T) {
	runMatrix(t, postgresStore(t), scenarios, signals)
}

// signal is a signal of the matrix, named as a subtest.
type signal struct {
	name string
	sig  syscall.Signal
}

// signals of the matrix: SIGKILL, and SIGSTOP with SIGCONT once another
// process has taken over.
var signals = []signal{{"SIGKILL", syscall.SIGKILL}, {"SIGSTOP", syscall.SIGSTOP}}

// runMatrix runs every cell of scenarios × their points × sigs as a
// subtest scenario/point/signal, up to concurrency at once.
func runMatrix(t *testing.T, store storeEnv, scenarios []scenario, sigs []signal) {
	start := time.Now()
	sem := make(chan struct{}, concurrency)
	var n atomic.Int64
	var wg sync.WaitGroup
	for _, sc := range scenarios {
		wg.Go(func() {
			t.Run(sc.name, func(t *testing.T) {
				var wg sync.WaitGroup
				for _, pt := range sc.points {
					wg.Go(func() {
						t.Run(pt, func(t *testing.T) {
							var wg sync.WaitGroup
							for _, s := range sigs {
								wg.Go(func() {
									sem <- struct{}{} // outside the subtest, so that its time is the cell's
									defer func() { <-sem }()
									t.Run(s.name, func(t *testing.T) {
										c := &cell{sc: sc, point: pt, sig: s.sig, store: store, dir: t.TempDir(),
											service: fmt.Sprintf("crash-%d", n.Add(1))}
										c.run(t)
									})
								})
							}
							wg.Wait()
						})
					})
				}
				wg.Wait()
			})
		})
	}
	wg.Wait()
	t.Logf("%d cells in %v", n.Load(), time.Since(start).Round(time.Millisecond))
}

// cell is one release crashed at one point with one signal.
type cell struct {
	sc      scenario
	point   string
	sig     syscall.Signal
	store   storeEnv
	dir     string
	service string
}

func (c *cell) target() target { return target{filepath.Join(c.dir, fileEffects)} }

// run drives the cell: the first child to its point, the signal, the
// second child to the end (with the first continued meanwhile after a
// SIGSTOP), then the checks.
func (c *cell) run(t *testing.T) {
	ctx := t.Context()
	first := startChild(t, c, roleFirst)
	if err := poll(reachTimeout, func() (bool, error) {
		if _, err := os.Stat(filepath.Join(c.dir, fileReached)); err == nil {
			return true, nil
		}
		if first.exited() {
			return false, fmt.Errorf("the first child exited (%v) before reaching %s", first.err, c.point)
		}
		return false, nil
	}); err != nil {
		t.Fatalf("%v\nfirst child:\n%s", err, first.output())
	}
	b, err := os.ReadFile(filepath.Join(c.dir, fileID))
	if err != nil {
		t.Fatal(err)
	}
	id := string(b)
	before, err := readEffects(c.target().path)
	if err != nil {
		t.Fatal(err)
	}
	if err := first.signal(c.sig); err != nil {
		t.Fatal(err)
	}
	stopped := c.sig == syscall.SIGSTOP
	if stopped {
		err = poll(signalTimeout, func() (bool, error) { return first.stopped(), nil })
	} else {
		err = first.wait(signalTimeout)
	}
	if err != nil {
		t.Fatalf("%s: %v", c.sig, err)
	}

	second := startChild(t, c, roleResume)
	if stopped {
		// Continue the first child once the second has taken over and
		// changed the target under its own token, or has finished.
		if err := poll(finishTimeout, func() (bool, error) {
			if second.exited() {
				return true, nil
			}
			rec, err := c.store.load(ctx, c.dir, id)
			if err != nil || rec.Holder != roleResume {
				return false, nil
			}
			effects, err := readEffects(c.target().path)
			for _, e := range effects {
				if e.ok && e.token >= rec.Token {
					return true, err
				}
			}
			return false, err
		}); err != nil {
			t.Fatalf("waiting for the second child to take over: %v\nsecond child:\n%s", err, second.output())
		}
		if err := writeFile(filepath.Join(c.dir, fileGo), "go"); err != nil {
			t.Fatal(err)
		}
		if err := first.signal(syscall.SIGCONT); err != nil {
			t.Fatal(err)
		}
	}
	if err := second.wait(finishTimeout); err != nil {
		t.Fatalf("%v\nsecond child:\n%s", err, second.output())
	}
	if stopped {
		if err := first.wait(finishTimeout); err != nil {
			t.Fatalf("%v\nfirst child:\n%s", err, first.output())
		}
	}
	c.check(t, id, first, second, len(before))
}

// check checks the end of the cell against the record and the effects.
// atStop is how many effects there were when the first child was stopped.
func (c *cell) check(t *testing.T, id string, first, second *proc, atStop int) {
	defer func() {
		effects, _ := readEffects(c.target().path)
		var lines []string
		for _, e := range effects {
			lines = append(lines, e.String())
		}
		t.Logf("first child pid %d, second child pid %d; effects:\n%s", first.pid(), second.pid(), strings.Join(lines, "\n"))
		if t.Failed() {
			t.Logf("first child:\n%s\nsecond child:\n%s", first.output(), second.output())
		}
	}()
	for _, p := range []*proc{first, second} {
		if p.raced() {
			t.Errorf("the race detector found a data race in the %s child", p.role)
		}
	}
	if second.err != nil {
		t.Errorf("the second child exited with %v", second.err)
	}
	res, err := second.result()
	if err != nil {
		t.Fatalf("the second child's result: %v", err)
	}
	rec, err := c.store.load(t.Context(), c.dir, id)
	if err != nil {
		t.Fatal(err)
	}
	want, wantExposure := deploy.Succeeded, 1.0
	if c.sc.rollsBack() {
		want, wantExposure = deploy.RolledBack, 0
	}
	if rec.Status != want || res.Status != string(want) {
		t.Errorf("the release ended %q (the second child reports %q, error %q), want %q", rec.Status, res.Status, res.Err, want)
	}
	if rec.Exposure != wantExposure {
		t.Errorf("the record ends at exposure %v, want %v", rec.Exposure, wantExposure)
	}

	if c.sig == syscall.SIGSTOP {
		r, err := first.result()
		switch {
		case first.err != nil:
			t.Errorf("the woken first child exited with %v", first.err)
		case err != nil:
			t.Errorf("the woken first child's result: %v", err)
		case !r.Locked && !(r.Err == "" && r.Status == string(rec.Status)):
			// Unless the write it was stopped after was its last (a
			// release whose end is saved with its last step's promotion),
			// it must find the release taken over.
			t.Errorf("the woken first child ended with status %q and error %q, want an error wrapping deploy.ErrLocked", r.Status, r.Err)
		}
	} else if _, err := first.result(); err == nil {
		t.Errorf("the killed first child reported a result")
	}

	effects, err := readEffects(c.target().path)
	if err != nil {
		t.Fatal(err)
	}
	c.checkEffects(t, rec, effects, first.pid(), atStop, wantExposure)
}

// rollbackAction is the target's name for Strategy.Rollback's change.
func (c *cell) rollbackAction() string {
	if c.sc.blueGreen {
		return "switch-blue"
	}
	return "rollback"
}

// interrupted returns the target's name of the change the first child was
// stopped in, and whether it had landed ("-after") or not ("-before");
// "" when it was stopped at a boundary.
func (c *cell) interrupted() (action string, landed bool) {
	p, ok := strings.CutPrefix(c.point, "in-")
	if !ok {
		return "", false
	}
	if p, landed = strings.CutSuffix(p, "-after"); !landed {
		p = strings.TrimSuffix(p, "-before")
	}
	switch {
	case p == "strategy-rollback":
		return c.rollbackAction(), landed
	case strings.HasPrefix(p, "rollback-step-"):
		return "rbstep-" + strings.TrimPrefix(p, "rollback-step-"), landed
	}
	return p, landed // apply-<step>, switch-<side>
}

// stepAction is the target's name for the change step makes.
func (c *cell) stepAction(step string) string {
	if c.sc.blueGreen {
		return step // deploy-green, switch-green
	}
	return "apply-" + step
}

func (c *cell) checkEffects(t *testing.T, rec *state.Record, effects []effect, firstPid, atStop int, wantExposure float64) {
	accepted := map[string]int{}
	rolledBack := false
	exposure := 0.0
	late := 0 // changes the first child tried after it was stopped
	for i, e := range effects {
		if c.sig == syscall.SIGSTOP && i >= atStop && e.pid == firstPid {
			late++
		}
		if !e.ok {
			continue
		}
		accepted[e.action]++
		exposure = e.exposure
		if e.action == c.rollbackAction() || strings.HasPrefix(e.action, "rbstep-") {
			rolledBack = true
		} else if rolledBack {
			t.Errorf("effect %d (%v) was accepted after the rollback's first change", i, e)
		}
		if c.sig == syscall.SIGSTOP && i >= atStop && e.pid == firstPid {
			t.Errorf("effect %d (%v) was made by the first child after it was stopped", i, e)
		}
	}
	// A woken child may finish the one change it was stopped before (and
	// be refused). Stopped at a boundary, it may try the one change the
	// write it was stopped after was made for: a transition whose next
	// action is due at once is saved with that action's fenced write. It
	// is refused, like the first; it tries no second one.
	stoppedIn, landed := c.interrupted()
	allowed := 1
	if stoppedIn != "" && landed {
		allowed = 0
	}
	if late > allowed {
		t.Errorf("the first child tried %d change(s) after it was stopped at %s", late, c.point)
	}
	if exposure != wantExposure {
		t.Errorf("the target ends at exposure %v, want %v as the record says (%s)", exposure, wantExposure, rec.Status)
	}
	if c.sc.blueGreen {
		live := "blue"
		for _, e := range effects {
			if e.ok && strings.HasPrefix(e.action, "switch-") {
				live = strings.TrimPrefix(e.action, "switch-")
			}
		}
		wantLive := "green"
		if c.sc.rollsBack() {
			wantLive = "blue"
		}
		if live != wantLive {
			t.Errorf("the live side is %s, want %s", live, wantLive)
		}
	}

	// Every accepted Apply was recorded as attempted before it was made.
	attempts := map[string]int{}
	for _, e := range rec.Timeline {
		if e.Kind == state.EntryStep && e.Outcome == state.OutcomeApplying {
			attempts[c.stepAction(e.Name)]++
		}
	}
	for action, n := range accepted {
		if strings.HasPrefix(action, "apply-") || strings.HasPrefix(action, "deploy-") || action == "switch-green" {
			if n > attempts[action] {
				t.Errorf("%s took effect %d time(s), the timeline records %d attempt(s)", action, n, attempts[action])
			}
		}
	}
	// Each change the release needs lands exactly once, but the one the
	// first child was stopped in after it landed, which the second child
	// makes again since the record cannot say it landed: a step applied
	// again, or a done rollback step run again, after a Resume is a change
	// the record did not need.
	want := func(a string) int {
		if a == stoppedIn && landed && !c.sc.manual {
			return 2
		}
		return 1
	}
	for _, a := range c.sc.applies(c.point) {
		if accepted[a] != want(a) {
			t.Errorf("%s took effect %d time(s), want %d", a, accepted[a], want(a))
		}
	}

	// Strategy.Rollback and each rollback step: done in the record means
	// done on the target, at most once more than the record shows.
	done := map[string]int{}
	for _, e := range rec.RollbackSteps {
		switch {
		case e.Outcome != state.OutcomeDone:
		case e.Kind == state.EntryRollback:
			done[c.rollbackAction()]++
		case e.Kind == state.EntryStep:
			for i, name := range rollbackSteps {
				if e.Name == name {
					done[fmt.Sprintf("rbstep-%d", i+1)]++
				}
			}
		}
	}
	actions := []string{c.rollbackAction()}
	for i := range rollbackSteps {
		actions = append(actions, fmt.Sprintf("rbstep-%d", i+1))
	}
	for _, a := range actions {
		if c.sc.rollsBack() && done[a] != 1 {
			t.Errorf("the record shows %s done %d time(s), want once", a, done[a])
		}
		if n := accepted[a]; n < done[a] || n > done[a]+1 {
			t.Errorf("%s took effect %d time(s); the record shows it done %d time(s)", a, n, done[a])
		} else if c.sc.rollsBack() && n != want(a) {
			t.Errorf("%s took effect %d time(s), want %d", a, n, want(a))
		}
	}
	if !c.sc.rollsBack() && rolledBack {
		t.Errorf("a healthy release changed the target by a rollback")
	}
}
