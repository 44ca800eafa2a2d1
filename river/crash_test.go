package river_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/deploykit/deploy"
	"github.com/deploykit/deploy/internal/pgtest"
	deployriver "github.com/deploykit/deploy/river"
	"github.com/deploykit/deploy/state"
	"github.com/deploykit/deploy/state/postgres"
)

// four processes migrating a fresh database at once all succeed (River's
// migrator alone takes no lock: most of them would fail).
func TestFourProcessesMigrateAFreshDatabaseAtOnce(t *testing.T) {
	dsn := pgtest.DSN(t)
	dir := t.TempDir()
	var kids []*child
	for i := range 4 {
		kids = append(kids, startChild(t, "migrate", fmt.Sprintf("migrator-%d", i+1), dsn, dir))
	}
	time.Sleep(500 * time.Millisecond) // let them connect before the barrier opens
	if err := os.WriteFile(filepath.Join(dir, "go"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, k := range kids {
		select {
		case <-k.done:
		case <-time.After(60 * time.Second):
			t.Fatalf("%s did not finish within 60 s:\n%s", k.name, k.output())
		}
		if k.err != nil || !strings.Contains(k.output(), "migrated") {
			t.Errorf("%s: %v\n%s", k.name, k.err, k.output())
		}
	}
	pool := newPool(t, dsn)
	var n int
	if err := pool.QueryRow(t.Context(), `SELECT count(*) FROM river_job`).Scan(&n); err != nil {
		t.Errorf("River's tables after the migrations: %v", err)
	}
	if err := pool.QueryRow(t.Context(), `SELECT count(*) FROM `+postgres.DefaultTable).Scan(&n); err != nil {
		t.Errorf("the store's table after the migrations: %v", err)
	}
}

// kill says when to SIGKILL the worker that wrote an effect.
type kill struct {
	service, kind, step string
	delay               time.Duration // after the effect
	where               string
}

// Releases driven by worker processes reach their right end though a
// worker is SIGKILLed inside a step's Apply, another inside a bake and a
// third inside a rollback: no step is applied after its release's rollback
// began, and the interrupted step is applied at most once more.
func TestFleetSurvivesWorkersKilledInsideApplyBakeAndRollback(t *testing.T) {
	if testing.Short() {
		t.Skip("runs worker processes for about a minute")
	}
	dsn := pgtest.DSN(t)
	dir := t.TempDir()
	fx := effects{filepath.Join(dir, "effects")}
	live := map[string]*child{}
	n := 0
	spawn := func() {
		n++
		c := startChild(t, "worker", fmt.Sprintf("w%d", n), dsn, dir)
		c.waitOutput(t, "ready", 60*time.Second)
		live[c.name] = c
	}
	for range 3 {
		spawn()
	}
	pool := newPool(t, dsn)
	starter := newFleet(t, pool, fx, "starter", deployriver.Config{SweepInterval: -1})
	defer func() {
		if t.Failed() {
			b, _ := os.ReadFile(fx.path)
			t.Logf("effects:\n%s", b)
		}
	}()
	want := map[string]state.Status{
		"ok-1": state.Succeeded, "ok-2": state.Succeeded, "ok-3": state.Succeeded,
		"slow-apply": state.Succeeded, "bake": state.Succeeded, "bad-slow-rollback": state.RolledBack,
	}
	ids := map[string]string{} // service → release id
	for svc := range want {
		id, err := starter.Release(t.Context(), deploy.Release{Service: svc, Version: "v2", PreviousVersion: "v1"})
		if err != nil {
			t.Fatal(err)
		}
		ids[svc] = id
	}
	killed := map[int]bool{} // pids SIGKILLed
	kills := []*kill{
		{service: "slow-apply", kind: "apply-start", step: "step-2", where: "inside step-2's Apply"},
		{service: "bake", kind: "apply-done", step: "step-1", delay: 300 * time.Millisecond, where: "inside step-1's bake"},
		{service: "bad-slow-rollback", kind: "rollback-start", step: "-", where: "inside the rollback"},
	}
	store, _ := postgres.New(pool)
	deadline := time.Now().Add(4 * time.Minute)
	for {
		for _, k := range kills {
			if k.where == "" {
				continue
			}
			for _, e := range fx.read(t) {
				if e.id != ids[k.service] || e.kind != k.kind || e.step != k.step {
					continue
				}
				time.Sleep(k.delay)
				for name, c := range live {
					if c.pid() == e.pid {
						killed[e.pid] = true
						_ = c.cmd.Process.Signal(syscall.SIGKILL)
						<-c.done
						delete(live, name)
						t.Logf("SIGKILLed %s (pid %d) %s of %s", name, e.pid, k.where, k.service)
						spawn()
					}
				}
				k.where = ""
				break
			}
		}
		done := 0
		for svc := range want {
			if rec, err := store.Load(t.Context(), ids[svc]); err == nil && rec.Status.Final() {
				done++
			}
		}
		if done == len(want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d releases over after 4 minutes", done, len(want))
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, k := range kills {
		if k.where != "" {
			t.Errorf("no worker was killed %s of %s: the effect never showed", k.where, k.service)
		}
	}
	for _, c := range live {
		c.stop(t)
	}
	for svc, st := range want {
		rec, err := store.Load(context.Background(), ids[svc])
		if err != nil {
			t.Fatal(err)
		}
		if rec.Status != st {
			t.Errorf("%s ended %s, want %s", svc, rec.Status, st)
		}
	}
	// What the strategies did, in the order they did it.
	all := fx.read(t)
	for svc, id := range ids {
		rolledBack := false
		applies := map[string]int{}
		interrupted := map[string]map[int]bool{} // step → killed pids that began it
		for _, e := range all {
			if e.id != id {
				continue
			}
			switch e.kind {
			case "rollback-start":
				rolledBack = true
			case "apply-start":
				if rolledBack {
					t.Errorf("%s: %s applied after the rollback began (pid %d)", svc, e.step, e.pid)
				}
				applies[e.step]++
				if killed[e.pid] {
					if interrupted[e.step] == nil {
						interrupted[e.step] = map[int]bool{}
					}
					interrupted[e.step][e.pid] = true
				}
			}
		}
		for step, n := range applies {
			// Each worker killed after it began a step (inside the Apply,
			// or after it before the save) makes it applied at most once
			// more; nothing else repeats it.
			if n > 1+len(interrupted[step]) {
				t.Errorf("%s: %s applied %d times, %d of them by workers killed after", svc, step, n, len(interrupted[step]))
			}
		}
		if svc == "slow-apply" && applies["step-2"] < 2 {
			t.Errorf("slow-apply: step-2, killed inside its Apply, applied %d times, want it applied again after the kill", applies["step-2"])
		}
	}
	// Which worker drove each round.
	byRelease := map[string][]string{}
	for _, e := range (effects{filepath.Join(dir, "rounds")}).read(t) {
		byRelease[e.id] = append(byRelease[e.id], e.step)
	}
	svcs := make([]string, 0, len(ids))
	for svc := range ids {
		svcs = append(svcs, svc)
	}
	sort.Strings(svcs)
	for _, svc := range svcs {
		t.Logf("%-18s %s", svc, strings.Join(byRelease[ids[svc]], " "))
	}
}
