package proctest

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

var errNotYet = errors.New("not yet")

func TestStopSignals(t *testing.T) {
	p, err := Start("sleep", exec.Command("sleep", "30"), syscall.SIGTERM)
	if err != nil {
		t.Fatal(err)
	}
	calls := 0
	err = p.WaitReady(t.Context(), func(context.Context) error {
		if calls++; calls < 3 {
			return errNotYet
		}
		return nil
	})
	if err != nil || calls != 3 {
		t.Fatalf("WaitReady = %v after %d calls, want nil after 3", err, calls)
	}
	begin := time.Now()
	if err := p.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if d := time.Since(begin); d > 5*time.Second {
		t.Errorf("Stop took %s: SIGTERM did not end sleep", d)
	}
	if err := syscall.Kill(p.Pid(), 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("pid %d still exists after Stop (kill -0: %v)", p.Pid(), err)
	}
	if err := p.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
}

func TestStopKills(t *testing.T) {
	// exec keeps the ignored SIGTERM, so only SIGKILL ends the sleep.
	p, err := Start("stubborn", exec.Command("sh", "-c", `trap "" TERM; echo trapped; exec sleep 30`), syscall.SIGTERM)
	if err != nil {
		t.Fatal(err)
	}
	err = p.WaitReady(t.Context(), func(context.Context) error {
		if !strings.Contains(p.Logs(100), "trapped") {
			return errNotYet
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	p.grace = 200 * time.Millisecond
	err = p.Stop()
	if err == nil || !strings.Contains(err.Error(), "stubborn (pid ") || !strings.Contains(err.Error(), "ignored SIGTERM for 200ms and was killed") {
		t.Errorf("Stop = %v, want stubborn … ignored SIGTERM for 200ms and was killed", err)
	}
}

func TestExitBeforeReady(t *testing.T) {
	p, err := Start("shell", exec.Command("sh", "-c", "echo hi; echo oops >&2; exit 3"), syscall.SIGTERM)
	if err != nil {
		t.Fatal(err)
	}
	err = p.WaitReady(t.Context(), func(context.Context) error { return errNotYet })
	if err == nil || !strings.HasPrefix(err.Error(), "shell exited before it was ready (exit status 3):\n") ||
		!strings.Contains(err.Error(), "hi\n") || !strings.Contains(err.Error(), "oops\n") {
		t.Errorf("WaitReady = %v, want shell exited before it was ready (exit status 3) and the log", err)
	}
	if err := p.Stop(); err != nil {
		t.Errorf("Stop after exit: %v", err)
	}
	if got := p.Logs(3); got != "…ps\n" {
		t.Errorf("Logs(3) = %q, want %q", got, "…ps\n")
	}
}

func TestNotReady(t *testing.T) {
	p, err := Start("sleep", exec.Command("sleep", "30"), syscall.SIGTERM)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err = p.WaitReady(ctx, func(context.Context) error { return errNotYet })
	if err == nil || !strings.HasPrefix(err.Error(), "sleep not ready after ") || !strings.Contains(err.Error(), "(last error: not yet)") {
		t.Errorf("WaitReady = %v, want sleep not ready after … (last error: not yet)", err)
	}
}

func TestStartFails(t *testing.T) {
	_, err := Start("nothing", exec.Command("/nonexistent/nothing"), syscall.SIGTERM)
	if err == nil || !strings.HasPrefix(err.Error(), "starting nothing: ") {
		t.Errorf("Start = %v, want starting nothing: …", err)
	}
}

func TestLogTail(t *testing.T) {
	var l Log
	l.Write([]byte("abc"))
	l.Write([]byte("def"))
	for n, want := range map[int]string{6: "abcdef", 10: "abcdef", 2: "…ef"} {
		if got := l.Tail(n); got != want {
			t.Errorf("Tail(%d) = %q, want %q", n, got, want)
		}
	}
}
