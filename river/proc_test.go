package river_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/deploykit/deploy/internal/proctest"
	deployriver "github.com/deploykit/deploy/river"
	"github.com/deploykit/deploy/state/postgres"
)

// Environment of a child process (TestHelperProcess).
const (
	envRole = "DEPLOYKIT_RIVER_ROLE" // "worker" or "migrate"
	envDSN  = "DEPLOYKIT_RIVER_DSN"
	envName = "DEPLOYKIT_RIVER_NAME"
	envDir  = "DEPLOYKIT_RIVER_DIR" // effects, rounds, the start barrier
)

// child is a worker or migrator process of a test.
type child struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error
}

// startChild runs the test binary again as TestHelperProcess in role.
// It is killed when the test ends if it still runs.
func startChild(t testing.TB, role, name, dsn, dir string) *child {
	t.Helper()
	c := &child{name: name, log: filepath.Join(dir, name+".log"), done: make(chan struct{})}
	out, err := os.Create(c.log)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	c.cmd = exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	c.cmd.Env = append(os.Environ(), envRole+"="+role, envDSN+"="+dsn, envName+"="+name, envDir+"="+dir)
	c.cmd.Stdout, c.cmd.Stderr = out, out
	c.cmd.SysProcAttr = proctest.SysProcAttr(nil)
	if err := c.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	go func() {
		c.err = c.cmd.Wait()
		close(c.done)
	}()
	t.Cleanup(func() {
		_ = c.cmd.Process.Kill()
		<-c.done
	})
	return c
}

func (c *child) pid() int { return c.cmd.Process.Pid }

func (c *child) output() string {
	b, _ := os.ReadFile(c.log)
	return string(b)
}

// waitOutput waits until the child has printed s.
func (c *child) waitOutput(t testing.TB, s string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !strings.Contains(c.output(), s) {
		select {
		case <-c.done:
			t.Fatalf("%s exited (%v) before printing %q:\n%s", c.name, c.err, s, c.output())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not print %q within %v:\n%s", c.name, s, within, c.output())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop ends a worker with SIGTERM (a soft stop) and waits for it.
func (c *child) stop(t testing.TB) {
	t.Helper()
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(30 * time.Second):
		t.Errorf("%s did not stop within 30 s of SIGTERM", c.name)
	}
}

// TestHelperProcess is a child process of the tests, not a test.
func TestHelperProcess(t *testing.T) {
	role := os.Getenv(envRole)
	if role == "" {
		t.Skip("a child process of the fleet tests")
	}
	ctx := context.Background()
	dir := os.Getenv(envDir)
	pool, err := pgxpool.New(ctx, os.Getenv(envDSN))
	if err != nil {
		fail(err)
	}
	if err := pool.Ping(ctx); err != nil {
		fail(err)
	}
	store, err := postgres.New(pool)
	if err != nil {
		fail(err)
	}
	switch role {
	case "migrate":
		// All migrators start at once: each waits for the barrier file.
		for {
			if _, err := os.Stat(filepath.Join(dir, "go")); err == nil {
				break
			}
			time.Sleep(2 * time.Millisecond)
		}
		if err := deployriver.Migrate(ctx, pool, store); err != nil {
			fail(err)
		}
		fmt.Println("migrated")
		os.Exit(0)
	case "bench":
		f, err := benchWorker(pool, store, dir, os.Getenv(envName))
		if err != nil {
			fail(err)
		}
		serve(ctx, f)
	case "worker":
		name := os.Getenv(envName)
		// Every worker migrates at start-up.
		if err := deployriver.Migrate(ctx, pool, store); err != nil {
			fail(err)
		}
		fx := effects{filepath.Join(dir, "effects")}
		log := effects{filepath.Join(dir, "rounds")}
		f := newFleet(t, pool, fx, name, deployriver.Config{OnRound: func(r deployriver.Round) {
			log.add("round", r.ID, name+"/"+r.Outcome, r.Started.Sub(r.Due).Milliseconds())
		}})
		serve(ctx, f)
	}
	fail(fmt.Errorf("unknown role %q", role))
}

// serve works f's jobs until SIGTERM, then stops it softly and exits.
func serve(ctx context.Context, f *deployriver.Fleet) {
	sig, stop := signal.NotifyContext(ctx, syscall.SIGTERM)
	defer stop()
	if err := f.Start(ctx); err != nil {
		fail(err)
	}
	fmt.Println("ready", os.Getpid())
	<-sig.Done()
	sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := f.Stop(sctx); err != nil {
		fail(err)
	}
	fmt.Println("stopped")
	os.Exit(0)
}

func fail(err error) {
	fmt.Println("FAILED:", err)
	os.Exit(1)
}
