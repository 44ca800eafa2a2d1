package monitor_test

import (
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/deploykit/deploy/monitor"
)

// TestJobTimeoutKillsTheProcessGroup: a job past its timeout is killed with
// the processes it started, and fails. The test process becomes a child
// subreaper, so that the shell's orphaned sleep is its child, and waits for
// it: killed, it ends at once; missed, it would end after 30 s.
func TestJobTimeoutKillsTheProcessGroup(t *testing.T) {
	const prSetChildSubreaper = 36
	if _, _, e := syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0); e != 0 {
		t.Skipf("prctl(PR_SET_CHILD_SUBREAPER): %v", e)
	}
	defer syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 0, 0)

	start := time.Now()
	c := jobCheck(t, &monitor.Job{Command: []string{"sh", "-c", "sleep 30 & echo $!; wait"}, Timeout: 300 * time.Millisecond})
	if c.OK || !strings.Contains(c.Detail, "killed after the timeout 300ms") {
		t.Fatalf("check %+v", c)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("returned after %v", d)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(c.Detail[strings.LastIndex(c.Detail, ":")+1:]))
	if err != nil {
		t.Fatalf("no pid in %q", c.Detail)
	}
	var ws syscall.WaitStatus
	if _, err := syscall.Wait4(pid, &ws, 0, nil); err != nil {
		t.Fatalf("wait for sleep %d: %v", pid, err)
	}
	if !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Errorf("sleep %d ended with %v, want killed by SIGKILL", pid, ws)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("sleep ended after %v: it outlived the job", d)
	}
}
