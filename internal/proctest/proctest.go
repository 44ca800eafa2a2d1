// Package proctest runs a server process for tests: its output kept for
// error messages, a wait until it is ready, a stop that signals, then kills.
//
// It holds what internal/pgtest and internal/promtest share. A typical use:
//
//	cmd := exec.Command(bin, args...)
//	p, err := proctest.Start("prometheus", cmd, syscall.SIGTERM)
//	if err != nil { … }
//	if err := p.WaitReady(ctx, ping); err != nil {
//		_ = p.Stop()
//		…
//	}
//	defer p.Stop()
package proctest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// Log keeps what a process writes; it is safe for concurrent writes.
type Log struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p to the log.
func (l *Log) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// Tail returns the last n bytes of the log, after "…" when that is not
// all of it.
func (l *Log) Tail(n int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.b.String()
	if len(s) > n {
		s = "…" + s[len(s)-n:]
	}
	return s
}

// logTail is how much of the log an error message quotes.
const logTail = 4000

// Process is a started process.
type Process struct {
	name  string
	cmd   *exec.Cmd
	stop  os.Signal
	grace time.Duration // between stop and SIGKILL
	start time.Time
	log   Log

	done chan struct{} // closed once the process has exited and been reaped
	err  error         // what Wait returned; read after done is closed

	mu      sync.Mutex
	stopped bool
}

// Start starts cmd, named name in error messages, and reaps it when it
// exits. Stop ends it with the signal stop. Unless already set, cmd's
// standard output and error go to the process's log (see [Process.Logs])
// and cmd.SysProcAttr is [SysProcAttr](nil), so that the process dies with
// the test binary where supported.
func Start(name string, cmd *exec.Cmd, stop os.Signal) (*Process, error) {
	p := &Process{name: name, cmd: cmd, stop: stop, grace: 10 * time.Second, done: make(chan struct{})}
	if cmd.Stdout == nil {
		cmd.Stdout = &p.log
	}
	if cmd.Stderr == nil {
		cmd.Stderr = &p.log
	}
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = SysProcAttr(nil)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p.start = time.Now()
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// WaitReady calls ready every 50 milliseconds until it returns nil. It
// fails, quoting the end of the log, if the process exits first or ctx
// ends first.
func (p *Process) WaitReady(ctx context.Context, ready func(context.Context) error) error {
	for {
		err := ready(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("%s exited before it was ready (%v):\n%s", p.name, p.err, p.log.Tail(logTail))
		case <-ctx.Done():
			return fmt.Errorf("%s not ready after %s (last error: %v):\n%s", p.name, time.Since(p.start).Round(time.Millisecond), err, p.log.Tail(logTail))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Stop sends the process its stop signal and waits for it to exit; after
// 10 seconds it kills it and returns an error saying so. It returns nil if
// the process has already exited, and does nothing when called again.
func (p *Process) Stop() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return nil
	}
	p.stopped = true
	_ = p.cmd.Process.Signal(p.stop) // fails only if it has exited already
	select {
	case <-p.done:
		return nil
	case <-time.After(p.grace):
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("%s (pid %d) ignored %s for %s and was killed", p.name, p.Pid(), signalName(p.stop), p.grace)
	}
}

// Logs returns the last n bytes of what the process wrote to its log.
func (p *Process) Logs(n int) string { return p.log.Tail(n) }

// Pid returns the process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// signalNames names the usual stop signals as kill(1) does ("SIGTERM"
// rather than "terminated").
var signalNames = map[os.Signal]string{
	syscall.SIGHUP:  "SIGHUP",
	syscall.SIGINT:  "SIGINT",
	syscall.SIGQUIT: "SIGQUIT",
	syscall.SIGTERM: "SIGTERM",
}

func signalName(sig os.Signal) string {
	if n, ok := signalNames[sig]; ok {
		return n
	}
	return sig.String()
}
