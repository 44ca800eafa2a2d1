package crashmatrix

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/deploykit/deploy/internal/proctest"
)

// proc is a child process of a cell.
type proc struct {
	role string
	dir  string
	cmd  *exec.Cmd
	log  string        // its standard output and error
	done chan struct{} // closed once it has exited and been reaped
	err  error         // what Wait returned, once done is closed
}

// startChild runs the test binary again as TestHelperProcess in role. The
// child is killed (and reaped) when the test ends, and dies with the test
// binary.
func startChild(t *testing.T, c *cell, role string) *proc {
	t.Helper()
	p := &proc{role: role, dir: c.dir, log: filepath.Join(c.dir, role+".log"), done: make(chan struct{})}
	out, err := os.Create(p.log)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	p.cmd = exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	p.cmd.Env = append(os.Environ(),
		envRole+"="+role,
		envDir+"="+c.dir,
		envStore+"="+c.store.spec(c.dir),
		envScenario+"="+c.sc.name,
		envPoint+"="+c.point,
		envService+"="+c.service,
	)
	p.cmd.Stdout, p.cmd.Stderr = out, out
	p.cmd.SysProcAttr = proctest.SysProcAttr(nil)
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting the %s child: %v", role, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		if !p.exited() {
			// SIGKILL ends a stopped process too.
			_ = p.cmd.Process.Kill()
			if !t.Failed() {
				t.Errorf("the %s child (pid %d) was still running at the end of the test: killed", role, p.pid())
			}
		}
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			t.Errorf("the %s child (pid %d) was not reaped 10 s after SIGKILL", role, p.pid())
		}
	})
	return p
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *proc) signal(sig syscall.Signal) error { return p.cmd.Process.Signal(sig) }

// wait waits for the child to exit, up to d.
func (p *proc) wait(d time.Duration) error {
	select {
	case <-p.done:
		return nil
	case <-time.After(d):
		return fmt.Errorf("the %s child (pid %d) did not exit within %v", p.role, p.pid(), d)
	}
}

// stopped reports whether the child is stopped by a signal (state T in
// /proc/<pid>/stat).
func (p *proc) stopped() bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.pid()))
	if err != nil {
		return false
	}
	// pid (comm) state …: comm may hold spaces, so look after the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && s[i+2] == 'T'
}

// output is the end of the child's log, for failure messages.
func (p *proc) output() string {
	b, _ := os.ReadFile(p.log)
	if len(b) > 3000 {
		b = append([]byte("…"), b[len(b)-3000:]...)
	}
	return string(b)
}

// raced reports whether the race detector found a data race in the child.
func (p *proc) raced() bool {
	b, _ := os.ReadFile(p.log)
	return bytes.Contains(b, []byte("WARNING: DATA RACE"))
}

// result is what the child reported, or an error if it reported nothing.
func (p *proc) result() (result, error) {
	var r result
	b, err := os.ReadFile(filepath.Join(p.dir, "result-"+p.role+".json"))
	if err != nil {
		return r, err
	}
	return r, json.Unmarshal(b, &r)
}

// errTimeout is what poll returns when cond never held.
var errTimeout = errors.New("timed out")

// poll calls cond every 5 ms until it returns true or an error, up to d.
func poll(d time.Duration, cond func() (bool, error)) error {
	deadline := time.Now().Add(d)
	for {
		ok, err := cond()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w after %v", errTimeout, d)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
